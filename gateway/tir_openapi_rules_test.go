package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// The response schemas of EBSI's Trusted Issuers Registry OpenAPI
// documents, written out by us as Go values, each naming where in which
// document it is written:
//
//   - [v5] EBSI, "Trusted Issuers Registry API v5" (OpenAPI 3.1.0,
//     info.version 5.0.0): apis/trusted-issuers-registry-v5/api/openapi.yaml
//     of EBSI's core services (code.europa.eu/ebsi/public/core-services),
//     read from its mirror github.com/oaripay/ebsi-core-services at commit
//     95fa9fcacfcc91258e369cfa609176317a1b6c76 (the release 5.0.0-rc.9
//     document: v5's ?version=latest|deprecated, GET /abi, paged proxies).
//   - [v4] EBSI, "Trusted Issuers Registry API v4" (OpenAPI 3.1.0,
//     info.version 4.0.0): apis/trusted-issuers-registry-v4/api/openapi.yaml
//     of the same repository at commit
//     a623008aa55ffbd5dc2fcca6ef8f37be12cc6c8b.
//
// The documents' schemas use type, properties, items, anyOf, enum,
// format (uri, int32), minimum and maximum; tirSchema has those and
// nothing else. They mark no member required and do not close their
// objects; the examples of every 200 answer carry every member, EBSI's
// clients read them all and EBSI's own tests compare answers strictly, so
// tirSchema requires every member an object schema names and allows no
// other (open and optional relax that where the documents' prose does:
// RFC 9457 problem documents).

// tirSchema is one schema of the documents.
type tirSchema struct {
	src      string // where it is written, e.g. "[v5 #/components/schemas/attribute]"
	typ      string // object, array, string, integer, boolean; "" (no type: any value)
	props    map[string]*tirSchema
	optional []string // members that may be absent
	open     bool     // other members allowed
	items    *tirSchema
	anyOf    []*tirSchema
	enum     []string
	format   string   // "uri" (an absolute URI, RFC 3986), "int32"
	min, max *float64 // minimum, maximum
}

func tirStr() *tirSchema { return &tirSchema{typ: "string"} }
func tirInt() *tirSchema { return &tirSchema{typ: "integer"} }

func tirObj(src string, props map[string]*tirSchema) *tirSchema {
	return &tirSchema{src: src, typ: "object", props: props}
}

// tirPaged is the documents' paged list: {self, items, total, pageSize,
// links}, each operation's 200 schema written inline.
func tirPaged(src string, item *tirSchema, links *tirSchema) *tirSchema {
	return tirObj(src, map[string]*tirSchema{
		"self": tirStr(), "items": {typ: "array", items: item},
		"total": tirInt(), "pageSize": tirInt(), "links": links,
	})
}

// tirDocument is one document's schemas.
type tirDocument struct {
	version string
	// components
	problem, links, attribute, attributeDetails *tirSchema
	// issuer is v5's linked issuer; issuerInline v4's issuer and v5's
	// issuer__deprecated.
	issuer, issuerInline *tirSchema
	// 200 answers of the operations
	issuers, attributes, revisions, issuerAnswer *tirSchema
}

func tirDocuments() map[string]*tirDocument {
	out := map[string]*tirDocument{}
	for _, v := range []string{"v4", "v5"} {
		c := func(name string) string { return fmt.Sprintf("[%s #/components/schemas/%s]", v, name) }
		op := func(path string) string {
			return fmt.Sprintf("[%s #/paths/~1trusted-issuers-registry~1%s%s/get/responses/200]", v, v, strings.ReplaceAll(path, "/", "~1"))
		}
		d := &tirDocument{version: v}
		lo, hi := 400.0, 600.0
		d.problem = tirObj(c("ProblemDetails"), map[string]*tirSchema{
			"type":   {typ: "string", format: "uri"},
			"title":  tirStr(),
			"status": {typ: "integer", format: "int32", min: &lo, max: &hi},
			"detail": tirStr(),
			// "An absolute URI that identifies the specific occurrence".
			"instance": {typ: "string", format: "uri"},
		})
		// RFC 9457 (which ProblemDetails cites) lets a problem carry
		// extension members and leaves every member optional.
		d.problem.open, d.problem.optional = true, []string{"type", "title", "status", "detail", "instance"}
		d.links = tirObj(c("links"), map[string]*tirSchema{"first": tirStr(), "prev": tirStr(), "next": tirStr(), "last": tirStr()})
		if v == "v5" {
			// v5 types every member a string.
			d.attribute = tirObj(c("attribute"), map[string]*tirSchema{
				"hash": tirStr(), "body": tirStr(), "issuerType": tirStr(), "tao": tirStr(), "rootTao": tirStr()})
			d.issuer = tirObj(c("issuer"), map[string]*tirSchema{"did": tirStr(), "attributes": tirStr(), "hasAttributes": {typ: "boolean"}})
			d.issuerInline = tirObj(c("issuer__deprecated"), map[string]*tirSchema{"did": tirStr(), "attributes": {typ: "array", items: d.attribute}})
			d.issuerAnswer = &tirSchema{src: op("/issuers/{did}"), anyOf: []*tirSchema{d.issuer, d.issuerInline}}
			ref := tirObj("[v5 revisions items anyOf[1]]", map[string]*tirSchema{"id": tirStr(), "href": tirStr()})
			d.revisions = tirPaged(op("/issuers/{did}/attributes/{attributeId}/revisions"), &tirSchema{anyOf: []*tirSchema{d.attribute, ref}}, d.links)
		} else {
			// v4 types only hash; body, issuerType, tao and rootTao have
			// a description and no type.
			d.attribute = tirObj(c("attribute"), map[string]*tirSchema{
				"hash": tirStr(), "body": {}, "issuerType": {}, "tao": {}, "rootTao": {}})
			d.issuerInline = tirObj(c("issuer"), map[string]*tirSchema{"did": tirStr(), "attributes": {typ: "array", items: d.attribute}})
			d.issuerAnswer = d.issuerInline
			d.revisions = tirPaged(op("/issuers/{did}/attributes/{attributeId}/revisions"), d.attribute, d.links)
		}
		d.attributeDetails = tirObj(c("attributeDetails"), map[string]*tirSchema{"did": tirStr(), "attribute": d.attribute})
		d.issuers = tirPaged(op("/issuers"), tirObj("", map[string]*tirSchema{"did": tirStr(), "href": tirStr()}), d.links)
		d.attributes = tirPaged(op("/issuers/{did}/attributes"), tirObj("", map[string]*tirSchema{"id": tirStr(), "href": tirStr()}), d.links)
		out[v] = d
	}
	return out
}

// tirDecode decodes a JSON answer keeping numbers as written, so that
// integer can be told from number.
func tirDecode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the JSON value")
	}
	return v, nil
}

// check lists every way v breaks s, each naming the member (at) and the
// schema's source.
func (s *tirSchema) check(v any, at string) []string { return s.checkIn(v, at, "") }

// checkIn is check inside a schema written at src.
func (s *tirSchema) checkIn(v any, at, src string) []string {
	if s.src != "" {
		src = s.src
	}
	fail := func(format string, args ...any) []string {
		return []string{fmt.Sprintf("%s: %s %s", at, fmt.Sprintf(format, args...), src)}
	}
	if len(s.anyOf) > 0 {
		var all []string
		for _, alt := range s.anyOf {
			errs := alt.checkIn(v, at, src)
			if len(errs) == 0 {
				return nil
			}
			all = append(all, errs...)
		}
		return fail("matches no schema of anyOf: %s", strings.Join(all, "; "))
	}
	var errs []string
	switch s.typ {
	case "":
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fail("is %s, not an object", tirKind(v))
		}
		names := make([]string, 0, len(s.props))
		for name := range s.props {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			mv, present := m[name]
			if !present {
				if !slices.Contains(s.optional, name) {
					errs = append(errs, fail("has no member %q", name)...)
				}
				continue
			}
			errs = append(errs, s.props[name].checkIn(mv, at+"."+name, src)...)
		}
		if !s.open {
			for name := range m {
				if _, known := s.props[name]; !known {
					errs = append(errs, fail("has member %q, which the schema does not name", name)...)
				}
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fail("is %s, not an array", tirKind(v))
		}
		for i, item := range a {
			errs = append(errs, s.items.checkIn(item, fmt.Sprintf("%s[%d]", at, i), src)...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fail("is %s, not a string", tirKind(v))
		}
		if s.format == "uri" {
			if u, err := url.Parse(str); err != nil || !u.IsAbs() {
				errs = append(errs, fail("%q is not an absolute URI (format uri)", str)...)
			}
		}
	case "integer":
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil {
			return fail("is %s %v, not an integer", tirKind(v), v)
		}
		if s.format == "int32" && (i < math.MinInt32 || i > math.MaxInt32) {
			errs = append(errs, fail("%d is out of int32", i)...)
		}
		if s.min != nil && float64(i) < *s.min || s.max != nil && float64(i) > *s.max {
			errs = append(errs, fail("%d is outside [%v, %v]", i, *s.min, *s.max)...)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fail("is %s, not a boolean", tirKind(v))
		}
	default:
		panic("tirSchema: type " + s.typ)
	}
	if len(s.enum) > 0 {
		if str, _ := v.(string); !slices.Contains(s.enum, str) {
			errs = append(errs, fail("%v is not one of %v", v, s.enum)...)
		}
	}
	return errs
}

func tirKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}
