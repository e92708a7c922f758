package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The published JSON schemas of TRQP v2 and of the Ayra TRQP profile,
// written out rule by rule (required members, types, enums, formats,
// lengths, closed objects), with the file and commit each comes from, and
// a checker for the subset of JSON Schema they use. The rules are ours,
// read from the published files; the files are not copied here.
//
// Sources:
//   - ToIP TRQP v2: github.com/trustoverip/tswg-trust-registry-protocol at
//     commit 0b6c24b6436a4ec9884b67c3391c986a6dc787ff (2026-03-05; the
//     schema directory last changed in 1b1ee0511254718ec1df55df698bf0eac3a96cf3),
//     specification/v2/core/schema/trqp_{authorization,recognition}_{request,response}.schema.json,
//     and the HTTPS binding, specification/v2/core/https_binding.md.
//   - Ayra TRQP profile: github.com/ayraforum/ayra-trust-registry-resources at
//     commit 2691532ad6420b1d90374f314fbf0acf30768180 (2026-07-10):
//     trqp/schema/*.schema.json, schema/ayra_metadata.schema.json, and the
//     components of trqp_ayra_profile_swagger.yaml (Ayra TRQP Profile API
//     1.0.0), spec/profile.md.

// rule is one JSON Schema (the subset the published schemas use).
type rule struct {
	Type       string // object, string, boolean, integer, array; "" any
	Required   []string
	Props      map[string]*rule
	Additional *rule // additionalProperties as a schema; nil: any
	Closed     bool  // additionalProperties: false
	MinLength  int
	MaxLength  int // 0: none
	Format     string
	// BlankOK: a blank string passes the format too, where the
	// schema's description says what blank means (context.time: "If
	// blank, uses current server time").
	BlankOK  bool
	Enum     []string
	Items    *rule
	MinItems int
}

// schema names a rule with where it was published.
type schema struct {
	source string
	rule   *rule
}

var (
	str      = &rule{Type: "string"}
	nonEmpty = &rule{Type: "string", MinLength: 1}
	dateTime = &rule{Type: "string", Format: "date-time"}
	// queryTime is a request's context.time: a date-time, or blank for now.
	queryTime   = &rule{Type: "string", Format: "date-time", BlankOK: true}
	boolean     = &rule{Type: "boolean"}
	integer     = &rule{Type: "integer"}
	stringArray = &rule{Type: "array", Items: str}
)

// toipContext is context in the ToIP v2 schemas: an object of strings;
// in requests time is a date-time; authorization adds locator.
func toipContext(timeRule *rule, locator bool) *rule {
	r := &rule{Type: "object", Props: map[string]*rule{"time": timeRule}, Additional: str}
	if locator {
		r.Props["locator"] = str
	}
	return r
}

const (
	toipSchemas = "tswg-trust-registry-protocol@0b6c24b6 specification/v2/core/schema/"
	ayraRepo    = "ayra-trust-registry-resources@2691532a "
)

// ToIP TRQP v2.
var (
	toipAuthorizationRequest = schema{toipSchemas + "trqp_authorization_request.schema.json", &rule{
		Type: "object", Required: []string{"entity_id", "action", "resource", "authority_id"},
		Props: map[string]*rule{"entity_id": str, "authority_id": str, "action": str, "resource": str, "context": toipContext(queryTime, true)},
	}}
	toipAuthorizationResponse = schema{toipSchemas + "trqp_authorization_response.schema.json", &rule{
		Type: "object", Required: []string{"entity_id", "action", "resource", "authority_id", "time_evaluated", "authorized"},
		Props: map[string]*rule{"entity_id": str, "authority_id": str, "action": str, "resource": str, "authorized": boolean,
			"time_requested": dateTime, "time_evaluated": dateTime, "message": str, "context": toipContext(str, true)},
	}}
	toipRecognitionRequest = schema{toipSchemas + "trqp_recognition_request.schema.json", &rule{
		Type: "object", Required: []string{"entity_id", "action", "resource", "authority_id"},
		Props: map[string]*rule{"entity_id": str, "authority_id": str, "action": str, "resource": str, "context": toipContext(queryTime, false)},
	}}
	toipRecognitionResponse = schema{toipSchemas + "trqp_recognition_response.schema.json", &rule{
		Type: "object", Required: []string{"entity_id", "action", "resource", "authority_id", "time_evaluated", "recognized"},
		Props: map[string]*rule{"entity_id": str, "authority_id": str, "action": str, "resource": str, "recognized": boolean,
			"time_requested": dateTime, "time_evaluated": dateTime, "message": str, "context": toipContext(str, false)},
	}}
)

// ayraContext is context in the Ayra schemas: strings, time a date-time
// (in a request also blank, as the description says).
var (
	ayraQueryContext = &rule{Type: "object", Props: map[string]*rule{"time": queryTime}, Additional: str}
	ayraContext      = &rule{Type: "object", Props: map[string]*rule{"time": dateTime}, Additional: str}
)

// The Ayra profile's TRQP schemas (trqp/schema/) and the profile API's
// components, which add minLength 1 to every identifier.
var (
	ayraAuthorizationRequest = schema{ayraRepo + "trqp/schema/trqp_authorization_request.schema.json + swagger TrqpAuthorizationQuery", &rule{
		Type: "object", Required: []string{"entity_id", "authority_id", "action", "resource"},
		Props: map[string]*rule{"entity_id": nonEmpty, "authority_id": nonEmpty, "action": nonEmpty, "resource": nonEmpty, "context": ayraQueryContext},
	}}
	ayraAuthorizationResponse = schema{ayraRepo + "trqp/schema/trqp_authorization_response.schema.json + swagger TrqpAuthorizationResponse", &rule{
		Type: "object", Required: []string{"entity_id", "authority_id", "action", "resource", "authorized", "time_evaluated"},
		Props: map[string]*rule{"entity_id": nonEmpty, "authority_id": nonEmpty, "action": nonEmpty, "resource": nonEmpty, "authorized": boolean,
			"time_requested": dateTime, "time_evaluated": dateTime, "message": str, "context": ayraContext},
	}}
	ayraRecognitionRequest = schema{ayraRepo + "trqp/schema/trqp_recognition_request.schema.json + swagger TrqpRecognitionQuery", &rule{
		Type: "object", Required: []string{"entity_id", "authority_id", "action", "resource"},
		Props: map[string]*rule{"entity_id": nonEmpty, "authority_id": nonEmpty, "action": nonEmpty, "resource": nonEmpty, "context": ayraQueryContext},
	}}
	ayraRecognitionResponse = schema{ayraRepo + "trqp/schema/trqp_recognition_response.schema.json + swagger TrqpRecognitionResponse", &rule{
		Type: "object", Required: []string{"entity_id", "authority_id", "action", "resource", "recognized", "time_evaluated"},
		Props: map[string]*rule{"entity_id": nonEmpty, "authority_id": nonEmpty, "action": nonEmpty, "resource": nonEmpty, "recognized": boolean,
			"time_requested": dateTime, "time_evaluated": dateTime, "message": str, "context": ayraContext},
	}}
	// ProblemDetails (swagger components): type and instance are URIs.
	ayraProblem = schema{ayraRepo + "trqp_ayra_profile_swagger.yaml ProblemDetails", &rule{
		Type: "object",
		Props: map[string]*rule{"type": {Type: "string", Format: "uri"}, "title": str, "status": integer, "detail": str,
			"instance": {Type: "string", Format: "uri"}},
	}}
	// TrustRegistryMetadata (swagger) and schema/ayra_metadata.schema.json:
	// the same rules, closed.
	ayraMetadata = schema{ayraRepo + "schema/ayra_metadata.schema.json + swagger TrustRegistryMetadata", &rule{
		Type: "object", Required: []string{"id", "name", "description"}, Closed: true,
		Props: map[string]*rule{"id": str, "authority_id": str, "governance_framework_id": str, "name": str,
			"description":           {Type: "string", MaxLength: 4096},
			"controllers":           {Type: "array", Items: str, MinItems: 1},
			"supported_did_methods": stringArray},
	}}
	ayraEntityList = schema{ayraRepo + "trqp_ayra_profile_swagger.yaml EntityListResponse", &rule{
		Type: "object", Required: []string{"items", "pagination"},
		Props: map[string]*rule{
			"items": {Type: "array", Items: &rule{Type: "object", Required: []string{"entity_id"},
				Props: map[string]*rule{"entity_id": nonEmpty, "name": str, "type": str, "authority_id": str}}},
			"pagination": {Type: "object", Required: []string{"limit", "offset", "total"},
				Props: map[string]*rule{"limit": integer, "offset": integer, "total": integer}},
		},
	}}
	// GET /entities/{entity_id} and /ecosystems/{ecosystem_id}: "a JSON
	// object containing ... information".
	ayraObject = schema{ayraRepo + "trqp_ayra_profile_swagger.yaml getEntityInformation / getEcosystemInformation 200", &rule{Type: "object"}}
	// GET /entities/{entity_id}/authorizations: an array of
	// TrqpAuthorizationResponse.
	ayraAuthorizationList = schema{ayraRepo + "trqp_ayra_profile_swagger.yaml listEntityAuthorizations 200",
		&rule{Type: "array", Items: ayraAuthorizationResponse.rule}}
	// GET /ecosystems/{ecosystem_id}/recognitions: an array of
	// TrqpRecognitionResponse.
	ayraRecognitionList = schema{ayraRepo + "trqp_ayra_profile_swagger.yaml listEcosystemRecognitions 200",
		&rule{Type: "array", Items: ayraRecognitionResponse.rule}}
	// GET /lookups/authorizations: an array of Authorization.
	ayraAuthorizations = schema{ayraRepo + "trqp_ayra_profile_swagger.yaml lookupAuthorizations 200 (Authorization)", &rule{
		Type: "array", Items: &rule{Type: "object", Required: []string{"action", "resource"},
			Props: map[string]*rule{"action": str, "resource": str, "description": str}}}}
)

// violations returns every rule of s that the JSON document doc breaks,
// each as "path: what".
func (s schema) violations(doc []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	var out []string
	s.rule.check("$", v, &out)
	return out
}

func (r *rule) check(path string, v any, out *[]string) {
	bad := func(format string, args ...any) { *out = append(*out, path+": "+fmt.Sprintf(format, args...)) }
	if r.Type != "" && typeOf(v) != r.Type && (r.Type != "number" || typeOf(v) != "integer") {
		bad("is %s, want %s", typeOf(v), r.Type)
		return
	}
	switch v := v.(type) {
	case string:
		if n := utf8.RuneCountInString(v); n < r.MinLength || (r.MaxLength > 0 && n > r.MaxLength) {
			bad("%d characters, want %d to %d", n, r.MinLength, r.MaxLength)
		}
		if len(r.Enum) > 0 && !slices.Contains(r.Enum, v) {
			bad("%q is not one of %v", v, r.Enum)
		}
		if err := checkFormat(r.Format, v); err != nil && (!r.BlankOK || strings.TrimSpace(v) != "") {
			bad("%q: %v", v, err)
		}
	case map[string]any:
		for _, name := range r.Required {
			if _, ok := v[name]; !ok {
				bad("required member %q missing", name)
			}
		}
		for name, m := range v {
			switch p, ok := r.Props[name]; {
			case ok:
				p.check(path+"."+name, m, out)
			case r.Closed:
				bad("member %q not allowed (additionalProperties: false)", name)
			case r.Additional != nil:
				r.Additional.check(path+"."+name, m, out)
			}
		}
	case []any:
		if len(v) < r.MinItems {
			bad("%d items, want at least %d", len(v), r.MinItems)
		}
		if r.Items != nil {
			for i, it := range v {
				r.Items.check(fmt.Sprintf("%s[%d]", path, i), it, out)
			}
		}
	}
}

func typeOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// rfc3339 is RFC 3339 §5.6's date-time, which JSON Schema's "date-time"
// format names.
var rfc3339 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$`)

func checkFormat(format, v string) error {
	switch format {
	case "":
	case "date-time":
		if !rfc3339.MatchString(v) {
			return fmt.Errorf("not an RFC 3339 date-time")
		}
		if _, err := time.Parse(time.RFC3339Nano, strings.ToUpper(v)); err != nil {
			return fmt.Errorf("not an RFC 3339 date-time: %v", err)
		}
	case "uri":
		// RFC 3986 URI: a scheme, then the rest (an absolute URI; a
		// relative reference is a "uri-reference").
		u, err := url.Parse(v)
		if err != nil || u.Scheme == "" {
			return fmt.Errorf("not an absolute URI")
		}
	default:
		return fmt.Errorf("the checker knows no format %q", format)
	}
	return nil
}
