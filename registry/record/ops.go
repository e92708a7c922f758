package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Operation types (the payload's "op").
const (
	OpCreateFramework    = "createFramework"
	OpUpdateFramework    = "updateFramework"
	OpAddRootAccreditor  = "addRootAccreditor"
	OpRemoveRootAccredit = "removeRootAccreditor"
	OpRegisterEntity     = "registerEntity"
	OpUpdateEntity       = "updateEntity"
	OpRotateKeys         = "rotateKeys"
	OpAccredit           = "accredit"
	OpSuspend            = "suspend"
	OpReinstate          = "reinstate"
	OpRevoke             = "revoke"
	OpRecognize          = "recognize"
	OpUnrecognize        = "unrecognize"
	OpPublishStatusList  = "publishStatusList"
)

// Header holds the fields every operation payload carries.
type Header struct {
	Op  string `json:"op"`
	IAT int64  `json:"iat"`
}

// CreateFramework creates a framework (governance).
type CreateFramework struct {
	Header
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Description    string   `json:"description,omitempty"`
	URL            string   `json:"url,omitempty"`
	MaxChainLength int      `json:"maxChainLength,omitempty"`
	Roots          []string `json:"roots,omitempty"`
}

// UpdateFramework changes a framework's descriptive fields (governance).
type UpdateFramework struct {
	Header
	ID             string  `json:"id"`
	Name           *string `json:"name,omitempty"`
	Description    *string `json:"description,omitempty"`
	URL            *string `json:"url,omitempty"`
	MaxChainLength *int    `json:"maxChainLength,omitempty"`
}

// RootChange adds or removes a framework's root accreditor (governance).
type RootChange struct {
	Header
	Framework   string     `json:"framework"`
	Accreditor  string     `json:"accreditor"`
	EffectiveAt *time.Time `json:"effectiveAt,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	// Credential, on addRootAccreditor, is the root's EBSI
	// VerifiableAuthorisationForTrustChain: a VC-JWT whose issuer is one of
	// the governance members signing the operation, signed by that member,
	// its subject the accreditor (feature level 5). The EBSI binding
	// serves it as the root's attribute body.
	Credential string `json:"credential,omitempty"`
}

// RegisterEntity registers a DID with its name, metadata and keys.
type RegisterEntity struct {
	Header
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Metadata *EntityMetadata   `json:"metadata,omitempty"`
	Keys     []json.RawMessage `json:"keys,omitempty"`
}

// UpdateEntity changes an entity's name or metadata.
type UpdateEntity struct {
	Header
	ID       string          `json:"id"`
	Name     *string         `json:"name,omitempty"`
	Metadata *EntityMetadata `json:"metadata,omitempty"`
}

// RotateKeys replaces an entity's keys; signed by one of its current keys.
type RotateKeys struct {
	Header
	ID   string            `json:"id"`
	Keys []json.RawMessage `json:"keys"`
}

// Accredit grants an accreditation; signed by the accreditor.
type Accredit struct {
	Header
	Framework     string     `json:"framework"`
	Accreditor    string     `json:"accreditor"`
	Subject       string     `json:"subject"`
	Action        string     `json:"action"`
	Resources     []string   `json:"resources"`
	Jurisdictions []string   `json:"jurisdictions,omitempty"`
	ValidFrom     *time.Time `json:"validFrom,omitempty"`
	ValidUntil    *time.Time `json:"validUntil,omitempty"`
	Parent        string     `json:"parent,omitempty"`
	Evidence      []string   `json:"evidence,omitempty"`
}

// StatusChange suspends, reinstates or revokes an accreditation.
type StatusChange struct {
	Header
	Accreditation string     `json:"accreditation"`
	EffectiveAt   *time.Time `json:"effectiveAt,omitempty"`
	Reason        string     `json:"reason,omitempty"`
}

// RecognitionChange makes a framework recognize, or stop recognizing,
// another (governance).
type RecognitionChange struct {
	Header
	Framework   string     `json:"framework"`
	Recognized  string     `json:"recognized"`
	Resources   []string   `json:"resources,omitempty"`
	EffectiveAt *time.Time `json:"effectiveAt,omitempty"`
}

// PublishStatusList publishes a new version of an issuer's status list: the
// issuer-signed BitstringStatusListCredential (a VC-JWT), replacing the
// version named by Previous (empty for a new list).
type PublishStatusList struct {
	Header
	List       string `json:"list"`
	Previous   string `json:"previous,omitempty"`
	Credential string `json:"credential"`
}

// newBody returns an empty payload struct for an operation type.
func newBody(op string) (any, bool) {
	switch op {
	case OpCreateFramework:
		return &CreateFramework{}, true
	case OpUpdateFramework:
		return &UpdateFramework{}, true
	case OpAddRootAccreditor, OpRemoveRootAccredit:
		return &RootChange{}, true
	case OpRegisterEntity:
		return &RegisterEntity{}, true
	case OpUpdateEntity:
		return &UpdateEntity{}, true
	case OpRotateKeys:
		return &RotateKeys{}, true
	case OpAccredit:
		return &Accredit{}, true
	case OpSuspend, OpReinstate, OpRevoke:
		return &StatusChange{}, true
	case OpRecognize, OpUnrecognize:
		return &RecognitionChange{}, true
	case OpPublishStatusList:
		return &PublishStatusList{}, true
	case OpSetCosigners:
		return &SetCosigners{}, true
	}
	return nil, false
}

// OperationTypes lists every operation type, in a fixed order.
var OperationTypes = []string{
	OpCreateFramework, OpUpdateFramework, OpAddRootAccreditor, OpRemoveRootAccredit,
	OpRegisterEntity, OpUpdateEntity, OpRotateKeys, OpAccredit,
	OpSuspend, OpReinstate, OpRevoke, OpRecognize, OpUnrecognize, OpPublishStatusList,
	OpSetCosigners,
}

// IsGovernance reports whether an operation type needs M of N governance
// signatures.
func IsGovernance(op string) bool {
	switch op {
	case OpCreateFramework, OpUpdateFramework, OpAddRootAccreditor, OpRemoveRootAccredit, OpRecognize, OpUnrecognize, OpSetCosigners:
		return true
	}
	return false
}

// hdr gives every payload struct (they embed Header) access to its header.
func (h *Header) hdr() *Header { return h }

type payloadBody interface{ hdr() *Header }

// decodePayload strictly decodes an operation payload: a single JSON object,
// a known op, an iat, and no unknown fields.
//
// The op decides which struct to decode into, so the strict decoder would
// need a first pass to find it. Instead the op is guessed from the first
// `"op":"` in the bytes and the payload decoded once; the guess counts only
// if the strict decode succeeds and its op agrees, and anything else goes
// through the two-pass path, which gives the errors.
func decodePayload(payload []byte) (string, int64, any, error) {
	if op, ok := guessOp(payload); ok {
		if body, ok := newBody(op); ok && DecodeStrict(payload, body) == nil {
			if h := body.(payloadBody).hdr(); h.Op == op && h.IAT != 0 {
				return op, h.IAT, body, nil
			}
		}
	}
	return decodePayloadTwoPass(payload)
}

// decodePayloadTwoPass finds the op, then decodes strictly.
func decodePayloadTwoPass(payload []byte) (string, int64, any, error) {
	var h struct {
		Op  string `json:"op"`
		IAT *int64 `json:"iat"`
	}
	if err := json.Unmarshal(payload, &h); err != nil {
		return "", 0, nil, Errorf(ErrMalformed, "payload is not a JSON object: %v", err)
	}
	body, ok := newBody(h.Op)
	if !ok {
		return "", 0, nil, Errorf(ErrMalformed, "unknown op %q (known: %s)", h.Op, strings.Join(OperationTypes, ", "))
	}
	if h.IAT == nil {
		return "", 0, nil, Errorf(ErrMalformed, "payload has no iat (signing time, seconds since the epoch)")
	}
	if err := DecodeStrict(payload, body); err != nil {
		older := Errorf(ErrMalformed, "%s payload: %v", h.Op, err)
		if clear := timeFieldErr(payload, body, err); clear != "" {
			return "", 0, nil, &RewordedError{Older: older, Clear: Errorf(ErrMalformed, "%s payload: %s", h.Op, clear)}
		}
		return "", 0, nil, older
	}
	return h.Op, *h.IAT, body, nil
}

// DecodeStrict decodes one JSON object into v, refusing unknown fields and
// trailing data.
func DecodeStrict(payload []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// guessOp returns the string after the first `"op":"` in payload (inside a
// JSON string every quote is escaped, so this is a key, normally the
// top-level op): a guess that decodePayload checks.
func guessOp(payload []byte) (string, bool) {
	i := bytes.Index(payload, []byte(`"op":"`))
	if i < 0 {
		return "", false
	}
	rest := payload[i+len(`"op":"`):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || end > 32 {
		return "", false
	}
	return string(rest[:end]), true
}

// MaxIDLength bounds identifiers (DIDs, URLs, framework ids).
const MaxIDLength = 512

// ValidateID checks that s is a usable identifier: a DID (did:method:id) or
// an https URL with a host (httpsID, read by this package's own rules, not
// net/url's), at most MaxIDLength bytes of printable UTF-8 without spaces.
func ValidateID(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > MaxIDLength {
		return fmt.Errorf("%s is %d bytes long, limit %d", what, len(s), MaxIDLength)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("%s %q contains spaces or control characters", what, s)
		}
	}
	if strings.HasPrefix(s, "did:") {
		parts := strings.SplitN(s, ":", 3)
		if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
			return fmt.Errorf("%s %q is not a DID (did:method:identifier)", what, s)
		}
		for _, r := range parts[1] {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
				return fmt.Errorf("%s %q: DID method must be lowercase letters and digits", what, s)
			}
		}
		return nil
	}
	if !httpsID(s) {
		return fmt.Errorf("%s %q is neither a DID nor an https URL", what, s)
	}
	return nil
}

// ValidText checks a free-text field.
func ValidText(what, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%s is %d bytes long, limit %d", what, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	return nil
}

// ValidateEntity checks an entity's id, name and metadata as
// registerEntity does, so that a tool importing many entities finds a bad
// one before it signs anything.
func ValidateEntity(id, name string, m *EntityMetadata) error {
	if err := ValidateID("entity id", id); err != nil {
		return err
	}
	if strings.TrimSpace(name) == "" {
		return errors.New("entity name is empty")
	}
	if err := ValidText("name", name, 256); err != nil {
		return err
	}
	return CheckMetadata(m)
}

// CheckHomepage checks an entity's homepage: empty, or a web address
// (http or https, with a host). Verifiers and the DCC export show it as a
// link beside the issuer's name, so it must be what a browser opens as a
// page (not javascript: or data:). The apply decides by it, so it reads
// the text itself rather than through net/url, whose rules move with Go
// releases and GODEBUG settings (urlstrictcolons): the scheme, any case,
// then "//" and an authority (up to the first "/", "?" or "#") whose host
// (after any userinfo "@", before any ":port") is not empty.
func CheckHomepage(s string) error {
	if s == "" {
		return nil
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if ok && (strings.EqualFold(scheme, "https") || strings.EqualFold(scheme, "http")) {
		authority := rest
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			authority = rest[:i]
		}
		if i := strings.LastIndexByte(authority, '@'); i >= 0 {
			authority = authority[i+1:]
		}
		host, _, _ := strings.Cut(authority, ":")
		if strings.HasPrefix(authority, "[") { // an IPv6 literal
			host, _, _ = strings.Cut(authority, "]")
			host = strings.TrimPrefix(host, "[")
		}
		if host != "" {
			return nil
		}
	}
	return fmt.Errorf("homepage %q is not an http or https URL with a host", shortText(s))
}

// shortText is s for a message: at most 64 bytes of it.
func shortText(s string) string {
	const max = 64
	if len(s) > max {
		return strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}

// CheckMetadata checks an entity's optional metadata; nil passes.
func CheckMetadata(m *EntityMetadata) error {
	if m == nil {
		return nil
	}
	errs := []error{ValidText("legalName", m.LegalName, 256), ValidText("homepage", m.Homepage, MaxIDLength), ValidText("location", m.Location, 256)}
	if m.Country != "" && (len(m.Country) != 2 || strings.ToUpper(m.Country) != m.Country) {
		errs = append(errs, errors.New("country must be an ISO 3166-1 alpha-2 code such as US"))
	}
	if len(m.Identifiers) > 32 {
		errs = append(errs, errors.New("more than 32 identifiers"))
	}
	for k, v := range m.Identifiers {
		errs = append(errs, ValidText("identifier name", k, 64), ValidText("identifier "+k, v, MaxIDLength))
	}
	return errors.Join(errs...)
}
