package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
)

func TestBackupRestoresIntoANewCluster(t *testing.T) {
	c := mustNewCluster(t, 1)
	for i := range 20 {
		c.mustSubmit(0, c.accreditOp(fmt.Sprintf("did:web:b%d.example", i)))
	}
	src := c.node(0)
	resp, err := http.Get(src.AdminURL() + "/admin/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	backup, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(backup) == 0 {
		t.Fatalf("backup: %d, %d bytes", resp.StatusCode, len(backup))
	}
	genesis, _ := os.ReadFile(c.cfgs[0].Genesis)

	dir := t.TempDir()
	index, err := RestoreBackup(dir, genesis, bytes.NewReader(backup))
	if err != nil {
		t.Fatal(err)
	}
	if index != src.State.AppliedIndex() {
		t.Fatalf("restored index %d, source applied %d", index, src.State.AppliedIndex())
	}
	// A second restore into the same directory is refused.
	if _, err := RestoreBackup(dir, genesis, bytes.NewReader(backup)); err == nil {
		t.Fatal("restore over existing data accepted")
	}
	// A backup of another consortium is refused.
	otherGenesis, _ := writeGenesis(t, t.TempDir())
	og, _ := os.ReadFile(otherGenesis)
	keyed := t.TempDir() // its identity made beforehand, as trustd identity does
	key, err := consensus.LoadOrCreateIdentity(filepath.Join(keyed, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreBackup(keyed, og, bytes.NewReader(backup)); !errors.Is(err, record.ErrGenesis) {
		t.Fatalf("restore with another genesis: %v", err)
	}
	// A failed restore leaves nothing of its own behind (the identity made
	// beforehand stays), so it can be run again.
	if entries, _ := os.ReadDir(keyed); len(entries) != 1 || entries[0].Name() != "node.key" {
		t.Fatalf("after a refused restore the directory holds %v", entries)
	}
	if again, err := consensus.LoadOrCreateIdentity(filepath.Join(keyed, "node.key")); err != nil || !again.Equals(key) {
		t.Fatalf("identity made beforehand changed: %v", err)
	}
	fresh := filepath.Join(t.TempDir(), "new")
	for _, bad := range [][]byte{[]byte("not a backup"), backup[:len(backup)/2]} {
		if _, err := RestoreBackup(fresh, genesis, bytes.NewReader(bad)); err == nil {
			t.Fatalf("restore of %d bad bytes accepted", len(bad))
		}
		if _, err := os.Stat(fresh); !os.IsNotExist(err) {
			t.Fatalf("a failed restore left %s behind: %v", fresh, err)
		}
	}
	if _, err := RestoreBackup(fresh, genesis, bytes.NewReader(backup)); err != nil {
		t.Fatalf("restore after failed ones: %v", err)
	}

	cfg := LoopbackConfig(dir)
	cfg.Genesis = c.cfgs[0].Genesis
	restored := mustNewNode(t, cfg)
	want, _ := src.State.StateDigest()
	if got, _ := restored.State.StateDigest(); got != want {
		t.Fatal("restored node's state digest differs from the source")
	}
	// The new cluster goes on from the backup's index.
	c2 := &testCluster{t: t, nodes: []*Node{restored}, root: c.root, fw: c.fw}
	res := c2.mustSubmit(0, c.accreditOp("did:web:after-restore.example"))
	if res.Index <= index {
		t.Fatalf("first write after restore at index %d, not after %d", res.Index, index)
	}
}

// TestRestoredMemberForkIsRefused restores a member's backup under that
// member's identity while the rest of its cluster is down, writes to the
// one-node cluster it makes, then starts the others again: the member
// holds an entry the cluster's log does not. It must take nothing more from
// the leader (the cluster's entries at the indexes it wrote itself would be
// skipped as applied, and the next ones applied over the forked state),
// report not ready saying why, stop raft and refuse to start again, and
// leave the two others writing.
func TestRestoredMemberForkIsRefused(t *testing.T) {
	c := mustNewCluster(t, 3)
	for i := range 5 {
		c.mustSubmit(0, c.accreditOp(fmt.Sprintf("did:web:b%d.example", i)))
	}
	c.restoreMemberAlone(2)
	c.start(2)
	waitFor(t, "the restored member to lead its one-node cluster", 15*time.Second, func() bool { return c.node(2).cluster.IsLeader() })
	forked := c.mustSubmit(2, c.accreditOp("did:web:forked.example"))
	forkDigest, _ := c.node(2).State.StateDigest()

	c.start(0)
	c.start(1)
	waitFor(t, "the restored member to find the fork", 30*time.Second, func() bool {
		return errors.Is(c.node(2).Ready(), consensus.ErrForked)
	})
	var fe *consensus.ForkError
	if err := c.node(2).Ready(); !errors.As(err, &fe) || fe.From > forked.Index || fe.Applied != forked.Index {
		t.Fatalf("fork reported as %v (the member applied up to %d)", err, forked.Index)
	}
	r, err := http.Get(c.node(2).GatewayURL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(body, []byte("forked")) {
		t.Fatalf("/readyz of the forked member: %d %s", r.StatusCode, body)
	}

	// The two others go on; the forked member takes none of it.
	var last *record.Result
	for i := range 3 {
		w := c.waitLeader()
		last = c.mustSubmit(w, c.accreditOp(fmt.Sprintf("did:web:after%d.example", i)))
	}
	if last.Index <= forked.Index {
		t.Fatalf("the cluster's last write at %d, not past the forked member's %d", last.Index, forked.Index)
	}
	waitFor(t, "the two others to apply the last write", 15*time.Second, func() bool {
		return c.node(0).State.AppliedIndex() >= last.Index && c.node(1).State.AppliedIndex() >= last.Index
	})
	time.Sleep(time.Second) // a heartbeat or two more for the forked member to take what it should not
	if got := c.node(2).State.AppliedIndex(); got != forked.Index {
		t.Fatalf("the forked member applied up to %d, past its own last entry %d", got, forked.Index)
	}
	if d, _ := c.node(2).State.StateDigest(); d != forkDigest {
		t.Fatal("the forked member's state changed after the fork was found")
	}
	if c.hasOperation(0, forked.CID) || c.hasOperation(1, forked.CID) {
		t.Fatal("the forked write reached the cluster")
	}

	// It stopped taking part in raft, and does not start again: its own
	// configuration would have it lead its own history once more.
	if st := c.node(2).cluster.Status(); st.State != "Shutdown" {
		t.Fatalf("the forked member's raft is %s", st.State)
	}
	c.stop(2)
	if err := c.tryStart(2); !errors.Is(err, consensus.ErrForked) || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("restarting the forked member: %v", err)
	}
}

// mustBackup takes a backup of node i through its admin API and reads its
// genesis.
func (c *testCluster) mustBackup(i int) (backup, genesis []byte) {
	t := c.t
	t.Helper()
	resp, err := http.Get(c.node(i).AdminURL() + "/admin/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	backup, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("backup: %d %v", resp.StatusCode, err)
	}
	if genesis, err = os.ReadFile(c.cfgs[i].Genesis); err != nil {
		t.Fatal(err)
	}
	return backup, genesis
}

// restoreMemberAlone takes a backup of node i, stops every node, and
// restores the backup into a new data directory for node i under its own
// identity (node.key copied): what an operator who restores a member of a
// running cluster does. Node i is not started.
func (c *testCluster) restoreMemberAlone(i int) {
	t := c.t
	t.Helper()
	backup, genesis := c.mustBackup(i)
	for j := range c.nodes {
		c.stop(j)
	}
	dir := t.TempDir()
	key, err := os.ReadFile(filepath.Join(c.cfgs[i].DataDir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "node.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreBackup(dir, genesis, bytes.NewReader(backup)); err != nil {
		t.Fatal(err)
	}
	// The node refuses a restored directory with peers to meet
	// (TestRestoredDirectoryRefusesPeers); what follows is a restore whose
	// marker is gone: one by a build before it, or removed by hand.
	if err := os.Remove(filepath.Join(dir, restoredMarker)); err != nil {
		t.Fatal(err)
	}
	c.cfgs[i].DataDir = dir
}

// TestRestoredDirectoryRefusesPeers: a restored data directory is a
// one-node cluster of its own history; started with peers to meet (a
// member's configuration, as an operator restoring one member of a running
// cluster would start it) it could lead a cluster beside theirs and
// acknowledge writes the registry never gets. The node refuses to start it
// with p2p.peers or raft.join, saying what to do instead, and leaves it as
// it was; started alone it runs, and once an operator gives its cluster
// another member the refusal ends and the peers are accepted.
func TestRestoredDirectoryRefusesPeers(t *testing.T) {
	c := mustNewCluster(t, 1)
	for i := range 3 {
		c.mustSubmit(0, c.accreditOp(fmt.Sprintf("did:web:r%d.example", i)))
	}
	backup, genesis := c.mustBackup(0)
	dir := filepath.Join(t.TempDir(), "restored")
	index, err := RestoreBackup(dir, genesis, bytes.NewReader(backup))
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, restoredMarker)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the restore left no marker: %v", err)
	}
	member := fmt.Sprintf("%s/p2p/%s", c.node(0).P2PAddrs()[0], c.node(0).PeerID())
	cfg := LoopbackConfig(dir)
	cfg.Genesis = c.cfgs[0].Genesis
	for _, set := range []func(*configs.Config){
		func(cfg *configs.Config) { cfg.P2P.Peers = []string{member} },
		func(cfg *configs.Config) { cfg.Raft.Join = []string{member} },
	} {
		withPeers := cfg
		set(&withPeers)
		n, err := New(withPeers, Options{})
		if err == nil {
			n.Close()
			t.Fatalf("a restored directory started with p2p.peers %v, raft.join %v", withPeers.P2P.Peers, withPeers.Raft.Join)
		}
		for _, want := range []string{"restored from a backup", "p2p.peers or raft.join", "trustctl cluster remove", "trustctl cluster add-voter", restoredMarker} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("the refusal does not say %q: %v", want, err)
			}
		}
	}
	// Refused, the directory is as the restore left it: started alone it
	// resumes at the backup's index, and it keeps its marker while alone.
	n := mustNewNode(t, cfg)
	if got := n.State.AppliedIndex(); got != index {
		t.Fatalf("started alone after the refusals at index %d, restored at %d", got, index)
	}
	waitFor(t, "the restored node to lead its one-node cluster", 15*time.Second, func() bool { return n.cluster.IsLeader() })
	time.Sleep(3 * restoredCheckEvery)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the marker went while the restored cluster had no other member: %v", err)
	}
	// A non-voter may be added before it runs (and removed again): the
	// marker stays.
	key, err := consensus.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New(n.AdminURL())
	if err := admin.Post(t.Context(), "/admin/v1/cluster/add-nonvoter", api.MembershipRequest{Addr: fmt.Sprintf("/ip4/127.0.0.1/tcp/1/p2p/%s", id)}, nil); err != nil {
		t.Fatalf("add-nonvoter: %v", err)
	}
	time.Sleep(3 * restoredCheckEvery)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the marker went with a non-voter that never ran: %v", err)
	}
	// A voter that answers (an empty node, waiting to be added): the
	// marker goes, and the node starts with peers from then on.
	vcfg := LoopbackConfig(filepath.Join(t.TempDir(), "voter"))
	vcfg.Genesis, vcfg.Raft.Bootstrap = cfg.Genesis, false
	v, err := New(vcfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	v.gater.Allow(n.PeerID())
	n.gater.Allow(v.PeerID())
	voter := fmt.Sprintf("%s/p2p/%s", v.P2PAddrs()[0], v.PeerID())
	if err := admin.Post(t.Context(), "/admin/v1/cluster/add-voter", api.MembershipRequest{Addr: voter}, nil); err != nil {
		t.Fatalf("add-voter: %v", err)
	}
	waitFor(t, "the restore marker to go", 15*time.Second, func() bool {
		_, err := os.Stat(marker)
		return errors.Is(err, os.ErrNotExist)
	})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.P2P.Peers = []string{voter}
	mustNewNode(t, cfg)
}
