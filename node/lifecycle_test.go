package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/registry/record"
)

// frameworkOp signs an operation creating framework i with the
// development genesis's governance key.
func frameworkOp(t *testing.T, gov *record.Signer, i int) []byte {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{"op": record.OpCreateFramework, "iat": time.Now().Unix(),
		"id": fmt.Sprintf("https://example.org/fw/%d", i), "name": "FW"})
	jws, err := record.SignJSON(payload, gov)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

// TestCloseWhileCallsAreInFlight: writes, reads and a watch stream running
// while the node closes end with an error that says the node is shutting
// down (503 over HTTP), never a panic on the closed state, and Close
// leaves no goroutine behind.
func TestCloseWhileCallsAreInFlight(t *testing.T) {
	cfg := LoopbackConfig(t.TempDir())
	n := mustNewNode(t, cfg)
	gov := mustReadKey(t, filepath.Join(cfg.DataDir, DevGovernanceKey))
	ops := make([][]byte, 1000) // signed before, so writers spend their time on the node
	for i := range ops {
		ops[i] = frameworkOp(t, gov, i)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	// Each worker calls until a call fails (at most bound times) and
	// reports that error; progress counts its successful calls.
	const bound = 100_000
	type worker struct {
		name string
		call func(i int) error
	}
	workers := []worker{
		{"Submit", func(i int) error { _, err := n.Submit(context.Background(), ops[i%len(ops)]); return err }},
		{"Submit", func(i int) error { _, err := n.Submit(context.Background(), ops[(i+500)%len(ops)]); return err }},
		{"Digest", func(int) error { _, _, err := n.Digest(); return err }},
		{"ReadIndex", func(int) error {
			idx, err := n.ReadIndex(context.Background())
			if err == nil {
				err = n.WaitApplied(context.Background(), idx)
			}
			return err
		}},
		{"Backup", func(int) error { return n.Backup(io.Discard) }},
		{"GET /v1/status-lists", func(int) error {
			resp, err := client.Get(n.GatewayURL() + "/v1/status-lists")
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}},
	}
	var (
		progress = make([]atomic.Int64, len(workers))
		ended    = make([]error, len(workers))
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range bound {
				if err := workers[w].call(i); err != nil {
					ended[w] = err
					return
				}
				progress[w].Add(1)
			}
		})
	}
	// A watch stream, open when Close begins, must end.
	resp, err := client.Get(n.GatewayURL() + "/v1/watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	watchEnded := make(chan struct{})
	go func() {
		defer close(watchEnded)
		io.Copy(io.Discard, bufio.NewReader(resp.Body))
	}()
	waitFor(t, "every worker to have made a call", 30*time.Second, func() bool {
		for w := range progress {
			if progress[w].Load() == 0 {
				return false
			}
		}
		return true
	})

	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a hang, not a speed check
		t.Fatal("calls still running 30 s after Close returned")
	}
	for w, err := range ended {
		switch {
		case err == nil:
			t.Errorf("%s (worker %d) made %d calls and never failed after Close", workers[w].name, w, bound)
		case strings.HasPrefix(workers[w].name, "GET"):
			// Refused (503) or its connection closed: the server is gone.
		case workers[w].name == "Submit" && errors.Is(err, gateway.ErrOutcomeUnknown):
			// In raft when it shut down: it may have committed.
		case !errors.Is(err, gateway.ErrUnavailable):
			t.Errorf("%s after Close: %v, want the node's unavailable error", workers[w].name, err)
		}
	}
	select {
	case <-watchEnded:
	case <-time.After(30 * time.Second): // a hang, not a speed check
		t.Fatal("the watch stream is still open after Close")
	}
	if _, err := n.Submit(context.Background(), ops[0]); !errors.Is(err, gateway.ErrUnavailable) {
		t.Errorf("Submit after Close: %v, want the node's unavailable error", err)
	}
	client.CloseIdleConnections()
	goleak.VerifyNone(t)
}

// TestOperationsReplayedAtStartAreCounted: entries raft applies right after
// a start (here the whole log, over a state that lost its data) reach the
// state's hook, which is in place before raft runs: the start stands still
// right after raft started until raft has applied the log again.
func TestOperationsReplayedAtStartAreCounted(t *testing.T) {
	cfg := LoopbackConfig(t.TempDir())
	n := mustNewNode(t, cfg)
	gov := mustReadKey(t, filepath.Join(cfg.DataDir, DevGovernanceKey))
	const writes = 3
	for i := range writes {
		if res, err := n.Submit(context.Background(), frameworkOp(t, gov, i)); err != nil || !res.Accepted {
			t.Fatalf("submit %d: %+v, %v", i, res, err)
		}
	}
	applied := n.State.AppliedIndex()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// The raft log holds every entry; the state starts empty and raft
	// applies them all again once the node leads.
	if err := os.RemoveAll(filepath.Join(cfg.DataDir, "state")); err != nil {
		t.Fatal(err)
	}
	n2, err := New(cfg, Options{raftStarted: func(n *Node) {
		waitFor(t, "the log to be applied again", 30*time.Second, func() bool { return n.State.AppliedIndex() >= applied })
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Close() })
	mfs, err := n2.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "trustd_registry_operations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "accepted" {
					got = m.GetCounter().GetValue()
				}
			}
		}
	}
	if got != writes {
		t.Fatalf("trustd_registry_operations_total{result=accepted} = %v after the log was applied again, want %d", got, writes)
	}
}
