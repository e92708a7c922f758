package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

// TestExplorerIsServed: GET / is the registry explorer's page, and its
// script and style sheet are served from the binary under /explorer/,
// with the gateway's CORS header, an ETag answered with 304, a short
// Cache-Control and a Content-Security-Policy that allows nothing from
// elsewhere. Other paths are still the JSON 404 problem.
func TestExplorerIsServed(t *testing.T) {
	e := mustNewEnv(t)
	base := e.n.GatewayURL()
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script src="/explorer/app.js" defer></script>`},
		{"/explorer/app.js", "text/javascript; charset=utf-8", `new EventSource("/v1/watch?since="`},
		{"/explorer/style.css", "text/css; charset=utf-8", "@media (max-width: 40rem)"},
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != http.StatusOK || h.Get("Content-Type") != tc.contentType || !strings.Contains(string(body), tc.contains) {
			t.Fatalf("GET %s: %d %q, want 200 %q with %q in it", tc.path, resp.StatusCode, h.Get("Content-Type"), tc.contentType, tc.contains)
		}
		if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Cache-Control") != "public, max-age=5" || h.Get("ETag") == "" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("GET %s headers: %v", tc.path, h)
		}
		req, _ := http.NewRequest(http.MethodGet, base+tc.path, nil)
		req.Header.Set("If-None-Match", h.Get("ETag"))
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("GET %s with its ETag: %d, want 304", tc.path, resp.StatusCode)
		}
	}
	// The page is read, not posted to: 405 naming what is served.
	resp, err := http.Post(base+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /: %d, Allow %q; want 405, Allow GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
	for _, path := range []string{"/explorer/missing.js", "/explorer/index.html", "/nothing-here"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("GET %s: %d %q, want a 404 problem", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

// TestSearchEntitiesAndFrameworks: GET /v1/entities?q= and
// GET /v1/frameworks?q= find records by part of a DID or name, without
// regard to case, paged; a search text that is too long is a 400.
func TestSearchEntitiesAndFrameworks(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	e.mustSubmit(e.sign(e.qa, record.OpRegisterEntity, map[string]any{"id": "did:web:amazing.example", "name": "Amazing Community College"}))
	e.mustSubmit(e.sign(e.qa, record.OpRegisterEntity, map[string]any{"id": "did:web:northern.example", "name": "Northern College of Nursing"}))
	base := e.n.GatewayURL()
	get := func(path string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, v
	}
	ids := func(v map[string]any) []string {
		var out []string
		items, _ := v["items"].([]any)
		for _, it := range items {
			out = append(out, it.(map[string]any)["id"].(string))
		}
		return out
	}
	code, v := get("/v1/entities?q=" + url.QueryEscape("AMAZING"))
	if got := ids(v); code != 200 || len(got) != 1 || got[0] != "did:web:amazing.example" {
		t.Fatalf("q=AMAZING: %d %v", code, v)
	}
	code, v = get("/v1/entities?q=college&limit=1")
	if got := ids(v); code != 200 || len(got) != 1 || got[0] != "did:web:amazing.example" || !strings.Contains(v["next"].(string), "q=college") {
		t.Fatalf("q=college&limit=1: %d %v", code, v)
	}
	code, v = get(v["next"].(string))
	if got := ids(v); code != 200 || len(got) != 1 || got[0] != "did:web:northern.example" || v["next"] != nil {
		t.Fatalf("the next page: %d %v", code, v)
	}
	code, v = get("/v1/frameworks?q=" + url.QueryEscape("nurs"))
	if got := ids(v); code != 200 || len(got) != 1 || got[0] != fw {
		t.Fatalf("frameworks q=nurs: %d %v", code, v)
	}
	code, v = get("/v1/frameworks?q=law")
	if got := ids(v); code != 200 || len(got) != 0 {
		t.Fatalf("frameworks q=law: %d %v", code, v)
	}
	code, v = get("/v1/entities?q=" + strings.Repeat("x", registry.MaxSearchQuery+1))
	if code != 400 || !strings.Contains(v["detail"].(string), "longer than 200") {
		t.Fatalf("a too long q: %d %v", code, v)
	}
	code, v = get("/v1/entities?name=college")
	if code != 400 || !strings.Contains(v["detail"].(string), `unknown query parameter "name"`) {
		t.Fatalf("an unknown parameter: %d %v", code, v)
	}
}
