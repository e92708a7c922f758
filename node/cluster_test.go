package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/test/ports"
)

// testCluster is n in-process nodes on loopback with real libp2p, raft and
// Pebble, sharing one genesis.
type testCluster struct {
	t     *testing.T
	cfgs  []configs.Config
	nodes []*Node // nil while a node is stopped
	gov   *record.Signer
	root  *record.Signer
	fw    string
	mu    sync.Mutex
	// levels stands in for members that run an older build: node i
	// reports and raises to levels[i] (features_test.go).
	levels map[int]int
}

// freePort returns a loopback port no other node of this test process
// was given (ports.Free).
func freePort(t *testing.T) int {
	t.Helper()
	p, err := ports.Free()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeGenesis writes a one-member genesis and returns its path and key.
func writeGenesis(t *testing.T, dir string) (string, *record.Signer) {
	t.Helper()
	gov, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(record.Genesis{Consortium: "test", Members: []record.Member{{ID: gov.DID}}, Threshold: 1})
	path := filepath.Join(dir, "genesis.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, gov
}

// clusterConfigs returns configurations of n nodes that list each other as
// peers; voters of them bootstrap together, the rest start empty.
func clusterConfigs(t *testing.T, n int, genesis string) []configs.Config {
	t.Helper()
	return clusterConfigsOn(t, n, genesis, nil)
}

// clusterConfigsOn is clusterConfigs with node i bound (libp2p, gateway,
// admin API) to hosts[i], or to 127.0.0.1 where hosts is nil.
func clusterConfigsOn(t *testing.T, n int, genesis string, hosts []string) []configs.Config {
	t.Helper()
	cfgs := make([]configs.Config, n)
	addrs := make([]string, n)
	for i := range cfgs {
		dir := t.TempDir()
		id, err := consensus.LoadOrCreateIdentity(filepath.Join(dir, "node.key"))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := peer.IDFromPrivateKey(id)
		port := freePort(t)
		host := "127.0.0.1"
		if hosts != nil {
			host = hosts[i]
		}
		cfgs[i] = LoopbackConfig(dir)
		cfgs[i].Genesis = genesis
		cfgs[i].HTTP.Addr = net.JoinHostPort(host, "0")
		cfgs[i].Admin.Addr = net.JoinHostPort(host, "0")
		cfgs[i].P2P.Listen = []string{fmt.Sprintf("/ip4/%s/tcp/%d", host, port)}
		cfgs[i].Raft.SnapshotInterval = time.Second
		addrs[i] = fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", host, port, pid)
	}
	for i := range cfgs {
		for j := range cfgs {
			if i != j {
				cfgs[i].P2P.Peers = append(cfgs[i].P2P.Peers, addrs[j])
			}
		}
	}
	return cfgs
}

func mustNewCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	return mustNewClusterAt(t, n, nil)
}

// mustNewClusterAt is mustNewCluster with node i standing in for a build
// that applies feature level levels[i].
func mustNewClusterAt(t *testing.T, n int, levels map[int]int) *testCluster {
	t.Helper()
	return mustNewClusterOn(t, n, levels, nil)
}

// mustNewClusterOn is mustNewClusterAt with node i on hosts[i] (ownHosts),
// or on 127.0.0.1 where hosts is nil.
func mustNewClusterOn(t *testing.T, n int, levels map[int]int, hosts []string) *testCluster {
	t.Helper()
	genesis, gov := writeGenesis(t, t.TempDir())
	c := &testCluster{t: t, cfgs: clusterConfigsOn(t, n, genesis, hosts), nodes: make([]*Node, n), gov: gov, levels: levels}
	for i := range c.cfgs {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	c.waitLeader()
	if levels == nil {
		c.waitLevel()
	}
	c.createFramework()
	return c
}

// waitLevel waits until every running node is at this build's feature
// level: the leader raises it moments after its election, an entry of its
// own, and tests that count indexes start after it.
func (c *testCluster) waitLevel() {
	c.t.Helper()
	waitFor(c.t, "every node at this build's feature level", 15*time.Second, func() bool { return c.levelsAre(registry.FeatureLevel) })
}

// soloVoterWithReplica returns node 0, a voter that bootstraps alone (its
// configuration lists no peers), leading and holding a framework, and node
// 1, not started, a read replica that joins it by address. adjust, if not
// nil, changes either configuration first.
func soloVoterWithReplica(t *testing.T, adjust func(voter, replica *configs.Config)) *testCluster {
	t.Helper()
	genesis, gov := writeGenesis(t, t.TempDir())
	cfgs := clusterConfigs(t, 2, genesis)
	cfgs[0].P2P.Peers = nil
	cfgs[1].Raft.Join = cfgs[1].P2P.Peers
	cfgs[1].Raft.Nonvoter = true
	if adjust != nil {
		adjust(&cfgs[0], &cfgs[1])
	}
	c := &testCluster{t: t, cfgs: cfgs, nodes: make([]*Node, 2), gov: gov}
	t.Cleanup(func() { c.stop(0); c.stop(1) })
	c.start(0)
	// A member admits a joining node only if its gater does (listed in
	// p2p.peers); the voter's configuration lists nobody, so by hand.
	c.node(0).gater.Allow(peerOf(t, cfgs[1]))
	c.waitLeader()
	c.waitLevel()
	c.createFramework()
	return c
}

// createFramework creates a framework with a fresh root accreditor through
// node 0.
func (c *testCluster) createFramework() {
	c.t.Helper()
	root, _ := record.GenerateKey(record.KeyEd25519)
	c.root, c.fw = root, "https://example.org/fw"
	c.mustSubmit(0, c.govOp(record.OpCreateFramework, map[string]any{"id": c.fw, "name": "FW", "roots": []string{root.DID}}))
}

func (c *testCluster) start(i int) {
	c.t.Helper()
	if err := c.tryStart(i); err != nil {
		c.t.Fatalf("start node %d: %v", i, err)
	}
}

// tryStart starts node i and reports an error instead of failing the test,
// for goroutines other than the test's.
func (c *testCluster) tryStart(i int) error {
	c.mu.Lock()
	level := c.levels[i]
	c.mu.Unlock()
	n, err := New(c.cfgs[i], Options{featureLevel: level})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
	return nil
}

func (c *testCluster) stop(i int) {
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n != nil {
		n.Close()
	}
}

func (c *testCluster) node(i int) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func (c *testCluster) leader() int {
	for i := range c.nodes {
		if n := c.node(i); n != nil && n.cluster.IsLeader() {
			return i
		}
	}
	return -1
}

func (c *testCluster) waitLeader() int {
	c.t.Helper()
	waitFor(c.t, "a leader", 15*time.Second, func() bool { return c.leader() >= 0 })
	return c.leader()
}

func (c *testCluster) govOp(op string, fields map[string]any) []byte {
	m := map[string]any{"op": op, "iat": time.Now().Unix()}
	for k, v := range fields {
		m[k] = v
	}
	raw, _ := json.Marshal(m)
	jws, err := record.SignJSON(raw, c.gov)
	if err != nil {
		c.t.Fatal(err)
	}
	return jws
}

// accreditOp is a root-signed accreditation of a fresh subject.
func (c *testCluster) accreditOp(subject string) []byte {
	raw, _ := json.Marshal(map[string]any{"op": record.OpAccredit, "iat": time.Now().Unix(), "framework": c.fw,
		"accreditor": c.root.DID, "subject": subject, "action": "issue", "resources": []string{"*"}})
	jws, err := c.root.SignCompact(raw)
	if err != nil {
		c.t.Fatal(err)
	}
	return jws
}

func (c *testCluster) submit(i int, jws []byte) (*record.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.node(i).Submit(ctx, jws)
}

func (c *testCluster) mustSubmit(i int, jws []byte) *record.Result {
	c.t.Helper()
	res, err := c.submit(i, jws)
	if err != nil {
		c.t.Fatalf("submit through node %d: %v", i, err)
	}
	if !res.Accepted {
		c.t.Fatalf("submit through node %d: rejected %s: %s", i, res.Code, res.Reason)
	}
	return res
}

// converged waits until every running node has applied index and all
// their state digests agree.
func (c *testCluster) converged(index uint64) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("every node to apply index %d and agree", index), 30*time.Second, func() bool {
		var digest string
		for i := range c.nodes {
			n := c.node(i)
			if n == nil {
				continue
			}
			if n.State.AppliedIndex() < index {
				return false
			}
			d, err := n.State.StateDigest()
			if err != nil || (digest != "" && d != digest) {
				return false
			}
			digest = d
		}
		return true
	})
}

// cut severs the links between node i and node j both ways; heal restores
// them.
func (c *testCluster) cut(i, j int) {
	a, b := c.node(i), c.node(j)
	a.gater.Block(b.PeerID())
	b.gater.Block(a.PeerID())
	a.host.Network().ClosePeer(b.PeerID())
	b.host.Network().ClosePeer(a.PeerID())
}

func (c *testCluster) heal(i, j int) {
	a, b := c.node(i), c.node(j)
	a.gater.Unblock(b.PeerID())
	b.gater.Unblock(a.PeerID())
}

func (c *testCluster) hasOperation(i int, cid string) bool {
	_, err := readView(c.node(i).State, func(v *registry.View) (*record.OperationView, error) { return v.Operation(cid) })
	return err == nil
}

func TestClusterReplicatesWritesFromEveryNode(t *testing.T) {
	c := mustNewCluster(t, 3)
	var last uint64
	var cids []string
	for i := range 3 {
		// Followers forward to the leader and return its answer.
		res := c.mustSubmit(i, c.accreditOp(fmt.Sprintf("did:web:college-%d.example", i)))
		cids = append(cids, res.CID)
		last = res.Index
	}
	c.converged(last)
	for i := range 3 {
		for _, cid := range cids {
			if !c.hasOperation(i, cid) {
				t.Fatalf("node %d lacks %s", i, cid)
			}
		}
	}
	// A duplicate through another node returns the original result.
	dup, err := c.submit(2, c.node(0).mustOpBytes(t, cids[0]))
	if err != nil || !dup.Duplicate {
		t.Fatalf("duplicate through a follower: %+v %v", dup, err)
	}
	// A linearizable read on a follower sees the last acknowledged write.
	f := (c.leader() + 1) % 3
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idx, err := c.node(f).ReadIndex(ctx)
	if err != nil || idx < last {
		t.Fatalf("read index on a follower: %d %v, want at least %d", idx, err, last)
	}
	// Status shows every member with its lag.
	members := c.node(f).cluster.Members(ctx)
	if len(members) != 3 {
		t.Fatalf("members = %+v", members)
	}
	for _, m := range members {
		if !m.Reachable || m.Suffrage != "voter" {
			t.Fatalf("member %+v", m)
		}
		// Its addresses, and when f last heard from it: just now, for
		// this status request (nothing for f itself).
		if len(m.Addrs) == 0 || !strings.HasSuffix(m.Addrs[0], "/p2p/"+m.ID) {
			t.Errorf("member %s: addrs %v", m.ID, m.Addrs)
		}
		if self := m.ID == c.node(f).PeerID().String(); self != m.LastContact.IsZero() {
			t.Errorf("member %s (self %v): last contact %v", m.ID, self, m.LastContact)
		}
	}
}

func (n *Node) mustOpBytes(t *testing.T, cid string) []byte {
	t.Helper()
	v, err := readView(n.State, func(v *registry.View) (*record.OperationView, error) { return v.Operation(cid) })
	if err != nil {
		t.Fatal(err)
	}
	return []byte(v.JWS)
}

func TestLeaderLossLosesNoAcknowledgedWrite(t *testing.T) {
	c := mustNewCluster(t, 3)
	var acked []string
	var last uint64
	for i := range 20 {
		res := c.mustSubmit(i%3, c.accreditOp(fmt.Sprintf("did:web:before-%d.example", i)))
		acked = append(acked, res.CID)
		last = res.Index
	}
	old := c.leader()
	c.stop(old)
	// A new leader is elected among the two left, and writes go on.
	waitFor(t, "a new leader", 15*time.Second, func() bool { l := c.leader(); return l >= 0 && l != old })
	other := (old + 1) % 3
	for i := range 10 {
		res := c.mustSubmit(other, c.accreditOp(fmt.Sprintf("did:web:after-%d.example", i)))
		acked = append(acked, res.CID)
		last = res.Index
	}
	// The old leader restarts on its data and catches up.
	c.start(old)
	c.converged(last)
	for i := range 3 {
		for _, cid := range acked {
			if !c.hasOperation(i, cid) {
				t.Fatalf("node %d lost acknowledged operation %s", i, cid)
			}
		}
	}
}

func TestPartitionedMinorityCannotCommit(t *testing.T) {
	c := mustNewCluster(t, 3)
	leader := c.leader()
	minority := (leader + 1) % 3
	other := (leader + 2) % 3
	c.cut(minority, leader)
	c.cut(minority, other)
	// The minority cannot commit: its client gets 503 (gateway.ErrUnavailable).
	waitFor(t, "the minority to lose its leader", 15*time.Second, func() bool {
		return c.node(minority).cluster.LeaderID() == "" || c.node(minority).cluster.LeaderID() == c.node(minority).PeerID().String()
	})
	_, err := c.submit(minority, c.accreditOp("did:web:minority.example"))
	if !errors.Is(err, gateway.ErrUnavailable) {
		t.Fatalf("write in the minority: %v, want ErrUnavailable", err)
	}
	// The majority goes on.
	var last uint64
	for i := range 5 {
		last = c.mustSubmit(other, c.accreditOp(fmt.Sprintf("did:web:majority-%d.example", i))).Index
	}
	c.heal(minority, leader)
	c.heal(minority, other)
	c.converged(last)
	if c.hasOperation(minority, record.CIDOf(c.accreditOp("did:web:minority.example"))) {
		t.Fatal("a write refused in the minority was applied")
	}
}

func TestNonvoterCatchesUpFromSnapshotAndNeverVotes(t *testing.T) {
	// Node 0 runs alone with small snapshots; node 1 joins later as a
	// non-voter and must be sent a snapshot, the log having been compacted.
	c := soloVoterWithReplica(t, func(voter, _ *configs.Config) {
		voter.Raft.SnapshotThreshold = 1024
		voter.Raft.TrailingLogs = 256
	})

	const total = 10_000
	var wg sync.WaitGroup
	var last uint64
	var lastMu sync.Mutex
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += 32 {
				res, err := c.submit(0, c.accreditOp(fmt.Sprintf("did:web:c%d.example", i)))
				if err != nil || !res.Accepted {
					errs <- fmt.Errorf("op %d: %v %+v", i, err, res)
					return
				}
				lastMu.Lock()
				last = max(last, res.Index)
				lastMu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := c.node(0).cluster.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	waitFor(t, "the leader's log to be compacted", 30*time.Second, func() bool {
		first, _, err := c.node(0).cluster.LogBounds()
		return err == nil && first > 1
	})

	c.start(1)
	c.converged(last)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var nonvoters int
	for _, m := range c.node(0).cluster.Members(ctx) {
		if m.Suffrage == "nonvoter" {
			nonvoters++
		}
	}
	if nonvoters != 1 {
		t.Fatalf("want one non-voter, members %+v", c.node(0).cluster.Members(ctx))
	}
	// The replica serves reads from its own state.
	d, err := readView(c.node(1).State, func(v *registry.View) (*record.Decision, error) {
		return v.Decide(decide.Question{Entity: "did:web:c9999.example", Framework: c.fw, Action: "issue"}, time.Now())
	})
	if err != nil || !d.Authorized {
		t.Fatalf("read on the replica: %+v %v", d, err)
	}
	// With the only voter gone, the non-voter never takes over.
	c.stop(0)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if c.node(1).cluster.IsLeader() || c.node(1).cluster.State() == "Candidate" {
			t.Fatal("a non-voter stood for election")
		}
		time.Sleep(50 * time.Millisecond) // sampling a condition that must stay false
	}
}

func peerOf(t *testing.T, cfg configs.Config) peer.ID {
	id, err := consensus.LoadOrCreateIdentity(filepath.Join(cfg.DataDir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := peer.IDFromPrivateKey(id)
	return p
}

func TestOutsidersCannotConnect(t *testing.T) {
	c := mustNewCluster(t, 2)
	target := c.node(0)
	// A peer outside the configured cluster is refused by the gater.
	id, _ := consensus.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "k"))
	h, err := consensus.NewHost(consensus.HostConfig{Identity: id, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The listener refuses after the security handshake, so the dialer
	// may see its side succeed; no stream gets through either way.
	if err := h.Connect(ctx, peer.AddrInfo{ID: target.PeerID(), Addrs: target.host.Addrs()}); err == nil {
		s, err := h.NewStream(ctx, target.PeerID(), consensus.RPCProtocol)
		if err == nil {
			s.Write([]byte{5, 0})
			buf := make([]byte, 1)
			if _, err := s.Read(buf); err == nil {
				t.Fatal("an outsider got an answer from a cluster node")
			}
		}
	}
	waitFor(t, "the outsider's connection to be dropped", 5*time.Second, func() bool {
		return len(target.host.Network().ConnsToPeer(h.ID())) == 0
	})
	// A node of another consortium that the node's configuration lists
	// still cannot join: the genesis handshake refuses it.
	otherGenesis, _ := writeGenesis(t, t.TempDir())
	ocfg := clusterConfigs(t, 1, otherGenesis)[0]
	ocfg.Raft.Join = []string{target.P2PAddrs()[0]}
	target.gater.Allow(peerOf(t, ocfg))
	other, err := New(ocfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	jctx, jcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer jcancel()
	err = other.cluster.Join(jctx, []peer.ID{target.PeerID()}, false)
	if !errors.Is(err, consensus.ErrForeignCluster) {
		t.Fatalf("join from another consortium: %v, want ErrForeignCluster", err)
	}
	if len(target.cluster.Status().Members) != 2 {
		t.Fatal("the foreign node became a member")
	}
	// Nor does an operator's add-nonvoter or add-voter admit it: it answers
	// as a member of another consortium (it lets every member in, as one
	// configured with their addresses would).
	for i := range 2 {
		other.gater.Allow(c.node(i).PeerID())
	}
	for _, action := range []string{consensus.ActionAddNonvoter, consensus.ActionAddVoter} {
		err := target.cluster.ChangeMembership(jctx, consensus.MembershipChange{Action: action, ID: other.PeerID().String(), Addrs: other.P2PAddrs()})
		if !errors.Is(err, consensus.ErrBadMembership) || !strings.Contains(err.Error(), "belongs to another consortium") {
			t.Fatalf("%s of a node of another consortium: %v", action, err)
		}
	}
	if len(target.cluster.Status().Members) != 2 {
		t.Fatal("the foreign node became a member")
	}
}

func TestStatusListServedIdenticallyByEveryNode(t *testing.T) {
	c := mustNewCluster(t, 3)
	college, _ := record.GenerateKey(record.KeyEd25519)
	c.mustSubmit(0, c.accreditOp(college.DID))
	bits := make([]byte, record.MinStatusListEntries/8)
	record.SetStatus(bits, 4242, 1, 1)
	vc, err := record.StatusListCredential(college.DID, "main", []string{"revocation"}, 1, nil, 0, bits)
	if err != nil {
		t.Fatal(err)
	}
	jwt, _ := college.SignVCJWT(vc)
	raw, _ := json.Marshal(map[string]any{"op": record.OpPublishStatusList, "iat": time.Now().Unix(), "list": "main", "credential": string(jwt)})
	op, _ := college.SignCompact(raw)
	follower := (c.leader() + 1) % 3
	res := c.mustSubmit(follower, op)
	c.converged(res.Index)
	for i := range 3 {
		req, _ := http.NewRequest("GET", c.node(i).GatewayURL()+"/v1/status-lists/"+url.PathEscape(college.DID)+"/main", nil)
		req.Header.Set("Accept", "application/vc+jwt")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(body, jwt) {
			t.Fatalf("node %d serves %d bytes that differ from the published credential", i, len(body))
		}
		e, err := readView(c.node(i).State, func(v *registry.View) (*record.EntryStatus, error) {
			return v.CheckStatus(college.DID, "main", 4242, time.Time{})
		})
		if err != nil || e.Status != 1 {
			t.Fatalf("node %d entry 4242: %+v %v", i, e, err)
		}
	}
}

// TestFollowerForwardsConcurrentWrites sends many writes at once through a
// follower, which forwards them to the leader in batches: every caller
// gets the answer to its own operation, accepted, rejected or duplicate.
func TestFollowerForwardsConcurrentWrites(t *testing.T) {
	c := mustNewCluster(t, 3)
	f := (c.waitLeader() + 1) % 3
	const n = 120
	ops := make([][]byte, n)
	for i := range ops {
		switch i % 10 {
		case 9: // rejected at apply: no such framework
			raw, _ := json.Marshal(map[string]any{"op": record.OpAccredit, "iat": time.Now().Unix(), "framework": "https://nowhere.example/fw",
				"accreditor": c.root.DID, "subject": fmt.Sprintf("did:web:lost-%d.example", i), "action": "issue", "resources": []string{"*"}})
			jws, err := c.root.SignCompact(raw)
			if err != nil {
				t.Fatal(err)
			}
			ops[i] = jws
		case 5: // the operation before, sent again at the same time
			ops[i] = ops[i-1]
		default:
			ops[i] = c.accreditOp(fmt.Sprintf("did:web:batch-%d.example", i))
		}
	}
	results := make([]*record.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range ops {
		wg.Go(func() { results[i], errs[i] = c.submit(f, ops[i]) })
	}
	wg.Wait()
	var last uint64
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("write %d: %v", i, errs[i])
		}
		if res.CID != record.CIDOf(ops[i]) {
			t.Fatalf("write %d got the answer for %s, want %s", i, res.CID, record.CIDOf(ops[i]))
		}
		switch i % 10 {
		case 9:
			if res.Accepted || res.Code != record.CodeInvalid {
				t.Fatalf("write %d to a missing framework: %+v", i, res)
			}
		case 4, 5:
			if !res.Accepted {
				t.Fatalf("write %d: %+v", i, res)
			}
		default:
			if !res.Accepted || res.Duplicate {
				t.Fatalf("write %d: %+v", i, res)
			}
		}
		last = max(last, res.Index)
	}
	// Of each pair sent twice, exactly one is the original.
	for i := 4; i < n; i += 10 {
		if results[i].Duplicate == results[i+1].Duplicate || results[i].Index != results[i+1].Index {
			t.Fatalf("pair %d: %+v and %+v", i, results[i], results[i+1])
		}
	}
	// The second of a pair waits for the first (node/twins.go) and is not
	// forwarded unless the first failed.
	batches, forwarded := c.node(f).cluster.ForwardStats()
	if forwarded < n-n/10 || batches == 0 || batches > forwarded {
		t.Fatalf("forwarded %d writes in %d batches, want at least %d writes", forwarded, batches, n-n/10)
	}
	t.Logf("%d writes forwarded in %d batches", forwarded, batches)
	c.converged(last)
}

// A read replica added by its address alone (the voters' configurations do
// not list it) must not be stranded when the leader restarts: the leader
// forgets addresses it learned, so the replica, hearing from no leader,
// reaches out to the members it knows.
func TestReplicaReconnectsAfterLeaderRestart(t *testing.T) {
	c := soloVoterWithReplica(t, func(voter, replica *configs.Config) {
		for _, cfg := range []*configs.Config{voter, replica} {
			cfg.Raft.HeartbeatTimeout = 500 * time.Millisecond
			cfg.Raft.ElectionTimeout = 500 * time.Millisecond
		}
	})
	c.start(1)
	c.converged(c.mustSubmit(0, c.accreditOp("did:web:before.example")).Index)

	c.stop(0)
	c.start(0)
	c.waitLeader()
	c.converged(c.mustSubmit(0, c.accreditOp("did:web:after.example")).Index)
}

// TestReadIndexOnANewLeaderCoversAcknowledgedWrites cuts a leader off the
// moment it acknowledges a write, before its followers may have heard that
// the write is committed. The first read index the new leader gives must
// still cover that write: a leader's commit index is not known to be
// current until an entry of its own term is committed.
func TestReadIndexOnANewLeaderCoversAcknowledgedWrites(t *testing.T) {
	c := mustNewCluster(t, 3)
	for round := range 4 {
		old := c.waitLeader()
		a, b := (old+1)%3, (old+2)%3
		res := c.mustSubmit(old, c.accreditOp(fmt.Sprintf("did:web:read-index-%d.example", round)))
		c.cut(old, a)
		c.cut(old, b)
		// Ask the new leader as soon as it leads: polled far more often
		// than the follower's disk sync that the window lasts.
		newLeader := -1
		for deadline := time.Now().Add(15 * time.Second); newLeader < 0 && time.Now().Before(deadline); {
			for _, i := range []int{a, b} {
				if c.node(i).cluster.IsLeader() {
					newLeader = i
				}
			}
			time.Sleep(100 * time.Microsecond)
		}
		if newLeader < 0 {
			t.Fatalf("round %d: no new leader after cutting node %d off", round, old)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		idx, err := c.node(newLeader).ReadIndex(ctx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: read index on the new leader: %v", round, err)
		}
		if idx < res.Index {
			t.Fatalf("round %d: the new leader's read index %d misses write %d acknowledged before the read began", round, idx, res.Index)
		}
		c.heal(old, a)
		c.heal(old, b)
		c.converged(res.Index)
	}
}

// TestMembershipRefusalsSayWhy: changes that would leave the cluster
// without a voter, or hand leadership to no one, are refused through the
// admin API as bad requests that say why, and change nothing.
func TestMembershipRefusalsSayWhy(t *testing.T) {
	c := soloVoterWithReplica(t, nil)
	c.start(1)
	voter, replica := c.node(0).PeerID().String(), c.node(1).PeerID().String()
	waitFor(t, "the replica to join", 20*time.Second, func() bool {
		return len(c.node(0).cluster.Status().Members) == 2
	})
	admin := client.New(c.node(0).AdminURL())
	ctx := context.Background()
	for _, tc := range []struct {
		action, id, want string
	}{
		{"remove", voter, "is the cluster's only voter: add or promote another voter first"},
		{"demote", voter, "is the cluster's only voter"},
		{"transfer-leader", "", "this node is the cluster's only voter: there is no other to hand leadership to"},
		{"transfer-leader", replica, "is not a voter of this cluster: only voters can lead"},
		{"transfer-leader", voter, "already leads"},
	} {
		err := admin.Post(ctx, "/admin/v1/cluster/"+tc.action, api.MembershipRequest{ID: tc.id}, nil)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Problem.Status != http.StatusBadRequest || !strings.Contains(ae.Problem.Detail, tc.want) || strings.Contains(ae.Problem.Detail, "consensus:") {
			t.Errorf("%s %s: %v, want 400 saying %q", tc.action, tc.id, err, tc.want)
		}
	}
	st := c.node(0).cluster.Status()
	if !c.node(0).cluster.IsLeader() || len(st.Members) != 2 {
		t.Fatalf("refused changes changed the cluster: %+v", st)
	}
	for _, m := range st.Members {
		if want := map[string]string{voter: "voter", replica: "nonvoter"}[m.ID]; m.Suffrage != want {
			t.Fatalf("member %s is a %s after refused changes, was a %s", m.ID, m.Suffrage, want)
		}
	}
	// A replica may go: the voter keeps its vote.
	if err := admin.Post(ctx, "/admin/v1/cluster/remove", api.MembershipRequest{ID: replica}, nil); err != nil {
		t.Fatalf("removing the replica: %v", err)
	}
}

// TestDemotedLeaderGoesOnAsAReplica: the leader demoted to a non-voter
// steps down and follows the new leader, applying later writes; raft's
// default would have shut it down while its gateway went on serving.
func TestDemotedLeaderGoesOnAsAReplica(t *testing.T) {
	c := mustNewCluster(t, 3)
	old := c.waitLeader()
	id := c.node(old).PeerID().String()
	admin := client.New(c.node(old).AdminURL())
	if err := admin.Post(context.Background(), "/admin/v1/cluster/demote", api.MembershipRequest{ID: id}, nil); err != nil {
		t.Fatalf("demoting the leader: %v", err)
	}
	waitFor(t, "a new leader", 15*time.Second, func() bool { l := c.leader(); return l >= 0 && l != old })
	if st := c.node(old).cluster.State(); st != "Follower" {
		t.Fatalf("the demoted leader is %s, want Follower", st)
	}
	res := c.mustSubmit((old+1)%3, c.accreditOp("did:web:after-demotion.example"))
	c.converged(res.Index)
	// It serves the write, and every member sees it as a non-voter.
	res2 := c.mustSubmit(old, c.accreditOp("did:web:through-the-replica.example"))
	c.converged(res2.Index)
	for _, m := range c.node(c.waitLeader()).cluster.Status().Members {
		if m.ID == id && m.Suffrage != "nonvoter" {
			t.Fatalf("the demoted leader is a %s", m.Suffrage)
		}
	}

	// The new leader removes itself: it steps down and stays a follower
	// outside the cluster, which says it is not ready once it hears from
	// no leader; the last voter leads, and the replica follows it.
	gone := c.leader()
	goneID := c.node(gone).PeerID().String()
	if err := client.New(c.node(gone).AdminURL()).Post(context.Background(), "/admin/v1/cluster/remove", api.MembershipRequest{ID: goneID}, nil); err != nil {
		t.Fatalf("the leader removing itself: %v", err)
	}
	waitFor(t, "the last voter to lead", 15*time.Second, func() bool { l := c.leader(); return l >= 0 && l != gone && l != old })
	if st := c.node(gone).cluster.State(); st != "Follower" {
		t.Fatalf("the removed leader is %s, want Follower", st)
	}
	waitFor(t, "the removed node to say it is not ready", 15*time.Second, func() bool { return c.node(gone).Ready() != nil })
	res3 := c.mustSubmit(old, c.accreditOp("did:web:after-removal.example"))
	waitFor(t, "the replica to apply the write", 15*time.Second, func() bool { return c.node(old).State.AppliedIndex() >= res3.Index })
}

// TestUnreachableVoterIsRefused: adding a voter that does not answer would
// take a one-node cluster's quorum away; it is refused with the way round
// (a non-voter first), and writes go on.
func TestUnreachableVoterIsRefused(t *testing.T) {
	c := mustNewCluster(t, 1)
	key, err := consensus.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port that is free once closed: nothing answers there
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", ln.Addr().(*net.TCPAddr).Port, id)
	ln.Close()
	admin := client.New(c.node(0).AdminURL())
	err = admin.Post(context.Background(), "/admin/v1/cluster/add-voter", api.MembershipRequest{Addr: addr}, nil)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Problem.Status != http.StatusBadRequest || !strings.Contains(ae.Problem.Detail, "does not answer") ||
		!strings.Contains(ae.Problem.Detail, "add it as a non-voter") {
		t.Fatalf("adding an unreachable voter: %v", err)
	}
	if members := c.node(0).cluster.Status().Members; len(members) != 1 {
		t.Fatalf("the refused voter is in the configuration: %+v", members)
	}
	c.mustSubmit(0, c.accreditOp("did:web:after-refusal.example"))
	// As a non-voter it may be added before it runs, and not promoted.
	if err := admin.Post(context.Background(), "/admin/v1/cluster/add-nonvoter", api.MembershipRequest{Addr: addr}, nil); err != nil {
		t.Fatalf("adding it as a non-voter: %v", err)
	}
	if err := admin.Post(context.Background(), "/admin/v1/cluster/promote", api.MembershipRequest{ID: id.String()}, nil); !errors.As(err, &ae) || !strings.Contains(ae.Problem.Detail, "does not answer") {
		t.Fatalf("promoting an unreachable non-voter: %v", err)
	}
	c.mustSubmit(0, c.accreditOp("did:web:after-refused-promotion.example"))
}

// readView reads from one view of st, closed after read.
func readView[T any](st *registry.State, read func(*registry.View) (T, error)) (T, error) {
	v := st.View()
	defer v.Close()
	return read(v)
}
