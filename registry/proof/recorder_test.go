package proof_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/proof/prooftest"
	"github.com/trustreg/trustreg/registry/smt"
)

// TestRecorderRecordsEveryRead: a decision through a Recorder leaves
// exactly the keys it read, each once, in the order first read, with the
// bytes read (the listing in its record form, an empty one absent); the
// map keys are theirs; an error from the source is returned and records
// nothing.
func TestRecorderRecordsEveryRead(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{})
	rec := proof.NewRecorder(w)
	if _, err := decide.Decide(rec, nil, w.Applied(), collegeQuestion(), w.Now); err != nil {
		t.Fatal(err)
	}
	want := []decide.RecordKey{
		decide.FrameworkKey(prooftest.Framework),
		decide.ReceivedKey(prooftest.College, prooftest.Framework),
		decide.AccreditationKey(w.Acc3), decide.AccreditationKey(w.Acc2), decide.AccreditationKey(w.Acc1),
		decide.RootKey(prooftest.Framework, prooftest.Root),
	}
	got := rec.Records()
	if len(got) != len(want) {
		t.Fatalf("recorded %+v, want %v", got, want)
	}
	for i, r := range got {
		k, err := r.Key()
		if err != nil || k != want[i] {
			t.Fatalf("record %d is %v (%v), want %v", i, k, err, want[i])
		}
		b, _ := w.Record(k)
		if k.Kind == decide.KindReceived {
			b = decide.EncodeReceived([]string{w.Acc3})
		}
		if !slices.Equal(r.Bytes, b) {
			t.Fatalf("record %v: %q, want %q", k, r.Bytes, b)
		}
		if rec.MapKeys()[i] != smt.KeyOf(decide.StoreKey(k)) {
			t.Fatalf("map key %d", i)
		}
	}

	rec = proof.NewRecorder(w)
	if ids, err := rec.Received("did:web:nobody.example", prooftest.Framework); err != nil || ids != nil {
		t.Fatal(ids, err)
	}
	if r := rec.Records(); len(r) != 1 || r[0].Bytes != nil || r[0].Kind != "received" {
		t.Fatalf("empty listing recorded as %+v, want absent", r)
	}

	boom := errors.New("disk on fire")
	rec = proof.NewRecorder(failing{boom})
	if _, err := rec.Record(decide.EntityKey("did:web:a.example")); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := rec.Received("did:web:a.example", prooftest.Framework); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if len(rec.Records()) != 0 {
		t.Fatalf("failed reads recorded: %+v", rec.Records())
	}
}

type failing struct{ err error }

func (f failing) Record(decide.RecordKey) ([]byte, error)   { return nil, f.err }
func (f failing) Received(string, string) ([]string, error) { return nil, f.err }

// mapMemo is a decide.Memo that remembers everything.
type mapMemo map[decide.RecordKey]any

func (m mapMemo) Recall(k decide.RecordKey) (any, bool) { v, ok := m[k]; return v, ok }
func (m mapMemo) Remember(k decide.RecordKey, v any)    { m[k] = v }

// TestRecorderMemoRecordsWhatIsRecalled: a decision through a Recorder
// with a memory of decoded records (Recorder.Memo) records exactly what
// it records without one, the same keys in the same order with the same
// bytes, whether the memory is empty, full of everything the decision
// decodes (every record and the listing recalled), or holds records but
// not the listing; a recalled record whose bytes cannot be read is not
// recalled, and the read's error is the decision's.
func TestRecorderMemoRecordsWhatIsRecalled(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{})
	plain := proof.NewRecorder(w)
	if _, err := decide.Decide(plain, nil, w.Applied(), collegeQuestion(), w.Now); err != nil {
		t.Fatal(err)
	}
	memo := mapMemo{}
	for _, stage := range []string{"empty memory", "everything remembered", "listing forgotten"} {
		if stage == "listing forgotten" {
			delete(memo, decide.ReceivedKey(prooftest.College, prooftest.Framework))
		}
		rec := proof.NewRecorder(w)
		d, err := decide.Decide(rec, rec.Memo(memo), w.Applied(), collegeQuestion(), w.Now)
		if err != nil || !d.Authorized {
			t.Fatalf("%s: %+v, %v", stage, d, err)
		}
		got, want := rec.Records(), plain.Records()
		if len(got) != len(want) {
			t.Fatalf("%s: recorded %v, want %v", stage, names(got), names(want))
		}
		for i := range got {
			if got[i].Kind != want[i].Kind || got[i].A != want[i].A || got[i].B != want[i].B || !slices.Equal(got[i].Bytes, want[i].Bytes) {
				t.Fatalf("%s: record %d is %v (%d bytes), want %v (%d bytes)", stage, i, names(got[i:i+1]), len(got[i].Bytes), names(want[i:i+1]), len(want[i].Bytes))
			}
		}
		keys, read := rec.Read()
		for i := range keys {
			if k, _ := want[i].Key(); k != keys[i] || !slices.Equal(read[i], want[i].Bytes) {
				t.Fatalf("%s: Read %d is %v (%d bytes), want %v", stage, i, keys[i], len(read[i]), names(want[i:i+1]))
			}
		}
	}
	if len(memo) == 0 {
		t.Fatal("nothing was remembered")
	}

	boom := errors.New("disk on fire")
	rec := proof.NewRecorder(failing{boom})
	if _, err := decide.Decide(rec, rec.Memo(memo), w.Applied(), collegeQuestion(), w.Now); !errors.Is(err, boom) {
		t.Fatalf("recalled over a failing source: %v, want %v", err, boom)
	}
	if proof.NewRecorder(w).Memo(nil) != nil {
		t.Fatal("Memo(nil) is not nil")
	}
}

// names lists records by kind and identifiers.
func names(rs []proof.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Kind+" "+r.A+" "+r.B)
	}
	return out
}

// TestRecorderRecordsEachKeyOnceAtAnyCount: past the keys a Recorder
// scans for a repeat, it still records each key once, in the order first
// read.
func TestRecorderRecordsEachKeyOnceAtAnyCount(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{})
	rec := proof.NewStableRecorder(w)
	const n = 100
	for range 2 {
		for i := range n {
			if _, err := rec.Record(decide.EntityKey(fmt.Sprintf("did:web:e%d.example", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	keys, _ := rec.Read()
	if len(keys) != n {
		t.Fatalf("%d keys recorded, want %d", len(keys), n)
	}
	for i, k := range keys {
		if k.A != fmt.Sprintf("did:web:e%d.example", i) {
			t.Fatalf("key %d is %v", i, k)
		}
	}
}
