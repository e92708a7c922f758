package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/gateway"
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
