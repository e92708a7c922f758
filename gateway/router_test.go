package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/gateway/api"
)

// TestWrongMethodIs405WithAllowOnEveryRoute sends, to every route of the
// gateway and of the admin API, each method the route does not serve, and
// expects 405 with an Allow header naming exactly the methods it does
// serve, as a problem document. No handler runs for these, so the servers
// need no registry or cluster behind them.
func TestWrongMethodIs405WithAllowOnEveryRoute(t *testing.T) {
	gw, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	admin := NewAdmin(nil, "", nil)
	param := regexp.MustCompile(`\{[^}]*\}`)
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	checked := 0
	for _, srv := range []struct {
		name string
		h    http.Handler
		rt   *router
	}{{"gateway", gw, gw.routes}, {"admin", admin, admin.routes}} {
		if len(srv.rt.allow) == 0 {
			t.Fatalf("%s: no routes", srv.name)
		}
		for pattern, allowed := range srv.rt.allow {
			path := param.ReplaceAllStringFunc(pattern, func(p string) string {
				if p == "{$}" {
					return ""
				}
				return "x"
			})
			for _, m := range methods {
				if slices.Contains(allowed, m) {
					continue
				}
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(m, path, nil)
				req.Host, req.RemoteAddr = "127.0.0.1:8080", "127.0.0.1:50000" // the admin API answers loopback only
				srv.h.ServeHTTP(rec, req)
				var p api.Problem
				_ = json.Unmarshal(rec.Body.Bytes(), &p)
				if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != strings.Join(allowed, ", ") ||
					(m != "HEAD" && (rec.Header().Get("Content-Type") != "application/problem+json" || p.Status != http.StatusMethodNotAllowed)) {
					t.Errorf("%s %s %s (route %s): %d, Allow %q, %s; want 405, Allow %q", srv.name, m, path, pattern, rec.Code,
						rec.Header().Get("Allow"), rec.Body.Bytes(), strings.Join(allowed, ", "))
				}
				checked++
			}
		}
	}
	// Every route of the table is among them.
	for _, r := range routes {
		if _, ok := gw.routes.allow[r.pattern]; !ok {
			t.Errorf("route %s %s is not registered", r.method, r.pattern)
		}
	}
	if checked == 0 {
		t.Fatal("no request checked")
	}
}
