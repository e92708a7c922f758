package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
	"github.com/trustreg/trustreg/registry/tlog"
)

// commitScenario is a chain whose history spans the raise to
// FeatureLevelCommitment: a status list before it; after it a new entity, a
// rejected operation, a recognition, a revocation and a second version of
// the list, so every committed table and a received listing change after
// the map is built.
type commitScenario struct {
	*listFixture
	other   *record.Signer
	firstV  string
	raiseAt uint64
}

func mustCommitScenario(t *testing.T) *commitScenario {
	t.Helper()
	f := &commitScenario{listFixture: &listFixture{mustChain(t)}, other: mustKey(t, record.KeyEd25519)}
	f.now = date(2026, 4, 1)
	bits := make([]byte, record.MinStatusListEntries/8)
	if r := f.publish(f.college, "1", "", []string{record.PurposeRevocation}, 1, nil, bits); !r.Accepted {
		t.Fatalf("publish: %s", r.Reason)
	}
	view, err := f.s.StatusList(f.college.DID, "1")
	if err != nil {
		t.Fatal(err)
	}
	f.firstV = view.Current
	f.mustRaiseLevel(FeatureLevelCommitment)
	f.raiseAt = f.index
	f.moreHistory(t)
	return f
}

// moreHistory applies writes of every kind, and one rejection.
func (f *commitScenario) moreHistory(t *testing.T) {
	t.Helper()
	f.now = f.now.Add(time.Second)
	f.mustAccept(f.sign(f.other, record.OpRegisterEntity, map[string]any{"id": f.other.DID, "name": "Other"}))
	if r := f.apply(f.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Again"})); r.Accepted {
		t.Fatal("a second framework of the same id was accepted")
	}
	f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": "https://other.example/fw", "resources": []string{nursing}}))
	f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.qa.DID, "subject": f.other.DID, "action": record.ActionIssue,
		"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
		"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2028-01-01T00:00:00Z",
	}))
	f.mustAccept(f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc}))
	bits := make([]byte, record.MinStatusListEntries/8)
	record.SetStatus(bits, 7, 1, 1)
	if r := f.publish(f.college, "1", f.firstV, []string{record.PurposeRevocation}, 1, nil, bits); !r.Accepted {
		t.Fatalf("second version: %s", r.Reason)
	}
}

func mustCommitment(t testing.TB, s *State) Commitment {
	t.Helper()
	v := s.View()
	defer v.Close()
	return viewCommitment(t, v)
}

// viewCommitment is v's commitment; t fails when it has none.
func viewCommitment(t testing.TB, v *View) Commitment {
	t.Helper()
	c, err := v.Commitment()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rebuiltMap builds the map from scratch over every committed record s
// holds, into memory: the definition the stored map must equal.
func rebuiltMap(t *testing.T, s *State) (smt.Hash, *smt.MemStore) {
	t.Helper()
	mem := smt.NewMemStore()
	var changes []smt.Change
	snap := s.db.NewSnapshot()
	defer snap.Close()
	// The definition, written out apart from eachCommitted: every record of
	// the committed tables, the genesis, and each received listing.
	for _, table := range []byte{tableFrameworks, tableRoots, tableEntities, tableAccreditation, tableRecognitions, tableStatusLists, tableListVersions} {
		it, _ := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{table}, UpperBound: []byte{table + 1}})
		for it.First(); it.Valid(); it.Next() {
			changes = append(changes, smt.Change{Key: smt.KeyOf(it.Key()), Value: sha256.Sum256(it.Value())})
		}
		it.Close()
	}
	g, closer, err := snap.Get(metaGenesis)
	if err != nil {
		t.Fatal(err)
	}
	changes = append(changes, smt.Change{Key: smt.KeyOf(metaGenesis), Value: sha256.Sum256(g)})
	closer.Close()
	listings := map[decide.RecordKey][]string{}
	it, _ := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{tableReceived}, UpperBound: []byte{tableReceived + 1}})
	for it.First(); it.Valid(); it.Next() {
		parts := bytes.Split(it.Key()[1:], []byte{0})
		k := decide.ReceivedKey(string(parts[0]), string(parts[1]))
		listings[k] = append(listings[k], string(parts[2]))
	}
	it.Close()
	for k, ids := range listings {
		changes = append(changes, smt.Change{Key: smt.KeyOf(decide.StoreKey(k)), Value: sha256.Sum256(decide.EncodeReceived(ids))})
	}
	root, err := smt.New(mem).Update(changes)
	if err != nil {
		t.Fatal(err)
	}
	return root, mem
}

// storedMap copies s's map node records into memory: the map overlay's
// over the database's (journal.go).
func storedMap(t *testing.T, s *State) *smt.MemStore {
	t.Helper()
	mem := smt.NewMemStore()
	err := eachMapNode(s.db, s.mapOverlay.Load(), func(k, rec []byte) error {
		return mem.PutNode(bytes.Clone(k), bytes.Clone(rec))
	})
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

// checkRebuild requires s's map (root and node records) to equal a map
// built from scratch over its records.
func checkRebuild(t *testing.T, s *State, at string) {
	t.Helper()
	want, wantNodes := rebuiltMap(t, s)
	if got := mustCommitment(t, s).MapRoot; got != want {
		t.Fatalf("%s: map root %x, a rebuild from the records gives %x", at, got, want)
	}
	if !storedMap(t, s).Equal(wantNodes) {
		t.Fatalf("%s: the stored map nodes differ from a rebuild's", at)
	}
}

// logLeaves returns every encoded leaf of s's log.
func logLeaves(t *testing.T, s *State) [][]byte {
	t.Helper()
	v := s.View()
	defer v.Close()
	c, err := v.Commitment()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i := range c.LogSize {
		enc, err := v.Leaf(i)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, enc)
	}
	return out
}

// Below the level nothing of the commitment is written and its reads say
// so; the raising entry builds the map over every record (equal to a
// rebuild from scratch) and makes the first leaf; every later entry,
// accepted or rejected, adds a leaf, and the map follows the records.
func TestCommitmentGatedByFeatureLevel(t *testing.T) {
	f := &listFixture{mustChain(t)}
	f.now = date(2026, 4, 1)
	bits := make([]byte, record.MinStatusListEntries/8)
	if r := f.publish(f.college, "1", "", []string{record.PurposeRevocation}, 1, nil, bits); !r.Accepted {
		t.Fatal(r.Reason)
	}
	f.mustRaiseLevel(FeatureLevelStatusListREC)
	for _, table := range []byte{tableMapNodes, tableLogNodes, tableLogLeaves} {
		it, _ := f.s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{table}, UpperBound: []byte{table + 1}})
		if it.First() {
			t.Fatalf("table %#x holds %x below the level", table, it.Key())
		}
		it.Close()
	}
	for _, k := range [][]byte{metaMapRoot, metaLogSize, metaLogRoot} {
		if _, c, err := f.s.db.Get(k); err == nil {
			c.Close()
			t.Fatalf("meta %q is written below the level", k)
		}
	}
	v := f.s.View()
	if c, err := v.Commitment(); !errors.Is(err, ErrNoCommitment) || c.LogSize != 0 {
		t.Fatalf("Commitment below the level: %+v, %v", c, err)
	}
	if _, _, err := v.ProveRecords([]decide.RecordKey{decide.FrameworkKey(fwID)}); !errors.Is(err, ErrNoCommitment) {
		t.Fatalf("ProveRecords below the level: %v", err)
	}
	v.Close()
	if _, _, err := f.s.LogHead(); !errors.Is(err, ErrNoCommitment) {
		t.Fatalf("LogHead below the level: %v", err)
	}
	if err := f.s.SelfAudit(context.Background()); !errors.Is(err, ErrNoCommitment) {
		t.Fatalf("SelfAudit below the level: %v", err)
	}

	raise := EncodeFeatureLevel(FeatureLevelCommitment)
	f.mustRaiseLevel(FeatureLevelCommitment)
	checkRebuild(t, f.s, "after the raise")
	c := mustCommitment(t, f.s)
	if c.LogSize != 1 || c.Index != f.index {
		t.Fatalf("after the raise: %+v, index %d", c, f.index)
	}
	leaf, err := tlog.DecodeLeaf(logLeaves(t, f.s)[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Index != f.index || !leaf.CommitTime.Equal(f.now) || smt.Hash(leaf.MapRoot) != c.MapRoot ||
		len(leaf.Ops) != 1 || !bytes.Equal(leaf.Ops[0].CID, cidBytes(raise)) {
		t.Fatalf("the raise's leaf: %+v", leaf)
	}
	// Raising again changes nothing but adds the entry's leaf.
	f.mustRaiseLevel(FeatureLevelCommitment)
	if c2 := mustCommitment(t, f.s); c2.LogSize != 2 || c2.MapRoot != c.MapRoot {
		t.Fatalf("a repeated raise: %+v", c2)
	}
	// A rejected operation adds a leaf naming its operation and result; the
	// map does not move.
	r := f.apply(f.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Again"}))
	if r.Accepted {
		t.Fatal("accepted")
	}
	leaves := logLeaves(t, f.s)
	leaf, _ = tlog.DecodeLeaf(leaves[len(leaves)-1])
	if len(leaves) != 3 || leaf.Index != r.Index || smt.Hash(leaf.MapRoot) != c.MapRoot {
		t.Fatalf("after a rejection: %d leaves, last %+v", len(leaves), leaf)
	}
	v = f.s.View()
	stored, closer, err := v.snap.Get(indexKey(tableResults, r.Index))
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if !bytes.Equal(leaf.Ops[0].ResultCID, cidBytes(stored)) || !bytes.Equal(leaf.Ops[0].CID, opCID(nil, r)) {
		t.Fatalf("the rejection's leaf names %x/%x", leaf.Ops[0].CID, leaf.Ops[0].ResultCID)
	}
	v.Close()
}

// The map and the log are a pure function of the log: a state applying the
// same entries in other batches has the same leaves (each naming the map
// root after its entry), the same roots at every index, and a map equal to
// a rebuild from its records after every entry.
func TestCommitmentIsAFunctionOfTheLog(t *testing.T) {
	f := mustCommitScenario(t)
	checkRebuild(t, f.s, "the scenario's end")
	want := logLeaves(t, f.s)

	other, err := Open(t.TempDir(), f.raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	entries := f.entries
	for i := 0; i < len(entries); {
		n := min(1+i%3, len(entries)-i) // batches of 1, 2 and 3
		other.ApplyBatch(entries[i : i+n])
		i += n
		last := entries[i-1].Index
		if last < f.raiseAt {
			continue
		}
		checkRebuild(t, other, "the replay")
		sameRootsAs(t, f.s, other, last)
	}
	if got := logLeaves(t, other); !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatal("the leaves differ")
	}
}

// sameRootsAs requires got, just after applying the entry at index, to
// report the roots want reported after the same entry: the log root want had
// at got's size, and the map root want's leaf for that entry names.
func sameRootsAs(t *testing.T, want, got *State, index uint64) {
	t.Helper()
	c := mustCommitment(t, got)
	size, root, err := got.LogHead()
	if err != nil || size != c.LogSize || !bytes.Equal(root, c.LogRoot) || c.Index != index {
		t.Fatalf("LogHead %d %x %v, Commitment %+v", size, root, err, c)
	}
	if wantRoot, err := want.LogRootAt(size); err != nil || !bytes.Equal(wantRoot, root) {
		t.Fatalf("at index %d: log root %x, the first state's at size %d is %x (%v)", index, root, size, wantRoot, err)
	}
	v := want.View()
	defer v.Close()
	enc, err := v.Leaf(size - 1)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := tlog.DecodeLeaf(enc)
	if leaf.Index != index || smt.Hash(leaf.MapRoot) != c.MapRoot {
		t.Fatalf("at index %d: map root %x, the first state's leaf for index %d says %x", index, c.MapRoot, leaf.Index, leaf.MapRoot)
	}
}

// A state restored from a snapshot (over a state of its own) and one
// restarted report the same roots as the original at every later index, and
// pass their self-audit.
func TestCommitmentAfterRestoreAndRestart(t *testing.T) {
	f := mustCommitScenario(t)
	restored, err := Open(t.TempDir(), f.raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	// The restored state applied part of the history first: what it
	// remembers of its own map, log and received listings must not
	// survive the restore. (Its second batch, at the level, loads the
	// listings; the snapshot's hold one more, f.other's.)
	restored.ApplyBatch(f.entries[:f.raiseAt+1])
	restored.ApplyBatch(f.entries[f.raiseAt+1 : f.raiseAt+2])
	if err := restored.Restore(bytes.NewReader(snapshotBytes(t, f.s))); err != nil {
		t.Fatal(err)
	}
	f.s.Close()
	f.open()
	replica, err := Open(t.TempDir(), f.raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	replica.ApplyBatch(f.entries)

	before := len(f.entries)
	// A second accreditation of f.other: a listing the restored state
	// did not hold before the restore.
	f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.qa.DID, "subject": f.other.DID, "action": record.ActionIssue,
		"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
		"validFrom": "2028-01-01T00:00:00Z", "validUntil": "2030-01-01T00:00:00Z",
	}))
	f.moreHistoryAfter(t)
	states := map[string]*State{"restored": restored, "replica": replica}
	for _, e := range f.entries[before:] {
		for name, s := range states {
			s.ApplyBatch([]Entry{e})
			t.Run(name, func(t *testing.T) { sameRootsAs(t, f.s, s, e.Index) })
		}
	}
	for name, s := range map[string]*State{"restarted": f.s, "restored": restored} {
		if err := s.SelfAudit(context.Background()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// moreHistoryAfter applies a few more writes after a restart.
func (f *commitScenario) moreHistoryAfter(t *testing.T) {
	t.Helper()
	f.now = f.now.Add(time.Minute)
	f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.qaAcc}))
	third := mustKey(t, record.KeyEd25519)
	f.mustAccept(f.sign(third, record.OpRegisterEntity, map[string]any{"id": third.DID, "name": "Third"}))
	f.apply(f.sign(third, record.OpRevoke, map[string]any{"accreditation": f.qaAcc})) // rejected: not its grant
}

// A batch proof from ProveRecords verifies against Commitment().MapRoot for
// present and absent records and received listings, and fails for any
// other bytes.
func TestProveRecordsVerifies(t *testing.T) {
	f := mustCommitScenario(t)
	v := f.s.View()
	defer v.Close()
	c, err := v.Commitment()
	if err != nil {
		t.Fatal(err)
	}
	keys := []decide.RecordKey{
		decide.FrameworkKey(fwID), decide.RootKey(fwID, f.root.DID), decide.AccreditationKey(f.collegeAcc),
		decide.EntityKey(f.other.DID), decide.RecognitionKey(fwID, "https://other.example/fw"),
		decide.ReceivedKey(f.college.DID, fwID), decide.ReceivedKey(f.other.DID, fwID),
		decide.EntityKey("did:web:unknown.example"), decide.ReceivedKey("did:web:unknown.example", fwID),
		decide.FrameworkKey("https://example.org/frameworks/none"),
	}
	recs, proof, err := v.ProveRecords(keys)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(recs []ProvenRecord) []smt.Claim {
		var cs []smt.Claim
		for _, r := range recs {
			cl := smt.Claim{Key: smt.KeyOf(decide.StoreKey(r.Key)), Present: r.Bytes != nil}
			if r.Bytes != nil {
				cl.Value = sha256.Sum256(r.Bytes)
			}
			cs = append(cs, cl)
		}
		return cs
	}
	if err := smt.VerifyBatch(c.MapRoot, claims(recs), proof); err != nil {
		t.Fatalf("the proof does not verify: %v", err)
	}
	for i, r := range recs {
		if (r.Bytes == nil) != (i >= 7) {
			t.Fatalf("record %s: %q", r.Key, r.Bytes)
		}
	}
	if ids, err := decide.DecodeReceived(recs[5].Bytes); err != nil || !slices.Equal(ids, []string{f.collegeAcc}) {
		t.Fatalf("the college's listing: %q %v", ids, err)
	}
	// Other bytes, a record left out while claiming absence, a claim of
	// presence for an absent record: refused.
	for name, edit := range map[string]func([]ProvenRecord){
		"a byte changed": func(rs []ProvenRecord) {
			rs[2].Bytes = bytes.Replace(rs[2].Bytes, []byte("active"), []byte("ACTIVE"), 1)
		},
		"a record claimed gone": func(rs []ProvenRecord) { rs[3].Bytes = nil },
		"a listing shortened":   func(rs []ProvenRecord) { rs[5].Bytes = decide.EncodeReceived(nil) },
		"an absent one claimed": func(rs []ProvenRecord) { rs[7].Bytes = []byte(`{}`) },
	} {
		rs := slices.Clone(recs)
		edit(rs)
		if err := smt.VerifyBatch(c.MapRoot, claims(rs), proof); err == nil {
			t.Errorf("%s: verified", name)
		}
	}

	// Status lists by store key.
	lk, vk := key(tableStatusLists, f.college.DID, "1"), key(tableStatusLists, f.college.DID, "none")
	vals, proof, err := v.ProveStoreKeys([][]byte{lk, vk})
	if err != nil || vals[0] == nil || vals[1] != nil {
		t.Fatalf("status lists: %q %v", vals, err)
	}
	cs := []smt.Claim{{Key: smt.KeyOf(lk), Value: sha256.Sum256(vals[0]), Present: true}, {Key: smt.KeyOf(vk)}}
	if err := smt.VerifyBatch(c.MapRoot, cs, proof); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.ProveStoreKeys([][]byte{key(tableOps, "x")}); !errors.Is(err, ErrNotCommitted) {
		t.Fatalf("an operation's key: %v", err)
	}
	if _, _, err := v.ProveRecords([]decide.RecordKey{keys[0], keys[0]}); !errors.Is(err, smt.ErrBadClaims) {
		t.Fatalf("a key twice: %v", err)
	}
}

// Log proofs verify with tlog's verifiers: inclusion of every leaf in every
// size of the log, consistency between every pair of sizes, the leaf of
// each raft index, and the tiles.
func TestLogProofsVerify(t *testing.T) {
	f := mustCommitScenario(t)
	v := f.s.View()
	defer v.Close()
	c, err := v.Commitment()
	if err != nil {
		t.Fatal(err)
	}
	roots := make([][]byte, c.LogSize+1)
	for size := range c.LogSize + 1 {
		if roots[size], err = v.LogRootAt(size); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(roots[c.LogSize], c.LogRoot) || !bytes.Equal(roots[0], tlog.EmptyRoot()) {
		t.Fatal("roots at the ends")
	}
	leaves := logLeaves(t, f.s)
	for size := uint64(1); size <= c.LogSize; size++ {
		for i := range size {
			p, err := v.InclusionProof(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.VerifyInclusion(i, size, tlog.LeafHash(leaves[i]), p, roots[size]); err != nil {
				t.Fatalf("leaf %d in %d: %v", i, size, err)
			}
			if err := tlog.VerifyInclusion(i, size, tlog.LeafHash(leaves[(i+1)%size]), p, roots[size]); size > 1 && err == nil {
				t.Fatalf("leaf %d's proof verified another leaf", i)
			}
		}
		for s1 := uint64(1); s1 < size; s1++ {
			p, err := v.ConsistencyProof(s1, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.VerifyConsistency(s1, size, p, roots[s1], roots[size]); err != nil {
				t.Fatalf("%d to %d: %v", s1, size, err)
			}
			sp, err := f.s.LogConsistency(s1, size)
			if err != nil || !slices.EqualFunc(sp, p, bytes.Equal) {
				t.Fatalf("State.LogConsistency %d to %d: %v", s1, size, err)
			}
		}
	}
	if _, err := v.InclusionProof(0, c.LogSize+1); !errors.Is(err, tlog.ErrOutOfRange) {
		t.Fatalf("past the log: %v", err)
	}
	// The leaf of each raft index: the last at or below it.
	for idx := f.raiseAt - 1; idx <= f.index+1; idx++ {
		li, enc, err := v.LeafOfIndex(idx)
		if idx < f.raiseAt {
			if !errors.Is(err, tlog.ErrOutOfRange) {
				t.Fatalf("index %d before the log: %v", idx, err)
			}
			continue
		}
		want := min(idx, f.index) - f.raiseAt // one leaf per entry from the raise on
		if err != nil || li != want || !bytes.Equal(enc, leaves[want]) {
			t.Fatalf("index %d: leaf %d, want %d (%v)", idx, li, want, err)
		}
	}
	// Tiles: the partial level-0 tile is the leaf hashes; the bundle the leaves.
	tile, err := v.Tile(tlog.TileID{Level: 0, Index: 0, Width: int(c.LogSize)}, c.LogSize)
	if err != nil || len(tile) != int(c.LogSize)*tlog.HashSize || !bytes.Equal(tile[:tlog.HashSize], tlog.LeafHash(leaves[0])) {
		t.Fatalf("tile: %x %v", tile, err)
	}
	bundle, err := v.Tile(tlog.TileID{Level: tlog.EntriesLevel, Index: 0, Width: int(c.LogSize)}, c.LogSize)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tlog.ParseBundle(bundle, int(c.LogSize)); err != nil || !slices.EqualFunc(got, leaves, bytes.Equal) {
		t.Fatalf("bundle: %v", err)
	}
}

// SelfAudit passes on a state as applied, and finds a record changed, a
// record added, a record deleted, a listing entry added and a map node
// changed behind the apply's back (written into Pebble while the state is closed).
func TestSelfAuditFindsTampering(t *testing.T) {
	f := mustCommitScenario(t)
	if err := f.s.SelfAudit(context.Background()); err != nil {
		t.Fatalf("a clean state: %v", err)
	}
	tamper := func(edit func(db *pebble.DB)) {
		t.Helper()
		f.s.Close()
		opts := stateOptions(pebbleLogger{log: slog.New(slog.DiscardHandler)})
		db, err := pebble.Open(f.dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		edit(db)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		opts.Cache.Unref()
		f.open()
	}
	var saved []byte
	var savedKey []byte
	for name, edit := range map[string]func(db *pebble.DB){
		"an accreditation's bytes": func(db *pebble.DB) {
			savedKey = key(tableAccreditation, f.collegeAcc)
			v, c, _ := db.Get(savedKey)
			saved = bytes.Clone(v)
			c.Close()
			db.Set(savedKey, bytes.Replace(saved, []byte(`"revoked"`), []byte(`"active"`), 1), pebble.Sync)
		},
		"a record added": func(db *pebble.DB) {
			savedKey = key(tableEntities, "did:web:planted.example")
			saved = nil
			db.Set(savedKey, []byte(`{"id":"did:web:planted.example"}`), pebble.Sync)
		},
		"a record deleted": func(db *pebble.DB) {
			savedKey = key(tableEntities, f.other.DID)
			v, c, _ := db.Get(savedKey)
			saved = bytes.Clone(v)
			c.Close()
			db.Delete(savedKey, pebble.Sync)
		},
		"a listing entry added": func(db *pebble.DB) {
			savedKey = key(tableReceived, f.college.DID, fwID, "planted")
			saved = nil
			db.Set(savedKey, nil, pebble.Sync)
		},
		"a map node": func(db *pebble.DB) {
			it, _ := db.NewIter(&pebble.IterOptions{LowerBound: []byte{tableMapNodes}, UpperBound: []byte{tableMapNodes + 1}})
			it.Last()
			savedKey, saved = bytes.Clone(it.Key()), bytes.Clone(it.Value())
			it.Close()
			changed := bytes.Clone(saved)
			changed[len(changed)-1] ^= 1
			db.Set(savedKey, changed, pebble.Sync)
		},
	} {
		t.Run(name, func(t *testing.T) {
			tamper(edit)
			if err := f.s.SelfAudit(context.Background()); !errors.Is(err, ErrStateCorrupt) {
				t.Fatalf("SelfAudit after %s: %v", name, err)
			}
			tamper(func(db *pebble.DB) { // undo
				if saved == nil {
					db.Delete(savedKey, pebble.Sync)
				} else {
					db.Set(savedKey, saved, pebble.Sync)
				}
			})
			if err := f.s.SelfAudit(context.Background()); err != nil {
				t.Fatalf("after undoing %s: %v", name, err)
			}
		})
	}
}
