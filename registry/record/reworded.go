package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// RewordedError is a refusal whose words changed at the registry's
// FeatureLevelClearRefusals: Error is the words older builds store in the
// operation's result, Clear the words from that level on. The result is
// part of the committed state, so the apply keeps the older words below
// the level; a check before the log, which stores nothing, answers the
// clear ones at any level (ClearWords).
type RewordedError struct {
	Older error
	Clear error
}

func (e *RewordedError) Error() string { return e.Older.Error() }

// Unwrap returns the older error: both wrap the same kind.
func (e *RewordedError) Unwrap() error { return e.Older }

// ClearWords returns err in its clear words when it is a RewordedError,
// else err.
func ClearWords(err error) error {
	var r *RewordedError
	if errors.As(err, &r) {
		return r.Clear
	}
	return err
}

// timeFields are the operation payloads' date-time members, all top-level.
var timeFields = []string{"validFrom", "validUntil", "effectiveAt"}

// timeFieldErr returns, for a payload whose strict decoding failed with
// decodeErr, the clear words for it when the failure is a date-time
// member's: its JSON Pointer, its value and the form wanted. It returns ""
// when decodeErr is anything else: a member decodes in the order it comes,
// so the first date-time member that does not decode is decodeErr's only
// when their words match.
func timeFieldErr(payload []byte, decodeErr error) string {
	dec := json.NewDecoder(bytes.NewReader(payload))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return ""
		}
		name, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return ""
		}
		if !isTimeField(name) {
			continue
		}
		var v time.Time
		err = json.Unmarshal(raw, &v)
		if err == nil {
			continue
		}
		if err.Error() != decodeErr.Error() {
			return ""
		}
		return fmt.Sprintf("%s: %s is not an RFC 3339 date-time (such as 2026-01-02T15:04:05Z)", pointerTo(name), shortJSON(raw))
	}
	return ""
}

// isTimeField reports whether a payload member named name decodes into a
// date-time: encoding/json matches member names to fields without regard
// to case.
func isTimeField(name string) bool {
	for _, f := range timeFields {
		if strings.EqualFold(name, f) {
			return true
		}
	}
	return false
}

// pointerTo is the JSON Pointer (RFC 6901) of a top-level member, quoted.
func pointerTo(name string) string {
	return fmt.Sprintf("%q", "/"+strings.NewReplacer("~", "~0", "/", "~1").Replace(name))
}

// shortJSON is raw for a message: at most 64 bytes of it.
func shortJSON(raw json.RawMessage) string {
	const max = 64
	if len(raw) > max {
		return string(raw[:max]) + "…"
	}
	return string(raw)
}

// critErr says why a signature's headers carry a "crit" member go-jose
// refuses before it checks the signature, which older builds report as a
// signature that does not verify: crit in the unprotected header (RFC
// 7515 §4.1.11 allows it only in the protected one), a crit that is not a
// list of header names, or one naming an extension other than b64 (RFC
// 7797, the one go-jose reads). nil when it carries none of these. what
// names the signature ("signature 0", "credential").
func critErr(what string, sig *jose.Signature) error {
	if _, ok := sig.Unprotected.ExtraHeaders["crit"]; ok {
		return Errorf(ErrMalformed, "%s: crit is in the unprotected header; RFC 7515 §4.1.11 allows it only in the protected header", what)
	}
	v, ok := sig.Protected.ExtraHeaders["crit"]
	if !ok || v == nil {
		return nil
	}
	names, ok := v.([]any)
	if !ok {
		return Errorf(ErrMalformed, "%s: the protected header's crit is not a list of header names (RFC 7515 §4.1.11)", what)
	}
	for _, n := range names {
		s, ok := n.(string)
		if !ok {
			return Errorf(ErrMalformed, "%s: the protected header's crit is not a list of header names (RFC 7515 §4.1.11)", what)
		}
		if s != "b64" {
			return Errorf(ErrMalformed, "%s: the protected header's crit names %q, an extension trustreg does not understand (it reads only b64, RFC 7797)", what, s)
		}
	}
	return nil
}

// firstCritErr is critErr for each of obj's signatures, the first found.
// trimmed is the JWS obj was parsed from: go-jose also refuses an
// unprotected "crit" that is null, which its parsed headers leave out.
func firstCritErr(trimmed []byte, obj *jose.JSONWebSignature) error {
	nullCrit := unprotectedCritKeys(trimmed)
	for i := range obj.Signatures {
		what := fmt.Sprintf("signature %d", i)
		if i < len(nullCrit) && nullCrit[i] {
			return Errorf(ErrMalformed, "%s: crit is in the unprotected header; RFC 7515 §4.1.11 allows it only in the protected header", what)
		}
		if err := critErr(what, &obj.Signatures[i]); err != nil {
			return err
		}
	}
	return nil
}

// unprotectedCritKeys reports, for each signature of a JWS JSON
// serialization, whether its unprotected header has a "crit" member,
// whatever its value; nil for a compact JWS.
func unprotectedCritKeys(trimmed []byte) []bool {
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil
	}
	type header struct {
		Header map[string]json.RawMessage `json:"header"`
	}
	var jws struct {
		header
		Signatures []header `json:"signatures"`
	}
	if json.Unmarshal(trimmed, &jws) != nil {
		return nil // go-jose parsed it; what it could not read is refused there
	}
	if len(jws.Signatures) == 0 {
		jws.Signatures = []header{jws.header} // the flattened form
	}
	keys := make([]bool, len(jws.Signatures))
	for i, h := range jws.Signatures {
		_, keys[i] = h.Header["crit"]
	}
	return keys
}
