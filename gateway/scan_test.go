package gateway

import "testing"

// TestScanRoutesAreRoutes: every answer that takes turns names a route
// (a misspelt one would silently not take turns).
func TestScanRoutesAreRoutes(t *testing.T) {
	known := map[string]bool{}
	for _, rt := range routes {
		known[rt.method+" "+rt.pattern] = true
	}
	for k := range scanRoutes {
		if !known[k] {
			t.Errorf("scanRoutes names %q, which is no route", k)
		}
	}
	for k := range pastRoutes {
		if !known[k] {
			t.Errorf("pastRoutes names %q, which is no route", k)
		}
	}
}
