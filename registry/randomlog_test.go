package registry

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// The random-log test's size: CI runs the defaults; a longer run, e.g.
//
//	go test -run TestRandomLogsApplyAlike -registry.randomlog-seeds 40 -registry.randomlog-entries 2000 ./registry
//
// tries more logs of more entries (seeds 1..N, each its own log).
var (
	randomLogSeeds   = flag.Int("registry.randomlog-seeds", 3, "TestRandomLogsApplyAlike: how many random logs (seeds 1..N)")
	randomLogEntries = flag.Int("registry.randomlog-entries", 600, "TestRandomLogsApplyAlike: entries in each random log")
)

// A node's state is a pure function of the log, whatever else happens on
// the node: how raft cuts the log into batches, which entries Prefetch saw
// ahead of the apply, leader checks and reads running beside the apply
// (and what they left in the caches), restarts and snapshot restores. A
// random log of every kind of operation (grants down chains, suspensions,
// reinstatements and revocations by accreditors, peers and roots, with
// effectiveAt in the past and future; registrations, key rotations, status
// lists, root and framework changes, recognitions, duplicates, garbage,
// feature-level raises through the commitment's level; time moving by
// seconds to months) is applied one entry a batch to a first state, and
// then by replicas that each follow a random schedule of all of the above
// (restarts half of them as after a crash, each followed by entries raft
// hands over again; power losses on half the replicas, losePower), each
// flushing the map's overlay at its own bound.
// Every replica must give each entry the first state's result, again after
// a restart too, hold the same transparency log (so the same map root after
// every entry) at every batch's end, check the next entry as its apply
// decides it, answer reads of its latest state as the first state as of
// that index, and in the end hold the same state digest, answers,
// listings, feeds, exports, proofs, cosigner sets and map node records,
// and pass its own audit (every record against the map root).
func TestRandomLogsApplyAlike(t *testing.T) {
	for seed := 1; seed <= *randomLogSeeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			g := newRandomLog(t, uint64(seed))
			g.generate(*randomLogEntries)
			if err := g.s.SelfAudit(t.Context()); err != nil {
				t.Fatalf("the first state fails its own audit: %v", err)
			}
			t.Logf("%d entries, %d accepted; %d accreditations, %d status lists; by operation: %s", len(g.entries), g.accepted(), len(g.accs), len(g.lists), g.tally())
			for r := range 3 {
				g.replay(rand.New(rand.NewPCG(uint64(seed), uint64(r)+100)), r)
			}
		})
	}
}

// randomLog makes a random log by applying each operation, one entry a
// batch, to its harness's state, which it reads to aim the next
// operations (accreditation ids, a status list's current version).
type randomLog struct {
	*harness
	rng        *rand.Rand
	keys       []*record.Signer // did:key actors
	webs       []*record.Signer // did:web actors, the key each signs with now
	frameworks []string
	roots      map[string][]*record.Signer
	accs       []randomAcc
	lists      map[string][]byte // issuer DID + " " + list id: the current version's bits
	signed     [][]byte          // every operation's JWS, for duplicates
	results    []*record.Result  // by entry
	heads      []randomHead      // the transparency log after each entry
	snaps      []randomSnap      // snapshots of the state along the log
	cosigners  []string          // vkeys a setCosigners may name
}

// randomSnap is a snapshot of the first state after its first n entries,
// which a replica behind it installs as a lagging follower does.
type randomSnap struct {
	n    int
	data []byte
}

type randomAcc struct {
	id, framework, action string
	accreditor, subject   *record.Signer
}

type randomHead struct {
	size uint64
	root []byte
}

var randomResources = []string{nursing, pharmacy, law}

func newRandomLog(t *testing.T, seed uint64) *randomLog {
	t.Helper()
	// Three governance members, two of them a quorum, and a genesis that
	// names a cosigner, so setCosigners can change the set.
	h := &harness{t: t, dir: t.TempDir(), now: t0}
	gen := record.Genesis{Consortium: "test consortium", Threshold: 2, Cosigners: []string{mustCosignerVKey(t, "genesis.example")}}
	h.addMembers(&gen, record.KeyEd25519, 3)
	h.openGenesis(gen)
	g := &randomLog{harness: h, rng: rand.New(rand.NewPCG(seed, 1)), roots: map[string][]*record.Signer{}, lists: map[string][]byte{}}
	for i := range 10 {
		kind := record.KeyEd25519
		if i%5 == 4 {
			kind = record.KeyP256
		}
		g.keys = append(g.keys, mustKey(t, kind))
	}
	for i := range 3 {
		g.webs = append(g.webs, mustAs(t, mustKey(t, record.KeyEd25519), fmt.Sprintf("did:web:w%d.example#k0", i)))
	}
	for i := range 4 {
		g.cosigners = append(g.cosigners, mustCosignerVKey(t, fmt.Sprintf("c%d.example", i)))
	}
	return g
}

func (g *randomLog) pick(n int) int { return g.rng.IntN(n) }

func (g *randomLog) chance(p float64) bool { return g.rng.Float64() < p }

// actor is any signer of the log: mostly a did:key, sometimes a did:web.
func (g *randomLog) actor() *record.Signer {
	if g.chance(0.2) {
		return g.webs[g.pick(len(g.webs))]
	}
	return g.keys[g.pick(len(g.keys))]
}

func (g *randomLog) framework() string { return g.frameworks[g.pick(len(g.frameworks))] }

// when is a time around now, as RFC 3339, for validFrom, validUntil and
// effectiveAt.
func (g *randomLog) when(spread ...time.Duration) string {
	return g.now.Add(spread[g.pick(len(spread))]).Format(time.RFC3339)
}

const day = 24 * time.Hour

func (g *randomLog) record(r *record.Result) {
	g.results = append(g.results, r)
	g.heads = append(g.heads, headOf(g.t, g.s))
	if len(g.entries)%37 == 0 {
		g.snaps = append(g.snaps, randomSnap{len(g.entries), snapshotBytes(g.t, g.s)})
	}
}

// headOf is s's transparency log, none below the commitment's level.
func headOf(t testing.TB, s *State) randomHead {
	t.Helper()
	if s.ClusterFeatureLevel() < FeatureLevelCommitment {
		return randomHead{}
	}
	size, root, err := s.LogHead()
	if err != nil {
		t.Fatal(err)
	}
	return randomHead{size, root}
}

func (g *randomLog) op(jws []byte) *record.Result {
	g.signed = append(g.signed, jws)
	r := g.apply(jws)
	g.record(r)
	return r
}

func (g *randomLog) command(cmd []byte) {
	g.record(g.applyCommand(cmd))
}

func (g *randomLog) accepted() int {
	n := 0
	for _, r := range g.results {
		if r.Accepted {
			n++
		}
	}
	return n
}

// tally counts the log's results by operation, accepted and refused by
// code.
func (g *randomLog) tally() string {
	counts := map[string]int{}
	for _, r := range g.results {
		k := r.Op + " accepted"
		if !r.Accepted {
			k = r.Op + " " + r.Code
		}
		counts[k]++
	}
	keys := slices.Sorted(maps.Keys(counts))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %d; ", k, counts[k])
	}
	return b.String()
}

// generate makes a log of n entries (at least a few more: the frameworks
// first).
func (g *randomLog) generate(n int) {
	for i := range 2 {
		id := fmt.Sprintf("https://example.org/frameworks/r%d", i)
		root := g.keys[i]
		g.op(g.govSign(record.OpCreateFramework, map[string]any{"id": id, "name": fmt.Sprintf("F%d", i), "roots": []string{root.DID}}))
		g.frameworks = append(g.frameworks, id)
		g.roots[id] = []*record.Signer{root}
	}
	for i := 0; len(g.entries) < n; i++ {
		switch i {
		case n / 8:
			g.command(EncodeFeatureLevel(FeatureLevelCommitment - 1))
		case n / 4:
			g.command(EncodeFeatureLevel(FeatureLevelCommitment))
		case n / 2:
			g.command(EncodeFeatureLevel(FeatureLevel))
		}
		if g.chance(0.3) {
			g.now = g.now.Add([]time.Duration{time.Second, time.Minute, time.Hour, day, 30 * day}[g.pick(5)])
		}
		switch w := g.pick(100); {
		case w < 30:
			g.accredit()
		case w < 50:
			g.statusChange()
		case w < 60:
			g.entity()
		case w < 68:
			g.statusList()
		case w < 78:
			g.governance()
		case w < 84 && len(g.signed) > 0:
			g.op(g.signed[g.pick(len(g.signed))]) // a duplicate, or an old operation again
		case w < 88:
			g.op([]byte(fmt.Sprintf("not a JWS %d", g.pick(1000))))
		case w < 92:
			g.rotate()
		default:
			g.accredit()
		}
	}
}

func (g *randomLog) accredit() {
	fw := g.framework()
	accreditor := g.actor()
	var parents []string
	if g.chance(0.7) {
		// Mostly someone who may: a root, or a holder of a grant to
		// accredit in the framework.
		holders := slices.Clone(g.roots[fw])
		for _, a := range g.accs {
			if a.framework == fw && a.action == record.ActionAccredit {
				holders = append(holders, a.subject)
			}
		}
		accreditor = holders[g.pick(len(holders))]
	}
	for _, a := range g.accs {
		if a.framework == fw && a.action == record.ActionAccredit && a.subject.DID == accreditor.DID {
			parents = append(parents, a.id)
		}
	}
	subject := g.actor()
	action := record.ActionIssue
	if g.chance(0.4) {
		action = record.ActionAccredit
	}
	var res []string
	for _, r := range randomResources {
		if g.chance(0.5) {
			res = append(res, r)
		}
	}
	if len(res) == 0 {
		res = []string{nursing}
	}
	fields := map[string]any{"framework": fw, "accreditor": accreditor.DID, "subject": subject.DID, "action": action, "resources": res}
	if len(parents) > 0 && g.chance(0.9) {
		fields["parent"] = parents[g.pick(len(parents))]
	}
	if g.chance(0.7) {
		fields["validFrom"] = g.when(-365*day, -day, 0, day, 30*day)
	}
	if g.chance(0.5) {
		fields["validUntil"] = g.when(40*day, 365*day, 1000*day)
	}
	// The same fields signed in the same second are the same operation:
	// a duplicate, accepted again, is not a new accreditation.
	if r := g.op(g.sign(accreditor, record.OpAccredit, fields)); r.Accepted && !r.Duplicate {
		g.accs = append(g.accs, randomAcc{id: r.ID, framework: fw, action: action, accreditor: accreditor, subject: subject})
	}
}

func (g *randomLog) statusChange() {
	if len(g.accs) == 0 {
		g.accredit()
		return
	}
	a := g.accs[g.pick(len(g.accs))]
	signer := a.accreditor
	switch w := g.pick(100); {
	case w < 15:
		roots := g.roots[a.framework]
		signer = roots[g.pick(len(roots))]
	case w < 30:
		signer = g.actor()
	}
	op := []string{record.OpSuspend, record.OpSuspend, record.OpReinstate, record.OpReinstate, record.OpRevoke}[g.pick(5)]
	fields := map[string]any{"accreditation": a.id, "reason": fmt.Sprintf("r%d", g.pick(9))}
	if g.chance(0.3) {
		fields["effectiveAt"] = g.when(-30*day, -time.Hour, time.Hour, 10*day)
	}
	g.op(g.sign(signer, op, fields))
}

func (g *randomLog) entity() {
	switch g.pick(3) {
	case 0: // a did:web bound by someone: a root, a holder or a stranger
		w := g.webs[g.pick(len(g.webs))]
		signer := g.actor()
		if g.chance(0.5) {
			roots := g.roots[g.framework()]
			signer = roots[g.pick(len(roots))]
		}
		g.op(g.sign(signer, record.OpRegisterEntity, map[string]any{"id": w.DID, "name": "W", "keys": []json.RawMessage{mustJWK(g.t, w)}}))
	case 1: // a did:key naming itself
		k := g.keys[g.pick(len(g.keys))]
		g.op(g.sign(k, record.OpRegisterEntity, map[string]any{"id": k.DID, "name": fmt.Sprintf("K%d", g.pick(99)), "metadata": map[string]any{"homepage": "https://k.example"}}))
	default: // an update by itself or by another
		e := g.actor()
		signer := e
		if g.chance(0.3) {
			signer = g.actor()
		}
		g.op(g.sign(signer, record.OpUpdateEntity, map[string]any{"id": e.DID, "name": fmt.Sprintf("N%d", g.pick(99))}))
	}
}

// rotate gives a did:web actor a new key, signed with its current one; on
// acceptance the actor signs with the new key from then on.
func (g *randomLog) rotate() {
	i := g.pick(len(g.webs))
	old := g.webs[i]
	next := mustAs(g.t, mustKey(g.t, record.KeyEd25519), fmt.Sprintf("%s#k%d", old.DID, len(g.entries)))
	if g.op(g.sign(old, record.OpRotateKeys, map[string]any{"id": old.DID, "keys": []json.RawMessage{mustJWK(g.t, next)}})).Accepted {
		g.webs[i] = next
	}
}

func isEd25519(s *record.Signer) bool {
	_, ok := s.Key().Public().(ed25519.PublicKey)
	return ok
}

// statusList publishes a version of a list of an issuer that holds (or
// held) a grant to issue, naming the current version or, now and then, a
// stale or no previous one.
func (g *randomLog) statusList() {
	var issuers []*record.Signer
	for _, a := range g.accs {
		if a.action == record.ActionIssue {
			issuers = append(issuers, a.subject)
		}
	}
	if len(issuers) == 0 {
		g.accredit()
		return
	}
	issuer := issuers[g.pick(len(issuers))]
	list := []string{"a", "b"}[g.pick(2)]
	previous := ""
	if v, err := g.s.StatusList(issuer.DID, list); err == nil && !g.chance(0.1) {
		previous = v.Current
	}
	// Set bits stay set (revocation cannot be undone): a new version
	// starts from the current one's.
	bits := make([]byte, record.MinStatusListEntries/8)
	if previous != "" {
		copy(bits, g.lists[issuer.DID+" "+list])
	}
	for range 3 {
		bits[g.pick(len(bits))] |= 1 << g.pick(8)
	}
	vc, err := record.StatusListCredential(issuer.DID, list, []string{record.PurposeRevocation}, 1, nil, 300000, bits)
	if err != nil {
		g.t.Fatal(err)
	}
	// A VC-JWT, or (an Ed25519 issuer, now and then) Data Integrity,
	// which only the level of the Recommendation's lists takes.
	var secured []byte
	if g.chance(0.3) && isEd25519(issuer) {
		secured, err = issuer.SignDataIntegrity(vc, record.CryptosuiteEdDSAJCS, g.now)
	} else {
		secured, err = issuer.SignVCJWT(vc)
	}
	if err != nil {
		g.t.Fatal(err)
	}
	if g.op(g.sign(issuer, record.OpPublishStatusList, map[string]any{"list": list, "previous": previous, "credential": string(secured)})).Accepted {
		g.lists[issuer.DID+" "+list] = bits
	}
}

func (g *randomLog) governance() {
	fw := g.framework()
	switch g.pick(6) {
	case 5: // a new cosigner set, signed by enough members or not
		var set []string
		for _, c := range g.cosigners {
			if g.chance(0.6) {
				set = append(set, c)
			}
		}
		g.op(g.setCosigners(1+g.pick(len(g.gov)), map[string]any{"cosigners": set}))
	case 0, 1:
		root := g.actor()
		fields := map[string]any{"framework": fw, "accreditor": root.DID}
		if g.chance(0.3) {
			fields["effectiveAt"] = g.when(-day, day)
		}
		if g.op(g.govSign(record.OpAddRootAccreditor, fields)).Accepted {
			g.roots[fw] = append(g.roots[fw], root)
		}
	case 2:
		roots := g.roots[fw]
		if len(roots) < 2 {
			return
		}
		i := g.pick(len(roots))
		if g.op(g.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fw, "accreditor": roots[i].DID})).Accepted {
			g.roots[fw] = slices.Delete(slices.Clone(roots), i, i+1)
		}
	case 3:
		g.op(g.govSign(record.OpUpdateFramework, map[string]any{"id": fw, "name": fmt.Sprintf("F%d", g.pick(99))}))
	default:
		other := g.frameworks[(slices.Index(g.frameworks, fw)+1)%len(g.frameworks)]
		op := record.OpRecognize
		if g.chance(0.3) {
			op = record.OpUnrecognize
		}
		fields := map[string]any{"framework": fw, "recognized": other}
		if op == record.OpRecognize {
			// Resources change, now or scheduled (feature level 14 keeps
			// each recognize's).
			fields["resources"] = randomResources[:1+g.pick(len(randomResources))]
			if g.chance(0.1) {
				fields["resources"] = []string{record.Wildcard}
			}
		}
		if g.chance(0.3) {
			fields["effectiveAt"] = g.when(-10*day, -time.Hour, time.Hour, 10*day)
		}
		g.op(g.govSign(op, fields))
	}
}

// questions are the answers compared at the end: every subject of the log
// for every framework, action and resource, now and at a past index.
func (g *randomLog) questions() []decide.Question {
	var qs []decide.Question
	for _, a := range g.accs {
		for _, r := range randomResources {
			qs = append(qs, decide.Question{Entity: a.subject.DID, Framework: a.framework, Action: a.action, Resource: r})
			qs = append(qs, decide.Question{Entity: a.subject.DID, Framework: a.framework, Action: a.action, Resource: r, AsOf: uint64(len(g.entries) / 2), At: g.now.Add(-60 * day)})
		}
	}
	return qs
}

// replay applies the log to a new state on a random schedule and checks it
// against the first state as it goes.
func (g *randomLog) replay(rng *rand.Rand, n int) {
	t := g.t
	// The map overlay's flush, mostly far more often than a node's, so
	// that a log of a few thousand entries flushes it (the top cache's
	// deeper records, below depth 15, hold nothing in a map this small).
	flushEntries := []int{1, 5, 33, 256, journalFlushEntries}[rng.IntN(5)]
	// Half the replicas live on a crashable in-memory file system and now
	// and then lose power (below).
	var mem *vfs.MemFS
	if rng.IntN(2) == 0 {
		mem = vfs.NewCrashableMem()
	}
	open := func(dir string) (*State, error) {
		var opts Options
		if mem != nil {
			mkdirSynced(t, mem, dir)
			opts.fs = mem
		}
		s, err := Open(dir, g.raw, opts)
		if err == nil {
			s.apply.flushEntries = flushEntries
		}
		return s, err
	}
	dir := t.TempDir()
	s, err := open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// snapped is how many entries raft's last snapshot of the replica
	// holds: after a power loss raft hands the state every entry after
	// them again, and no earlier one (its log may be compacted up to them).
	snapped := 0
	var wg sync.WaitGroup
	// On a failure, the checks and reads beside the apply end before the
	// state closes under them.
	defer func() { s.Close() }()
	defer wg.Wait()
	qs := g.questions()
	if len(qs) == 0 {
		t.Fatal("the log granted nothing: no questions to compare")
	}
	var restarts, restores, installs, powerLosses, lost, prefetches, checks, checked int
	for i := 0; i < len(g.entries); {
		// Mostly small batches, as a lightly loaded cluster applies; now
		// and then one of up to 64 entries.
		size := 1 + rng.IntN(min([]int{1, 2, 4, 4, 16, 64}[rng.IntN(6)], len(g.entries)-i))
		batch := g.entries[i : i+size]
		if rng.Float64() < 0.5 {
			// raft hands Prefetch what its log stores, ahead of the
			// apply and around it.
			from := max(0, i-rng.IntN(8))
			s.Prefetch(g.entries[from:min(len(g.entries), i+size+rng.IntN(32))])
			prefetches++
		}
		if rng.Float64() < 0.4 {
			// A leader's checks of entries to come, and verifiers' reads,
			// beside the apply.
			ahead := g.entries[i:min(len(g.entries), i+size+8)]
			now := batch[0].Time
			q := qs[rng.IntN(len(qs))]
			wg.Go(func() {
				for _, e := range ahead {
					s.CheckCommand(e.Data, now)
				}
			})
			wg.Go(func() {
				g.checkRead(s, q, now, n)
				_, _, _ = s.Accreditations(AccreditationFilter{Subject: q.Entity}, Page{Limit: 20}, now)
			})
			checks++
		}
		if rng.Float64() < 0.3 {
			// The leader's check of the next entry decides as its apply
			// will: nil (it passes) for an entry accepted as new, else the
			// apply's result but for the index.
			c, want := s.CheckCommand(batch[0].Data, batch[0].Time), g.results[i]
			if c == nil {
				if !want.Accepted || want.Duplicate {
					t.Fatalf("replica %d: entry %d: the check passes it, the apply gives %s", n, i, mustJSON(t, want))
				}
			} else {
				c2, w2 := *c, *want
				c2.Index, w2.Index = 0, 0
				if a, b := mustJSON(t, &c2), mustJSON(t, &w2); !bytes.Equal(a, b) {
					t.Fatalf("replica %d: entry %d: the check gives\n%s\nthe apply\n%s", n, i, a, b)
				}
			}
			checked++
		}
		got := s.ApplyBatch(batch)
		wg.Wait()
		for j, r := range got {
			if a, b := mustJSON(t, r), mustJSON(t, g.results[i+j]); !bytes.Equal(a, b) {
				t.Fatalf("replica %d: entry %d (index %d, batch of %d from %d): result\n%s\nwant\n%s", n, i+j, batch[j].Index, size, i, a, b)
			}
		}
		i += size
		if got, want := headOf(t, s), g.heads[i-1]; got.size != want.size || !bytes.Equal(got.root, want.root) {
			t.Fatalf("replica %d: after entry %d the transparency log is %d %x, want %d %x", n, i-1, got.size, got.root, want.size, want.root)
		}
		if mem != nil && rng.Float64() < 0.03 {
			var held int
			s, held = g.losePower(rng, n, s, &mem, open, dir, snapped, i)
			powerLosses++
			lost += i - held
			continue
		}
		switch x := rng.Float64(); {
		case x < 0.04: // a restart, half of them as after a crash (the map journal not flushed at the close)
			s.keepJournal = rng.IntN(2) == 0
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = open(dir); err != nil {
				t.Fatal(err)
			}
			restarts++
			// raft may hand a restarted node entries it applied before:
			// each gets its stored result again.
			from := i - rng.IntN(min(i, 8)+1)
			for j, r := range s.ApplyBatch(g.entries[from:i]) {
				if a, b := mustJSON(t, r), mustJSON(t, g.results[from+j]); !bytes.Equal(a, b) {
					t.Fatalf("replica %d: entry %d again after a restart: result\n%s\nwant\n%s", n, from+j, a, b)
				}
			}
		case x < 0.07: // raft restores a snapshot of the same state into it
			if err := s.Restore(bytes.NewReader(snapshotBytes(t, s))); err != nil {
				t.Fatal(err)
			}
			snapped = i
			restores++
		case x < 0.09: // a new node installs a snapshot, then goes on
			nextDir := t.TempDir()
			next, err := open(nextDir)
			if err != nil {
				t.Fatal(err)
			}
			if err := next.Restore(bytes.NewReader(snapshotBytes(t, s))); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, dir = next, nextDir
			snapped = i
			restores++
		case x < 0.12: // a snapshot from further on, as a lagging follower installs
			k, _ := slices.BinarySearchFunc(g.snaps, i+1, func(sn randomSnap, n int) int { return sn.n - n })
			if k == len(g.snaps) {
				break
			}
			sn := g.snaps[k+rng.IntN(min(3, len(g.snaps)-k))]
			if err := s.Restore(bytes.NewReader(sn.data)); err != nil {
				t.Fatal(err)
			}
			i = sn.n
			if got, want := headOf(t, s), g.heads[i-1]; got.size != want.size || !bytes.Equal(got.root, want.root) {
				t.Fatalf("replica %d: the snapshot after entry %d installed holds the transparency log %d %x, want %d %x", n, i-1, got.size, got.root, want.size, want.root)
			}
			snapped = i
			installs++
		case x < 0.14: // raft takes a snapshot of the state (it syncs) and may compact its log up to it
			s.Snapshot().Release()
			snapped = i
		case x < 0.3: // a verifier's read between batches
			g.checkRead(s, qs[rng.IntN(len(qs))], batch[len(batch)-1].Time, n)
		}
	}
	if a, b := g.digest(), mustDigest(t, s); a != b {
		t.Fatalf("replica %d: state digest %s, want %s", n, b, a)
	}
	for _, q := range qs {
		a, errA := g.s.Decide(q, g.now)
		b, errB := s.Decide(q, g.now)
		if fmt.Sprint(errA) != fmt.Sprint(errB) || !bytes.Equal(mustJSON(t, a), mustJSON(t, b)) {
			t.Fatalf("replica %d: %+v answered\n%s (%v)\nwant\n%s (%v)", n, q, mustJSON(t, b), errB, mustJSON(t, a), errA)
		}
	}
	if err := s.SelfAudit(t.Context()); err != nil {
		t.Fatalf("replica %d: its state fails its own audit: %v", n, err)
	}
	g.compareAnswers(s, n)
	g.compareProofs(s, n)
	if a, b := storedMapNodes(t, g.s), storedMapNodes(t, s); !maps.EqualFunc(a, b, bytes.Equal) {
		t.Fatalf("replica %d stores %d map node records, the first state %d, or other bytes", n, len(b), len(a))
	}
	t.Logf("replica %d (overlay flushed every %d entries): %d restarts, %d power losses (%d applied entries lost in all), %d restores of its own state, %d snapshots installed from further on, %d prefetches, %d batches with checks and reads beside, %d checks held to the apply's result", n, flushEntries, restarts, powerLosses, lost, restores, installs, prefetches, checks, checked)
}

// dids are the log's actors and one identifier it never names.
func (g *randomLog) dids() []string {
	dids := []string{"did:web:nobody.example"}
	for _, k := range g.keys {
		dids = append(dids, k.DID)
	}
	for _, w := range g.webs {
		dids = append(dids, w.DID)
	}
	return dids
}

// storedMapNodes are the state map's node records s stores: its overlay
// over its table, whenever the overlay was last flushed.
func storedMapNodes(t testing.TB, s *State) map[string][]byte {
	t.Helper()
	nodes := map[string][]byte{}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tableMapNodes}, UpperBound: []byte{tableMapNodes + 1}})
	if err != nil {
		t.Fatal(err)
	}
	for it.First(); it.Valid(); it.Next() {
		nodes[string(it.Key()[1:])] = slices.Clone(it.Value())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	for k, v := range s.mapOverlay.Load().merged() {
		if v == nil {
			delete(nodes, k)
		} else {
			nodes[k] = v
		}
	}
	return nodes
}

// compareAnswers checks that s answers the listings, feeds and exports a
// node serves as the first state does.
func (g *randomLog) compareAnswers(s *State, n int) {
	t := g.t
	same := func(what string, read func(s *State) (any, error)) {
		t.Helper()
		a, errA := read(g.s)
		b, errB := read(s)
		if ja, jb := mustJSON(t, a), mustJSON(t, b); fmt.Sprint(errA) != fmt.Sprint(errB) || !bytes.Equal(ja, jb) {
			t.Fatalf("replica %d: %s:\n%s (%v)\nwant\n%s (%v)", n, what, jb, errB, ja, errA)
		}
	}
	page := Page{Limit: 1000}
	for _, did := range g.dids() {
		same("accreditations of "+did, func(s *State) (any, error) {
			l, _, err := s.Accreditations(AccreditationFilter{Subject: did}, page, g.now)
			return l, err
		})
		same("accreditations by "+did, func(s *State) (any, error) {
			l, _, err := s.Accreditations(AccreditationFilter{Accreditor: did}, page, g.now)
			return l, err
		})
		same("history of "+did, func(s *State) (any, error) {
			l, _, err := s.History(did, page)
			return l, err
		})
		same("entity "+did, func(s *State) (any, error) { return s.Entity(did) })
	}
	for key := range g.lists {
		issuer, list, _ := strings.Cut(key, " ")
		same("status list "+key, func(s *State) (any, error) { return s.StatusList(issuer, list) })
		same("status list history "+key, func(s *State) (any, error) {
			l, _, err := s.StatusListHistory(issuer, list, page)
			return l, err
		})
		same("status list a month ago "+key, func(s *State) (any, error) { return s.StatusListAt(issuer, list, g.now.Add(-30*day)) })
	}
	for _, fw := range g.frameworks {
		same("framework "+fw, func(s *State) (any, error) { return s.Framework(fw) })
		same("DCC export of "+fw, func(s *State) (any, error) { return s.DCCExport(fw, g.now) })
	}
	same("the operations feed", func(s *State) (any, error) { return s.Changes(0, len(g.entries)+1) })
	same("TIR issuers", func(s *State) (any, error) {
		l, total, err := s.TIRIssuers(0, 1000)
		return []any{l, total}, err
	})
}

// compareProofs checks that s proves every record the log named, and a
// few it never wrote, with the first state's bytes, and names the same
// cosigners at every log size.
func (g *randomLog) compareProofs(s *State, n int) {
	t := g.t
	var keys []decide.RecordKey
	for _, did := range g.dids() {
		keys = append(keys, decide.EntityKey(did))
		for _, fw := range g.frameworks {
			keys = append(keys, decide.RootKey(fw, did))
		}
	}
	for _, fw := range append(slices.Clone(g.frameworks), "https://example.org/frameworks/none") {
		keys = append(keys, decide.FrameworkKey(fw))
		for _, other := range g.frameworks {
			keys = append(keys, decide.RecognitionKey(fw, other))
		}
	}
	keys = append(keys, decide.AccreditationKey("bafkreinotanaccreditation"))
	for _, a := range g.accs {
		keys = append(keys, decide.AccreditationKey(a.id))
	}
	prove := func(s *State) []byte {
		v := s.View()
		defer v.Close()
		recs, proof, err := v.ProveRecords(keys)
		if err != nil {
			t.Fatal(err)
		}
		return append(mustJSON(t, recs), proof...)
	}
	if a, b := prove(g.s), prove(s); !bytes.Equal(a, b) {
		t.Fatalf("replica %d proves the log's %d records with other bytes", n, len(keys))
	}
	size := headOf(t, s).size
	for k := uint64(0); k <= size; k++ {
		a, errA := g.s.CosignersAt(k)
		b, errB := s.CosignersAt(k)
		if fmt.Sprint(errA) != fmt.Sprint(errB) || !slices.Equal(a.Keys, b.Keys) || a.Quorum != b.Quorum || a.Changes != b.Changes {
			t.Fatalf("replica %d: cosigners at log size %d: %+v (%v), want %+v (%v)", n, k, b, errB, a, errA)
		}
	}
}

// checkRead asks s q at now (a question about its latest state) and holds
// the answer to the first state's as of the index s answered at.
func (g *randomLog) checkRead(s *State, q decide.Question, now time.Time, n int) {
	if q.AsOf != 0 {
		return // a past index s may not have reached
	}
	v := s.View()
	idx := v.Index()
	got, err := v.Decide(q, now)
	v.Close()
	if idx == 0 {
		return
	}
	q.AsOf = idx
	want, errW := g.s.Decide(q, now)
	if fmt.Sprint(err) != fmt.Sprint(errW) {
		g.t.Errorf("replica %d: at index %d %+v: error %v, want %v", n, idx, q, err, errW)
		return
	}
	if err != nil {
		return
	}
	got.At, want.At = time.Time{}, time.Time{}
	if a, b := mustJSON(g.t, got), mustJSON(g.t, want); !bytes.Equal(a, b) {
		g.t.Errorf("replica %d: at index %d %+v answered\n%s\nwant (the first state as of %d)\n%s", n, idx, q, a, idx, b)
	}
}

// losePower cuts the power of replica n, whose state s has applied the
// log's first i entries and of which raft last took a snapshot after
// snapped of them: the file system keeps what was synced and a random part
// of the rest (*mem becomes that one). The state must come back as it was
// after some entry from snapped on (that entry's transparency log, records
// that pass its own audit), and raft's replay of every entry after snapped
// must give each its result again (the stored one at or below the state's
// applied index) and the log as before the power loss. It returns the
// state as it is then, and how many entries it held after the power loss.
func (g *randomLog) losePower(rng *rand.Rand, n int, s *State, mem **vfs.MemFS, open func(string) (*State, error), dir string, snapped, i int) (*State, int) {
	t := g.t
	t.Helper()
	crashed := (*mem).CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
	// The old state's files stay behind on the old file system.
	s.keepJournal = true
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	*mem = crashed
	s, err := open(dir)
	if err != nil {
		t.Fatalf("replica %d: open after a power loss at entry %d: %v", n, i, err)
	}
	applied := s.AppliedIndex()
	k := sort.Search(len(g.entries), func(j int) bool { return g.entries[j].Index > applied })
	switch {
	case k > 0 && g.entries[k-1].Index != applied, k == 0 && applied != 0:
		t.Fatalf("replica %d: after a power loss the state's applied index is %d, which no entry has", n, applied)
	case k > i:
		t.Fatalf("replica %d: after a power loss at entry %d the state holds %d entries", n, i, k)
	case k < snapped:
		t.Fatalf("replica %d: after a power loss at entry %d the state holds %d entries, fewer than raft's last snapshot (%d): raft would never hand it the entries between again", n, i, k, snapped)
	}
	var want randomHead
	if k > 0 {
		want = g.heads[k-1]
	}
	if got := headOf(t, s); got.size != want.size || !bytes.Equal(got.root, want.root) {
		t.Fatalf("replica %d: after a power loss its state holds %d entries and the transparency log %d %x, want %d %x", n, k, got.size, got.root, want.size, want.root)
	}
	if s.ClusterFeatureLevel() < FeatureLevelCommitment {
		// No commitment to audit against yet.
	} else if err := s.SelfAudit(t.Context()); err != nil {
		t.Fatalf("replica %d: after a power loss (%d entries held) its state fails its own audit: %v", n, k, err)
	}
	for from := snapped; from < i; {
		size := 1 + rng.IntN(min(16, i-from))
		for j, r := range s.ApplyBatch(g.entries[from : from+size]) {
			if a, b := mustJSON(t, r), mustJSON(t, g.results[from+j]); !bytes.Equal(a, b) {
				t.Fatalf("replica %d: entry %d replayed after a power loss (%d entries held): result\n%s\nwant\n%s", n, from+j, k, a, b)
			}
		}
		from += size
	}
	if got, want := headOf(t, s), g.heads[i-1]; got.size != want.size || !bytes.Equal(got.root, want.root) {
		t.Fatalf("replica %d: after a power loss at entry %d and raft's replay the transparency log is %d %x, want %d %x", n, i-1, got.size, got.root, want.size, want.root)
	}
	return s, k
}

// mkdirSynced makes dir and its parents on fs and syncs each one's entry,
// as a data directory made before the node first ran is.
func mkdirSynced(t testing.TB, fs vfs.FS, dir string) {
	t.Helper()
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := dir; ; {
		parent := filepath.Dir(d)
		f, err := fs.OpenDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(f.Sync(), f.Close()); err != nil {
			t.Fatal(err)
		}
		if parent == d {
			return
		}
		d = parent
	}
}
