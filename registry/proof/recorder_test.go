package proof_test

import (
	"errors"
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
