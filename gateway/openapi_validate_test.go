package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/registry/record"
)

// oaCase is one request of TestOpenAPIValidatesEveryRoute: the documented
// operation it asks (method and OpenAPI path template), the values of the
// template's parameters, and the status the test wants.
type oaCase struct {
	method, pattern string
	params          map[string]string
	query           string
	body            string
	header          map[string]string
	status          int
	// stream: read the answer up to its first event, then hang up.
	stream bool
}

// url fills the case's path template with its parameters, each
// percent-encoded as one path segment.
func (c oaCase) url(base string) string {
	p := c.pattern
	for k, v := range c.params {
		p = strings.ReplaceAll(p, "{"+k+"}", url.PathEscape(v))
	}
	if c.query != "" {
		p += "?" + c.query
	}
	return base + p
}

// The media types the gateway serves besides JSON and plain text, read
// by the validator as opaque strings.
var registerOpaqueTypes = sync.OnceFunc(func() {
	for _, mt := range []string{"application/jose", "application/vc+jwt", "text/html", "text/css", "text/javascript", "text/event-stream"} {
		openapi3filter.RegisterBodyDecoder(mt, openapi3filter.FileBodyDecoder)
	}
	openapi3filter.RegisterBodyDecoder("application/jose+json", openapi3filter.JSONBodyDecoder)
	// A status-list credential in the VC Data Model's JSON media type.
	openapi3filter.RegisterBodyDecoder("application/vc", openapi3filter.JSONBodyDecoder)
})

// mustLoadOpenAPI loads and validates the description the gateway serves.
func mustLoadOpenAPI(t *testing.T, e *env) *openapi3.T {
	t.Helper()
	resp, raw := e.get("/openapi.json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %s", resp.StatusCode, raw)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// TestOpenAPIValidatesEveryRoute sends real requests to every route of a
// real node holding a registry with data (a framework, an accreditation
// chain, an entity, a recognition, a status list with two versions), on
// the gateway and on the admin API, and checks each request and each
// answer against openapi.json: status, headers, media type and body
// schema, problem documents included. Every documented operation must
// have at least one validated answer, and TestOpenAPIMatchesRoutes keeps
// the documented operations equal to the routes, so no route goes
// unchecked and the document cannot drift from the code.
func TestOpenAPIValidatesEveryRoute(t *testing.T) {
	const token = "openapi-admin-token"
	e := mustNewLimitedEnv(t, func(c *configs.Config) { c.Admin.Token = token })
	registerOpaqueTypes()
	doc := mustLoadOpenAPI(t, e)

	// The registry's data.
	e.chain()
	e.mustSubmit(e.sign(e.college, record.OpRegisterEntity, map[string]any{"id": e.college.DID, "name": "Amazing Community College",
		"metadata": map[string]any{"legalName": "Amazing Community College, Inc.", "country": "US"}}))
	other := "https://other-registry.example/frameworks/nursing"
	e.mustSubmit(e.govSign(record.OpRecognize, map[string]any{"framework": fw, "recognized": other, "resources": []string{nurse}, "effectiveAt": "2023-01-01T00:00:00Z"}))
	bits := make([]byte, record.MinStatusListEntries/8)
	first, _, err := e.publishList("1", "", bits)
	if err != nil {
		t.Fatal(err)
	}
	var firstList struct{ CID string }
	e.tirGet(e.n.GatewayURL()+"/v1/status-lists/"+url.PathEscape(e.college.DID)+"/1/record", &firstList)
	record.SetStatus(bits, 42, 1, 1)
	if _, _, err := e.publishList("1", firstList.CID, bits); err != nil {
		t.Fatal(err)
	}
	// A write the tests submit themselves, and send again (a duplicate).
	newEntity := string(e.sign(e.root, record.OpRegisterEntity, map[string]any{"id": "did:web:openapi.example", "name": "OpenAPI College"}))

	// TIR attribute and revision ids are the registry's.
	var attrs struct {
		Items []struct{ ID string } `json:"items"`
	}
	e.tirGet("/v4/issuers/"+url.PathEscape(e.college.DID)+"/attributes", &attrs)
	if len(attrs.Items) == 0 {
		t.Fatal("the college has no TIR attribute")
	}
	attr := attrs.Items[0].ID
	var revs struct {
		Items []struct{ ID string } `json:"items"`
	}
	e.tirGet("/v5/issuers/"+url.PathEscape(e.college.DID)+"/attributes/"+attr+"/revisions", &revs)
	if len(revs.Items) == 0 {
		t.Fatal("the college's attribute has no revision")
	}
	rev := revs.Items[0].ID

	college := map[string]string{"did": e.college.DID}
	list := map[string]string{"issuer": e.college.DID, "list": "1"}
	tir := func(extra map[string]string) map[string]string {
		m := map[string]string{"version": "v4", "did": e.college.DID, "attribute": attr, "revision": rev}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	trustQ := url.Values{"entity": {e.college.DID}, "framework": {fw}, "resource": {nurse}}.Encode()
	trqp := func(entity string) string {
		b, _ := json.Marshal(map[string]any{"entity_id": entity, "authority_id": fw, "action": "issue", "resource": nurse})
		return string(b)
	}
	batch, _ := json.Marshal([]map[string]any{
		{"entity": e.college.DID, "framework": fw, "resource": nurse},
		{"entity": e.qa.DID, "framework": fw, "action": "accredit", "resource": nurse, "at": "2021-01-01", "as_of": 3},
	})
	governance := string(e.govSign(record.OpCreateFramework, map[string]any{"id": "https://example.org/frameworks/law", "name": "Law", "roots": []string{e.root.DID}}))
	jose := map[string]string{"Content-Type": "application/jose"}
	jsonCT := map[string]string{"Content-Type": "application/json"}

	cases := []oaCase{
		{method: "POST", pattern: "/v1/operations", body: newEntity, header: jose, status: 201},
		{method: "POST", pattern: "/v1/operations", body: newEntity, header: jose, status: 200},
		{method: "POST", pattern: "/v1/operations", body: governance, header: map[string]string{"Content-Type": "application/jose+json"}, status: 201},
		{method: "POST", pattern: "/v1/operations", body: "not a JWS", header: jose, status: 400},
		{method: "POST", pattern: "/v1/operations", body: newEntity, header: map[string]string{"Content-Type": "image/png"}, status: 415},
		{method: "GET", pattern: "/v1/operations", query: "since=0&limit=3", status: 200},
		{method: "GET", pattern: "/v1/operations", query: "since=yesterday", status: 400},
		{method: "GET", pattern: "/v1/operations/{ref}", params: map[string]string{"ref": first.CID}, status: 200},
		{method: "GET", pattern: "/v1/operations/{ref}", params: map[string]string{"ref": itoa(first.Index)}, status: 200},
		{method: "GET", pattern: "/v1/operations/{ref}", params: map[string]string{"ref": "999999"}, status: 404},
		{method: "GET", pattern: "/v1/watch", query: "since=0&min_index=1", stream: true, status: 200},
		{method: "GET", pattern: "/v1/trust", query: trustQ, status: 200},
		{method: "GET", pattern: "/v1/trust", query: trustQ + "&at=2021-06-01&as_of=4", status: 200},
		{method: "GET", pattern: "/v1/trust", query: "entity=did:web:x.example", status: 400},
		{method: "POST", pattern: "/v1/trust", body: string(batch), header: jsonCT, status: 200},
		{method: "POST", pattern: "/v1/trust", body: `[]`, header: jsonCT, status: 400},
		{method: "POST", pattern: "/authorization", body: trqp(e.college.DID), header: jsonCT, status: 200},
		{method: "POST", pattern: "/authorization", body: `{"entity_id": 1}`, header: jsonCT, status: 400},
		{method: "POST", pattern: "/recognition", body: trqp(other), header: jsonCT, status: 200},
		{method: "GET", pattern: "/metadata", status: 200},
		{method: "GET", pattern: "/metadata", query: "authority_id=" + url.QueryEscape(fw), status: 200},
		{method: "GET", pattern: "/entities", query: "limit=2", status: 200},
		{method: "GET", pattern: "/entities/{entity_id}", params: map[string]string{"entity_id": e.college.DID}, status: 200},
		{method: "GET", pattern: "/entities/{entity_id}", params: map[string]string{"entity_id": "did:web:nobody.example"}, status: 404},
		{method: "GET", pattern: "/entities/{entity_id}/authorizations", params: map[string]string{"entity_id": e.college.DID}, status: 200},
		{method: "GET", pattern: "/ecosystems/{ecosystem_id}", params: map[string]string{"ecosystem_id": fw}, status: 200},
		{method: "GET", pattern: "/ecosystems/{ecosystem_id}/recognitions", params: map[string]string{"ecosystem_id": fw}, status: 200},
		{method: "GET", pattern: "/lookups/assuranceLevels", status: 501},
		{method: "GET", pattern: "/lookups/authorizations", status: 200},
		{method: "GET", pattern: "/lookups/didMethods", status: 501},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers", params: map[string]string{"version": "v4"}, query: "page[size]=2", status: 200},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}", params: tir(nil), status: 200},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}", params: tir(map[string]string{"version": "v5"}), status: 200},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}", params: tir(map[string]string{"did": "did:web:nobody.example"}), status: 404},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}/attributes", params: tir(nil), status: 200},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}/attributes/{attribute}", params: tir(nil), status: 200},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}/attributes/{attribute}/revisions", params: tir(nil), status: 200},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}/attributes/{attribute}/revisions/{revision}", params: tir(nil), status: 200},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}/attributes/{attribute}/revisions", params: tir(map[string]string{"version": "v5"}), query: "version=deprecated&trustreg=true", status: 200},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}/attributes/{attribute}/revisions", params: tir(map[string]string{"version": "v5"}), status: 200},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}/attributes/{attribute}", params: tir(nil), query: "trustreg=true", status: 200},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}", params: tir(map[string]string{"did": "not-a-did"}), status: 400},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}/proxies", params: tir(nil), status: 501},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}/proxies/{proxy}", params: tir(map[string]string{"proxy": "0x01"}), status: 501},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/issuers/{did}/proxies/{proxy}/{path}", params: tir(map[string]string{"proxy": "0x01", "path": "status"}), status: 501},
		{method: "GET", pattern: "/trusted-issuers-registry/{version}/abi", params: map[string]string{"version": "v5"}, status: 501},
		{method: "POST", pattern: "/trusted-issuers-registry/{version}/jsonrpc", params: tir(nil), header: jsonCT, body: `{}`, status: 501},
		{method: "GET", pattern: "/v1/export/dcc", status: 200},
		{method: "GET", pattern: "/v1/export/dcc", query: "framework=" + url.QueryEscape(fw), status: 200},
		{method: "GET", pattern: "/v1/frameworks", status: 200},
		{method: "GET", pattern: "/v1/frameworks", query: "q=nurs&limit=5", status: 200},
		{method: "GET", pattern: "/v1/frameworks", query: "limit=0", status: 400},
		{method: "GET", pattern: "/v1/frameworks/{id}", params: map[string]string{"id": fw}, status: 200},
		{method: "GET", pattern: "/v1/frameworks/{id}", params: map[string]string{"id": "https://example.org/none"}, status: 404},
		{method: "GET", pattern: "/v1/frameworks/{id}", params: map[string]string{"id": fw}, header: map[string]string{"If-None-Match": "*"}, status: 304},
		{method: "GET", pattern: "/v1/entities", query: "q=college", status: 200},
		{method: "GET", pattern: "/v1/entities/{did}", params: college, status: 200},
		{method: "GET", pattern: "/v1/entities/{did}", params: map[string]string{"did": e.qa.DID}, status: 200},
		{method: "GET", pattern: "/v1/entities/{did}/accreditations", params: college, status: 200},
		{method: "GET", pattern: "/v1/entities/{did}/accreditations", params: map[string]string{"did": e.qa.DID}, query: "direction=granted", status: 200},
		{method: "GET", pattern: "/v1/entities/{did}/history", params: college, status: 200},
		{method: "GET", pattern: "/v1/accreditations", query: "framework=" + url.QueryEscape(fw), status: 200},
		{method: "GET", pattern: "/v1/accreditations", query: "colour=red", status: 400},
		{method: "GET", pattern: "/v1/accreditations/{id}", params: map[string]string{"id": e.colAcc}, status: 200},
		{method: "GET", pattern: "/v1/status-lists", query: "issuer=" + url.QueryEscape(e.college.DID), status: 200},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}", params: list, status: 200},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}", params: list, header: map[string]string{"Accept": "application/vc+jwt"}, status: 200},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}", params: list, query: "timestamp=yesterday", status: 422},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}", params: list, header: map[string]string{"Accept": "application/json"}, status: 200},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}", params: list, header: map[string]string{"Accept": "application/vc"}, status: 200},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}", params: list, header: map[string]string{"Accept": "application/ld+json"}, status: 200},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}", params: list, header: map[string]string{"Accept": "text/html"}, status: 406},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}/record", params: list, status: 200},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}/record", params: list, query: "timestamp=yesterday", status: 422},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}/entries/{index}", params: map[string]string{"issuer": e.college.DID, "list": "1", "index": "x"}, status: 422},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}/entries/{index}", params: map[string]string{"issuer": e.college.DID, "list": "1", "index": "42"}, query: "statusPurpose=suspension", status: 422},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}/versions", params: list, status: 200},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}/entries/{index}", params: map[string]string{"issuer": e.college.DID, "list": "1", "index": "42"}, status: 200},
		{method: "GET", pattern: "/v1/status-lists/{issuer}/{list}/entries/{index}", params: map[string]string{"issuer": e.college.DID, "list": "1", "index": "131072"}, status: 400},
		{method: "GET", pattern: "/v1/checkpoint", status: checkpointStatus(t, e)},
		{method: "GET", pattern: "/v1/log/checkpoint", status: checkpointStatus(t, e)},
		{method: "GET", pattern: "/v1/log/tile/{path}", params: map[string]string{"path": logTilePath(t, e, 0)}, status: 200},
		{method: "GET", pattern: "/v1/log/tile/{path}", params: map[string]string{"path": logTilePath(t, e, -1)}, status: 200},
		{method: "GET", pattern: "/v1/log/tile/{path}", params: map[string]string{"path": "0/x001/000"}, status: 404},
		{method: "GET", pattern: "/v1/log/tile/{path}", params: map[string]string{"path": "0/0001"}, status: 400},
		{method: "GET", pattern: "/v1/log/consistency", query: "from=1&to=" + logSize(t, e), status: 200},
		{method: "GET", pattern: "/v1/log/consistency", query: "from=1&to=99999999", status: 404},
		{method: "GET", pattern: "/v1/log/consistency", query: "from=x&to=2", status: 400},
		{method: "GET", pattern: "/v1/log/inclusion", query: "index=0&size=" + logSize(t, e), status: 200},
		{method: "GET", pattern: "/v1/log/inclusion", query: "index=0&size=99999999", status: 404},
		{method: "GET", pattern: "/v1/status", status: 200},
		{method: "GET", pattern: "/v1/version", status: 200},
		{method: "GET", pattern: "/healthz", status: 200},
		{method: "GET", pattern: "/readyz", status: 200},
		{method: "GET", pattern: "/metrics", status: 200},
		{method: "GET", pattern: "/openapi.json", status: 200},
		{method: "GET", pattern: "/openapi.html", status: 200},
		{method: "GET", pattern: "/openapi.html", header: map[string]string{"If-None-Match": "*"}, status: 304},
		{method: "GET", pattern: "/", status: 200},
		{method: "GET", pattern: "/explorer/{file}", params: map[string]string{"file": "app.js"}, status: 200},
		{method: "GET", pattern: "/explorer/{file}", params: map[string]string{"file": "style.css"}, status: 200},
		{method: "GET", pattern: "/explorer/{file}", params: map[string]string{"file": "none.js"}, status: 404},
		// The admin API, on its own listener.
		{method: "GET", pattern: "/admin/v1/cluster", status: 200},
		{method: "GET", pattern: "/admin/v1/cluster", header: map[string]string{"Authorization": "Bearer wrong"}, status: 401},
		{method: "POST", pattern: "/admin/v1/cluster/{action}", params: map[string]string{"action": "remove"}, body: `{"id": "12D3KooWLZ6pGcn8ZuMSyzVd1bcZbv6aHkPsdEj6j2cwZxKNUCbv"}`, header: jsonCT, status: 400},
		{method: "POST", pattern: "/admin/v1/cluster/{action}", params: map[string]string{"action": "explode"}, header: jsonCT, body: `{}`, status: 400},
		{method: "GET", pattern: "/admin/v1/digest", status: 200},
		{method: "GET", pattern: "/admin/v1/backup", status: 200},
		{method: "POST", pattern: "/admin/v1/snapshot", status: 200},
		{method: "GET", pattern: "/debug/pprof/", status: 200},
		{method: "GET", pattern: "/debug/pprof/profile", query: "seconds=1", status: 200},
		{method: "GET", pattern: "/debug/pprof/trace", query: "seconds=0.05", status: 200},
	}

	validated := map[string]bool{}
	for _, c := range cases {
		name := c.method + " " + c.pattern
		what := fmt.Sprintf("%s %s (want %d)", c.method, c.url(""), c.status)
		pi := doc.Paths.Value(c.pattern)
		var op *openapi3.Operation
		if pi != nil {
			op = pi.GetOperation(c.method)
		}
		if op == nil {
			t.Errorf("%s: not in openapi.json", name)
			continue
		}
		base := e.n.GatewayURL()
		admin := len(pi.Servers) > 0
		if admin {
			base = e.n.AdminURL()
		}
		newReq := func() *http.Request {
			req, err := http.NewRequest(c.method, c.url(base), strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if admin {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			return req
		}
		if missing := undocumentedQuery(c, pi, op); len(missing) > 0 && c.status < 400 {
			t.Errorf("%s: query parameters %v are not in openapi.json", what, missing)
			continue
		}
		route := &routers.Route{Spec: doc, Path: c.pattern, PathItem: pi, Method: c.method, Operation: op}
		in := &openapi3filter.RequestValidationInput{Request: newReq(), PathParams: c.params, Route: route,
			Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: bearerOnly}}
		wantOK := c.status < 400
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && wantOK {
			t.Errorf("%s: the request does not follow openapi.json: %v", what, err)
			continue
		}
		status, header, body := oaDo(t, newReq(), c.stream)
		if status != c.status {
			t.Errorf("%s: answered %d %.300s", what, status, body)
			continue
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header,
			Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true}}
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("%s: the answer %d (%s) does not follow openapi.json: %v\n%.600s", what, status, header.Get("Content-Type"), err, body)
			continue
		}
		validated[name] = true
	}
	var missing []string
	for path, pi := range doc.Paths.Map() {
		for method := range pi.Operations() {
			if name := method + " " + path; !validated[name] {
				missing = append(missing, name)
			}
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("%s: no answer of this route was validated against openapi.json", m)
	}
}

// checkpointStatus is the status GET /v1/checkpoint answers on e's node,
// whose development genesis lists the node itself as the one cosigner:
// 200 once its registry state keeps a transparency log (the node cosigns
// its own checkpoint at once; this waits for it), and 503 (no checkpoint)
// while the state keeps none.
func checkpointStatus(t *testing.T, e *env) int {
	t.Helper()
	type logState interface {
		LogHead() (uint64, []byte, error)
	}
	if _, ok := any(e.n.State).(logState); !ok {
		return http.StatusServiceUnavailable
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		if _, err := e.n.LatestCheckpoint(); err == nil {
			return http.StatusOK
		}
		select {
		case <-ctx.Done():
			t.Fatal("the development node never cosigned a checkpoint")
		case <-poll.C:
		}
	}
}

// undocumentedQuery lists the query parameters of c that neither the
// operation nor its path declares: kin-openapi lets a request carry any.
func undocumentedQuery(c oaCase, pi *openapi3.PathItem, op *openapi3.Operation) []string {
	q, _ := url.ParseQuery(c.query)
	var out []string
	for name := range q {
		if op.Parameters.GetByInAndName(openapi3.ParameterInQuery, name) == nil && pi.Parameters.GetByInAndName(openapi3.ParameterInQuery, name) == nil {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// bearerOnly checks the one security scheme the document names, the
// admin API's bearer token: the request carries one.
func bearerOnly(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme == nil || in.SecurityScheme.Type != "http" || in.SecurityScheme.Scheme != "bearer" {
		return fmt.Errorf("security scheme %s: the test knows only the admin bearer token", in.SecuritySchemeName)
	}
	if !strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
		return fmt.Errorf("no bearer token")
	}
	return nil
}

// oaDo sends req and reads its answer: whole, or for a stream up to the
// end of its first event.
func oaDo(t *testing.T, req *http.Request, stream bool) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if !stream || resp.StatusCode != http.StatusOK {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, body
	}
	var event bytes.Buffer
	rd := bufio.NewReader(resp.Body)
	for range 10000 {
		line, err := rd.ReadString('\n')
		event.WriteString(line)
		if err != nil {
			t.Fatalf("%s: the stream ended before its first event: %v", req.URL, err)
		}
		if line == "\n" && strings.Contains(event.String(), "data:") {
			break
		}
	}
	return resp.StatusCode, resp.Header, event.Bytes()
}
