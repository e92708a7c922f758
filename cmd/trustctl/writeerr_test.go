package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/record"
)

// errOutClosed is what failingWriter's writes return.
var errOutClosed = errors.New("stdout closed")

// failingWriter refuses every write, like a closed stdout.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errOutClosed }

// TestTextOutputWriteErrorIsReturned: a command whose table output cannot
// be written fails with the write's error instead of reporting success.
func TestTextOutputWriteErrorIsReturned(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		var v any
		switch r.URL.Path {
		case "/admin/v1/cluster":
			v = api.ClusterView{Node: api.RaftStatus{NodeID: "A"}, Members: []api.MemberStatus{{Member: api.Member{ID: "A"}, Reachable: true}}}
		case "/v1/entities/did:example:a":
			v = record.Entity{ID: "did:example:a", Name: "A", Metadata: &record.EntityMetadata{LegalName: "A Ltd"}}
		case "/v1/frameworks/f1":
			v = record.FrameworkView{}
		default:
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}))
	defer srv.Close()
	for _, args := range [][]string{
		{"cluster", "--admin", srv.URL, "status"},
		{"--server", srv.URL, "entity", "show", "did:example:a"},
		{"--server", srv.URL, "framework", "show", "f1"},
	} {
		err := run(context.Background(), args, nil, failingWriter{}, failingWriter{})
		if !errors.Is(err, errOutClosed) {
			t.Errorf("%q: %v, want the write's error", args, err)
		}
	}
}
