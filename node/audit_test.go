package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/node/cosign"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
	"github.com/trustreg/trustreg/registry/tlog"
)

// mustNewCosigningCluster is mustNewCluster with every node's libp2p key a
// genesis cosigner, named node-<i>, and the given quorum (0: the default);
// it returns the genesis bytes and a verifier of the cluster's checkpoints.
func mustNewCosigningCluster(t *testing.T, n, quorum int) (*testCluster, []byte, *tlog.Verifier) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "genesis.json")
	cfgs := clusterConfigs(t, n, path)
	var cosigners []string
	var keys []tlog.CosignerKey
	for i, cfg := range cfgs {
		id, err := consensus.LoadOrCreateIdentity(filepath.Join(cfg.DataDir, "node.key"))
		if err != nil {
			t.Fatal(err)
		}
		k, err := cosign.CosignerKeyOf(fmt.Sprintf("node-%d", i), id)
		if err != nil {
			t.Fatal(err)
		}
		cosigners, keys = append(cosigners, k.String()), append(keys, k)
	}
	gov, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(record.Genesis{Consortium: "cosigning test", Members: []record.Member{{ID: gov.DID}}, Threshold: 1,
		Cosigners: cosigners, CosignerQuorum: quorum})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	origin, err := tlog.Origin(record.CIDOf(raw))
	if err != nil {
		t.Fatal(err)
	}
	v, err := tlog.NewVerifier(origin, keys, tlog.DefaultQuorum(n))
	if quorum > 0 {
		v, err = tlog.NewVerifier(origin, keys, quorum)
	}
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, cfgs: cfgs, nodes: make([]*Node, n), gov: gov}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	for i := range cfgs {
		c.start(i)
	}
	c.waitLeader()
	c.waitLevel()
	return c, raw, v
}

// waitCheckpoint waits until node i holds a cosigned checkpoint of at
// least size, and returns what verifying it gave.
func (c *testCluster) waitCheckpoint(v *tlog.Verifier, i int, size uint64) *tlog.Verified {
	c.t.Helper()
	var got *tlog.Verified
	waitFor(c.t, fmt.Sprintf("node %d to hold a checkpoint of size %d", i, size), 30*time.Second, func() bool {
		note, _, err := c.node(i).cosign.Latest()
		if err != nil {
			return false
		}
		ver, err := v.Verify(note)
		if err != nil {
			c.t.Fatalf("node %d holds a checkpoint that does not verify: %v\n%s", i, err, note)
		}
		got = ver
		return ver.Checkpoint.Size >= size
	})
	return got
}

func logSize(t *testing.T, n *Node) uint64 {
	t.Helper()
	size, _, err := n.State.LogHead()
	if err != nil {
		t.Fatal(err)
	}
	return size
}

// tamperRecord changes one byte of the record under key in a stopped
// node's state database, behind raft's and the registry's back.
func tamperRecord(t *testing.T, dataDir string, key []byte) {
	t.Helper()
	db, err := pebble.Open(filepath.Join(dataDir, "state"), &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	v, closer, err := db.Get(key)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	altered := bytes.Replace(v, []byte("did:web:audited-0"), []byte("did:web:audited-X"), 1)
	_ = closer.Close()
	if bytes.Equal(altered, v) {
		t.Fatalf("record %q holds no subject to alter: %s", key, v)
	}
	if err := db.Set(key, altered, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// quietPebble is a pebble.Logger that drops what it is told; Fatalf
// panics, as pebble expects.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)           {}
func (quietPebble) Errorf(string, ...any)          {}
func (quietPebble) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// proveOn proves key on node n's latest state and checks the proof against
// the view's map root.
func proveOn(n *Node, key decide.RecordKey) (registry.Commitment, error) {
	v := n.State.View()
	defer v.Close()
	c, err := v.Commitment()
	if err != nil {
		return c, err
	}
	recs, proof, err := v.ProveRecords([]decide.RecordKey{key})
	if err != nil {
		return c, err
	}
	claim := smt.Claim{Key: smt.KeyOf(decide.StoreKey(key)), Value: smt.Value(sha256.Sum256(recs[0].Bytes)), Present: recs[0].Bytes != nil}
	return c, smt.VerifyBatch(c.MapRoot, []smt.Claim{claim}, proof)
}

// TestTamperedNodeRefusesToCosign: a follower whose state database had a
// record's bytes changed while it was stopped fails its audit at start:
// it is not ready, reports it in its metrics, refuses to cosign (the
// checkpoints cosigned afterwards carry only the two honest nodes'
// cosignatures, and still a quorum), and its proof reads fail while the
// others' verify against their map root, which the cosigned log commits.
func TestTamperedNodeRefusesToCosign(t *testing.T) {
	c, _, verifier := mustNewCosigningCluster(t, 3, 2)
	c.createFramework()
	var acc string
	var last uint64
	for i := range 3 {
		res := c.mustSubmit(0, c.accreditOp(fmt.Sprintf("did:web:audited-%d.example", i)))
		if i == 0 {
			acc = res.ID
		}
		last = res.Index
	}
	c.converged(last)
	leader := c.waitLeader()
	odd := (leader + 1) % 3
	// Honest, every node cosigns.
	if v := c.waitCheckpoint(verifier, leader, logSize(t, c.node(leader))); len(v.Cosignatures) < 2 {
		t.Fatalf("%d cosignatures", len(v.Cosignatures))
	}
	waitFor(t, "every node's audit to pass", 30*time.Second, func() bool {
		for i := range c.nodes {
			if c.node(i).audit.cosignGate() != nil {
				return false
			}
		}
		return true
	})

	key := decide.AccreditationKey(acc)
	c.stop(odd)
	tamperRecord(t, c.cfgs[odd].DataDir, decide.StoreKey(key))
	c.start(odd)
	n := c.node(odd)
	waitFor(t, "the altered node's audit to fail", 30*time.Second, func() bool { return n.audit.failure() != nil })
	if err := n.Ready(); !errors.Is(err, ErrStateCorrupt) || !errors.Is(err, registry.ErrStateCorrupt) {
		t.Fatalf("Ready on the altered node: %v, want ErrStateCorrupt", err)
	}
	if resp, err := http.Get(n.GatewayURL() + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET /readyz on the altered node: %v %v, want 503", resp, err)
	} else {
		resp.Body.Close()
	}
	if err := n.audit.cosignGate(); !errors.Is(err, cosign.ErrStateCorrupt) {
		t.Fatalf("the altered node's cosigner gate: %v", err)
	}
	if m := gatherMetrics(t, n); m["trustd_state_audit_ok"] != 0 || m["trustd_state_audit_last_timestamp_seconds"] <= 0 {
		t.Fatalf("the altered node's audit metrics: ok %v, last %v", m["trustd_state_audit_ok"], m["trustd_state_audit_last_timestamp_seconds"])
	}
	for i := range c.nodes {
		if i == odd {
			continue
		}
		if m := gatherMetrics(t, c.node(i)); m["trustd_state_audit_ok"] != 1 {
			t.Fatalf("node %d: trustd_state_audit_ok %v", i, m["trustd_state_audit_ok"])
		}
		if err := c.node(i).Ready(); err != nil {
			t.Fatalf("node %d not ready: %v", i, err)
		}
	}

	// New writes; the checkpoints that cover them carry the honest
	// nodes' cosignatures only, and still a quorum.
	res := c.mustSubmit(leader, c.accreditOp("did:web:after-tampering.example"))
	// The altered node's state digest differs: wait for the index only.
	waitFor(t, "every node to apply the write", 30*time.Second, func() bool {
		for i := range c.nodes {
			if c.node(i).State.AppliedIndex() < res.Index {
				return false
			}
		}
		return true
	})
	honest := 3 - leader - odd
	want := logSize(t, c.node(leader))
	cp := c.waitCheckpoint(verifier, honest, want)
	if len(cp.Cosignatures) != 2 {
		t.Fatalf("checkpoint of size %d with %d cosignatures, want the two honest nodes'", cp.Checkpoint.Size, len(cp.Cosignatures))
	}
	for _, s := range cp.Cosignatures {
		if s.Name == fmt.Sprintf("node-%d", odd) {
			t.Fatalf("the altered node %d cosigned size %d", odd, cp.Checkpoint.Size)
		}
	}

	// Proof reads: the altered node's fail, the others' verify against a
	// map root their log commits at the cosigned size.
	for i := range c.nodes {
		com, err := proveOn(c.node(i), key)
		if i == odd {
			if !errors.Is(err, registry.ErrStateCorrupt) {
				t.Fatalf("a proof read on the altered node: %v, want ErrStateCorrupt", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("a proof read on node %d: %v", i, err)
		}
		root, err := readView(c.node(i).State, func(v *registry.View) ([]byte, error) { return v.LogRootAt(cp.Checkpoint.Size) })
		if err != nil || !bytes.Equal(root, cp.Checkpoint.Hash[:]) || com.LogSize < cp.Checkpoint.Size {
			t.Fatalf("node %d: root at the cosigned size %x (%v), checkpoint %x", i, root, err, cp.Checkpoint.Hash)
		}
	}
}

// restoresOf is how many snapshots node n restored since it started.
func restoresOf(t *testing.T, n *Node) uint64 {
	t.Helper()
	mfs, err := n.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "trustd_raft_restore_duration_seconds" && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// TestRestartedAndRestoredNodesAgreeOnRoots: a voter restarted and a
// replica that caught up from a raft snapshot (the leader's log compacted
// before it joined) report the same log root at every size and the same
// leaf, map root included, at every index, before and after writes that
// follow.
func TestRestartedAndRestoredNodesAgreeOnRoots(t *testing.T) {
	c := soloVoterWithReplica(t, func(voter, _ *configs.Config) {
		voter.Raft.TrailingLogs = 4
	})
	var last uint64
	for i := range 24 {
		last = c.mustSubmit(0, c.accreditOp(fmt.Sprintf("did:web:roots-%d.example", i))).Index
	}
	if err := c.node(0).cluster.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	waitFor(t, "the leader's log to be compacted", 30*time.Second, func() bool {
		first, _, err := c.node(0).cluster.LogBounds()
		return err == nil && first > 1
	})
	c.start(1) // catches up from the snapshot
	c.converged(last)
	// The restore is counted when it returns, after it set the applied
	// index that converged waits for: wait for the count too.
	waitFor(t, "the replica's restore to be counted", 10*time.Second, func() bool { return restoresOf(t, c.node(1)) > 0 })
	if n := restoresOf(t, c.node(1)); n != 1 {
		t.Fatalf("the replica restored %d snapshots, want the one the leader sent", n)
	}
	c.stop(0)
	c.start(0)
	c.waitLeader()
	for i := range 6 {
		last = c.mustSubmit(0, c.accreditOp(fmt.Sprintf("did:web:roots-after-%d.example", i))).Index
	}
	c.converged(last)

	size := logSize(t, c.node(0))
	if other := logSize(t, c.node(1)); other != size || size < 30 {
		t.Fatalf("log sizes %d and %d, want equal and at least 30", size, other)
	}
	type at struct {
		root, leaf []byte
		mapRoot    [tlog.HashSize]byte
	}
	read := func(n *Node) []at {
		out, err := readView(n.State, func(v *registry.View) ([]at, error) {
			var out []at
			for s := uint64(1); s <= size; s++ {
				root, err := v.LogRootAt(s)
				if err != nil {
					return nil, fmt.Errorf("root at %d: %w", s, err)
				}
				enc, err := v.Leaf(s - 1)
				if err != nil {
					return nil, fmt.Errorf("leaf %d: %w", s-1, err)
				}
				l, err := tlog.DecodeLeaf(enc)
				if err != nil {
					return nil, fmt.Errorf("leaf %d: %w", s-1, err)
				}
				out = append(out, at{root: root, leaf: enc, mapRoot: l.MapRoot})
			}
			return out, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	restarted, restored := read(c.node(0)), read(c.node(1))
	for i := range restarted {
		a, b := restarted[i], restored[i]
		if !bytes.Equal(a.root, b.root) || !bytes.Equal(a.leaf, b.leaf) || a.mapRoot != b.mapRoot {
			t.Fatalf("at size %d: the restarted node has root %x, map root %x; the restored one %x, %x", i+1, a.root, a.mapRoot, b.root, b.mapRoot)
		}
	}
	// And each one's last leaf commits to its state's map root.
	for i := range 2 {
		com, err := readView(c.node(i).State, func(v *registry.View) (registry.Commitment, error) { return v.Commitment() })
		if err != nil || com.MapRoot != smt.Hash(restarted[size-1].mapRoot) {
			t.Fatalf("node %d: map root %x (%v), the last leaf's %x", i, com.MapRoot, err, restarted[size-1].mapRoot)
		}
	}
}

// TestCorruptProofReadStopsCosigning: a proof read's ErrStateCorrupt stops
// cosigning and readiness at once and queues one full audit, however many
// reads fail; the audit's verdict then stands (here the state is sound,
// as after a restore, so cosigning resumes).
func TestCorruptProofReadStopsCosigning(t *testing.T) {
	gov, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(record.Genesis{Consortium: "audit", Members: []record.Member{{ID: gov.DID}}, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	st, err := registry.Open(t.TempDir(), raw, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := newAuditor(func() *registry.State { return st }, slog.New(slog.DiscardHandler), 0)
	if err := a.cosignGate(); !errors.Is(err, cosign.ErrUnavailable) {
		t.Fatalf("before the first audit: %v, want cosigning off (unavailable)", err)
	}
	a.audit(context.Background())
	if err := a.cosignGate(); err != nil {
		t.Fatalf("after a passed audit: %v", err)
	}
	read := fmt.Errorf("%w: the map's entry differs", registry.ErrStateCorrupt)
	for range 3 {
		a.corruptRead(read)
	}
	if err := a.cosignGate(); !errors.Is(err, cosign.ErrStateCorrupt) || !errors.Is(err, registry.ErrStateCorrupt) {
		t.Fatalf("after a corrupt read: %v", err)
	}
	if err := a.failure(); !errors.Is(err, ErrStateCorrupt) {
		t.Fatalf("readiness after a corrupt read: %v", err)
	}
	if len(a.trigger) != 1 {
		t.Fatalf("%d audits queued, want one", len(a.trigger))
	}
	<-a.trigger
	a.audit(context.Background())
	if err := a.cosignGate(); err != nil {
		t.Fatalf("after an audit of a sound state: %v", err)
	}
}
