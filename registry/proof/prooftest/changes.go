package prooftest

import (
	"encoding/json"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
	"github.com/trustreg/trustreg/registry/tlog"
)

// Cosigner changes as a dishonest quorum of a cosigner set can log them:
// entries the caller chooses, each followed by a cosigner-set record it
// writes itself (an honest registry writes the same for honest changes).

// SignSetCosigners signs a setCosigners naming signers' keys by the
// world's governance member (genesis threshold 1), with its genesis key.
func (w *World) SignSetCosigners(quorum int, signers ...*tlog.CosignatureSigner) []byte {
	var keys []string
	for _, s := range signers {
		keys = append(keys, s.Key().String())
	}
	jws, _ := w.sign(w.gov, record.SetCosigners{Header: record.Header{Op: record.OpSetCosigners, IAT: w.commitTime().Unix()}, Cosigners: keys, Quorum: quorum})
	return jws
}

type loggedChange struct {
	jws   []byte
	leaf  uint64
	index uint64
}

// ChangeLog is a run of logged cosigner changes and the record written
// after them (CommitChanges).
type ChangeLog struct {
	w       *World
	changes []loggedChange
	rec     record.CosignerSet
	raw     []byte
}

// CommitChanges commits each jws as an entry of its own, writing the
// record of set and quorum (with Changes filled from the entries) into the
// map at the cosigner-set key after each, and returns the evidence builder.
func (w *World) CommitChanges(set []string, quorum int, jwss ...[]byte) *ChangeLog {
	c := &ChangeLog{w: w, rec: record.CosignerSet{Cosigners: set, Quorum: quorum}}
	for _, jws := range jwss {
		leafAt := w.log.Size()
		c.rec.Changes = append(c.rec.Changes, record.CosignerChange{Operation: record.CIDOf(jws), Index: w.index + 1})
		raw, err := json.Marshal(c.rec)
		if err != nil {
			w.tb.Fatal(err)
		}
		c.raw = raw
		c.commitRaw(raw, jws)
		c.changes = append(c.changes, loggedChange{jws: jws, leaf: leafAt, index: w.index})
	}
	return c
}

// commitRaw appends jws's entry, with raw as the cosigner-set record.
func (c *ChangeLog) commitRaw(raw, jws []byte) {
	w := c.w
	w.index++
	root, err := w.m.Update([]smt.Change{{Key: smt.KeyOf(proof.CosignerStoreKey), Value: proof.MapValue(raw)}})
	if err != nil {
		w.tb.Fatal(err)
	}
	leaf := tlog.Leaf{Index: w.index, CommitTime: w.commitTime(), MapRoot: root,
		Ops: []tlog.Op{{CID: cidBytes(w.tb, record.CIDOf(jws)), ResultCID: cidBytes(w.tb, record.CIDOf(append([]byte("accepted "), jws...)))}}}
	enc, err := leaf.Encode()
	if err != nil {
		w.tb.Fatal(err)
	}
	if err := w.log.Append(w.logMem, tlog.LeafHash(enc)); err != nil {
		w.tb.Fatal(err)
	}
	w.leaves = append(w.leaves, enc)
}

// RecordsBundleWithChanges is RecordsBundle over the current log, carrying
// the changes' evidence, its checkpoint signed by signers.
func (c *ChangeLog) RecordsBundleWithChanges(signers []*tlog.CosignatureSigner, keys ...decide.RecordKey) *proof.Bundle {
	w := c.w
	rec := proof.NewRecorder(w)
	for _, k := range keys {
		if _, err := rec.Record(k); err != nil {
			w.tb.Fatal(err)
		}
	}
	b := &proof.Bundle{Version: proof.Version}
	b.Question, b.Answer = proof.NewRecords(w.Now, w.index)
	_, mp, err := w.m.ProveBatch(append(rec.MapKeys(), smt.KeyOf(proof.CosignerStoreKey)))
	if err != nil {
		w.tb.Fatal(err)
	}
	b.Records, b.MapProof = rec.Records(), mp
	b.LeafIndex = w.log.Size() - 1
	b.Leaf = w.leaves[b.LeafIndex]
	w.AttachLog(b, 0)
	b.Checkpoint = w.Checkpoint(w.Now, signers...)
	b.Cosigners = &proof.Cosigners{Record: c.raw}
	for _, ch := range c.changes {
		incl, err := tlog.InclusionProof(w.logMem, ch.leaf, w.log.Size())
		if err != nil {
			w.tb.Fatal(err)
		}
		b.Cosigners.Changes = append(b.Cosigners.Changes, proof.CosignerChange{JWS: ch.jws, Leaf: w.leaves[ch.leaf], LeafIndex: ch.leaf, Inclusion: incl})
	}
	return b
}
