package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway"

	"github.com/trustreg/trustreg/registry/record"
)

// call sends method path with body (JSON, when not empty) and headers, and
// returns the answer with its body read.
func (e *env) call(method, path, body string, header ...string) (*http.Response, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.n.GatewayURL()+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// conforms fails the test for every rule of the schemas doc breaks.
func conforms(t *testing.T, what string, doc []byte, schemas ...schema) {
	t.Helper()
	for _, s := range schemas {
		if v := s.violations(doc); len(v) > 0 {
			t.Errorf("%s breaks %s:\n  %s\n  document: %s", what, s.source, strings.Join(v, "\n  "), doc)
		}
	}
}

// TestTRQPFollowsThePublishedSchemas sends TRQP queries that the ToIP v2
// and Ayra request schemas allow (each checked against them first) and
// checks every answer against the response schemas: unknown top-level
// members are ignored, context may hold any strings, a blank context.time
// asks about now, and the echoed context conforms. Queries the schemas
// refuse (a context value that is not a string) are refused with a
// problem document whose type and instance are URIs.
func TestTRQPFollowsThePublishedSchemas(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	other := "https://other-registry.example/frameworks/nursing"
	e.mustSubmit(e.govSign(record.OpRecognize, map[string]any{"framework": fw, "recognized": other, "resources": []string{nurse}, "effectiveAt": "2023-01-01T00:00:00Z"}))
	query := func(entity string, extra map[string]any) string {
		m := map[string]any{"entity_id": entity, "authority_id": fw, "action": "issue", "resource": nurse}
		for k, v := range extra {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	type answer struct {
		Authorized    *bool             `json:"authorized"`
		Recognized    *bool             `json:"recognized"`
		TimeRequested string            `json:"time_requested"`
		TimeEvaluated string            `json:"time_evaluated"`
		Context       map[string]string `json:"context"`
	}
	for _, tc := range []struct {
		name, path, body string
		want             bool              // authorized / recognized
		requested        string            // time_requested
		context          map[string]string // echoed
	}{
		{"at a time", "/authorization", query(e.college.DID, map[string]any{"context": map[string]any{"time": "2024-06-01T00:00:00Z"}}),
			true, "2024-06-01T00:00:00Z", map[string]string{"time": "2024-06-01T00:00:00Z"}},
		{"unknown top-level members", "/authorization", query(e.college.DID, map[string]any{"ext": map[string]any{"x": 1}, "trace": "abc", "entityId": "ignored"}),
			true, "", nil},
		{"locator and other strings in context", "/authorization", query(e.college.DID, map[string]any{"context": map[string]any{"locator": "registry-a", "jurisdiction": "US"}}),
			true, "", map[string]string{"locator": "registry-a", "jurisdiction": "US"}},
		{"blank time is now", "/authorization", query(e.college.DID, map[string]any{"context": map[string]any{"time": "", "locator": "x"}}),
			true, "", map[string]string{"locator": "x"}},
		{"blank time alone", "/authorization", query(e.college.DID, map[string]any{"context": map[string]any{"time": ""}}),
			true, "", nil},
		{"time with an offset", "/authorization", query(e.college.DID, map[string]any{"context": map[string]any{"time": "2021-01-01T02:00:00+02:00"}}),
			false, "2021-01-01T00:00:00Z", map[string]string{"time": "2021-01-01T02:00:00+02:00"}},
		{"not authorized", "/authorization", query("did:web:nobody.example", nil), false, "", nil},
		{"recognition", "/recognition", query(other, map[string]any{"action": "recognize", "context": map[string]any{"time": "2024-01-01T00:00:00Z"}, "extra": true}),
			true, "2024-01-01T00:00:00Z", map[string]string{"time": "2024-01-01T00:00:00Z"}},
		{"recognition, blank time", "/recognition", query(other, map[string]any{"action": "govern", "context": map[string]any{"time": ""}}),
			true, "", nil},
	} {
		request, response := []schema{toipAuthorizationRequest, ayraAuthorizationRequest}, []schema{toipAuthorizationResponse, ayraAuthorizationResponse}
		if tc.path == "/recognition" {
			request, response = []schema{toipRecognitionRequest, ayraRecognitionRequest}, []schema{toipRecognitionResponse, ayraRecognitionResponse}
		}
		conforms(t, tc.name+": our request", []byte(tc.body), request...)
		before := time.Now().UTC().Add(-time.Second)
		resp, raw := e.call("POST", tc.path, tc.body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s, want 200", tc.name, resp.StatusCode, raw)
			continue
		}
		conforms(t, tc.name+": the answer", raw, response...)
		var a answer
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		got := a.Authorized
		if tc.path == "/recognition" {
			got = a.Recognized
		}
		if got == nil || *got != tc.want || a.TimeRequested != tc.requested || (len(a.Context) > 0 || len(tc.context) > 0) && !equalMaps(a.Context, tc.context) {
			t.Errorf("%s: %s; want %v, time_requested %q, context %v", tc.name, raw, tc.want, tc.requested, tc.context)
		}
		if te, err := time.Parse(time.RFC3339Nano, a.TimeEvaluated); err != nil || te.Before(before) {
			t.Errorf("%s: time_evaluated %q is not the node's time now: %v", tc.name, a.TimeEvaluated, err)
		}
	}
	// What the request schemas refuse: context values that are not
	// strings (additionalProperties: {type: string}), a context that is no
	// object, a missing member, a member of the wrong type.
	for _, tc := range []struct{ name, path, body, want string }{
		{"a number in context", "/authorization", query(e.college.DID, map[string]any{"context": map[string]any{"time": "2024-06-01T00:00:00Z", "n": 5}}), "context.n must be a string"},
		{"an object in context", "/authorization", query(e.college.DID, map[string]any{"context": map[string]any{"o": map[string]any{}}}), "context.o must be a string"},
		{"a boolean in context", "/recognition", query(other, map[string]any{"context": map[string]any{"flag": true}}), "context.flag must be a string"},
		{"null in context", "/authorization", query(e.college.DID, map[string]any{"context": map[string]any{"time": nil}}), "context.time must be a string"},
		{"context an array", "/authorization", query(e.college.DID, map[string]any{"context": []any{"x"}}), "context must be a JSON object of strings"},
		{"entity_id a number", "/authorization", `{"entity_id":5,"authority_id":"` + fw + `","action":"issue","resource":"` + nurse + `"}`, "TRQP query object"},
		{"resource missing", "/recognition", `{"entity_id":"` + other + `","authority_id":"` + fw + `","action":"recognize"}`, "resource required"},
	} {
		request := []schema{toipAuthorizationRequest, ayraAuthorizationRequest}
		if tc.path == "/recognition" {
			request = []schema{toipRecognitionRequest, ayraRecognitionRequest}
		}
		for _, s := range request {
			if len(s.violations([]byte(tc.body))) == 0 {
				t.Errorf("%s: the rules of %s let %s through; the checker is wrong", tc.name, s.source, tc.body)
			}
		}
		resp, raw := e.call("POST", tc.path, tc.body)
		var p struct{ Detail string }
		_ = json.Unmarshal(raw, &p)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(p.Detail, tc.want) {
			t.Errorf("%s: %d %s, want a 400 problem saying %q", tc.name, resp.StatusCode, raw, tc.want)
			continue
		}
		conforms(t, tc.name+": the problem", raw, ayraProblem)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestTRQPStatusCodesOfTheHTTPSBinding: the HTTPS binding (ToIP v2
// https_binding.md, "Error Handling") answers an authority or action it
// does not recognize with 404 and a problem document; an unknown entity
// stays a 200 "not authorized" (no enumeration oracle, docs/API.md).
func TestTRQPStatusCodesOfTheHTTPSBinding(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	for _, tc := range []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"unknown authority", "/authorization", trqpBody(e.college.DID, "https://example.org/unknown", "issue", nurse, ""), 404, `authority_id "https://example.org/unknown" is not a framework`},
		{"unknown authority, recognition", "/recognition", trqpBody(fw, "https://example.org/unknown", "recognize", nurse, ""), 404, `authority_id "https://example.org/unknown" is not a framework`},
		{"unknown action", "/authorization", trqpBody(e.college.DID, fw, "verify", nurse, ""), 404, `action "verify" is not defined for authority`},
		{"invalid JSON", "/authorization", `{"entity_id":`, 400, "TRQP query object"},
		{"unknown entity", "/authorization", trqpBody("did:web:nobody.example", fw, "issue", nurse, ""), 200, `"authorized":false`},
	} {
		resp, raw := e.call("POST", tc.path, tc.body)
		var p struct{ Detail string }
		_ = json.Unmarshal(raw, &p)
		if resp.StatusCode != tc.status || !strings.Contains(string(raw)+p.Detail, tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, resp.StatusCode, raw, tc.status, tc.want)
			continue
		}
		if tc.status != 200 {
			conforms(t, tc.name, raw, ayraProblem)
		}
	}
}

// TestTRQPRequestIDAndPreflight: every answer echoes X-Request-ID (HTTPS
// binding, "Common Request Headers"), and a browser page may send the
// binding's Authorization and X-Request-ID headers after a preflight and
// read X-Request-ID back.
func TestTRQPRequestIDAndPreflight(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	const id = "d4f34c12-9b7a-4e3a-a5d1-7e4f8c2c9f10"
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/authorization", trqpBody(e.college.DID, fw, "issue", nurse, "")},
		{"POST", "/recognition", trqpBody(fw, "https://example.org/unknown", "recognize", nurse, "")},
		{"POST", "/authorization", `not json`},
		{"GET", "/metadata", ""},
		{"GET", "/v1/frameworks", ""},
	} {
		resp, raw := e.call(tc.method, tc.path, tc.body, "X-Request-ID", id, "Authorization", "Bearer ignored")
		if resp.Header.Get("X-Request-ID") != id {
			t.Errorf("%s %s: %d, X-Request-ID %q, want %q echoed (%s)", tc.method, tc.path, resp.StatusCode, resp.Header.Get("X-Request-ID"), id, raw)
		}
	}
	if resp, _ := e.call("GET", "/metadata", ""); resp.Header.Get("X-Request-ID") != "" {
		t.Errorf("an X-Request-ID answered to a request without one: %q", resp.Header.Get("X-Request-ID"))
	}
	resp, _ := e.call("OPTIONS", "/authorization", "", "Origin", "https://verifier.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type,x-request-id")
	allowed := strings.Split(strings.ToLower(strings.ReplaceAll(resp.Header.Get("Access-Control-Allow-Headers"), " ", "")), ",")
	for _, h := range []string{"authorization", "content-type", "x-request-id"} {
		if resp.StatusCode != http.StatusNoContent || !slices.Contains(allowed, h) {
			t.Errorf("preflight of POST /authorization with %s: %d, Access-Control-Allow-Headers %q", h, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Headers"))
		}
	}
	resp, _ = e.call("POST", "/authorization", trqpBody(e.college.DID, fw, "issue", nurse, ""), "Origin", "https://verifier.example")
	if !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-ID") {
		t.Errorf("X-Request-ID is not exposed to pages: %q", resp.Header.Get("Access-Control-Expose-Headers"))
	}
}

// TestAyraExtensionEndpoints: the Ayra profile's extension endpoints
// answer from the registry's state, each answer checked against the
// profile's published schema; what trustreg has nothing for answers 501.
func TestAyraExtensionEndpoints(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	e.mustSubmit(e.sign(e.college, record.OpRegisterEntity, map[string]any{"id": e.college.DID, "name": "Amazing Community College"}))
	other := "https://other-registry.example/frameworks/nursing"
	e.mustSubmit(e.govSign(record.OpRecognize, map[string]any{"framework": fw, "recognized": other, "resources": []string{nurse}, "effectiveAt": "2023-01-01T00:00:00Z"}))
	get := func(path string, status int, s schema, v any) {
		t.Helper()
		resp, raw := e.call("GET", path, "")
		if resp.StatusCode != status {
			t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, raw, status)
		}
		conforms(t, "GET "+path, raw, s)
		if v != nil {
			if err := json.Unmarshal(raw, v); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
	}
	esc := url.PathEscape

	var meta map[string]any
	get("/metadata", 200, ayraMetadata, &meta)
	if meta["id"] == "" || meta["name"] == "" || !slices.Contains(anyStrings(meta["controllers"]), e.gov.DID) {
		t.Errorf("metadata: %v", meta)
	}
	get("/metadata?authority_id="+url.QueryEscape(fw), 200, ayraMetadata, &meta)
	if meta["authority_id"] != fw {
		t.Errorf("metadata of %s: %v", fw, meta)
	}
	get("/metadata?authority_id=https%3A%2F%2Fexample.org%2Funknown", 404, ayraProblem, nil)

	type entityList struct {
		Items []struct {
			EntityID string `json:"entity_id"`
			Name     string `json:"name"`
		} `json:"items"`
		Pagination struct{ Limit, Offset, Total int } `json:"pagination"`
	}
	ids := func(l entityList) []string {
		var out []string
		for _, it := range l.Items {
			out = append(out, it.EntityID)
		}
		return out
	}
	all := []string{e.root.DID, e.qa.DID, e.college.DID}
	slices.Sort(all)
	var l entityList
	get("/entities", 200, ayraEntityList, &l)
	if !slices.Equal(ids(l), all) || l.Pagination.Total != 3 || l.Pagination.Limit != 100 {
		t.Errorf("entities: %+v, want %v", l, all)
	}
	for _, it := range l.Items {
		if it.EntityID == e.college.DID && it.Name != "Amazing Community College" {
			t.Errorf("the college's name: %+v", it)
		}
	}
	get("/entities?limit=1&offset=1", 200, ayraEntityList, &l)
	if !slices.Equal(ids(l), all[1:2]) || l.Pagination.Total != 3 || l.Pagination.Offset != 1 {
		t.Errorf("second page of one: %+v", l)
	}
	get("/entities?authority_id="+url.QueryEscape(fw), 200, ayraEntityList, &l)
	if !slices.Equal(ids(l), all) {
		t.Errorf("entities of %s: %+v", fw, l)
	}
	filter := "/entities?authority_id=" + url.QueryEscape(fw) + "&action=issue&resource=" + url.QueryEscape(nurse)
	get(filter, 200, ayraEntityList, &l)
	if !slices.Equal(ids(l), []string{e.college.DID}) || l.Pagination.Total != 1 {
		t.Errorf("entities authorized to issue: %+v", l)
	}
	get(filter+"&time=2021-01-01T00:00:00Z", 200, ayraEntityList, &l)
	if len(l.Items) != 0 || l.Pagination.Total != 0 {
		t.Errorf("entities authorized to issue in 2021: %+v", l)
	}
	get("/entities?action=issue", 400, ayraProblem, nil)
	get("/entities?limit=0", 400, ayraProblem, nil)
	get("/entities?authority_id=https%3A%2F%2Fexample.org%2Funknown", 404, ayraProblem, nil)

	var ent map[string]any
	get("/entities/"+esc(e.college.DID), 200, ayraObject, &ent)
	if ent["entity_id"] != e.college.DID || ent["name"] != "Amazing Community College" || !slices.Equal(anyStrings(ent["authority_ids"]), []string{fw}) {
		t.Errorf("entity: %v", ent)
	}
	get("/entities/"+esc(e.qa.DID), 200, ayraObject, &ent) // accredited, registered by no one
	get("/entities/"+esc("did:web:nobody.example"), 404, ayraProblem, nil)

	var auths []trqpAnswer
	get("/entities/"+esc(e.college.DID)+"/authorizations", 200, ayraAuthorizationList, &auths)
	if len(auths) != 1 || !*auths[0].Authorized || auths[0].AuthorityID != fw || auths[0].Action != "issue" || auths[0].Resource != nurse || auths[0].Reason != record.ReasonActive {
		t.Errorf("authorizations now: %+v", auths)
	}
	get("/entities/"+esc(e.college.DID)+"/authorizations?time=2021-01-01T00:00:00Z", 200, ayraAuthorizationList, &auths)
	if len(auths) != 1 || *auths[0].Authorized || auths[0].TimeRequested != "2021-01-01T00:00:00Z" {
		t.Errorf("authorizations in 2021: %+v", auths)
	}
	get("/entities/"+esc(e.college.DID)+"/authorizations?time=yesterday", 400, ayraProblem, nil)
	get("/entities/"+esc("did:web:nobody.example")+"/authorizations", 404, ayraProblem, nil)

	var eco map[string]any
	get("/ecosystems/"+esc(fw), 200, ayraObject, &eco)
	if eco["ecosystem_id"] != fw || !slices.Equal(anyStrings(eco["root_accreditors"]), []string{e.root.DID}) || !slices.Equal(anyStrings(eco["recognized_ecosystems"]), []string{other}) {
		t.Errorf("ecosystem: %v", eco)
	}
	get("/ecosystems/"+esc("https://example.org/unknown"), 404, ayraProblem, nil)
	var recs []trqpAnswer
	get("/ecosystems/"+esc(fw)+"/recognitions", 200, ayraRecognitionList, &recs)
	if len(recs) != 1 || !*recs[0].Recognized || recs[0].EntityID != other || recs[0].Resource != nurse {
		t.Errorf("recognitions: %+v", recs)
	}
	get("/ecosystems/"+esc(fw)+"/recognitions?time=2022-01-01T00:00:00Z", 200, ayraRecognitionList, &recs)
	if len(recs) != 1 || *recs[0].Recognized {
		t.Errorf("recognitions in 2022, before it took effect: %+v", recs)
	}
	// A widening scheduled for 2030 lists the resources recognized at the
	// time asked: nurses now, both from 2030 (feature level 14).
	const pharmacist = "https://example.org/credentials/Pharmacist"
	e.mustSubmit(e.govSign(record.OpRecognize, map[string]any{"framework": fw, "recognized": other, "resources": []string{nurse, pharmacist}, "effectiveAt": "2030-01-01T00:00:00Z"}))
	get("/ecosystems/"+esc(fw)+"/recognitions", 200, ayraRecognitionList, &recs)
	if len(recs) != 1 || !*recs[0].Recognized || recs[0].Resource != nurse {
		t.Errorf("recognitions now, a widening scheduled for 2030: %+v", recs)
	}
	get("/ecosystems/"+esc(fw)+"/recognitions?time=2030-06-01T00:00:00Z", 200, ayraRecognitionList, &recs)
	if len(recs) != 2 || !*recs[0].Recognized || !*recs[1].Recognized || recs[1].Resource != pharmacist {
		t.Errorf("recognitions in 2030, after the widening: %+v", recs)
	}

	var pairs []map[string]string
	get("/lookups/authorizations?authority_id="+url.QueryEscape(fw), 200, ayraAuthorizations, &pairs)
	if len(pairs) != 2 || pairs[0]["action"] != "accredit" || pairs[1]["action"] != "issue" || pairs[1]["resource"] != nurse {
		t.Errorf("authorization pairs: %v", pairs)
	}
	get("/lookups/authorizations", 200, ayraAuthorizations, &pairs)
	get("/lookups/authorizations?authority_id=https%3A%2F%2Fexample.org%2Funknown", 404, ayraProblem, nil)
	for _, path := range []string{"/lookups/assuranceLevels", "/lookups/didMethods"} {
		get(path, http.StatusNotImplemented, ayraProblem, nil)
	}
}

func anyStrings(v any) []string {
	var out []string
	if a, ok := v.([]any); ok {
		for _, s := range a {
			if s, ok := s.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// TestAyraEntityAuthorizationsAreBounded: an entity's authorizations make
// one decision per (framework, action, resource) its accreditations name;
// an entity naming more than ayraMaxDecisions gets a 400 saying what to
// ask instead, and one naming exactly that many its answers.
func TestAyraEntityAuthorizationsAreBounded(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	const broad = "https://example.org/frameworks/programs"
	e.mustSubmit(e.govSign(record.OpCreateFramework, map[string]any{"id": broad, "name": "Programs", "roots": []string{e.root.DID}}))
	programs := func(from, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("https://example.org/programs/p%04d", from+i))
		}
		return out
	}
	// The college holds nurse (e.chain) and gateway.AyraMaxDecisions-1
	// programs, in accreditations of up to 256 each.
	for from := 0; from < gateway.AyraMaxDecisions-1; from += 256 {
		e.mustSubmit(e.sign(e.root, record.OpAccredit, map[string]any{"framework": broad, "accreditor": e.root.DID, "subject": e.college.DID,
			"action": "issue", "resources": programs(from, min(256, gateway.AyraMaxDecisions-1-from)), "validFrom": "2022-09-01T00:00:00Z"}))
	}
	path := "/entities/" + url.PathEscape(e.college.DID) + "/authorizations"
	resp, raw := e.call("GET", path, "")
	var auths []trqpAnswer
	if resp.StatusCode != 200 || json.Unmarshal(raw, &auths) != nil || len(auths) != gateway.AyraMaxDecisions {
		t.Fatalf("GET %s: %d, %d answers, want 200 and %d", path, resp.StatusCode, len(auths), gateway.AyraMaxDecisions)
	}
	for _, a := range auths {
		if !*a.Authorized {
			t.Fatalf("not authorized: %+v", a)
		}
	}

	// One more resource: refused, before any decision.
	e.mustSubmit(e.sign(e.root, record.OpAccredit, map[string]any{"framework": broad, "accreditor": e.root.DID, "subject": e.college.DID,
		"action": "issue", "resources": programs(gateway.AyraMaxDecisions-1, 1), "validFrom": "2022-09-01T00:00:00Z"}))
	resp, raw = e.call("GET", path, "")
	if resp.StatusCode != 400 || !strings.Contains(string(raw), "/authorization") {
		t.Fatalf("GET %s with %d authorizations: %d %s, want 400 naming /authorization", path, gateway.AyraMaxDecisions+1, resp.StatusCode, raw)
	}
}
