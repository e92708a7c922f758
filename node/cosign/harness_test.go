package cosign

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/registry/tlog"
)

// testOrigin is the log origin of the tests' consortium.
var testOrigin = func() string {
	o, err := tlog.Origin("bafkreitestgenesis")
	if err != nil {
		panic(err)
	}
	return o
}()

// memLog is a real RFC 6962 log (tlog.Log over tlog.MemStore) that a test
// appends leaves to, standing in for the registry's.
type memLog struct {
	mu    sync.Mutex
	store *tlog.MemStore
	log   *tlog.Log
}

func newMemLog() *memLog { return &memLog{store: tlog.NewMemStore(), log: tlog.NewLog()} }

// add appends one leaf per string.
func (l *memLog) add(t testing.TB, leaves ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range leaves {
		if err := l.log.Append(l.store, tlog.LeafHash([]byte(s))); err != nil {
			t.Fatal(err)
		}
	}
}

func (l *memLog) LogHead() (uint64, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.log.Size(), l.log.Root(), nil
}

func (l *memLog) LogRootAt(size uint64) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if size > l.log.Size() {
		return nil, fmt.Errorf("%w: size %d of %d", tlog.ErrOutOfRange, size, l.log.Size())
	}
	return tlog.RootAt(l.store, size)
}

func (l *memLog) LogConsistency(size1, size2 uint64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tlog.ConsistencyProof(l.store, size1, size2)
}

// swapLog is the log a test node's Service reads, which a test may replace
// while the service runs (a node whose data was replaced behind its back).
type swapLog struct {
	mu sync.Mutex
	l  Log
}

func (s *swapLog) set(l Log) {
	s.mu.Lock()
	s.l = l
	s.mu.Unlock()
}

func (s *swapLog) get() Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.l
}

func (s *swapLog) LogHead() (uint64, []byte, error)             { return s.get().LogHead() }
func (s *swapLog) LogRootAt(size uint64) ([]byte, error)        { return s.get().LogRootAt(size) }
func (s *swapLog) LogConsistency(a, b uint64) ([][]byte, error) { return s.get().LogConsistency(a, b) }

// leaves returns n leaf strings starting with prefix.
func leaves(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, from+i)
	}
	return out
}

// clock is a test clock moved by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// node is one member of a test cluster: a real libp2p host with the
// node's gater, a log, and a Service.
type node struct {
	id    crypto.PrivKey
	peer  peer.ID
	host  host.Host
	gater *consensus.Gater
	log   *memLog
	swap  *swapLog // what svc reads: log, unless a test replaced it
	dir   string
	svc   *Service
	key   tlog.CosignerKey
	// audit is what the node's state audit says (Config.Audit); nil
	// passes. Set before startService.
	audit error
}

// testCluster is n members on loopback, each a genesis cosigner, with
// quorum 2 and node 0 the leader.
type testCluster struct {
	t      *testing.T
	nodes  []*node
	keys   []tlog.CosignerKey
	clock  *clock
	leader peer.ID
	// changes are the cosigner set changes: from log size from on, set.
	mu      sync.Mutex
	changes []setChange
}

// setChange is a change of the cosigner set in force from a log size on.
type setChange struct {
	from uint64
	set  Roster
}

// changeSet makes set the cosigner set for checkpoints of size from on.
func (c *testCluster) changeSet(from uint64, set Roster) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.changes = append(c.changes, setChange{from, set})
}

// setAt is the cosigner set at size: Config.SetAt.
func (c *testCluster) setAt(size uint64) (Roster, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := Roster{Cosigners: c.keys, Quorum: 2}
	for i, ch := range c.changes {
		if size >= ch.from {
			r = ch.set
			r.Changes = i + 1
		}
	}
	return r, nil
}

func mustNewCluster(t *testing.T, n int) *testCluster { return mustNewClusterOf(t, n, n) }

// mustNewClusterOf is mustNewCluster whose genesis cosigners are the
// first cosigners of the n nodes.
func mustNewClusterOf(t *testing.T, n, cosigners int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, clock: &clock{now: time.Unix(1_800_000_000, 0).UTC()}}
	for i := range n {
		c.nodes = append(c.nodes, mustNewHostNode(t, fmt.Sprintf("member-%d", i)))
	}
	for i, a := range c.nodes {
		if i < cosigners {
			c.keys = append(c.keys, a.key)
		}
		for _, b := range c.nodes {
			if a != b {
				a.gater.Allow(b.peer)
				a.host.Peerstore().AddAddrs(b.peer, b.host.Addrs(), peerstore.PermanentAddrTTL)
			}
		}
	}
	c.leader = c.nodes[0].peer
	for _, nd := range c.nodes {
		nd.log.add(t, leaves("entry", 0, 5)...)
		c.startService(nd)
	}
	return c
}

// mustNewHostNode starts a host with a fresh identity and an empty log.
func mustNewHostNode(t *testing.T, name string) *node {
	t.Helper()
	id, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	self, err := peer.IDFromPrivateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	g := consensus.NewGater(self)
	h, err := consensus.NewHost(consensus.HostConfig{Identity: id, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Gater: g})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	key, err := CosignerKeyOf(name, id)
	if err != nil {
		t.Fatal(err)
	}
	l := newMemLog()
	return &node{id: id, peer: self, host: h, gater: g, log: l, swap: &swapLog{l: l}, dir: t.TempDir(), key: key}
}

// replaceLog gives nd a new, empty log, as if its data were replaced.
func (nd *node) replaceLog() {
	nd.log = newMemLog()
	nd.swap.set(nd.log)
}

// startService (re)starts nd's Service over its data directory.
func (c *testCluster) startService(nd *node) {
	c.t.Helper()
	svc, err := New(Config{
		Host: nd.host, Identity: nd.id, Log: nd.swap, Origin: testOrigin,
		Cosigners: c.keys, Quorum: 2, SetAt: c.setAt, StatePath: filepath.Join(nd.dir, StateFile),
		Allowed:  nd.gater.Allowed,
		IsLeader: func() bool { return nd.peer == c.leader },
		Leader:   func() peer.ID { return c.leader },
		Interval: time.Minute, Now: c.clock.Now,
		Audit: func() error { return nd.audit },
	})
	if err != nil {
		c.t.Fatal(err)
	}
	nd.svc = svc
	c.t.Cleanup(svc.Close)
}

// verifier checks notes as an outside verifier would.
func (c *testCluster) verifier() *tlog.Verifier {
	c.t.Helper()
	v, err := tlog.NewVerifier(testOrigin, c.keys, 2)
	if err != nil {
		c.t.Fatal(err)
	}
	return v
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkpointOf is the checkpoint of l's head.
func checkpointOf(t *testing.T, l *memLog) tlog.Checkpoint {
	t.Helper()
	size, root, err := l.LogHead()
	if err != nil {
		t.Fatal(err)
	}
	cp := tlog.Checkpoint{Origin: testOrigin, Size: size}
	copy(cp.Hash[:], root)
	return cp
}

// memberOf is the member entry of nd in s.
func memberOf(t *testing.T, s *Service, nd *node) member {
	t.Helper()
	r, err := s.rosterOf(Roster{Cosigners: s.cfg.Cosigners, Quorum: s.cfg.Quorum})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range r.members {
		if m.peer == nd.peer {
			return m
		}
	}
	t.Fatalf("%s is not a member", nd.peer)
	return member{}
}
