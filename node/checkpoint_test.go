package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/node/cosign"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// testLog is a real RFC 6962 log the tests append to, standing in for the
// registry state's until it keeps one.
type testLog struct {
	mu    sync.Mutex
	store *tlog.MemStore
	log   *tlog.Log
}

func newTestLog(t *testing.T, n int) *testLog {
	l := &testLog{store: tlog.NewMemStore(), log: tlog.NewLog()}
	for i := range n {
		if err := l.log.Append(l.store, tlog.LeafHash(fmt.Appendf(nil, "leaf %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func (l *testLog) LogHead() (uint64, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.log.Size(), l.log.Root(), nil
}

func (l *testLog) LogRootAt(size uint64) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tlog.RootAt(l.store, size)
}

func (l *testLog) LogConsistency(a, b uint64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tlog.ConsistencyProof(l.store, a, b)
}

func mustStartWithLog(t *testing.T, cfg configs.Config, l cosign.Log) *Node {
	t.Helper()
	n, err := New(cfg, Options{cosignLog: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func getCheckpoint(t *testing.T, n *Node) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(n.GatewayURL() + "/v1/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// wantProblem checks a problem document's status and type.
func wantProblem(t *testing.T, resp *http.Response, body []byte, status int, typ string) {
	t.Helper()
	var p api.Problem
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil || p.Type != typ {
		t.Fatalf("GET /v1/checkpoint: %d %s %s, want %d with problem type %s", resp.StatusCode, resp.Header.Get("Content-Type"), body, status, typ)
	}
}

// TestDevNodeCosignsItsOwnCheckpoint: the development genesis lists the
// node's own libp2p key as its one cosigner (the identity exists before the
// genesis is written), so a development node serves GET /v1/checkpoint: a
// signed note that verifies against the genesis, with its metrics.
func TestDevNodeCosignsItsOwnCheckpoint(t *testing.T) {
	cfg := LoopbackConfig(t.TempDir())
	n := mustStartWithLog(t, cfg, newTestLog(t, 3))
	g := n.State.Genesis()
	if len(g.Cosigners) != 1 {
		t.Fatalf("development genesis cosigners %v, want the node's own key", g.Cosigners)
	}
	key, err := tlog.ParseCosignerKey(g.Cosigners[0])
	if err != nil {
		t.Fatal(err)
	}
	if p, err := cosign.PeerOf(key); err != nil || p != n.PeerID() {
		t.Fatalf("the genesis cosigner is peer %s (%v), want this node %s", p, err, n.PeerID())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	var resp *http.Response
	var body []byte
	for {
		if resp, body = getCheckpoint(t, n); resp.StatusCode == http.StatusOK {
			break
		}
		wantProblem(t, resp, body, http.StatusServiceUnavailable, "urn:trustreg:problem:no_checkpoint")
		select {
		case <-ctx.Done():
			t.Fatal("no checkpoint within 20 s")
		case <-poll.C:
		}
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "text/plain; charset=utf-8" || cc != "no-cache" {
		t.Fatalf("Content-Type %q, Cache-Control %q", ct, cc)
	}
	origin, err := tlog.Origin(record.CIDOf(mustRead(t, filepath.Join(cfg.DataDir, DevGenesisFile))))
	if err != nil {
		t.Fatal(err)
	}
	v, err := tlog.NewVerifier(origin, []tlog.CosignerKey{key}, g.CosignerQuorumOf())
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(body)
	if err != nil {
		t.Fatalf("the checkpoint does not verify against the genesis: %v\n%s", err, body)
	}
	if got.Checkpoint.Size != 3 {
		t.Fatalf("checkpoint of size %d, want the log's 3", got.Checkpoint.Size)
	}
	m := gatherMetrics(t, n)
	if m["trustd_checkpoint_cosignatures"] != 1 || math.IsInf(m["trustd_checkpoint_age_seconds"], 0) || m["trustd_checkpoint_age_seconds"] < 0 {
		t.Fatalf("metrics: cosignatures %v, age %v", m["trustd_checkpoint_cosignatures"], m["trustd_checkpoint_age_seconds"])
	}
}

// TestCheckpointWithoutCosigners: a genesis with no cosigners (a
// development genesis written before they existed) keeps working; GET
// /v1/checkpoint says there are none, with a 404 problem.
func TestCheckpointWithoutCosigners(t *testing.T) {
	cfg := LoopbackConfig(t.TempDir())
	gov, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(record.Genesis{Consortium: "old development consortium", Members: []record.Member{{ID: gov.DID, Name: "gov"}}, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, DevGenesisFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	n := mustStartWithLog(t, cfg, newTestLog(t, 3))
	resp, body := getCheckpoint(t, n)
	wantProblem(t, resp, body, http.StatusNotFound, "urn:trustreg:problem:no_cosigners")
	if _, ok := gatherMetrics(t, n)["trustd_checkpoint_cosignatures"]; ok {
		t.Fatal("checkpoint metrics without cosigners")
	}
}

// TestCheckpointWithoutQuorum: while too few cosigners are reachable, GET
// /v1/checkpoint is 503 with a problem, and the age metric is +Inf.
func TestCheckpointWithoutQuorum(t *testing.T) {
	cfg := LoopbackConfig(t.TempDir())
	id, err := consensus.LoadOrCreateIdentity(filepath.Join(cfg.DataDir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	own, err := cosign.CosignerKeyOf("self", id)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	away, err := tlog.NewCosignerKey("away", pub)
	if err != nil {
		t.Fatal(err)
	}
	gov, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(record.Genesis{Consortium: "two cosigners", Members: []record.Member{{ID: gov.DID, Name: "gov"}}, Threshold: 1,
		Cosigners: []string{own.String(), away.String()}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Genesis = filepath.Join(t.TempDir(), "genesis.json")
	if err := os.WriteFile(cfg.Genesis, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	n := mustStartWithLog(t, cfg, newTestLog(t, 3))
	resp, body := getCheckpoint(t, n)
	wantProblem(t, resp, body, http.StatusServiceUnavailable, "urn:trustreg:problem:no_checkpoint")
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	m := gatherMetrics(t, n)
	if !math.IsInf(m["trustd_checkpoint_age_seconds"], 1) || m["trustd_checkpoint_cosignatures"] != 0 {
		t.Fatalf("metrics without a quorum: age %v, cosignatures %v", m["trustd_checkpoint_age_seconds"], m["trustd_checkpoint_cosignatures"])
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gatherMetrics is the node's gauges by name.
func gatherMetrics(t *testing.T, n *Node) map[string]float64 {
	t.Helper()
	mfs, err := n.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if ms := mf.GetMetric(); len(ms) == 1 && ms[0].GetGauge() != nil {
			out[mf.GetName()] = ms[0].GetGauge().GetValue()
		}
	}
	return out
}
