package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// trqpAnswer is what a TRQP client reads, and the extra fields trustreg
// adds.
type trqpAnswer struct {
	EntityID      string          `json:"entity_id"`
	AuthorityID   string          `json:"authority_id"`
	Action        string          `json:"action"`
	Resource      string          `json:"resource"`
	Authorized    *bool           `json:"authorized"`
	Recognized    *bool           `json:"recognized"`
	TimeRequested string          `json:"time_requested"`
	TimeEvaluated string          `json:"time_evaluated"`
	Message       string          `json:"message"`
	Context       json.RawMessage `json:"context"`
	Reason        string          `json:"reason"`
	Chain         []record.Link   `json:"chain"`
	Index         uint64          `json:"index"`
}

// postTRQP sends body to path and returns the status, the decoded answer
// (on 200) and the raw body.
func (e *env) postTRQP(path, body string) (int, trqpAnswer, string) {
	e.t.Helper()
	resp, err := http.Post(e.n.GatewayURL()+path, "application/json", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a trqpAnswer
	if resp.StatusCode == http.StatusOK {
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(&a); err != nil {
			e.t.Fatalf("%s answer %s: %v", path, raw, err)
		}
	} else if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		e.t.Fatalf("%s: %d with Content-Type %q", path, resp.StatusCode, ct)
	}
	return resp.StatusCode, a, string(raw)
}

func trqpBody(entity, authority, action, resource, context string) string {
	m := map[string]any{"entity_id": entity, "authority_id": authority, "action": action, "resource": resource}
	if context != "" {
		m["context"] = json.RawMessage(context)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// TestTRQPAuthorization: POST /authorization answers TRQP v2 queries from
// the same state as /v1/trust: now, at context.time, for an unknown entity
// and framework, with the query echoed and trustreg's reason and chain.
func TestTRQPAuthorization(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	before := time.Now().UTC().Add(-time.Second)
	status, a, raw := e.postTRQP("/authorization", trqpBody(e.college.DID, fw, "issue", nurse, `{"time":"2024-06-01T00:00:00Z","locator":"x"}`))
	if status != 200 || a.Authorized == nil || !*a.Authorized || a.Reason != record.ReasonActive || len(a.Chain) != 2 || a.Chain[0].Accreditation != e.colAcc {
		t.Fatalf("authorized college: %d %s", status, raw)
	}
	if a.EntityID != e.college.DID || a.AuthorityID != fw || a.Action != "issue" || a.Resource != nurse ||
		a.TimeRequested != "2024-06-01T00:00:00Z" || string(a.Context) != `{"locator":"x","time":"2024-06-01T00:00:00Z"}` || a.Index == 0 {
		t.Fatalf("echoed fields: %s", raw)
	}
	if te, err := time.Parse(time.RFC3339Nano, a.TimeEvaluated); err != nil || te.Before(before) {
		t.Fatalf("time_evaluated %q: %v", a.TimeEvaluated, err)
	}
	// Before the college's accreditation was valid.
	if _, a, raw := e.postTRQP("/authorization", trqpBody(e.college.DID, fw, "issue", nurse, `{"time":"2021-01-01T00:00:00Z"}`)); *a.Authorized || a.Reason != record.ReasonNotYetValid || !strings.Contains(a.Message, "not yet valid") {
		t.Fatalf("in 2021: %s", raw)
	}
	// Revoking the QA agency breaks the chain from now on; without a
	// context the question is about now.
	e.mustSubmit(e.sign(e.root, record.OpRevoke, map[string]any{"accreditation": e.qaAcc, "reason": "withdrawn"}))
	if _, a, raw := e.postTRQP("/authorization?consistency=linearizable", trqpBody(e.college.DID, fw, "issue", nurse, "")); *a.Authorized || a.Reason != record.ReasonChainBroken || a.TimeRequested != "" {
		t.Fatalf("after the revocation: %s", raw)
	}
	if _, a, raw := e.postTRQP("/authorization", trqpBody("did:web:nobody.example", fw, "issue", nurse, "")); *a.Authorized || a.Reason != record.ReasonNeverAuthorized || a.Chain == nil {
		t.Fatalf("unknown entity: %s", raw)
	}
	// An unknown authority is 404, as TRQP's HTTPS binding has it.
	if status, _, raw := e.postTRQP("/authorization", trqpBody(e.college.DID, "https://example.org/other", "issue", nurse, "")); status != http.StatusNotFound || !strings.Contains(raw, "not a framework of this registry") {
		t.Fatalf("unknown authority: %d %s", status, raw)
	}
}

// TestTRQPRecognition: POST /recognition answers whether a framework
// recognizes another, for a resource, at a time, as recognitions are
// recorded and withdrawn.
func TestTRQPRecognition(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	other := "https://other-registry.example/frameworks/nursing"
	ask := func(resource, context string) trqpAnswer {
		t.Helper()
		status, a, raw := e.postTRQP("/recognition", trqpBody(other, fw, "recognize", resource, context))
		if status != 200 || a.Recognized == nil || a.Authorized != nil {
			t.Fatalf("recognition: %d %s", status, raw)
		}
		return a
	}
	if a := ask(nurse, ""); *a.Recognized || a.Reason != decide.ReasonNeverRecognized {
		t.Fatalf("before any recognition: %+v", a)
	}
	e.mustSubmit(e.govSign(record.OpRecognize, map[string]any{"framework": fw, "recognized": other, "resources": []string{nurse}, "effectiveAt": "2023-01-01T00:00:00Z"}))
	if a := ask(nurse, ""); !*a.Recognized || a.Reason != record.ReasonActive || a.EntityID != other || a.AuthorityID != fw || a.Action != "recognize" {
		t.Fatalf("recognized: %+v", a)
	}
	if a := ask(law, ""); *a.Recognized || a.Reason != decide.ReasonNeverRecognized || !strings.Contains(a.Message, "other resources") {
		t.Fatalf("a resource the recognition does not cover: %+v", a)
	}
	if a := ask(nurse, `{"time":"2022-06-01T00:00:00Z"}`); *a.Recognized || a.Reason != record.ReasonNotYetValid {
		t.Fatalf("before the recognition took effect: %+v", a)
	}
	recognizedAt := e.n.State.AppliedIndex()
	e.mustSubmit(e.govSign(record.OpUnrecognize, map[string]any{"framework": fw, "recognized": other}))
	if a := ask(nurse, ""); *a.Recognized || a.Reason != record.ReasonRevoked {
		t.Fatalf("after it was withdrawn: %+v", a)
	}
	if a := ask(nurse, `{"time":"2024-01-01T00:00:00Z"}`); !*a.Recognized {
		t.Fatalf("in 2024, before it was withdrawn: %+v", a)
	}
	if a := ask(nurse, ""); a.Index <= recognizedAt {
		t.Fatalf("answered at index %d, not after %d", a.Index, recognizedAt)
	}
	status, _, raw := e.postTRQP("/recognition", trqpBody(other, "https://example.org/unknown", "recognize", nurse, ""))
	if status != http.StatusNotFound || !strings.Contains(raw, "not a framework of this registry") {
		t.Fatalf("unknown authority: %d %s", status, raw)
	}
}

// TestTRQPBadQueries: malformed TRQP queries get a 400 problem that says
// what is wrong.
func TestTRQPBadQueries(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	for _, tc := range []struct{ path, body, want string }{
		{"/authorization", `{"entity_id":"did:web:a.example","authority_id":"` + fw + `","action":"issue"}`, "resource required"},
		{"/authorization", `{}`, "entity_id, authority_id, action, resource required"},
		{"/authorization", `{"entityId":"did:web:a.example"}`, "entity_id, authority_id, action, resource required"},
		{"/authorization", `not json`, "TRQP query object"},
		{"/authorization", trqpBody("did:web:a.example", fw, "issue", nurse, "") + `{}`, "more than one JSON value"},
		{"/authorization", trqpBody("did:web:a.example", fw, "issue", nurse, `{"time":"yesterday"}`), `context.time "yesterday" must be RFC 3339`},
		{"/authorization", trqpBody("did:web:a.example", fw, "issue", nurse, `{"time":5}`), "context.time must be a string"},
		{"/authorization", trqpBody("did:web:a.example", fw, "issue", nurse, `[1]`), "context must be a JSON object"},
		{"/authorization?as_of=3", trqpBody("did:web:a.example", fw, "issue", nurse, ""), `unknown query parameter "as_of"`},
		{"/recognition", `{"entity_id":"x"}`, "authority_id, action, resource required"},
	} {
		status, _, raw := e.postTRQP(tc.path, tc.body)
		var p struct{ Detail string }
		_ = json.Unmarshal([]byte(raw), &p)
		if status != http.StatusBadRequest || !strings.Contains(p.Detail, tc.want) {
			t.Errorf("%s %s: %d %s, want 400 with %q", tc.path, tc.body, status, raw, tc.want)
		}
	}
	resp, err := http.Get(e.n.GatewayURL() + "/authorization")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET /authorization: %d, Allow %q; want 405, Allow POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
}
