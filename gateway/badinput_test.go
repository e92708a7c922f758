package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/record"
)

// refused checks that an answer is a 400 problem of type want whose detail
// holds every one of words.
func refused(t *testing.T, what string, resp *http.Response, body []byte, want string, words ...string) {
	t.Helper()
	var p api.Problem
	_ = json.Unmarshal(body, &p)
	if resp.StatusCode != http.StatusBadRequest || p.Type != "urn:trustreg:problem:"+want {
		t.Fatalf("%s: status %d, want 400 %s: %s", what, resp.StatusCode, want, body)
	}
	for _, w := range words {
		if !strings.Contains(p.Detail, w) {
			t.Fatalf("%s: the detail does not say %q: %s", what, w, p.Detail)
		}
	}
}

// TestQueriesThatDoNotParseAreRefused: a query string that url.Values
// would read only in part (a parameter that does not decode, a semicolon,
// a parameter given twice) is refused with 400 on every route, never
// answered as the question left after the rest was dropped.
func TestQueriesThatDoNotParseAreRefused(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	q := url.Values{"entity": {e.college.DID}, "framework": {fw}, "resource": {nurse}}.Encode()
	// The question itself is answered, in 2024 and now.
	if d := e.trust("&at=2024-06-01T00:00:00Z"); !d.Authorized {
		t.Fatalf("in 2024: %+v", d)
	}
	for _, tc := range []struct{ path, words string }{
		{"/v1/trust?" + q + "&at=2024-06-01T00:00:00Z%zz", `"at"|does not decode`},
		{"/v1/trust?" + q + "&as_of=7%zz", `"as_of"|does not decode`},
		{"/v1/trust?" + q + "&bogus%zz=1", `"bogus%zz"|does not decode`},
		{"/v1/trust?" + q + "&at=2024-06-01T00:00:00Z;x", "semicolon"},
		{"/v1/trust?" + q + "&at=2024-06-01T00:00:00Z&at=2025-06-01T00:00:00Z", `"at" given 2 times`},
		{"/v1/accreditations?status=revoked%zz", `"status"|does not decode`},
		{"/v1/entities?limit=1&limit=2", `"limit" given 2 times`},
		{"/v1/accreditations?status=active&status=revoked", `"status" given 2 times`},
		{"/v1/log/consistency?from=1&to=3&from=2", `"from" given 2 times`},
		{"/v1/frameworks/" + url.PathEscape(fw) + "?proof=%zz", `"proof"|does not decode`},
		{"/v1/watch?since=1%zz", `"since"|does not decode`},
		{"/metadata?x=1&x=1", `"x" given 2 times`},
	} {
		resp, body := e.get(tc.path)
		refused(t, tc.path, resp, body, "bad_request", strings.Split(tc.words, "|")...)
	}
	// A cached answer is served only for the query it was made for.
	for range 2 {
		if resp, body := e.get("/v1/trust?" + q); resp.StatusCode != http.StatusOK {
			t.Fatalf("the plain question: %d %s", resp.StatusCode, body)
		}
	}
	resp, body := e.get("/v1/trust?" + q + "&entity=did:web:other.example")
	refused(t, "the cached question asked with a second entity", resp, body, "bad_request", `"entity" given 2 times`)
}

// TestSingleRecordReadsRefuseUnknownParameters: the reads of one record
// (a framework, an entity, an accreditation, an operation) refuse a
// parameter they do not take, as listings do: as_of in particular, which
// only trust questions take, is not silently ignored.
func TestSingleRecordReadsRefuseUnknownParameters(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	ok := []string{
		"/v1/frameworks/" + url.PathEscape(fw),
		"/v1/entities/" + url.PathEscape(e.college.DID),
		"/v1/accreditations/" + url.PathEscape(e.colAcc),
		"/v1/operations/" + strconv.FormatUint(e.n.State.AppliedIndex(), 10),
	}
	for _, path := range ok {
		if resp, body := e.get(path + "?consistency=local"); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		for _, bad := range []string{"as_of=3", "bogus=1"} {
			resp, body := e.get(path + "?" + bad)
			name, _, _ := strings.Cut(bad, "=")
			refused(t, path+"?"+bad, resp, body, "bad_request", `unknown query parameter "`+name+`"`)
		}
	}
	for _, path := range ok[:3] {
		if resp, body := e.get(path + "?proof=false"); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s?proof=false: %d %s", path, resp.StatusCode, body)
		}
	}
}

// TestWatchFromPastTheLogIsRefused: a stream asked to start after an index
// the registry has not committed (a Last-Event-ID from another registry, a
// typo) is refused with 400 naming where the index came from, instead of
// waiting in silence for indexes that may never come; a stream from the
// end of the node's log opens and delivers the next write.
func TestWatchFromPastTheLogIsRefused(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	applied := e.n.State.AppliedIndex()
	past := strconv.FormatUint(applied+1000, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp := e.openWatch(ctx, "?since="+past, nil)
	body := make([]byte, 4096)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	refused(t, "since "+past, resp, body[:n], "bad_request", "since "+past, "last committed index")
	_, resp = e.openWatch(ctx, "", http.Header{"Last-Event-Id": {past}})
	n, _ = resp.Body.Read(body)
	resp.Body.Close()
	refused(t, "Last-Event-ID "+past, resp, body[:n], "bad_request", "Last-Event-ID "+past)

	// The end of the node's raft log (raft's own entries may lie past the
	// last operation) is no error: the stream opens there.
	st := e.n.Status().(api.NodeStatus)
	end := max(applied, st.CommitIndex, st.LastLogIndex)
	t.Logf("applied %d, commit %d, last log %d", applied, st.CommitIndex, st.LastLogIndex)
	events, resp := e.openWatch(ctx, "?since="+strconv.FormatUint(end, 10), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("since the end of the log: %d", resp.StatusCode)
	}
	other, _ := record.GenerateKey(record.KeyEd25519)
	res := e.mustSubmit(e.sign(e.qa, record.OpAccredit, map[string]any{"framework": fw, "accreditor": e.qa.DID, "subject": other.DID,
		"action": "issue", "resources": []string{nurse}, "parent": e.qaAcc, "validFrom": "2022-09-01T00:00:00Z"}))
	if ev := next(t, events); ev.id != strconv.FormatUint(res.Index, 10) {
		t.Fatalf("the stream's first event is %q, want the write at %d", ev.id, res.Index)
	}
}

// TestQuestionBodiesMeanOneThing: a POST /v1/trust batch or a TRQP query
// whose JSON encoding/json would read one way and its writer may have
// meant another (a member twice, a member in another case, a second value
// after the first) is refused with 400; the same questions written plainly
// are answered.
func TestQuestionBodiesMeanOneThing(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	question := `{"entity":"` + e.college.DID + `","framework":"` + fw + `","resource":"` + nurse + `"}`
	post := func(path, body string) (*http.Response, []byte) { return e.call(http.MethodPost, path, body) }
	if resp, body := post("/v1/trust", "["+question+"]"); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"authorized":true`) {
		t.Fatalf("a plain batch: %d %s", resp.StatusCode, body)
	}
	twice := `{"entity":"` + e.college.DID + `","framework":"` + fw + `","resource":"` + nurse + `","entity":"did:web:other.example"}`
	upper := `{"Entity":"` + e.college.DID + `","framework":"` + fw + `","resource":"` + nurse + `"}`
	for _, tc := range []struct{ body, word string }{
		{"[" + question + "] trailing", "trailing data"},
		{"[" + question + "][" + question + "]", "trailing data"},
		{"[" + twice + "]", "entity"},
		{"[" + upper + "]", "Entity"},
	} {
		resp, body := post("/v1/trust", tc.body)
		refused(t, tc.body, resp, body, "bad_request", tc.word)
	}
	trqp := trqpBody(e.college.DID, fw, "issue", nurse, "")
	if resp, body := post("/authorization", trqp); resp.StatusCode != http.StatusOK {
		t.Fatalf("a plain TRQP query: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct{ body, word string }{
		{strings.TrimSuffix(trqp, "}") + `,"entity_id":"did:web:other.example"}`, "entity_id"},
		{strings.Replace(trqp, `"resource"`, `"Resource"`, 1), "Resource"},
	} {
		resp, body := post("/authorization", tc.body)
		refused(t, tc.body, resp, body, "bad_request", tc.word)
	}
	// TRQP's context and extension members are free-form strings: line
	// breaks and other control characters in them are the asker's.
	for _, extra := range []string{`"context":{"note":"a\nb"}`, `"context":{"x":"a\u0085b"}`, `"ext":{"k":"v\tw"}`} {
		b := strings.TrimSuffix(trqp, "}") + "," + extra + "}"
		if resp, body := post("/authorization", b); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", b, resp.StatusCode, body)
		}
	}
}

// TestAsOfPastTheAppliedIndexWithProof: a trust question as_of an index the
// node has not applied is refused alike with and without proof=true (400
// bad_query), not told to retry as a proof waiting for its checkpoint is.
func TestAsOfPastTheAppliedIndexWithProof(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	q := url.Values{"entity": {e.college.DID}, "framework": {fw}, "resource": {nurse}}.Encode()
	past := strconv.FormatUint(e.n.State.AppliedIndex()+1000, 10)
	for _, extra := range []string{"", "&proof=true"} {
		resp, body := e.get("/v1/trust?" + q + "&as_of=" + past + extra)
		refused(t, "as_of "+past+extra, resp, body, "bad_query", "as_of "+past, "beyond the applied index")
	}
}

// TestMoreBadInputGetsClearErrors: an oversized question body is a 413
// that says "request body", not "operation"; an accreditation listing
// filtered by an action no accreditation has is a 400 as an unknown
// status is; a TIR issuer that is no DID is a 400 on the 501 endpoints
// too.
func TestMoreBadInputGetsClearErrors(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	big := "[" + strings.Repeat(" ", 4<<20) + "]" // past any body bound
	for _, path := range []string{"/v1/trust", "/authorization"} {
		resp, body := e.call(http.MethodPost, path, big)
		var p api.Problem
		_ = json.Unmarshal(body, &p)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.HasPrefix(p.Detail, "request body too large: body over") {
			t.Fatalf("%s, %d bytes: %d %s", path, len(big), resp.StatusCode, body)
		}
	}
	resp, body := e.get("/v1/accreditations?action=foo")
	refused(t, "action=foo", resp, body, "bad_query", `action "foo" must be issue or accredit`)
	for _, action := range []string{"issue", "accredit"} {
		if resp, body := e.get("/v1/accreditations?action=" + action); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"action":"`+action+`"`) {
			t.Fatalf("action=%s: %d %s", action, resp.StatusCode, body)
		}
	}
	for _, path := range []string{"/v5/issuers/not-a-did/proxies/x", "/v5/issuers/not-a-did/proxies", "/v4/issuers/not-a-did/proxies/x/y"} {
		resp, body := e.get("/trusted-issuers-registry" + path)
		refused(t, path, resp, body, "bad_request", `issuer "not-a-did" is not a DID`)
	}
	if resp, body := e.get("/trusted-issuers-registry/v5/issuers/" + url.PathEscape(e.college.DID) + "/proxies/x"); resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("a DID's proxy: %d %s", resp.StatusCode, body)
	}
}

// TestMalformedChunkedBodyIsBadRequest: a request body that is not valid
// chunked encoding is a 400 on every route that reads a body, as on
// POST /v1/operations; only a body over the bound is a 413. The batch
// question and the TRQP routes once answered 413 "body over N bytes" for
// a body of a few bytes.
func TestMalformedChunkedBodyIsBadRequest(t *testing.T) {
	e := mustNewEnv(t)
	host := strings.TrimPrefix(e.n.GatewayURL(), "http://")
	for _, path := range []string{"/v1/trust", "/authorization", "/recognition", "/v1/operations"} {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		// "zz" is no chunk size.
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", path, host)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		c.Close()
		var p api.Problem
		_ = json.Unmarshal(body, &p)
		if resp.StatusCode != http.StatusBadRequest || p.Type != "urn:trustreg:problem:bad_request" {
			t.Errorf("%s: a malformed chunked body answered %d, want 400 bad_request: %s", path, resp.StatusCode, body)
		}
	}
}

// TestTimesNotAfterYearOneAreRefused: the registry reads the first instant
// of year 1 (Go's zero time) as "no time given", so a question about it
// was answered about now: authorized, and a status list's current version
// with an immutable Cache-Control. Every time a request names must be
// later than 0001-01-01T00:00:00Z; that instant and earlier ones are 400,
// however they are written, on the trust question (GET and the batch),
// TRQP's context.time, the Ayra profile's time and a status list's
// timestamp. A second later is answered as asked.
func TestTimesNotAfterYearOneAreRefused(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	if _, _, err := e.publishList("1", "", make([]byte, record.MinStatusListEntries/8)); err != nil {
		t.Fatal(err)
	}
	const bound = "0001-01-01T00:00:00Z"
	q := url.Values{"entity": {e.college.DID}, "framework": {fw}, "resource": {nurse}}.Encode()
	for _, at := range []string{"0001-01-01T00:00:00Z", "0001-01-01", "0000-12-31T23:00:00-01:00", "0001-01-01T01:00:00+01:00", "0000-06-01T00:00:00Z"} {
		resp, body := e.get("/v1/trust?" + q + "&at=" + url.QueryEscape(at))
		refused(t, "at="+at, resp, body, "bad_request", bound)
		resp, body = e.call(http.MethodPost, "/v1/trust", `[{"entity":"`+e.college.DID+`","framework":"`+fw+`","resource":"`+nurse+`","at":"`+at+`"}]`)
		refused(t, "a batch at "+at, resp, body, "bad_request", bound, "question 0")
	}
	for _, path := range []string{"/authorization", "/recognition"} {
		resp, body := e.call(http.MethodPost, path, trqpBody(e.college.DID, fw, "issue", nurse, `{"time":"`+bound+`"}`))
		refused(t, path+" context.time", resp, body, "bad_request", bound)
	}
	resp, body := e.get("/ecosystems/" + url.PathEscape(fw) + "/recognitions?time=" + bound)
	refused(t, "Ayra time", resp, body, "bad_request", bound)
	base := "/v1/status-lists/" + url.PathEscape(e.college.DID) + "/1"
	for _, path := range []string{base, base + "/record", base + "/entries/0?statusPurpose=revocation"} {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		resp, body := e.get(path + sep + "timestamp=" + bound)
		var p api.Problem
		_ = json.Unmarshal(body, &p)
		if resp.StatusCode != http.StatusBadRequest || p.Type != "https://www.w3.org/ns/credentials/status-list#RANGE_ERROR" || !strings.Contains(p.Detail, bound) {
			t.Errorf("%s at %s: %d (Cache-Control %q), want 400 RANGE_ERROR: %s", path, bound, resp.StatusCode, resp.Header.Get("Cache-Control"), body)
		}
	}
	// The next second is a time like any other: before the college's
	// accreditation, so not yet valid, answered at that second.
	d := e.trust("&at=0001-01-01T00:00:01Z")
	if d.Authorized || d.Reason != record.ReasonNotYetValid || !d.At.Equal(time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)) {
		t.Errorf("at 0001-01-01T00:00:01Z: authorized=%v %s at %s, want not_yet_valid then", d.Authorized, d.Reason, d.At)
	}
}

// TestOperationalReadsTakeTheirParametersOnly: on /v1/status and
// /v1/version an unknown parameter is 400, as on every read; they take
// consistency and min_index, which clients send with every read, and
// answer at once (the node as it is, even past the applied index asked
// for: trustctl asks with consistency=linearizable, and most wants the
// status of a node without a leader). The log's routes (/v1/checkpoint,
// /v1/log/...) serve the latest cosigned checkpoint whatever the node has
// applied, so they take neither: both are 400 there, as any unknown one.
// The probes, /metrics, the API description and the explorer's page are
// no reads of the registry and ignore parameters. The reads above once
// ignored every parameter, though docs/API.md said they refused unknown
// ones.
func TestOperationalReadsTakeTheirParametersOnly(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	for _, path := range []string{"/v1/status?bogus=1", "/v1/version?bogus=1", "/v1/checkpoint?bogus=1", "/v1/log/checkpoint?bogus=1",
		"/v1/checkpoint?consistency=local", "/v1/log/checkpoint?min_index=1", "/v1/log/tile/0/000?consistency=local", "/v1/log/consistency?from=1&to=2&min_index=1"} {
		resp, body := e.get(path)
		refused(t, path, resp, body, "bad_request", "unknown query parameter")
	}
	for _, path := range []string{"/v1/status?consistency=linearizable", "/v1/version?min_index=1", "/healthz?probe=1", "/readyz?probe=1", "/metrics?x=1", "/openapi.json?v=2", "/openapi.html?v=2", "/?v=2", "/explorer/app.js?v=2"} {
		if resp, body := e.get(path); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, body := e.get("/v1/status?min_index=1000000"); resp.StatusCode != http.StatusOK {
		t.Errorf("/v1/status?min_index past the applied index: %d %s, want the status at once", resp.StatusCode, body)
	}
}
