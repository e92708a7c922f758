package gateway

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// registered lists the operations a router serves, as "METHOD /path" in
// OpenAPI's spelling: the HEAD that ServeMux adds to each GET is left out,
// the pattern "/{$}" (the root alone) is "/" and {name...} is {name}.
func registered(rt *router) []string {
	var out []string
	for pattern, methods := range rt.allow {
		if pattern == "/{$}" {
			pattern = "/"
		}
		// A wildcard for the rest of the path ({path...}) is one
		// parameter in OpenAPI's spelling.
		pattern = strings.ReplaceAll(pattern, "...}", "}")
		for _, m := range methods {
			if m != http.MethodHead {
				out = append(out, m+" "+pattern)
			}
		}
	}
	return out
}

// TestOpenAPIMatchesRoutes keeps openapi.json in step with every route the
// gateway and the admin API register (the route table, the explorer, the
// admin routes): each is documented and each documented operation is
// served. TestOpenAPIValidatesEveryRoute checks an answer of each.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Fatalf("openapi version %q, want 3.0.x", doc.OpenAPI)
	}
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	routed := append(registered(s.routes), registered(NewAdmin(nil, "", nil).routes)...)
	var documented []string
	for path, item := range doc.Paths {
		for method := range item {
			if method == "servers" || method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(documented)
	slices.Sort(routed)
	for _, r := range routed {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is served and not in openapi.json", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routed, d) {
			t.Errorf("%s is in openapi.json and not served", d)
		}
	}
	// Every path parameter of a route is declared in the document.
	param := regexp.MustCompile(`\{(\w+)\}`)
	for _, r := range routed {
		method, pattern, _ := strings.Cut(r, " ")
		var op struct {
			Parameters []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
		}
		raw, ok := doc.Paths[pattern][strings.ToLower(method)]
		if !ok {
			continue // reported above
		}
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		for _, m := range param.FindAllStringSubmatch(pattern, -1) {
			if !slices.ContainsFunc(op.Parameters, func(p struct {
				Name string `json:"name"`
				In   string `json:"in"`
			}) bool {
				return p.Name == m[1] && p.In == "path"
			}) {
				t.Errorf("%s: path parameter %s is not documented", r, m[1])
			}
		}
	}
}

// TestOpenAPIDeclaresTheLagBesideTheIndex: every answer read from the
// registry's state (those that declare IndexHeader) also declares
// LagHeader, which the gateway sends with every answer, as the shared
// required integer header; TestOpenAPIValidatesEveryRoute then checks the
// real answers carry it.
func TestOpenAPIDeclaresTheLagBesideTheIndex(t *testing.T) {
	type header struct {
		Ref      string `json:"$ref"`
		Required bool   `json:"required"`
		Schema   struct {
			Type    string   `json:"type"`
			Minimum *float64 `json:"minimum"`
		} `json:"schema"`
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
		// Components.Headers: the shared headers by name.
		Components struct {
			Headers map[string]header `json:"headers"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	const lagRef = "#/components/headers/XTrustregLag"
	lag, ok := doc.Components.Headers["XTrustregLag"]
	if !ok || !lag.Required || lag.Schema.Type != "integer" || lag.Schema.Minimum == nil || *lag.Schema.Minimum != 0 {
		t.Fatalf("components.headers.XTrustregLag: %+v (present %v), want a required integer from 0", lag, ok)
	}
	checked := 0
	for path, item := range doc.Paths {
		for method, raw := range item {
			var op struct {
				Responses map[string]struct {
					Headers map[string]header `json:"headers"`
				} `json:"responses"`
			}
			if json.Unmarshal(raw, &op) != nil {
				continue // servers, parameters
			}
			for status, resp := range op.Responses {
				if _, ok := resp.Headers[IndexHeader]; !ok {
					continue
				}
				checked++
				if got := resp.Headers[LagHeader].Ref; got != lagRef {
					t.Errorf("%s %s %s declares %s and not %s (%q, want $ref %s)", strings.ToUpper(method), path, status, IndexHeader, LagHeader, got, lagRef)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatalf("no response of openapi.json declares %s", IndexHeader)
	}
}
