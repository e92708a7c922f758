package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/node"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

const (
	fw    = "https://example.org/frameworks/nursing"
	nurse = "https://example.org/credentials/RegisteredNurse"
	law   = "https://example.org/credentials/Law"
)

// env is a real single-node cluster (libp2p, raft, Pebble) and a client of
// its gateway over real HTTP.
type env struct {
	t       testing.TB
	n       *node.Node
	c       *client.Client
	gov     *record.Signer
	root    *record.Signer
	qa      *record.Signer
	college *record.Signer
	qaAcc   string
	colAcc  string
}

func mustNewEnv(t testing.TB) *env {
	t.Helper()
	cfg := node.LoopbackConfig(t.TempDir())
	cfg.HTTP.MaxWait = 500 * time.Millisecond
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
	// The leader's raise of the feature level is an entry of its own;
	// tests that count indexes start after it.
	if err := n.State.WaitFeatureLevel(ctx, registry.FeatureLevel); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, n: n, c: client.New(n.GatewayURL())}
	e.gov = mustLoad(t, cfg.DataDir+"/"+node.DevGovernanceKey)
	e.root = mustLoad(t, cfg.DataDir+"/"+node.DevRootAccreditorKey)
	e.qa, _ = record.GenerateKey(record.KeyEd25519)
	e.college, _ = record.GenerateKey(record.KeyP256)
	return e
}

func mustLoad(t testing.TB, path string) *record.Signer {
	t.Helper()
	s, err := record.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) payload(op string, fields map[string]any) []byte {
	return gateway.OpPayload(e.t, time.Now(), op, fields)
}

func (e *env) sign(s *record.Signer, op string, fields map[string]any) []byte {
	return gateway.SignOp(e.t, s, time.Now(), op, fields)
}

func (e *env) govSign(op string, fields map[string]any) []byte {
	return gateway.GovSignOp(e.t, []*record.Signer{e.gov}, time.Now(), op, fields)
}

func (e *env) mustSubmit(jws []byte) *record.Result {
	e.t.Helper()
	res, err := e.c.Submit(context.Background(), jws)
	if err != nil {
		e.t.Fatalf("submit: %v", err)
	}
	return res
}

// chain builds framework -> QA agency (accredit) -> college (issue).
func (e *env) chain() {
	e.mustSubmit(e.govSign(record.OpCreateFramework, map[string]any{"id": fw, "name": "Nursing", "roots": []string{e.root.DID}}))
	e.qaAcc = e.mustSubmit(e.sign(e.root, record.OpAccredit, map[string]any{"framework": fw, "accreditor": e.root.DID, "subject": e.qa.DID,
		"action": "accredit", "resources": []string{nurse}, "validFrom": "2020-01-01T00:00:00Z"})).ID
	e.colAcc = e.mustSubmit(e.sign(e.qa, record.OpAccredit, map[string]any{"framework": fw, "accreditor": e.qa.DID, "subject": e.college.DID,
		"action": "issue", "resources": []string{nurse}, "parent": e.qaAcc, "validFrom": "2022-09-01T00:00:00Z"})).ID
}

func (e *env) get(path string) (*http.Response, []byte) {
	e.t.Helper()
	resp, err := http.Get(e.n.GatewayURL() + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func (e *env) trust(extra string) *record.Decision {
	e.t.Helper()
	q := url.Values{"entity": {e.college.DID}, "framework": {fw}, "resource": {nurse}}
	resp, body := e.get("/v1/trust?" + q.Encode() + extra)
	if resp.StatusCode != 200 {
		e.t.Fatalf("trust: %d %s", resp.StatusCode, body)
	}
	var d record.Decision
	if err := json.Unmarshal(body, &d); err != nil {
		e.t.Fatal(err)
	}
	return &d
}

// TestTrustOnAFreshNode asks a node that has applied nothing yet, as a
// user does first after starting one: the answers are given (unknown
// framework), not dropped. The answer cache once panicked at index 0.
func TestTrustOnAFreshNode(t *testing.T) {
	// A node that has applied nothing: it waits to join a member that is
	// not there, so no entry ever reaches it (a new cluster's leader
	// raises the feature level at once, so a bootstrapped node would not
	// stay at index 0).
	dir := t.TempDir()
	absent, err := consensus.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	absentID, _ := peer.IDFromPrivateKey(absent)
	cfg := node.LoopbackConfig(dir)
	cfg.Raft.Join = []string{"/ip4/127.0.0.1/tcp/9/p2p/" + absentID.String()}
	n, err := node.New(cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if got := n.State.AppliedIndex(); got != 0 {
		t.Fatalf("a new node has applied index %d; this test needs 0", got)
	}
	q := url.Values{"entity": {"did:web:college.example"}, "framework": {fw}, "action": {"issue"}}
	for i := range 3 { // the later ones from the answer cache
		resp, err := http.Get(n.GatewayURL() + "/v1/trust?" + q.Encode())
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		var d record.Decision
		err = json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil || d.Authorized || d.Reason != record.ReasonUnknownFramework {
			t.Fatalf("query %d: status %d, %+v, %v", i, resp.StatusCode, d, err)
		}
	}
}

func TestTrustDecisionsOverHTTP(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	if d := e.trust(""); !d.Authorized || d.Reason != "active" || len(d.Chain) != 2 || d.Chain[0].Accreditation != e.colAcc {
		t.Fatalf("now: %+v", d)
	}
	before := e.n.State.AppliedIndex()
	rev := e.mustSubmit(e.sign(e.root, record.OpRevoke, map[string]any{"accreditation": e.qaAcc, "reason": "withdrawn"}))
	if d := e.trust(""); d.Authorized || d.Reason != "chain_broken" {
		t.Fatalf("after revoking the QA agency: %v %s", d.Authorized, d.Reason)
	}
	if d := e.trust("&at=2024-06-01"); !d.Authorized {
		t.Fatalf("in 2024: %s", d.Reason)
	}
	if d := e.trust("&as_of=" + itoa(before)); !d.Authorized || d.Index != before {
		t.Fatalf("as_of %d: %v %s index %d", before, d.Authorized, d.Reason, d.Index)
	}
	// A pinned question is cacheable forever; answers carry the index and an ETag.
	q := url.Values{"entity": {e.college.DID}, "framework": {fw}, "resource": {nurse}, "at": {"2024-06-01"}, "as_of": {itoa(rev.Index)}}
	resp, _ := e.get("/v1/trust?" + q.Encode())
	if !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || resp.Header.Get("ETag") == "" || resp.Header.Get(gateway.IndexHeader) == "" {
		t.Fatalf("headers = %v", resp.Header)
	}
	req, _ := http.NewRequest("GET", e.n.GatewayURL()+"/v1/trust?"+q.Encode(), nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	if r2, err := http.DefaultClient.Do(req); err != nil || r2.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET: %v %v, want 304", r2.StatusCode, err)
	}
	// Unknown entities get the same shape as unauthorized ones.
	q = url.Values{"entity": {"did:web:nobody.example"}, "framework": {fw}, "resource": {nurse}}
	resp, body := e.get("/v1/trust?" + q.Encode())
	var d record.Decision
	if err := json.Unmarshal(body, &d); resp.StatusCode != 200 || err != nil || d.Authorized || d.Reason != "never_authorized" || d.Chain == nil {
		t.Fatalf("unknown entity: %d %s", resp.StatusCode, body)
	}
	// Batch.
	var batch []record.Decision
	err := e.c.Post(context.Background(), "/v1/trust", []map[string]any{
		{"entity": e.college.DID, "framework": fw, "resource": nurse, "at": "2024-06-01"},
		{"entity": e.college.DID, "framework": fw, "resource": nurse},
		{"entity": e.qa.DID, "framework": fw, "action": "accredit", "resource": nurse, "at": "2021-01-01"},
	}, &batch)
	if err != nil || len(batch) != 3 || !batch[0].Authorized || batch[1].Authorized || !batch[2].Authorized {
		t.Fatalf("batch: %+v, %v", batch, err)
	}
	// A bad question is named by its place in the batch, after what is wrong.
	err = e.c.Post(context.Background(), "/v1/trust", []map[string]any{
		{"entity": e.college.DID, "framework": fw},
		{"entity": e.college.DID, "framework": fw, "at": "yesterday"},
	}, &batch)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Problem.Status != http.StatusBadRequest || !strings.HasPrefix(ae.Problem.Detail, "bad ") ||
		!strings.HasSuffix(ae.Problem.Detail, "(question 1 of the batch, counting from 0)") || strings.Contains(ae.Problem.Detail, "registry:") {
		t.Fatalf("batch with a bad question: %v", err)
	}
}

func itoa(i uint64) string { return strconv.FormatUint(i, 10) }

func TestBadWritesGetClearErrorsAndChangeNothing(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	stranger, _ := record.GenerateKey(record.KeyEd25519)
	fromQA := func(fields map[string]any) []byte {
		m := map[string]any{"framework": fw, "accreditor": e.qa.DID, "subject": stranger.DID, "action": "issue", "resources": []string{nurse}, "parent": e.qaAcc}
		for k, v := range fields {
			m[k] = v
		}
		return e.sign(e.qa, record.OpAccredit, m)
	}
	tampered := fromQA(nil)
	// Swap one signature character for another base64url letter: still a
	// well-formed JWS, different signature bytes.
	if i := len(tampered) - 5; tampered[i] == 'A' {
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	}
	old := map[string]any{"op": record.OpSuspend, "iat": time.Now().Add(-time.Hour).Unix(), "accreditation": e.colAcc}
	oldRaw, _ := json.Marshal(old)
	stale, _ := e.qa.SignCompact(oldRaw)
	webKey, _ := record.GenerateKey(record.KeyEd25519)
	unknown, _ := webKey.WithKID("did:web:unknown.example#k1")
	// A key with an extra member holding a number beyond a float64's range.
	numbersKey, _ := webKey.WithKID("did:web:numbers.example#k1")
	jwk, _ := numbersKey.PublicJWK()
	bigJWK := json.RawMessage(strings.TrimSuffix(string(jwk), "}") + `,"size":1e400}`)

	cases := []struct {
		name        string
		body        []byte
		contentType string
		status      int
		problem     string
	}{
		{"not a JWS", []byte("hello"), "application/jose", 400, "malformed"},
		{"empty body", nil, "application/jose", 400, "malformed"},
		{"unknown payload field", fromQA(map[string]any{"extra": 1}), "application/jose", 400, "malformed"},
		{"a number beyond a float64's range", e.sign(e.qa, record.OpRegisterEntity, map[string]any{"id": "did:web:numbers.example", "name": "N", "keys": []any{bigJWK}}), "application/jose", 400, "malformed"},
		{"oversized", bytes.Repeat([]byte("a"), record.MaxOperationSize+10), "application/jose", 413, "too_large"},
		{"wrong media type", fromQA(nil), "application/xml", 415, "unsupported_media_type"},
		{"bad signature", tampered, "application/jose", 401, "bad_signature"},
		{"unknown key", e.sign(unknown, record.OpSuspend, map[string]any{"accreditation": e.colAcc}), "application/jose", 401, "unknown_key"},
		{"signer without authority", e.sign(stranger, record.OpRevoke, map[string]any{"accreditation": e.colAcc}), "application/jose", 403, "not_authorized"},
		{"scope escalation", fromQA(map[string]any{"resources": []string{law}}), "application/jose", 403, "scope_exceeded"},
		{"conflict", e.sign(e.qa, record.OpReinstate, map[string]any{"accreditation": e.colAcc}), "application/jose", 409, "conflict"},
		{"iat outside the window", stale, "application/jose", 422, "iat_out_of_window"},
		{"semantically invalid", fromQA(map[string]any{"framework": "https://example.org/nope"}), "application/jose", 422, "invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := e.n.State.StateDigest()
			resp, err := http.Post(e.n.GatewayURL()+"/v1/operations", tc.contentType, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p api.Problem
			if err := json.Unmarshal(body, &p); err != nil || p.Type != "urn:trustreg:problem:"+tc.problem || p.Detail == "" || p.Status != tc.status {
				t.Fatalf("problem = %s, want type %s", body, tc.problem)
			}
			if after, _ := e.n.State.StateDigest(); after != before {
				t.Fatal("state digest changed")
			}
		})
	}
	// A resubmitted operation answers 200 with the original result.
	op := e.sign(e.qa, record.OpSuspend, map[string]any{"accreditation": e.colAcc})
	first := e.mustSubmit(op)
	resp, err := http.Post(e.n.GatewayURL()+"/v1/operations", "application/jose", bytes.NewReader(op))
	if err != nil {
		t.Fatal(err)
	}
	var again record.Result
	json.NewDecoder(resp.Body).Decode(&again)
	resp.Body.Close()
	if resp.StatusCode != 200 || !again.Duplicate || again.Index != first.Index {
		t.Fatalf("resubmission: %d %+v, want 200 duplicate of %d", resp.StatusCode, again, first.Index)
	}
}

func TestRecordsAndDIDPaths(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	const web = "did:web:college.example%3A8443:campus"
	k, _ := record.GenerateKey(record.KeyEd25519)
	ws, _ := k.WithKID(web + "#key-1")
	jwk, _ := ws.PublicJWK()
	e.mustSubmit(e.sign(e.qa, record.OpRegisterEntity, map[string]any{"id": web, "name": "Web College", "keys": []any{jwk}}))
	for _, path := range []string{"/v1/entities/" + url.PathEscape(web), "/v1/entities/" + web} {
		resp, body := e.get(path)
		var ent record.Entity
		if json.Unmarshal(body, &ent); resp.StatusCode != 200 || ent.ID != web {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	resp, _ := e.get("/v1/entities/" + url.PathEscape("did:web:nobody.example"))
	if resp.StatusCode != 404 {
		t.Fatalf("unknown entity: %d", resp.StatusCode)
	}
	var view record.FrameworkView
	if err := e.c.Get(context.Background(), "/v1/frameworks/"+url.PathEscape(fw), nil, &view); err != nil || view.ID != fw || len(view.Roots) != 1 {
		t.Fatalf("framework: %+v %v", view, err)
	}
	var acc record.AccreditationView
	if err := e.c.Get(context.Background(), "/v1/accreditations/"+e.colAcc, nil, &acc); err != nil || acc.Status != "active" {
		t.Fatalf("accreditation: %+v %v", acc, err)
	}
	// The exact signed operation is served byte for byte and verifies.
	op, err := record.ParseOperation([]byte(acc.Operation))
	if err != nil || record.CIDOf([]byte(acc.Operation)) != e.colAcc || op.Op != record.OpAccredit {
		t.Fatalf("stored operation does not match its CID: %v", err)
	}
	var list struct {
		Items []record.AccreditationView `json:"items"`
		Next  string                     `json:"next"`
	}
	if err := e.c.Get(context.Background(), "/v1/accreditations", url.Values{"framework": {fw}, "limit": {"1"}}, &list); err != nil || len(list.Items) != 1 || list.Next == "" {
		t.Fatalf("page 1: %+v %v", list, err)
	}
	resp, body := e.get(list.Next)
	var page2 struct {
		Items []record.AccreditationView `json:"items"`
		Next  string                     `json:"next"`
	}
	if json.Unmarshal(body, &page2); resp.StatusCode != 200 || len(page2.Items) != 1 || page2.Items[0].ID == list.Items[0].ID || page2.Next != "" {
		t.Fatalf("page 2: %s", body)
	}
	var hist struct {
		Items []record.OperationView `json:"items"`
	}
	if err := e.c.Get(context.Background(), "/v1/entities/"+url.PathEscape(e.qa.DID)+"/history", nil, &hist); err != nil || len(hist.Items) != 3 {
		t.Fatalf("QA history: %d items, %v", len(hist.Items), err)
	}
	var opv record.OperationView
	if err := e.c.Get(context.Background(), "/v1/operations/"+e.colAcc, nil, &opv); err != nil || opv.CID != e.colAcc || !opv.Result.Accepted {
		t.Fatalf("operation by CID: %+v %v", opv, err)
	}
	if err := e.c.Get(context.Background(), "/v1/operations/"+itoa(opv.Index), nil, &opv); err != nil || opv.CID != e.colAcc {
		t.Fatalf("operation by index: %+v %v", opv, err)
	}
	var feed struct {
		Items []record.OperationView `json:"items"`
	}
	if err := e.c.Get(context.Background(), "/v1/operations", url.Values{"since": {itoa(opv.Index - 1)}}, &feed); err != nil || len(feed.Items) == 0 || feed.Items[0].Index != opv.Index {
		t.Fatalf("change feed: %+v %v", feed, err)
	}
	// Paged one at a time, the feed's next links keep the limit and the
	// consistency, and walk every operation in order.
	var walked []uint64
	next := "/v1/operations?" + url.Values{"since": {"0"}, "limit": {"1"}, "consistency": {"linearizable"}}.Encode()
	for range 100 {
		var page struct {
			Items []record.OperationView `json:"items"`
			Next  string                 `json:"next"`
		}
		if err := e.c.Get(context.Background(), next, nil, &page); err != nil || len(page.Items) > 1 {
			t.Fatalf("feed page %s: %d items, %v", next, len(page.Items), err)
		}
		for _, it := range page.Items {
			walked = append(walked, it.Index)
		}
		if page.Next == "" {
			break
		}
		if nq, _ := url.ParseQuery(page.Next[strings.IndexByte(page.Next, '?')+1:]); nq.Get("limit") != "1" || nq.Get("consistency") != "linearizable" {
			t.Fatalf("next link %s dropped the request's parameters", page.Next)
		}
		next = page.Next
	}
	if len(walked) < 4 || !slices.IsSorted(walked) || walked[len(walked)-1] != e.n.State.AppliedIndex() {
		t.Fatalf("the feed walked %v, applied %d", walked, e.n.State.AppliedIndex())
	}
}

func TestReadConsistencyAndOperationalEndpoints(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	applied := e.n.State.AppliedIndex()
	for path, want := range map[string]int{
		"/v1/frameworks?min_index=" + itoa(applied):     200,
		"/v1/frameworks?min_index=" + itoa(applied+100): 503,
		"/v1/frameworks?consistency=linearizable":       200,
		"/v1/frameworks?consistency=eventual":           400,
		"/v1/frameworks?limit=0":                        400,
		"/v1/frameworks?colour=blue":                    400,
		"/v1/trust?entity=a":                            400,
		"/v1/trust?entity=a&framework=b&at=yesterday":   400,
		"/v1/trust?entity=a&framework=b&framwork=c":     400,
		"/v1/trust?entity=a&framework=b&action=teach":   400,
		"/v1/status":    200,
		"/healthz":      200,
		"/readyz":       200,
		"/openapi.json": 200,
		"/v1/nothing":   404,
	} {
		resp, body := e.get(path)
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d: %s", path, resp.StatusCode, want, body)
		}
		if want == 503 && resp.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s: 503 without Retry-After", path)
		}
	}
	_, body := e.get("/metrics")
	for _, m := range []string{"trustd_registry_applied_index", "trustd_http_requests_total", "trustd_registry_operations_total", "trustd_raft_leader 1"} {
		if !bytes.Contains(body, []byte(m)) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	var st struct {
		Leader       string `json:"leader"`
		AppliedIndex uint64 `json:"applied_index"`
		Genesis      string `json:"genesis"`
	}
	if err := e.c.Get(context.Background(), "/v1/status", nil, &st); err != nil || st.Leader == "" || st.AppliedIndex < applied || st.Genesis == "" {
		t.Fatalf("status %+v %v", st, err)
	}
}

// publishList signs a status-list version as the college and submits it.
func (e *env) publishList(list, previous string, bits []byte) (*record.Result, string, error) {
	vc, err := record.StatusListCredential(e.college.DID, list, []string{"revocation"}, 1, nil, 60000, bits)
	if err != nil {
		e.t.Fatal(err)
	}
	jwt, err := e.college.SignVCJWT(vc)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.c.Submit(context.Background(), e.sign(e.college, record.OpPublishStatusList, map[string]any{"list": list, "previous": previous, "credential": string(jwt)}))
	return res, string(jwt), err
}

func TestStatusListsOverHTTP(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	bits := make([]byte, record.MinStatusListEntries/8)
	first, jwt1, err := e.publishList("1", "", bits)
	if err != nil {
		t.Fatal(err)
	}
	base := "/v1/status-lists/" + url.PathEscape(e.college.DID) + "/1"
	// The registry's record of the version is at /record; the list's URL
	// serves the credential itself (statuslist_test.go).
	var doc api.StatusListDocument
	resp, body := e.get(base + "/record")
	if err := json.Unmarshal(body, &doc); resp.StatusCode != 200 || err != nil || doc.JWT != jwt1 || doc.Entries != record.MinStatusListEntries || doc.MediaType != "application/vc+jwt" {
		t.Fatalf("list record: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("ETag") != `"`+doc.CID+`"` || resp.Header.Get("Cache-Control") != "public, max-age=60" {
		t.Fatalf("headers %v", resp.Header)
	}
	// The exact signed bytes, for the verifier to check the issuer's signature.
	req, _ := http.NewRequest("GET", e.n.GatewayURL()+base, nil)
	req.Header.Set("Accept", "application/vc+jwt")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if string(raw) != jwt1 || r2.Header.Get("Content-Type") != "application/vc+jwt" {
		t.Fatalf("vc+jwt: %q %s", r2.Header.Get("Content-Type"), raw)
	}
	// Each representation has its own tag, and each revalidates (also
	// with the weak form a compressing proxy sends) to a 304.
	if r2.Header.Get("ETag") != `"`+doc.CID+`.vc+jwt"` {
		t.Fatalf("vc+jwt ETag %s, JSON's %s", r2.Header.Get("ETag"), resp.Header.Get("ETag"))
	}
	for _, tc := range []struct{ path, accept, inm string }{
		{"/record", "application/json", resp.Header.Get("ETag")},
		{"/record", "application/json", "W/" + resp.Header.Get("ETag")},
		{"", "application/vc+jwt", `"other", W/` + r2.Header.Get("ETag")},
	} {
		req, _ := http.NewRequest("GET", e.n.GatewayURL()+base+tc.path, nil)
		req.Header.Set("Accept", tc.accept)
		req.Header.Set("If-None-Match", tc.inm)
		r3, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r3.Body.Close()
		if r3.StatusCode != http.StatusNotModified {
			t.Fatalf("Accept %s, If-None-Match %s: %d, want 304", tc.accept, tc.inm, r3.StatusCode)
		}
	}
	// The record's tag does not revalidate the VC-JWT.
	req, _ = http.NewRequest("GET", e.n.GatewayURL()+base, nil)
	req.Header.Set("Accept", "application/vc+jwt")
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	if r3, err := http.DefaultClient.Do(req); err != nil || r3.StatusCode != http.StatusOK {
		t.Fatalf("VC-JWT revalidated with the JSON's tag: %v %v", r3.StatusCode, err)
	} else {
		r3.Body.Close()
	}
	revoked := bytes.Clone(bits)
	record.SetStatus(revoked, 42, 1, 1)
	if _, _, err := e.publishList("1", doc.CID, revoked); err != nil {
		t.Fatal(err)
	}
	// A writer racing on the old version gets 409.
	if _, _, err := e.publishList("1", doc.CID, revoked); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("stale previous: %v", err)
	}
	var entry record.EntryStatus
	if err := e.c.Get(context.Background(), base+"/entries/42", nil, &entry); err != nil || entry.Status != 1 || entry.Valid || entry.Checked == "" {
		t.Fatalf("entry 42: %+v %v", entry, err)
	}
	at := url.Values{"timestamp": {first.Time.Format(time.RFC3339Nano)}}
	if err := e.c.Get(context.Background(), base+"/entries/42", at, &entry); err != nil || entry.Status != 0 {
		t.Fatalf("entry 42 at the first version: %+v %v", entry, err)
	}
	for path, want := range map[string]string{
		base + "/entries/131072":                                 "RANGE_ERROR",
		base + "?timestamp=2001-01-01T00:00:00Z":                 "STATUS_RETRIEVAL_ERROR",
		"/v1/status-lists/" + url.PathEscape(e.qa.DID) + "/none": "STATUS_RETRIEVAL_ERROR",
		base + "?timestamp=yesterday":                            "MALFORMED_VALUE_ERROR",
		base + "/entries/x1":                                     "MALFORMED_VALUE_ERROR",
		base + "/entries/-1":                                     "MALFORMED_VALUE_ERROR",
		base + "/entries/42?statusPurpose=suspension":            "STATUS_VERIFICATION_ERROR",
	} {
		resp, body := e.get(path)
		var p api.Problem
		if json.Unmarshal(body, &p); p.Type != "https://www.w3.org/ns/credentials/status-list#"+want {
			t.Errorf("GET %s: %d %s, want %s", path, resp.StatusCode, body, want)
		}
	}
	var lists struct {
		Items []record.StatusList `json:"items"`
	}
	if err := e.c.Get(context.Background(), "/v1/status-lists", url.Values{"issuer": {e.college.DID}}, &lists); err != nil || len(lists.Items) != 1 || lists.Items[0].Versions != 2 {
		t.Fatalf("lists: %+v %v", lists, err)
	}
	var versions struct {
		Items []record.StatusListVersion `json:"items"`
	}
	if err := e.c.Get(context.Background(), base+"/versions", nil, &versions); err != nil || len(versions.Items) != 2 || versions.Items[1].Previous != doc.CID {
		t.Fatalf("versions: %+v %v", versions, err)
	}
	// The history names versions without their credentials: no empty
	// "credential" for a client to take for the list's bytes.
	var history json.RawMessage
	if err := e.c.Get(context.Background(), base+"/versions", nil, &history); err != nil || bytes.Contains(history, []byte(`"credential"`)) {
		t.Fatalf("versions: %s %v", history, err)
	}
	// A list shorter than the minimum is refused with the W3C type.
	_, _, err = e.publishList("short", "", make([]byte, 1024))
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Problem.Type != "https://www.w3.org/ns/credentials/status-list#STATUS_LIST_LENGTH_ERROR" || ae.Problem.Status != 422 {
		t.Fatalf("short list: %v", err)
	}
}

// countingNode counts the read barriers the gateway asks its node for.
type countingNode struct {
	*node.Node
	readIndex atomic.Int64
}

func (c *countingNode) ReadIndex(ctx context.Context) (uint64, error) {
	c.readIndex.Add(1)
	return c.Node.ReadIndex(ctx)
}

// Trust answers are cached by query string; a read that asks for
// linearizability, however its parameter is spelled, must pass the read
// barrier every time and never be answered from that cache.
func TestLinearizableTrustReadsAreNotServedFromCache(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	cn := &countingNode{Node: e.n}
	g, err := gateway.New(gateway.Config{Registry: e.n.State, Writer: e.n, Node: cn})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	q := url.Values{"entity": {e.college.DID}, "framework": {fw}, "resource": {nurse}}.Encode()
	get := func(raw string) *record.Decision {
		t.Helper()
		resp, err := http.Get(srv.URL + "/v1/trust?" + raw)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var d record.Decision
		if resp.StatusCode != 200 || json.Unmarshal(body, &d) != nil || !d.Authorized {
			t.Fatalf("%s: status %d, %s", raw, resp.StatusCode, body)
		}
		// Cached or not, the answer goes out with its length, not chunked.
		if resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) > 0 {
			t.Fatalf("%s: Content-Length %d, Transfer-Encoding %v for %d bytes", raw, resp.ContentLength, resp.TransferEncoding, len(body))
		}
		return &d
	}
	for _, raw := range []string{q + "&consistency=linearizable", q + "&consistenc%79=linearizable", "consistency=linearizable&" + q} {
		before := cn.readIndex.Load()
		for range 3 {
			get(raw)
		}
		if n := cn.readIndex.Load() - before; n != 3 {
			t.Errorf("%s: %d read barriers for 3 linearizable reads", raw, n)
		}
	}
	// Plain local reads of the same question are cached and still right.
	for range 3 {
		get(q)
		get(q + "&consistency=local")
	}
	if n := cn.readIndex.Load(); n != 9 {
		t.Errorf("local reads asked for read barriers: %d in all, want 9", n)
	}
}

// TestTrustAnswerGivenAgainInALaterSecond asks the same cached question
// in three seconds: each answer is given at its own second, and its ETag
// names its exact bytes.
func TestTrustAnswerGivenAgainInALaterSecond(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	q := url.Values{"entity": {e.college.DID}, "framework": {fw}, "resource": {nurse}}
	var etags []string
	for i := range 3 {
		if i > 0 {
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
		}
		before := time.Now().UTC().Truncate(time.Second)
		resp, body := e.get("/v1/trust?" + q.Encode())
		after := time.Now().UTC()
		sum := sha256.Sum256(body)
		etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
		var d record.Decision
		if err := json.Unmarshal(body, &d); err != nil || resp.StatusCode != 200 || !d.Authorized {
			t.Fatalf("answer %d: %d %s", i, resp.StatusCode, body)
		}
		if d.At.Before(before) || d.At.After(after) || !d.At.Equal(d.At.Truncate(time.Second)) {
			t.Fatalf("answer %d given at %s, asked between %s and %s", i, d.At, before, after)
		}
		if got := resp.Header.Get("ETag"); got != etag {
			t.Fatalf("answer %d: ETag %s, its body's is %s", i, got, etag)
		}
		if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(body)) {
			t.Fatalf("answer %d: Content-Length %s for %d bytes", i, cl, len(body))
		}
		etags = append(etags, etag)
	}
	if etags[0] == etags[1] || etags[1] == etags[2] {
		t.Fatalf("answers of different seconds share an ETag: %v", etags)
	}
	// The first answer's ETag no longer names the answer; the latest one
	// does until its second ends.
	for _, etag := range []string{etags[0], etags[2]} {
		req, _ := http.NewRequest("GET", e.n.GatewayURL()+"/v1/trust?"+q.Encode(), nil)
		req.Header.Set("If-None-Match", etag)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(body)
		switch {
		case etag == etags[0] && resp.StatusCode != http.StatusOK:
			t.Fatalf("If-None-Match with the first second's ETag: %d, want 200", resp.StatusCode)
		case etag == etags[2] && resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") == etag:
			t.Fatalf("If-None-Match with the current ETag: 200, want 304")
		case resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != `"`+base64.RawURLEncoding.EncodeToString(sum[:16])+`"`:
			t.Fatalf("ETag %s does not name the body %s", resp.Header.Get("ETag"), body)
		}
	}
}

// TestTrustAnswersPastTheCacheBound asks more distinct questions than the
// answer cache keeps: those past its bound are answered in full too.
func TestTrustAnswersPastTheCacheBound(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	g, err := gateway.New(gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n})
	if err != nil {
		t.Fatal(err)
	}
	const n = 17000 // past the bound of 16,384
	for i := range n {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, httptest.NewRequest(http.MethodGet, trustPathAt(e.college.DID, i), nil))
		if i < n-50 && w.Code == http.StatusOK {
			continue
		}
		var d record.Decision
		body := w.Body.Bytes()
		sum := sha256.Sum256(body)
		if err := json.Unmarshal(body, &d); err != nil || w.Code != http.StatusOK || !d.Authorized || d.Entity != e.college.DID || len(d.Chain) != 2 {
			t.Fatalf("question %d: %d %s", i, w.Code, body)
		}
		if got, want := w.Header().Get("ETag"), `"`+base64.RawURLEncoding.EncodeToString(sum[:16])+`"`; got != want {
			t.Fatalf("question %d: ETag %s, its body's is %s", i, got, want)
		}
	}
}

// TestPaddedTrustQuestionsDoNotGrowTheHeap: a question padded with 60 KB
// of "&" (empty parameters, which the query's parser skips) is answered,
// but its query string is not kept as a cache key. The answer cache kept
// each: 1,000 such questions grew the live heap by about 60 MiB, and its
// bound of 16,384 answers by about 1 GiB.
func TestPaddedTrustQuestionsDoNotGrowTheHeap(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	q := url.Values{"entity": {e.college.DID}, "framework": {fw}, "resource": {nurse}}.Encode()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 1000
	for i := range n {
		resp, err := http.Get(e.n.GatewayURL() + "/v1/trust?" + q + strings.Repeat("&", 60000+i))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("question %d: %d", i, resp.StatusCode)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 16<<20 {
		t.Errorf("%d padded trust questions grew the live heap by %d MiB", n, grew>>20)
	}
}

// trustPathAt asks whether did may issue for the nursing resource at the
// i-th second of 2024: a distinct question, and cache key, for each i.
func trustPathAt(did string, i int) string {
	at := time.Date(2024, 1, 1, 0, 0, i, 0, time.UTC).Format(time.RFC3339)
	return "/v1/trust?" + url.Values{"entity": {did}, "framework": {fw}, "resource": {nurse}, "at": {at}}.Encode()
}

// panickyRegistry is the node's registry with its first read broken: the
// first View panics, as a bug in answering would.
type panickyRegistry struct {
	*registry.State
	broke *atomic.Bool
}

func (p panickyRegistry) View() *registry.View {
	if p.broke.CompareAndSwap(false, true) {
		panic("entity read broke")
	}
	return p.State.View()
}

// TestHandlerPanicAnswers500: a panic while answering becomes a 500
// problem document and an error log with the stack, not a connection
// dropped without an answer, and the gateway goes on serving.
func TestHandlerPanicAnswers500(t *testing.T) {
	e := mustNewEnv(t)
	var logs bytes.Buffer
	g, err := gateway.New(gateway.Config{Registry: panickyRegistry{e.n.State, new(atomic.Bool)}, Writer: e.n, Node: e.n,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/entities/" + url.PathEscape("did:web:college.example"))
	if err != nil {
		t.Fatalf("the panic dropped the connection: %v", err)
	}
	var p api.Problem
	err = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || err != nil || !strings.HasSuffix(p.Type, "internal") ||
		resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, %q, %+v, %v", resp.StatusCode, resp.Header.Get("Content-Type"), p, err)
	}
	if !strings.Contains(logs.String(), "entity read broke") || !strings.Contains(logs.String(), "panickyRegistry") {
		t.Fatalf("the panic and its stack are not logged: %s", logs.String())
	}
	q := url.Values{"entity": {"did:web:college.example"}, "framework": {fw}, "action": {"issue"}}
	resp, err = http.Get(srv.URL + "/v1/trust?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the panic, a trust query got %d", resp.StatusCode)
	}
}

// panickyCluster is the node with its digest read broken.
type panickyCluster struct{ *node.Node }

func (panickyCluster) Digest() (uint64, string, error) { panic("digest read broke") }

// TestAdminPanicAnswers500: the admin API answers a panic as the gateway
// does, and goes on serving.
func TestAdminPanicAnswers500(t *testing.T) {
	e := mustNewEnv(t)
	var logs bytes.Buffer
	srv := httptest.NewServer(gateway.NewAdmin(panickyCluster{e.n}, "", slog.New(slog.NewJSONHandler(&logs, nil))))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/admin/v1/digest")
	if err != nil {
		t.Fatalf("the panic dropped the connection: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(logs.String(), "digest read broke") {
		t.Fatalf("the panic is not logged: %s", logs.String())
	}
	resp, err = http.Get(srv.URL + "/admin/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the panic, the members list got %d", resp.StatusCode)
	}
}

// TestAdminRefusesBrowserPages: what a web page could make an operator's
// browser send to the tokenless loopback admin API is refused and changes
// nothing: a cross-origin POST, and a request by a rebound DNS name.
// Operators' tools (no Origin, no Sec-Fetch headers, an IP as Host) pass.
func TestAdminRefusesBrowserPages(t *testing.T) {
	e := mustNewEnv(t)
	admin := e.n.AdminURL()
	before := e.n.Cluster().Status()
	do := func(method, path string, hdr map[string]string, host string) (int, string) {
		req, _ := http.NewRequest(method, admin+path, strings.NewReader(`{}`))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p api.Problem
		json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, p.Detail
	}
	for _, tc := range []struct {
		name, method string
		hdr          map[string]string
		host, want   string
	}{
		{"cross-site POST", "POST", map[string]string{"Sec-Fetch-Site": "cross-site"}, "", "refuses cross-origin requests from browsers"},
		{"POST from another origin", "POST", map[string]string{"Origin": "https://evil.example"}, "", "refuses cross-origin requests from browsers"},
		{"rebound name", "GET", nil, "evil.example:8081", `not to Host "evil.example:8081"`},
		{"rebound name, same-origin POST", "POST", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://evil.example:8081"}, "evil.example:8081", `not to Host "evil.example:8081"`},
	} {
		if code, detail := do(tc.method, "/admin/v1/cluster/transfer-leader", tc.hdr, tc.host); code != http.StatusForbidden || !strings.Contains(detail, tc.want) {
			t.Errorf("%s: %d %q, want 403 saying %q", tc.name, code, detail, tc.want)
		}
	}
	if after := e.n.Cluster().Status(); after.Term != before.Term || after.Leader != before.Leader {
		t.Fatalf("a refused request changed the cluster: %+v, was %+v", after, before)
	}
	// An operator's tool passes the check (the single voter has no one to
	// hand leadership to: a 400 from the handler, not a 403).
	if code, detail := do("POST", "/admin/v1/cluster/transfer-leader", nil, ""); code != http.StatusBadRequest || !strings.Contains(detail, "only voter") {
		t.Fatalf("operator's transfer-leader: %d %q", code, detail)
	}
	for _, host := range []string{"localhost:1", "[::1]:8081"} {
		if code, _ := do("GET", "/admin/v1/digest", nil, host); code != http.StatusOK {
			t.Errorf("Host %s: %d", host, code)
		}
	}
}

// TestCORS: a web page of any origin may read every answer (the headers a
// verifier page needs exposed) and send batch questions and operations
// after a preflight; the admin API allows none of it.
func TestCORS(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	base := e.n.GatewayURL()
	q := url.Values{"entity": {e.college.DID}, "framework": {fw}, "action": {"issue"}}
	for _, path := range []string{"/v1/trust?" + q.Encode(), "/v1/entities/" + url.PathEscape(e.college.DID), "/v1/nothing-here"} {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Origin", "https://verifier.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), gateway.IndexHeader) ||
			!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "ETag") {
			t.Errorf("GET %s: CORS headers %v", path, resp.Header)
		}
	}
	for _, path := range []string{"/v1/trust", "/v1/operations"} {
		req, _ := http.NewRequest("OPTIONS", base+path, nil)
		req.Header.Set("Origin", "https://verifier.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") || h.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight of POST %s: %d %v", path, resp.StatusCode, h)
		}
	}
	// An EventSource reconnecting to a watch stream sends Last-Event-ID.
	req, _ := http.NewRequest("OPTIONS", base+"/v1/watch", nil)
	req.Header.Set("Origin", "https://verifier.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "last-event-id")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Last-Event-ID") {
		t.Fatalf("preflight of a watch reconnect: %v %v", resp, err)
	}
	// An OPTIONS that is not a preflight gets the gateway's 405 problem,
	// with the methods the path serves.
	req, _ = http.NewRequest("OPTIONS", base+"/v1/trust", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD, POST" {
		t.Fatalf("plain OPTIONS: %v %v", resp.StatusCode, err)
	}
	req, _ = http.NewRequest("GET", e.n.AdminURL()+"/admin/v1/digest", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("the admin API allows origins: %v", resp.Header)
	}
}
