package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/node"
)

// mustNewNode starts a single-node loopback cluster with cfg changed by
// edit, and waits for its leader.
func mustNewNode(t testing.TB, edit func(*configs.Config)) *node.Node {
	t.Helper()
	cfg := node.LoopbackConfig(t.TempDir())
	if edit != nil {
		edit(&cfg)
	}
	n, err := node.New(cfg, node.Options{})
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

// answer is a response's status, headers and body, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) problem(t testing.TB) api.Problem {
	t.Helper()
	var p api.Problem
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with Content-Type %q, want application/problem+json: %s", a.status, ct, a.body)
	}
	if err := json.Unmarshal(a.body, &p); err != nil || p.Status != a.status {
		t.Fatalf("problem %s: %v (status %d)", a.body, err, a.status)
	}
	return p
}

func mustDo(t testing.TB, c *http.Client, req *http.Request) answer {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, body}
}

// TestAdminTokenOnlyAsBearer: the admin token is taken from
// "Authorization: Bearer <token>" alone, with the scheme in any case; a
// bare token in Authorization, another scheme, a header or a query
// parameter of its own are refused with a problem saying how to send it.
func TestAdminTokenOnlyAsBearer(t *testing.T) {
	const token = "s3cret-admin-token"
	n := mustNewNode(t, func(c *configs.Config) { c.Admin.Token = token })
	for _, tc := range []struct {
		name   string
		header map[string]string
		query  string
		want   int
	}{
		{"Bearer", map[string]string{"Authorization": "Bearer " + token}, "", http.StatusOK},
		{"bearer, lower case", map[string]string{"Authorization": "bearer " + token}, "", http.StatusOK},
		{"BEARER, upper case", map[string]string{"Authorization": "BEARER " + token}, "", http.StatusOK},
		{"no token", nil, "", http.StatusUnauthorized},
		{"bare token", map[string]string{"Authorization": token}, "", http.StatusUnauthorized},
		{"another scheme", map[string]string{"Authorization": "Token " + token}, "", http.StatusUnauthorized},
		{"wrong token", map[string]string{"Authorization": "Bearer x" + token}, "", http.StatusUnauthorized},
		{"a header of its own", map[string]string{"X-Admin-Token": token}, "", http.StatusUnauthorized},
		{"a query parameter", nil, "?token=" + token, http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest("GET", n.AdminURL()+"/admin/v1/digest"+tc.query, nil)
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		a := mustDo(t, nil, req)
		if a.status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, a.status, a.body, tc.want)
			continue
		}
		if tc.want == http.StatusUnauthorized {
			if p := tc.name; !strings.Contains(a.problem(t).Detail, "Authorization: Bearer <admin.token>") {
				t.Errorf("%s: the problem does not say how to send the token: %s", p, a.body)
			}
		}
	}
}

// TestAdminSnapshotWithNothingNew: a snapshot asked of a node that has
// applied nothing since it started is answered (unchanged), not 500; one
// asked of a node with state is taken. An empty membership change is a
// 400 saying what to send.
func TestAdminSnapshotWithNothingNew(t *testing.T) {
	// A node that applies nothing: it waits to join a member that is not
	// there (TestTrustOnAFreshNode).
	absent, err := consensus.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	absentID, _ := peer.IDFromPrivateKey(absent)
	cfg := node.LoopbackConfig(t.TempDir())
	cfg.Raft.Join = []string{"/ip4/127.0.0.1/tcp/9/p2p/" + absentID.String()}
	fresh, err := node.New(cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	snapshot := func(n *node.Node) answer {
		req, _ := http.NewRequest("POST", n.AdminURL()+"/admin/v1/snapshot", nil)
		return mustDo(t, nil, req)
	}
	var got struct{ Snapshot, Detail string }
	if a := snapshot(fresh); a.status != http.StatusOK || json.Unmarshal(a.body, &got) != nil || got.Snapshot != "unchanged" || got.Detail == "" {
		t.Fatalf("snapshot of a node that applied nothing: %d %s", a.status, a.body)
	}
	// An empty membership change is a 400 saying what to send.
	req, _ := http.NewRequest("POST", fresh.AdminURL()+"/admin/v1/cluster/add-voter", nil)
	if a := mustDo(t, nil, req); a.status != http.StatusBadRequest || !strings.Contains(a.problem(t).Detail, "needs an id or addr") {
		t.Fatalf("an empty membership change: %d %s", a.status, a.body)
	}
	e := mustNewEnv(t)
	e.chain()
	if a := snapshot(e.n); a.status != http.StatusOK || json.Unmarshal(a.body, &got) != nil || got.Snapshot != "taken" {
		t.Fatalf("snapshot of a node with state: %d %s", a.status, a.body)
	}
}

// TestAdminOversizedBodyIs413: a membership change whose body is over the
// admin API's bound (64 KiB) is a 413 too_large problem, as an oversized
// body on the public API is, and changes neither the members nor the
// state; a body at the bound is read. It was a 400 that read as a
// malformed request.
func TestAdminOversizedBodyIs413(t *testing.T) {
	const bound = 64 << 10 // adminMaxBodyBytes
	e := mustNewEnv(t)
	e.chain()
	absent, err := consensus.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	absentID, _ := peer.IDFromPrivateKey(absent)
	members := func() []api.Member {
		req, _ := http.NewRequest("GET", e.n.AdminURL()+"/admin/v1/cluster", nil)
		a := mustDo(t, nil, req)
		var v api.ClusterView
		if a.status != http.StatusOK || json.Unmarshal(a.body, &v) != nil {
			t.Fatalf("members: %d %s", a.status, a.body)
		}
		var ms []api.Member
		for _, m := range v.Members {
			ms = append(ms, m.Member)
		}
		return ms
	}
	padded := func(body string, size int) string { return body + strings.Repeat(" ", size-len(body)) }
	change := func(body string) answer {
		req, _ := http.NewRequest("POST", e.n.AdminURL()+"/admin/v1/cluster/add-voter", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return mustDo(t, nil, req)
	}
	beforeMembers, beforeDigest := members(), mustDigest(t, e)

	// A well-formed change, were it read, would make an absent peer a voter.
	a := change(padded(`{"addr": "/ip4/127.0.0.1/tcp/9/p2p/`+absentID.String()+`"}`, bound+1))
	if p := a.problem(t); a.status != http.StatusRequestEntityTooLarge || p.Type != "urn:trustreg:problem:too_large" ||
		p.Detail != fmt.Sprintf("request body too large: body over %d bytes", bound) || p.Instance == "" {
		t.Fatalf("a body of %d bytes: %d %s", bound+1, a.status, a.body)
	}
	if a := change(padded(`{"id": ""}`, bound)); a.status != http.StatusBadRequest || !strings.Contains(a.problem(t).Detail, "add-voter needs an id or addr") {
		t.Fatalf("a body of %d bytes: %d %s", bound, a.status, a.body)
	}
	if after := members(); !slices.Equal(after, beforeMembers) {
		t.Fatalf("members %+v, were %+v", after, beforeMembers)
	}
	if after := mustDigest(t, e); after != beforeDigest {
		t.Fatalf("state digest %s, was %s", after, beforeDigest)
	}
}

// mustDigest is the node's state digest.
func mustDigest(t testing.TB, e *env) string {
	t.Helper()
	d, err := e.n.State.StateDigest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestUnservedMethodsAndPaths: a path served under other methods answers
// 405 with Allow, and a path nothing serves 404, both as problem
// documents, on the gateway and the admin API alike.
func TestUnservedMethodsAndPaths(t *testing.T) {
	e := mustNewEnv(t)
	gw, admin := e.n.GatewayURL(), e.n.AdminURL()
	for _, tc := range []struct {
		method, url string
		status      int
		allow       string
	}{
		{"DELETE", gw + "/v1/operations", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{"PUT", gw + "/v1/trust", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{"POST", gw + "/healthz", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"POST", gw + "/v1/entities/did:web:college.example", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"GET", gw + "/authorization", http.StatusMethodNotAllowed, "POST"},
		{"OPTIONS", gw + "/v1/status", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"GET", gw + "/v1/nothing-here", http.StatusNotFound, ""},
		{"POST", gw + "/v1/nothing-here", http.StatusNotFound, ""},
		{"GET", admin + "/admin/v1/snapshot", http.StatusMethodNotAllowed, "POST"},
		{"DELETE", admin + "/admin/v1/cluster", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"GET", admin + "/admin/v1/cluster/promote", http.StatusMethodNotAllowed, "POST"},
		{"GET", admin + "/admin/v1/nothing-here", http.StatusNotFound, ""},
	} {
		req, _ := http.NewRequest(tc.method, tc.url, nil)
		a := mustDo(t, nil, req)
		if a.status != tc.status || a.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d, Allow %q; want %d, Allow %q", tc.method, tc.url, a.status, a.header.Get("Allow"), tc.status, tc.allow)
			continue
		}
		if p := a.problem(t); tc.allow != "" && !strings.Contains(p.Detail, tc.allow) {
			t.Errorf("%s %s: the problem does not name the methods: %q", tc.method, tc.url, p.Detail)
		}
	}
	// A gateway without metrics answers /metrics 404 as a problem too.
	g, err := gateway.New(gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
	if a := mustDo(t, nil, req); a.status != http.StatusNotFound {
		t.Errorf("/metrics without metrics: %d %s", a.status, a.body)
	} else {
		a.problem(t)
	}
}

// TestProfilerErrorsAreProblems: the admin API's profiler (net/http/pprof)
// answers its errors in plain text; they reach the client as problem
// documents with that text as the detail.
func TestProfilerErrorsAreProblems(t *testing.T) {
	n := mustNewNode(t, nil)
	for _, tc := range []struct {
		path   string
		status int
		detail string
	}{
		{"/debug/pprof/no-such-profile", http.StatusNotFound, "Unknown profile"},
		{"/debug/pprof/heap?seconds=none", http.StatusBadRequest, `invalid value for "seconds"`},
	} {
		req, _ := http.NewRequest("GET", n.AdminURL()+tc.path, nil)
		a := mustDo(t, nil, req)
		if a.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.path, a.status, a.body, tc.status)
			continue
		}
		if p := a.problem(t); !strings.Contains(p.Detail, tc.detail) {
			t.Errorf("%s: detail %q, want it to say %q", tc.path, p.Detail, tc.detail)
		}
	}
	req, _ := http.NewRequest("GET", n.AdminURL()+"/debug/pprof/goroutine?debug=1", nil)
	if a := mustDo(t, nil, req); a.status != http.StatusOK || !strings.Contains(string(a.body), "goroutine profile") {
		t.Fatalf("a profile: %d %.200s", a.status, a.body)
	}
}
