package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
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

// timeFieldsOf returns the JSON names of body's top-level date-time
// fields (time.Time or *time.Time; the payloads have no nested ones).
func timeFieldsOf(body any) []string {
	t := reflect.TypeOf(body)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	timeType := reflect.TypeFor[time.Time]()
	for f := range t.Fields() {
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if ft == timeType && name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// timeFieldErr returns, for a payload whose strict decoding into body
// failed with decodeErr, the clear words for it when the failure is a
// date-time member's: its JSON Pointer, its value and the form wanted. It
// returns "" when decodeErr is anything else. encoding/json decodes the
// members in the order they come and stops at the first one whose own
// decoding fails (an unknown member, or one of the wrong type, is only
// noted), so that is the first of body's date-time members that does not
// decode, when their words match.
func timeFieldErr(payload []byte, body any, decodeErr error) string {
	fields := timeFieldsOf(body)
	if len(fields) == 0 {
		return ""
	}
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
		if !slices.ContainsFunc(fields, func(f string) bool { return strings.EqualFold(f, name) }) {
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

// pointerTo is the JSON Pointer (RFC 6901) of a top-level member, quoted.
func pointerTo(name string) string {
	return fmt.Sprintf("%q", "/"+strings.NewReplacer("~", "~0", "/", "~1").Replace(name))
}

// shortJSON is raw for a message: at most 64 bytes of it, valid UTF-8.
func shortJSON(raw json.RawMessage) string { return shortText(string(raw)) }

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
// whatever its value; nil for a compact JWS. Members are matched by their
// exact names, as go-jose reads the serialization (encoding/json would
// match "Header" too).
func unprotectedCritKeys(trimmed []byte) []bool {
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(trimmed, &top) != nil {
		return nil // go-jose parsed it; what it could not read is refused there
	}
	hasCrit := func(header json.RawMessage) bool {
		var h map[string]json.RawMessage
		if json.Unmarshal(header, &h) != nil {
			return false
		}
		_, ok := h["crit"]
		return ok
	}
	sigs, ok := top["signatures"]
	if !ok {
		return []bool{hasCrit(top["header"])} // the flattened form
	}
	var each []map[string]json.RawMessage
	if json.Unmarshal(sigs, &each) != nil {
		return nil
	}
	keys := make([]bool, len(each))
	for i, sig := range each {
		keys[i] = hasCrit(sig["header"])
	}
	return keys
}
