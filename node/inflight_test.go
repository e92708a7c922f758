package node

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRequestsAfterCloseBeganGetTheUnavailableProblem(t *testing.T) {
	var f inflight
	served := 0
	h := f.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/status", nil))
	if served != 1 {
		t.Fatalf("before Close: handler ran %d times, want 1", served)
	}
	if left := f.wait(time.Second); left != 0 {
		t.Fatalf("%d calls still counted after every request returned", left)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/trust?entity=x", nil))
	if served != 1 {
		t.Fatal("a request arriving after Close began reached the handler")
	}
	var p struct {
		Type     string
		Status   int
		Instance string
	}
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Content-Type") != "application/problem+json" ||
		rec.Header().Get("Retry-After") == "" || json.Unmarshal(rec.Body.Bytes(), &p) != nil ||
		p.Type != "urn:trustreg:problem:unavailable" || p.Status != 503 || p.Instance != "http://example.com/v1/trust" {
		t.Fatalf("refusal: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if n := f.n.Load(); n != 0 {
		t.Fatalf("the refused request is still counted: %d", n)
	}
}
