package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway"
)

// TestListingsTakeTurns: while every turn of the listings and exports is
// taken, one waits Config.MaxWait and is refused with 503 busy and
// Retry-After, and a trust question is answered all the same; once the
// turns are given back the listing is answered.
func TestListingsTakeTurns(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	g, err := gateway.New(gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n, MaxWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	release := g.HoldScans()
	for _, path := range []string{"/v1/export/dcc", "/v1/accreditations?status=revoked", "/v1/entities?q=college"} {
		resp, body := get(path)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "busy") {
			t.Fatalf("GET %s while the turns are taken: %d %q (Retry-After %q), want 503 busy", path, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}
	q := "/v1/trust?entity=" + url.QueryEscape(e.college.DID) + "&framework=" + url.QueryEscape(fw) + "&action=issue&resource=" + url.QueryEscape(nurse)
	if resp, body := get(q); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"authorized":true`) {
		t.Fatalf("a trust question while the turns are taken: %d %s", resp.StatusCode, body)
	}
	release()
	if resp, body := get("/v1/export/dcc"); resp.StatusCode != http.StatusOK || !strings.Contains(body, e.college.DID) {
		t.Fatalf("the export once the turns are back: %d %s", resp.StatusCode, body)
	}
}
