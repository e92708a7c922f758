package gateway

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes keeps openapi.json in step with the route table:
// every route is documented and every documented operation is routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q, want 3.x", doc.OpenAPI)
	}
	var documented, routed []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, r := range routes {
		routed = append(routed, r.method+" "+r.pattern)
	}
	slices.Sort(documented)
	slices.Sort(routed)
	if !slices.Equal(documented, routed) {
		t.Fatalf("openapi.json and the routes differ:\ndocumented %v\nrouted     %v", documented, routed)
	}
	// Every path parameter of a route is declared in the document.
	param := regexp.MustCompile(`\{(\w+)\}`)
	for _, r := range routes {
		var op struct {
			Parameters []struct{ Name, In string } `json:"parameters"`
		}
		if err := json.Unmarshal(doc.Paths[r.pattern][strings.ToLower(r.method)], &op); err != nil {
			t.Fatal(err)
		}
		for _, m := range param.FindAllStringSubmatch(r.pattern, -1) {
			if !slices.ContainsFunc(op.Parameters, func(p struct{ Name, In string }) bool { return p.Name == m[1] && p.In == "path" }) {
				t.Errorf("%s %s: path parameter %s is not documented", r.method, r.pattern, m[1])
			}
		}
	}
}
