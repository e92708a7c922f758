// Package prooftest builds, for tests, the state a registry node proves
// answers from: real signed operations and the records the registry stores
// for them, a state map (registry/smt) and a log (registry/tlog) over
// memory stores, checkpoints cosigned by keys a genesis lists, and proof
// bundles (registry/proof) for questions over that state. It is not for
// production code: every failure ends the test.
package prooftest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
	"github.com/trustreg/trustreg/registry/tlog"
)

// Identifiers of the world's depth-3 chain: Root, a root accreditor of
// Framework, accredits Regional, which accredits Agency, which grants
// College the issuing of Nursing credentials.
const (
	Framework  = "https://framework.example.org/nursing"
	Other      = "https://other.example.org/framework" // a framework Framework recognizes
	Root       = "did:web:ministry.example.gov"
	Regional   = "did:web:regional-board.example.org"
	Agency     = "did:web:qa-agency.example.org"
	College    = "did:web:amazing-college.example.edu"
	Nursing    = "https://credentials.example.org/types/RegisteredNurse"
	Consortium = "Example LER consortium"
)

// Options shape a World.
type Options struct {
	// Cosigners is how many cosigner keys the genesis lists (default 5).
	Cosigners int
	// Filler is how many other entities the state holds besides the
	// chain's, so map proofs are as long as in a registry of that size.
	Filler int
	// LogPad is how many leaves the log holds before the chain's first,
	// so log proofs are as long as in a log of that size.
	LogPad int
	// Now is the world's clock (zero: 2026-06-01T12:00:00Z). A test that
	// verifies with the real clock passes time.Now().
	Now time.Time
}

// World is a registry's state and log, built in memory.
type World struct {
	tb testing.TB
	// Genesis is the genesis document's exact bytes.
	Genesis []byte
	// Cosigners are the genesis's cosigners' signers, in genesis order.
	Cosigners []*tlog.CosignatureSigner
	// Now is the clock: commit times and cosignature times derive from it.
	Now time.Time
	// Acc1, Acc2, Acc3 are the chain's accreditation ids, from the root's
	// grant down to the college's.
	Acc1, Acc2, Acc3 string

	gov     *record.Signer
	signers map[string]*record.Signer
	records map[decide.RecordKey][]byte
	m       *smt.Map
	logMem  *tlog.MemStore
	log     *tlog.Log
	leaves  [][]byte
	index   uint64 // the raft index of the last entry applied
}

// New builds a world: the genesis, the framework with its root and a
// recognition, the entities, the depth-3 chain, and opts' filler.
func New(tb testing.TB, opts Options) *World {
	tb.Helper()
	if opts.Cosigners == 0 {
		opts.Cosigners = 5
	}
	if opts.Now.IsZero() {
		opts.Now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	}
	w := &World{
		tb: tb, Now: opts.Now.UTC().Truncate(time.Second),
		signers: map[string]*record.Signer{}, records: map[decide.RecordKey][]byte{},
		m: smt.New(smt.NewMemStore()), logMem: tlog.NewMemStore(), log: tlog.NewLog(),
		index: 2, // raft's first entries configure the cluster and apply nothing
	}
	var err error
	if w.gov, err = record.GenerateKey(record.KeyEd25519); err != nil {
		tb.Fatal(err)
	}
	g := record.Genesis{Consortium: Consortium, Members: []record.Member{{ID: w.gov.DID, Name: "governance"}}, Threshold: 1}
	for i := range opts.Cosigners {
		s := NewCosignatureSigner(tb, fmt.Sprintf("member-%d.example.org", i+1))
		w.Cosigners = append(w.Cosigners, s)
		g.Cosigners = append(g.Cosigners, s.Key().String())
	}
	if w.Genesis, err = json.Marshal(g); err != nil {
		tb.Fatal(err)
	}
	for range opts.LogPad {
		w.commit(nil, nil)
	}
	if opts.Filler > 0 {
		w.fill(opts.Filler)
	}
	w.setUp()
	return w
}

// NewCosignatureSigner returns a cosigner key named name, with a fresh
// Ed25519 key.
func NewCosignatureSigner(tb testing.TB, name string) *tlog.CosignatureSigner {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := tlog.NewCosignatureSigner(name, priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Origin is the log's checkpoint origin, derived from the genesis.
func (w *World) Origin() string {
	o, err := tlog.Origin(record.CIDOf(w.Genesis))
	if err != nil {
		w.tb.Fatal(err)
	}
	return o
}

// Applied is the raft index of the last entry applied.
func (w *World) Applied() uint64 { return w.index }

// LogSize is the number of leaves in the log.
func (w *World) LogSize() uint64 { return w.log.Size() }

// Record returns the state's bytes of k (nil: absent).
func (w *World) Record(k decide.RecordKey) ([]byte, error) { return w.records[k], nil }

// Received returns the state's listing of subject's accreditations in
// framework.
func (w *World) Received(subject, framework string) ([]string, error) {
	b := w.records[decide.ReceivedKey(subject, framework)]
	if b == nil {
		return nil, nil
	}
	return decide.DecodeReceived(b)
}

var _ decide.Records = (*World)(nil)

// signer returns the key of did, made on first use (a did:web's key). It
// is derived from the DID, so the chain's accreditation ids, and with them
// the map's keys and proofs, are the same in every run.
func (w *World) signer(did string) *record.Signer {
	if s, ok := w.signers[did]; ok {
		return s
	}
	seed := sha256.Sum256([]byte("prooftest key of " + did))
	s, err := record.NewSigner(ed25519.NewKeyFromSeed(seed[:]), did+"#key-1")
	if err != nil {
		w.tb.Fatal(err)
	}
	w.signers[did] = s
	return s
}

// sign signs an operation payload with s, as trustctl does, and returns
// the JWS and its CID (the operation's id).
func (w *World) sign(s *record.Signer, payload any) ([]byte, string) {
	p, err := json.Marshal(payload)
	if err != nil {
		w.tb.Fatal(err)
	}
	jws, err := s.SignCompact(p)
	if err != nil {
		w.tb.Fatal(err)
	}
	return jws, record.CIDOf(jws)
}

// put stages the JSON of v as the record k, as the registry stores it.
func (w *World) put(changes map[decide.RecordKey][]byte, k decide.RecordKey, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		w.tb.Fatal(err)
	}
	changes[k] = b
}

// commit applies one raft entry: the record changes, its operations (by
// their JWS) and a log leaf committing to the map root after them.
func (w *World) commit(changes map[decide.RecordKey][]byte, ops [][]byte) {
	w.tb.Helper()
	w.index++
	var mc []smt.Change
	for k, b := range changes {
		w.records[k] = b
		mc = append(mc, smt.Change{Key: proof.MapKey(k), Value: proof.MapValue(b)})
	}
	root, err := w.m.Update(mc)
	if err != nil {
		w.tb.Fatal(err)
	}
	leaf := tlog.Leaf{Index: w.index, CommitTime: w.commitTime(), MapRoot: root}
	for _, op := range ops {
		leaf.Ops = append(leaf.Ops, tlog.Op{CID: cidBytes(w.tb, record.CIDOf(op)), ResultCID: cidBytes(w.tb, record.CIDOf(append([]byte("accepted "), op...)))})
	}
	enc, err := leaf.Encode()
	if err != nil {
		w.tb.Fatal(err)
	}
	if err := w.log.Append(w.logMem, tlog.LeafHash(enc)); err != nil {
		w.tb.Fatal(err)
	}
	w.leaves = append(w.leaves, enc)
}

// commitTime is the commit time of the entry at w.index: an hour before
// Now, a millisecond later for each entry.
func (w *World) commitTime() time.Time {
	return w.Now.Add(-time.Hour).Add(time.Duration(w.index) * time.Millisecond)
}

func cidBytes(tb testing.TB, s string) []byte {
	c, err := cid.Decode(s)
	if err != nil {
		tb.Fatal(err)
	}
	return c.Bytes()
}

// fill registers n entities in one entry.
func (w *World) fill(n int) {
	changes := make(map[decide.RecordKey][]byte, n)
	for i := range n {
		did := fmt.Sprintf("did:web:issuer-%07d.example.org", i)
		w.put(changes, decide.EntityKey(did), record.Entity{ID: did, Name: fmt.Sprintf("Issuer %d", i), Keys: []json.RawMessage{}, Registered: true, CreatedIndex: w.index + 1, UpdatedIndex: w.index + 1})
	}
	w.commit(changes, nil)
}

// setUp creates the framework with its root and recognition, registers
// the chain's entities and grants the chain, one entry each.
func (w *World) setUp() {
	at := w.commitTime()
	// createFramework, by governance.
	jws, opID := w.sign(w.gov, record.CreateFramework{Header: record.Header{Op: record.OpCreateFramework, IAT: at.Unix()},
		ID: Framework, Name: "Nursing", Roots: []string{Root}})
	changes := map[decide.RecordKey][]byte{}
	idx := w.index + 1
	w.put(changes, decide.FrameworkKey(Framework), record.Framework{ID: Framework, Name: "Nursing", MaxChainLength: record.DefaultMaxChainLength,
		CreatedIndex: idx, CreatedAt: w.Now.Add(-time.Hour), UpdatedIndex: idx, Operation: opID})
	w.put(changes, decide.RootKey(Framework, Root), record.RootAccreditor{Framework: Framework, Accreditor: Root,
		Events: []record.StatusEvent{{Status: record.StatusActive, Index: idx, Operation: opID}}})
	w.commit(changes, [][]byte{jws})

	// recognize, by governance.
	jws, opID = w.sign(w.gov, record.RecognitionChange{Header: record.Header{Op: record.OpRecognize, IAT: at.Unix()}, Framework: Framework, Recognized: Other})
	changes = map[decide.RecordKey][]byte{}
	w.put(changes, decide.RecognitionKey(Framework, Other), record.Recognition{Framework: Framework, Recognized: Other,
		Events: []record.StatusEvent{{Status: record.StatusActive, EffectiveAt: w.commitTime(), Index: w.index + 1, Operation: opID}}})
	w.commit(changes, [][]byte{jws})

	// registerEntity, each by its own key.
	for _, did := range []string{Root, Regional, Agency, College} {
		s := w.signer(did)
		pub, err := s.PublicJWK()
		if err != nil {
			w.tb.Fatal(err)
		}
		jws, _ := w.sign(s, record.RegisterEntity{Header: record.Header{Op: record.OpRegisterEntity, IAT: at.Unix()}, ID: did, Name: did[len("did:web:"):], Keys: []json.RawMessage{pub}})
		changes := map[decide.RecordKey][]byte{}
		w.put(changes, decide.EntityKey(did), record.Entity{ID: did, Name: did[len("did:web:"):], Keys: []json.RawMessage{pub}, Registered: true,
			CreatedIndex: w.index + 1, UpdatedIndex: w.index + 1, KeysBoundBy: did})
		w.commit(changes, [][]byte{jws})
	}

	from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	until := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	w.Acc1 = w.accredit(Root, Regional, record.ActionAccredit, "", 1, from, until)
	w.Acc2 = w.accredit(Regional, Agency, record.ActionAccredit, w.Acc1, 2, from, until)
	w.Acc3 = w.accredit(Agency, College, record.ActionIssue, w.Acc2, 3, from, until)
}

// accredit signs and applies one grant of Nursing in Framework, and
// returns its id.
func (w *World) accredit(by, subject, action, parent string, depth int, from, until time.Time) string {
	jws, id := w.sign(w.signer(by), record.Accredit{Header: record.Header{Op: record.OpAccredit, IAT: w.commitTime().Unix()},
		Framework: Framework, Accreditor: by, Subject: subject, Action: action, Resources: []string{Nursing},
		ValidFrom: &from, ValidUntil: &until, Parent: parent})
	idx := w.index + 1
	changes := map[decide.RecordKey][]byte{}
	w.put(changes, decide.AccreditationKey(id), record.Accreditation{ID: id, Framework: Framework, Accreditor: by, Subject: subject,
		Action: action, Resources: []string{Nursing}, ValidFrom: from, ValidUntil: &until, Parent: parent, Depth: depth,
		CreatedIndex: idx, CreatedAt: w.commitTime(),
		Events: []record.StatusEvent{{Status: record.StatusActive, EffectiveAt: from, Index: idx, Operation: id}}})
	ids, err := w.Received(subject, Framework)
	if err != nil {
		w.tb.Fatal(err)
	}
	ids = insertSorted(ids, id)
	changes[decide.ReceivedKey(subject, Framework)] = decide.EncodeReceived(ids)
	w.commit(changes, [][]byte{jws})
	return id
}

func insertSorted(ids []string, id string) []string {
	i := 0
	for i < len(ids) && ids[i] < id {
		i++
	}
	return append(ids[:i], append([]string{id}, ids[i:]...)...)
}

// Revoke revokes accreditation id from effectiveAt on, signed by its
// accreditor, in one new entry.
func (w *World) Revoke(id string, effectiveAt time.Time) {
	w.tb.Helper()
	k := decide.AccreditationKey(id)
	var a record.Accreditation
	if err := json.Unmarshal(w.records[k], &a); err != nil {
		w.tb.Fatal(err)
	}
	jws, opID := w.sign(w.signer(a.Accreditor), record.StatusChange{Header: record.Header{Op: record.OpRevoke, IAT: w.commitTime().Unix()},
		Accreditation: id, EffectiveAt: &effectiveAt, Reason: "fraud"})
	a.Events = append(a.Events, record.StatusEvent{Status: record.StatusRevoked, EffectiveAt: effectiveAt, Reason: "fraud", Index: w.index + 1, Operation: opID})
	changes := map[decide.RecordKey][]byte{}
	w.put(changes, k, a)
	w.commit(changes, [][]byte{jws})
}

// Checkpoint returns the signed note of the log's current checkpoint,
// cosigned at time at by signers.
func (w *World) Checkpoint(at time.Time, signers ...*tlog.CosignatureSigner) string {
	w.tb.Helper()
	cp := tlog.Checkpoint{Origin: w.Origin(), Size: w.log.Size()}
	copy(cp.Hash[:], w.log.Root())
	sigs := make([]tlog.Cosignature, 0, len(signers))
	for _, s := range signers {
		c, err := s.Sign(cp, at)
		if err != nil {
			w.tb.Fatal(err)
		}
		sigs = append(sigs, c)
	}
	return string(tlog.SignedNote(cp, sigs...))
}

// Bundle answers q over the current state, as a node would: the decision
// through a proof.Recorder, the map proof of what it read, the last leaf
// and its inclusion proof, and a checkpoint all cosigners signed at Now.
func (w *World) Bundle(q decide.Question) *proof.Bundle {
	w.tb.Helper()
	rec := proof.NewRecorder(w)
	d, err := decide.Decide(rec, nil, w.index, q, w.Now)
	if err != nil {
		w.tb.Fatal(err)
	}
	b := &proof.Bundle{Version: proof.Version}
	b.Question, b.Answer = proof.NewAuthorization(q, d, w.index)
	w.prove(b, rec)
	return b
}

// RecognitionBundle is Bundle for a recognition question.
func (w *World) RecognitionBundle(q decide.RecognitionQuestion) *proof.Bundle {
	w.tb.Helper()
	rec := proof.NewRecorder(w)
	d, err := decide.Recognize(rec, w.index, q, w.Now)
	if err != nil {
		w.tb.Fatal(err)
	}
	b := &proof.Bundle{Version: proof.Version}
	b.Question, b.Answer = proof.NewRecognition(q, d, w.index)
	w.prove(b, rec)
	return b
}

// RecordsBundle is a records bundle (proof.TypeRecords) of the records
// keys name, as the world holds them.
func (w *World) RecordsBundle(keys ...decide.RecordKey) *proof.Bundle {
	w.tb.Helper()
	rec := proof.NewRecorder(w)
	for _, k := range keys {
		if _, err := rec.Record(k); err != nil {
			w.tb.Fatal(err)
		}
	}
	b := &proof.Bundle{Version: proof.Version}
	b.Question, b.Answer = proof.NewRecords(w.Now, w.index)
	w.prove(b, rec)
	return b
}

// prove fills b's records, map proof and log part from what rec read.
func (w *World) prove(b *proof.Bundle, rec *proof.Recorder) {
	_, mp, err := w.m.ProveBatch(rec.MapKeys())
	if err != nil {
		w.tb.Fatal(err)
	}
	b.Records, b.MapProof = rec.Records(), mp
	b.LeafIndex = w.log.Size() - 1
	b.Leaf = w.leaves[b.LeafIndex]
	w.AttachLog(b, 0)
}

// ReproveMap replaces b's map proof with one for the records b now
// lists, against the current state: what a node that leaves records out
// of a bundle, or adds some, would send.
func (w *World) ReproveMap(b *proof.Bundle) {
	w.tb.Helper()
	keys := make([]smt.Key, 0, len(b.Records))
	for _, r := range b.Records {
		k, err := r.Key()
		if err != nil {
			w.tb.Fatal(err)
		}
		keys = append(keys, proof.MapKey(k))
	}
	_, mp, err := w.m.ProveBatch(keys)
	if err != nil {
		w.tb.Fatal(err)
	}
	b.MapProof = mp
}

// AttachLog (re)proves b's leaf against the log's current checkpoint,
// cosigned by all cosigners at Now: an inclusion proof in the current
// tree when leafSize is 0, else an inclusion proof in the tree of
// leafSize leaves and a consistency proof from it to the current tree.
func (w *World) AttachLog(b *proof.Bundle, leafSize uint64) {
	w.tb.Helper()
	size := w.log.Size()
	b.LeafSize, b.Consistency = leafSize, nil
	var err error
	if leafSize == 0 {
		b.Inclusion, err = tlog.InclusionProof(w.logMem, b.LeafIndex, size)
	} else {
		b.Inclusion, err = tlog.InclusionProof(w.logMem, b.LeafIndex, leafSize)
		if err == nil && leafSize < size {
			b.Consistency, err = tlog.ConsistencyProof(w.logMem, leafSize, size)
		}
	}
	if err != nil {
		w.tb.Fatal(err)
	}
	b.Checkpoint = w.Checkpoint(w.Now, w.Cosigners...)
}
