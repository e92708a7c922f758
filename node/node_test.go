package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

func mustNewNode(t *testing.T, cfg configs.Config) *Node {
	t.Helper()
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	// The new leader raises the feature level moments later, an entry of
	// its own: tests that count indexes start after it.
	if err := n.State.WaitFeatureLevel(ctx, registry.FeatureLevel); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSingleNodeDevClusterKeepsStateAcrossRestart(t *testing.T) {
	cfg := LoopbackConfig(t.TempDir())
	n := mustNewNode(t, cfg)
	if !n.DevGenesisCreated {
		t.Fatal("no development genesis was created in an empty data directory")
	}
	gov := mustReadKey(t, cfg.DataDir+"/"+DevGovernanceKey)
	root := mustReadKey(t, cfg.DataDir+"/"+DevRootAccreditorKey)
	payload, _ := json.Marshal(map[string]any{"op": record.OpCreateFramework, "iat": time.Now().Unix(),
		"id": "https://example.org/fw", "name": "FW", "roots": []string{root.DID}})
	jws, err := record.SignJSON(payload, gov)
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Submit(context.Background(), jws)
	if err != nil || !res.Accepted {
		t.Fatalf("submit: %+v, %v", res, err)
	}
	digest, _ := n.State.StateDigest()
	applied := n.State.AppliedIndex()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n2 := mustNewNode(t, cfg)
	if n2.DevGenesisCreated {
		t.Fatal("restart generated a new development genesis")
	}
	if got, _ := n2.State.StateDigest(); got != digest {
		t.Fatal("state digest changed across restart")
	}
	if n2.State.AppliedIndex() < applied {
		t.Fatalf("applied index %d after restart, want at least %d", n2.State.AppliedIndex(), applied)
	}
	// After the restart the newest committed entry is the new term's no-op,
	// which the registry never sees: a linearizable read must not wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	idx, err := n2.ReadIndex(ctx)
	if err != nil || idx != n2.State.AppliedIndex() {
		t.Fatalf("read index after restart = %d, %v; want the applied index %d", idx, err, n2.State.AppliedIndex())
	}
	if err := n2.WaitApplied(ctx, idx); err != nil {
		t.Fatal(err)
	}
	again, err := n2.Submit(context.Background(), jws)
	if err != nil || !again.Duplicate || again.Index != res.Index {
		t.Fatalf("resubmission after restart: %+v, %v; want duplicate of index %d", again, err, res.Index)
	}
}

func mustReadKey(t *testing.T, path string) *record.Signer {
	t.Helper()
	s, err := record.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCloseWaitsForRunningRequests closes a node while a request waits
// (for an index the node will never reach) longer than the gateway's
// shutdown grace. Close must end the request and see it return before it
// closes the state the request reads.
func TestCloseWaitsForRunningRequests(t *testing.T) {
	cfg := LoopbackConfig(t.TempDir())
	cfg.HTTP.MaxWait = time.Minute
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("%s/v1/status-lists?min_index=%d", n.GatewayURL(), n.State.AppliedIndex()+1_000_000)
	// The request ends with its connection closed or an error status; a
	// 200 would mean it was served an index the node never reached.
	answered := make(chan int, 1) // status, or 0 when the connection closed
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			answered <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	waitFor(t, "the request to be running", 10*time.Second, func() bool { return n.calls.n.Load() > 0 })
	n.Close()
	if running := n.calls.n.Load(); running != 0 {
		t.Fatalf("Close returned with %d requests still running", running)
	}
	select {
	case status := <-answered:
		if status == http.StatusOK {
			t.Fatal("the waiting request was answered 200 for an index the node never reached")
		}
	case <-time.After(30 * time.Second): // a hang, not a speed check
		t.Fatal("the request never returned after Close")
	}
}

func TestAFailedStartSaysWhyAndFreesTheDataDirectory(t *testing.T) {
	cfg := LoopbackConfig(filepath.Join(t.TempDir(), "data"))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := cfg
	busy.HTTP.Addr = taken.Addr().String()
	n, err := New(busy, Options{})
	if err == nil {
		n.Close()
		t.Fatal("a node started on a gateway address another process listens on")
	}
	if n != nil || !strings.Contains(err.Error(), "gateway listen on "+busy.HTTP.Addr) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("New: %v, %v; want no node and the gateway's listen error", n, err)
	}
	// Nothing was made before the ports were found taken: no data
	// directory, so no development genesis and no raft bootstrapped.
	if _, err := os.Stat(busy.DataDir); !os.IsNotExist(err) {
		t.Fatalf("a start refused for its gateway port made %s: %v", busy.DataDir, err)
	}
	busy = cfg
	busy.Admin.Addr = taken.Addr().String()
	if n, err := New(busy, Options{}); err == nil || !strings.Contains(err.Error(), "admin listen on "+busy.Admin.Addr) {
		if n != nil {
			n.Close()
		}
		t.Fatalf("New with the admin port taken: %v", err)
	}
	if _, err := os.Stat(busy.DataDir); !os.IsNotExist(err) {
		t.Fatalf("a start refused for its admin port made %s: %v", busy.DataDir, err)
	}
	busy = cfg
	busy.Admin.TLSCertFile, busy.Admin.TLSKeyFile = filepath.Join(t.TempDir(), "missing.crt"), filepath.Join(t.TempDir(), "missing.key")
	if n, err := New(busy, Options{}); err == nil || !strings.Contains(err.Error(), "admin.tls_cert_file") {
		if n != nil {
			n.Close()
		}
		t.Fatalf("New with the admin certificate missing: %v", err)
	}
	if _, err := os.Stat(busy.DataDir); !os.IsNotExist(err) {
		t.Fatalf("a start refused for its admin certificate made %s: %v", busy.DataDir, err)
	}
	// The failed start closed the state and raft databases it had opened:
	// the same data directory starts now, with the port set right.
	n = mustNewNode(t, cfg)
	resp, err := http.Get(n.GatewayURL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the node started again is not ready: %s", resp.Status)
	}
}

// TestConsortiumDirectoryWithoutGenesis: a consortium's data directory
// started without --genesis is refused, saying so, and gets no
// development genesis or keys written into it.
func TestConsortiumDirectoryWithoutGenesis(t *testing.T) {
	genesis, _ := writeGenesis(t, t.TempDir())
	cfg := LoopbackConfig(t.TempDir())
	cfg.Genesis = genesis
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	before, _ := os.ReadDir(cfg.DataDir)
	cfg.Genesis = ""
	if n, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "start it with --genesis") {
		if n != nil {
			n.Close()
		}
		t.Fatalf("a consortium's directory started without its genesis: %v", err)
	}
	after, _ := os.ReadDir(cfg.DataDir)
	if len(after) != len(before) {
		t.Fatalf("the refused start changed the data directory: %v, then %v", before, after)
	}
	for _, f := range []string{DevGenesisFile, DevGovernanceKey, DevRootAccreditorKey} {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, f)); !os.IsNotExist(err) {
			t.Fatalf("the refused start wrote %s: %v", f, err)
		}
	}
}

// TestNonvoterSettingOnAVoterIsReported: raft.nonvoter set on a node its
// cluster counts as a voter changes nothing, and the node says so at
// start.
func TestNonvoterSettingOnAVoterIsReported(t *testing.T) {
	cfg := LoopbackConfig(filepath.Join(t.TempDir(), "data"))
	// Where it would bootstrap a new cluster, it is refused before
	// anything is written.
	replica := cfg
	replica.Raft.Nonvoter = true
	if n, err := New(replica, Options{}); err == nil || !strings.Contains(err.Error(), "raft.nonvoter: this node would bootstrap a new cluster") {
		if n != nil {
			n.Close()
		}
		t.Fatalf("raft.nonvoter on a node that would bootstrap: %v", err)
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Fatalf("the refused start made %s: %v", cfg.DataDir, err)
	}
	n := mustNewNode(t, cfg)
	n.Close()
	// With raft state the node does not bootstrap: it starts, and says
	// the setting changes nothing for a voter.
	cfg.Raft.Nonvoter = true
	logs := &logBuffer{}
	n, err := New(cfg, Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if !strings.Contains(logs.String(), "raft.nonvoter is set, but this node is a voter") || !strings.Contains(logs.String(), "cluster demote "+n.PeerID().String()) {
		t.Fatalf("no warning for raft.nonvoter on a voter in:\n%s", logs)
	}
}
