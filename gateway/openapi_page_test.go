package gateway

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestOpenAPIPageListsEveryOperation: GET /openapi.html is an HTML page,
// served with the explorer's headers and revalidated by its ETag, that
// shows every operation of openapi.json (method and path, with its
// operationId as anchor) and every schema, and links back to the
// explorer and to the JSON.
func TestOpenAPIPageListsEveryOperation(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	get := func(header http.Header) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/openapi.html", nil)
		for k, v := range header {
			req.Header[k] = v
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		return w
	}
	w := get(nil)
	page := w.Body.String()
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /openapi.html: %d %q %.300s", w.Code, w.Header().Get("Content-Type"), page)
	}
	if w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("Cache-Control") != cacheShort {
		t.Errorf("headers %v", w.Header())
	}
	if again := get(http.Header{"If-None-Match": {w.Header().Get("ETag")}}); again.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", again.Code)
	}
	for _, want := range []string{`lang="en"`, `href="/"`, `href="/openapi.json"`, `href="/explorer/openapi.css"`, `<nav aria-label="Operations">`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page has no %s", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Error("the page has a script; it is meant to need none")
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, item := range doc.Paths {
		for method, raw := range item {
			if method == "servers" || method == "parameters" {
				continue
			}
			var op struct {
				OperationID string `json:"operationId"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			n++
			heading := `<span class="method">` + strings.ToUpper(method) + `</span> ` + template.HTMLEscapeString(path) + `</code>`
			if !strings.Contains(page, heading) {
				t.Errorf("%s %s: not on the page", strings.ToUpper(method), path)
			}
			if op.OperationID == "" || !strings.Contains(page, `id="op-`+op.OperationID+`"`) || !strings.Contains(page, `href="#op-`+op.OperationID+`"`) {
				t.Errorf("%s %s: operation %q has no anchor and link", method, path, op.OperationID)
			}
		}
	}
	for name := range doc.Components.Schemas {
		if !strings.Contains(page, `id="schema-`+name+`"`) {
			t.Errorf("schema %s: not on the page", name)
		}
	}
	if n < 50 {
		t.Errorf("%d operations in openapi.json: the page test read too few", n)
	}
	// The explorer links to it.
	ex := httptest.NewRecorder()
	s.ServeHTTP(ex, httptest.NewRequest(http.MethodGet, "/", nil))
	if !strings.Contains(ex.Body.String(), `href="/openapi.html"`) {
		t.Error("the explorer does not link to /openapi.html")
	}
	css := httptest.NewRecorder()
	s.ServeHTTP(css, httptest.NewRequest(http.MethodGet, "/explorer/openapi.css", nil))
	if css.Code != http.StatusOK {
		t.Errorf("GET /explorer/openapi.css: %d", css.Code)
	}
}
