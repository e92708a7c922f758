package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/registry/proof/prooftest"
	"github.com/trustreg/trustreg/registry/record"
)

// TestGenesisChecksTheConsortium: --genesis (a file or a CID) refuses a
// node of another consortium with exit code 1, and --verbose names the
// node's consortium.
func TestGenesisChecksTheConsortium(t *testing.T) {
	genesis := prooftest.New(t, prooftest.Options{}).Genesis
	ours := record.CIDOf(genesis)
	file := filepath.Join(t.TempDir(), "genesis.json")
	if err := os.WriteFile(file, genesis, 0o644); err != nil {
		t.Fatal(err)
	}
	var listed bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/status":
			_, _ = w.Write([]byte(`{"node_id":"12D3KooWnode","genesis":"` + ours + `"}`))
		default:
			listed = true
			_, _ = w.Write([]byte(`{"items":[]}`))
		}
	}))
	defer srv.Close()
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	for _, g := range []string{file, ours} {
		var out, errw bytes.Buffer
		err := run(context.Background(), []string{"--server", hostPort, "--genesis", g, "--verbose", "framework", "list"}, nil, &out, &errw)
		if err != nil || !strings.Contains(errw.String(), "genesis "+ours) || !strings.Contains(errw.String(), "12D3KooWnode") {
			t.Fatalf("--genesis %s: %v\n%s", g, err, errw.String())
		}
	}
	listed = false
	other := record.CIDOf([]byte(`{"consortium":"theirs"}`))
	var out, errw bytes.Buffer
	err := run(context.Background(), []string{"--server", hostPort, "--genesis", other, "framework", "list"}, nil, &out, &errw)
	if !errors.Is(err, errOtherConsortium) || exitCode(err) != exitError {
		t.Fatalf("another consortium: %v (exit %d), want errOtherConsortium, exit %d", err, exitCode(err), exitError)
	}
	if listed {
		t.Fatal("trustctl sent its request to a node of another consortium")
	}
	if err := run(context.Background(), []string{"--genesis", "not-a-cid", "framework", "list"}, nil, &out, &errw); exitCode(err) != exitUsage {
		t.Fatalf("--genesis not-a-cid: %v, want a usage error", err)
	}
	// A file that is no genesis (a proof bundle, say) is a usage error,
	// not a node of another consortium.
	notGenesis := filepath.Join(t.TempDir(), "answer.json")
	if err := os.WriteFile(notGenesis, []byte(`{"entity":"did:web:a.example","authorized":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	listed = false
	if err := run(context.Background(), []string{"--server", hostPort, "--genesis", notGenesis, "framework", "list"}, nil, &out, &errw); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "is not a consortium genesis") || listed {
		t.Fatalf("--genesis naming a file that is no genesis: %v (listed %v), want a usage error", err, listed)
	}
	if err := run(context.Background(), []string{"--server", "ftp://x", "framework", "list"}, nil, &out, &errw); exitCode(err) != exitUsage {
		t.Fatalf("--server ftp://x: %v, want a usage error", err)
	}
}
