package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/node"
)

// TestReadWithoutLeaderHints: a linearizable read that finds no leader
// says how to read the node's own state; a local read, a write and an
// admin call do not get the hint.
func TestReadWithoutLeaderHints(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(gateway.Problem{Type: "urn:trustreg:problem:unavailable", Status: 503, Detail: "no leader or not ready: no leader"})
	}))
	defer srv.Close()
	ctx := context.Background()
	var out, errw bytes.Buffer

	err := run(ctx, []string{"--server", srv.URL, "entity", "show", "did:example:a"}, nil, &out, &errw)
	if err == nil || !strings.Contains(err.Error(), "503 unavailable: no leader or not ready: no leader") || !strings.Contains(err.Error(), unavailableHint) {
		t.Fatalf("linearizable read: %v", err)
	}
	err = run(ctx, []string{"--server", srv.URL, "--consistency", "local", "entity", "show", "did:example:a"}, nil, &out, &errw)
	if err == nil || strings.Contains(err.Error(), unavailableHint) {
		t.Fatalf("local read: %v", err)
	}
	if len(queries) != 2 || queries[0] != "consistency=linearizable" || queries[1] != "consistency=local" {
		t.Fatalf("queries sent: %q", queries)
	}
	err = run(ctx, []string{"--server", srv.URL, "submit", "-"}, strings.NewReader("eyJhbGciOiJFZERTQSJ9.e30.c2ln"), &out, &errw)
	if err == nil || !strings.Contains(err.Error(), "503") || strings.Contains(err.Error(), unavailableHint) {
		t.Fatalf("write: %v", err)
	}
	err = run(ctx, []string{"cluster", "--admin", srv.URL, "status"}, nil, &out, &errw)
	if err == nil || strings.Contains(err.Error(), unavailableHint) {
		t.Fatalf("admin call: %v", err)
	}
}

// TestClusterStatusUnreachable: a member that did not answer shows no
// applied index or lag (they are not known), not zeros.
func TestClusterStatusUnreachable(t *testing.T) {
	view := node.ClusterView{
		Node: consensus.Status{NodeID: "A", State: "Leader", Leader: "A", Term: 3, CommitIndex: 40, AppliedIndex: 38, RaftAppliedIndex: 40},
		Members: []consensus.MemberStatus{
			{Member: consensus.Member{ID: "A", Suffrage: "voter", Leader: true}, Reachable: true, State: "Leader", AppliedIndex: 40},
			{Member: consensus.Member{ID: "B", Suffrage: "voter"}, Reachable: true, State: "Follower", AppliedIndex: 37, Lag: 3},
			{Member: consensus.Member{ID: "C", Suffrage: "nonvoter"}},
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(view)
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"cluster", "--admin", srv.URL, "status"}, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := [][]string{
		{"node", "A", "Leader", "leader", "A", "term", "3", "commit", "40", "applied", "40", "registry", "index", "38"},
		{},
		{"PEER", "SUFFRAGE", "LEADER", "STATE", "APPLIED", "LAG"},
		{"A", "voter", "yes", "Leader", "40", "0"},
		{"B", "voter", "Follower", "37", "3"},
		{"C", "nonvoter", "unreachable", "-", "-"},
	}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s", out.String())
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); !slices.Equal(got, w) {
			t.Errorf("line %d: %q, want %q", i, got, w)
		}
	}
}
