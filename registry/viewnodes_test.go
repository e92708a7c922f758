package registry

import (
	"bytes"
	"testing"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/smt"
)

// A kept view remembers the records, listings and map node records its
// proofs read, shares them
// with every view handed out from it, and they stay those of its own
// state: after writes that change the map (in place), the kept view's
// proof is the same bytes as before and each remembered record is its
// snapshot's, while the newer state's proof differs and verifies against
// its own root.
func TestKeptViewRemembersItsMapNodes(t *testing.T) {
	f := mustCommitScenario(t)
	keys := []decide.RecordKey{
		decide.AccreditationKey(f.qaAcc), decide.EntityKey(f.other.DID), decide.ReceivedKey(f.other.DID, fwID),
		decide.EntityKey("did:web:unknown.example"),
	}
	size, _, err := f.s.LogHead()
	if err != nil {
		t.Fatal(err)
	}
	prove := func(size uint64) ([]byte, *viewMemory, smt.Hash) {
		t.Helper()
		v, err := f.s.ViewAtLogSize(size)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		c, err := v.Commitment()
		if err != nil {
			t.Fatal(err)
		}
		_, proof, err := v.ProveRecords(keys)
		if err != nil {
			t.Fatal(err)
		}
		return proof, v.mem, c.MapRoot
	}
	first, nodes, _ := prove(size)
	if nodes == nil || len(nodes.nodes) == 0 {
		t.Fatal("the kept view remembered no map node records")
	}
	remembered := len(nodes.nodes)
	again, nodes2, _ := prove(size)
	if nodes2 != nodes || len(nodes.nodes) != remembered || !bytes.Equal(again, first) {
		t.Fatalf("a second view of the same kept state: shared memory %v, %d records remembered (then %d), same proof %v",
			nodes2 == nodes, len(nodes.nodes), remembered, bytes.Equal(again, first))
	}

	read := func(size uint64) ([]byte, []string) {
		t.Helper()
		v, err := f.s.ViewAtLogSize(size)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		rs := v.Records()
		b, err := rs.Record(decide.AccreditationKey(f.qaAcc))
		if err != nil || b == nil {
			t.Fatalf("the accreditation: %q, %v", b, err)
		}
		ids, err := rs.Received(f.other.DID, fwID)
		if err != nil {
			t.Fatal(err)
		}
		return b, ids
	}
	accBefore, idsBefore := read(size)
	if _, ok := nodes.records[decide.AccreditationKey(f.qaAcc)]; !ok {
		t.Fatal("the kept view did not remember the record read")
	}
	if _, ok := nodes.received[[2]string{f.other.DID, fwID}]; !ok || len(idsBefore) == 0 {
		t.Fatalf("the kept view did not remember the listing read (%v)", idsBefore)
	}

	f.moreHistoryAfter(t) // suspends the accreditation proven, registers another entity
	later, _, err := f.s.LogHead()
	if err != nil {
		t.Fatal(err)
	}
	if acc, ids := read(size); !bytes.Equal(acc, accBefore) || len(ids) != len(idsBefore) {
		t.Fatal("the kept view's records changed after writes to the state")
	}
	if acc, _ := read(later); bytes.Equal(acc, accBefore) {
		t.Fatal("the newer state reads the suspended accreditation as it was")
	}
	old, _, _ := prove(size)
	if !bytes.Equal(old, first) {
		t.Fatal("the kept view's proof changed after writes to the state")
	}
	v, err := f.s.ViewAtLogSize(size)
	if err != nil {
		t.Fatal(err)
	}
	for k, rec := range nodes.nodes {
		got, err := v.mapNodes().GetNode([]byte(k))
		if (err != nil) != (rec == nil) || !bytes.Equal(got, rec) {
			t.Fatalf("remembered record %x is not the kept state's: %x, %v", k, got, err)
		}
	}
	v.Close()
	now, nowNodes, root := prove(later)
	if nowNodes == nodes || bytes.Equal(now, first) {
		t.Fatal("the newer state's proof is the kept one's")
	}
	w, err := f.s.ViewAtLogSize(later)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	recs, proof, err := w.ProveRecords(keys)
	if err != nil {
		t.Fatal(err)
	}
	var claims []smt.Claim
	for _, r := range recs {
		c := smt.Claim{Key: smt.KeyOf(decide.StoreKey(r.Key)), Present: r.Bytes != nil}
		if r.Bytes != nil {
			c.Value = recordValue(r.Bytes)
		}
		claims = append(claims, c)
	}
	if err := smt.VerifyBatch(root, claims, proof); err != nil || !bytes.Equal(proof, now) {
		t.Fatalf("the newer state's proof through its remembered records: %v", err)
	}
}

// Past keptMemoryMaxBytes a kept view reads records without remembering
// more, and still proves.
func TestKeptViewNodeMemoryIsBounded(t *testing.T) {
	f := mustCommitScenario(t)
	size, _, err := f.s.LogHead()
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.s.ViewAtLogSize(size)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	v.mem.bytes = keptMemoryMaxBytes // as if full
	if _, _, err := v.ProveRecords([]decide.RecordKey{decide.EntityKey(f.other.DID)}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Records().Record(decide.EntityKey(f.other.DID)); err != nil {
		t.Fatal(err)
	}
	if len(v.mem.nodes) != 0 || len(v.mem.records) != 0 {
		t.Fatalf("a full memory took %d more node records and %d records", len(v.mem.nodes), len(v.mem.records))
	}
}
