package registry

import (
	"bytes"
	"errors"
	"testing"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// ProveReadRecords over the bytes a kept view's Records returned makes
// the proof ProveRecordsAndStoreKeys makes, again and again (the second
// time from the view's remembered map values); bytes the map does not
// hold are refused as ErrStateCorrupt, even when of the same length as
// the bytes whose map value the view remembers, while a copy of the right
// bytes (another array) is proven.
func TestProveReadRecordsIsProveRecords(t *testing.T) {
	f := mustCommitScenario(t)
	keys := []decide.RecordKey{
		decide.AccreditationKey(f.qaAcc), decide.EntityKey(f.other.DID), decide.ReceivedKey(f.other.DID, fwID),
		decide.EntityKey("did:web:unknown.example"),
	}
	size, _, err := f.s.LogHead()
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.s.ViewAtLogSize(size)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	storeKeys := [][]byte{CosignerSetStoreKey()}
	_, wantVals, want, err := v.ProveRecordsAndStoreKeys(keys, storeKeys)
	if err != nil {
		t.Fatal(err)
	}
	rs := v.Records()
	read := make([][]byte, len(keys))
	for i, k := range keys {
		if k.Kind == decide.KindReceived {
			ids, err := rs.Received(k.A, k.B)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) > 0 {
				read[i] = decide.EncodeReceived(ids)
			}
			continue
		}
		if read[i], err = rs.Record(k); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		vals, got, err := v.ProveReadRecords(keys, read, storeKeys)
		if err != nil || !bytes.Equal(got, want) || len(vals) != 1 || !bytes.Equal(vals[0], wantVals[0]) {
			t.Fatalf("round %d: proof equal %v, values %q (want %q), %v", round, bytes.Equal(got, want), vals, wantVals, err)
		}
	}
	if len(v.mem.values) == 0 {
		t.Fatal("the kept view remembered no map values")
	}

	copied := append([][]byte(nil), read...)
	copied[0] = bytes.Clone(read[0])
	if _, got, err := v.ProveReadRecords(keys, copied, storeKeys); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("a copy of the bytes read: %v", err)
	}
	altered := append([][]byte(nil), read...)
	altered[0] = bytes.Clone(read[0])
	altered[0][len(altered[0])/2] ^= 1
	if _, _, err := v.ProveReadRecords(keys, altered, storeKeys); !errors.Is(err, ErrStateCorrupt) {
		t.Fatalf("bytes the map does not hold: %v, want ErrStateCorrupt", err)
	}
	if _, _, err := v.ProveReadRecords(keys, read[:1], storeKeys); err == nil {
		t.Fatal("fewer records read than keys was proven")
	}
}

// A kept view's ProofMemo remembers decoded records for every view of its
// state; another view has none.
func TestProofMemoIsTheKeptViews(t *testing.T) {
	f := mustCommitScenario(t)
	size, _, err := f.s.LogHead()
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.s.ViewAtLogSize(size)
	if err != nil {
		t.Fatal(err)
	}
	k := decide.AccreditationKey(f.qaAcc)
	acc := &record.Accreditation{ID: f.qaAcc}
	v.ProofMemo().Remember(k, acc)
	v.Close()
	w, err := f.s.ViewAtLogSize(size)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got, ok := w.ProofMemo().Recall(k); !ok || got != acc {
		t.Fatalf("another view of the kept state recalls %v, %v", got, ok)
	}
	plain := f.s.View()
	defer plain.Close()
	if plain.ProofMemo() != nil {
		t.Fatal("a view that is not kept has a proof memory")
	}
}
