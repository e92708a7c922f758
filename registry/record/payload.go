package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// A payload means one thing. JSON that readers may take two ways is
// refused before anything decodes it: encoding/json (v1, which decodes
// operations) keeps the last of two equal member names where other
// readers keep the first, matches member names to fields without regard
// to case (so "Name" fills the name field while a reader of the signed
// bytes sees no "name"), and turns invalid UTF-8 into U+FFFD. checkJSON
// is the one check every outside JSON payload passes: operation payloads
// (checkPayload) and the issuer-signed status-list credential
// (checkStatusListJSON), before they are decoded.

// freeTextMembers are the members whose strings are prose and may hold
// line breaks and other control characters; every other string (names,
// identifiers, keys, codes) may not.
var freeTextMembers = map[string]bool{"description": true, "reason": true, "message": true}

// checkJSON refuses, in the one JSON value data holds, a member name that
// occurs twice in an object, a member name that equals a field of the
// schema t (the Go type the value decodes into; nil for free-form JSON)
// except for case, invalid UTF-8, and control characters (U+0000–U+001F,
// U+007F–U+009F) in member names and in strings outside free text. what
// names the document in messages; paths are JSON Pointers (RFC 6901).
// Errors wrap ErrMalformed.
func checkJSON(what string, data []byte, t reflect.Type) error {
	_, strict := scanJSON(what, data, t)
	return strict
}

// CheckJSON checks a request body that a reader decodes with
// encoding/json (the gateway's batch of trust questions, TRQP queries), so
// that the body means to it what it means to whoever wrote it: one JSON
// value, each member once, no member differing from a field of schema
// (the Go type it decodes into) only in case, valid UTF-8. Unlike
// checkJSON (signed documents, whose identifiers the registry stores) it
// lets strings and member names hold control characters: a request's
// free-form members (TRQP's context, extensions) are the asker's to fill.
// Errors wrap ErrMalformed.
func CheckJSON(what string, data []byte, schema reflect.Type) error {
	w := jsonWalker{what: what, dec: jsontext.NewDecoder(bytes.NewBuffer(data), jsontext.AllowDuplicateNames(true)), anyText: true}
	return w.walk(schema)
}

// scanJSON is checkJSON that also reports, apart, the first numbers in
// data beyond a float64's range (RFC 7493, I-JSON, §2.2: readers take such
// a number as an error, an infinity or a big decimal, so it too reads more
// than one way). They are kept apart because the apply refuses them from
// other feature levels than strict (FeatureLevelSignedContent): see
// rangeErrs. They are none when strict stopped the scan before a number
// beyond range. All wrap ErrMalformed.
func scanJSON(what string, data []byte, t reflect.Type) (number rangeErrs, strict error) {
	// From a bytes.Buffer the decoder reads data in place, not a copy.
	w := jsonWalker{what: what, dec: jsontext.NewDecoder(bytes.NewBuffer(data), jsontext.AllowDuplicateNames(true))}
	err := w.walk(t)
	return w.number, err
}

type jsonWalker struct {
	what   string
	dec    *jsontext.Decoder
	path   []string  // member names and array indexes down to the value read
	number rangeErrs // the first numbers beyond a float64's range
	// anyText lets every string and member name hold control characters
	// (CheckJSON).
	anyText bool
}

// walk walks the one value the decoder holds, which decodes into t, and
// refuses anything after it.
func (w *jsonWalker) walk(t reflect.Type) error {
	if err := w.value(t, ""); err != nil {
		return err
	}
	if _, err := w.dec.ReadToken(); err != io.EOF {
		return Errorf(ErrMalformed, "%s: trailing data after the JSON value", w.what)
	}
	return nil
}

// checkNumber notes num, a JSON number's text, when it lies beyond a
// float64's range.
func (w *jsonWalker) checkNumber(num string) {
	if w.number.exact == nil || w.number.level9 == nil {
		w.number.note(w.what, w.at, num)
	}
}

// rangeErrs are the first numbers beyond a float64's range that a scan
// found, each by the rule of a feature level: level9 by
// FeatureLevelNumberRange's, which for a few numbers of more than 800
// digits or an exponent of 10,000 or more is strconv.ParseFloat's
// inexact answer, exact by FeatureLevelHeaderNumbers's, the number's
// true value (rangeRules). A number beyond range by
// the first rule is by the second, so exact is set whenever level9 is.
type rangeErrs struct{ level9, exact error }

// note notes num, found at the JSON Pointer at() of the document what,
// for each rule it lies beyond range by and that has found none before.
func (r *rangeErrs) note(what string, at func() string, num string) {
	level9, exact := rangeRules(num)
	if r.level9 == nil && level9 || r.exact == nil && exact {
		err := numberError(what, at(), num)
		if r.level9 == nil && level9 {
			r.level9 = err
		}
		if r.exact == nil && exact {
			r.exact = err
		}
	}
}

// or returns r with each error it lacks taken from o.
func (r rangeErrs) or(o rangeErrs) rangeErrs {
	if r.level9 == nil {
		r.level9 = o.level9
	}
	if r.exact == nil {
		r.exact = o.exact
	}
	return r
}

// rangeRules reports whether num, a JSON number's text, lies beyond a
// float64's range by each level's rule. A number too small for a float64
// reads as zero everywhere (or as the nearest subnormal) and is beyond
// neither. The decimal exponent of its first significant digit decides
// all but the numbers between 1e308 and 1e309, for both rules.
//
// exact, FeatureLevelHeaderNumbers's rule, is the number's true value:
// whether it rounds to an infinity. Between 1e308 and 1e309 its digits
// are compared with overflowDigits, which gives the answer without
// strconv.ParseFloat's exact, slow path (some 15 µs for a subnormal such
// as 1e-320, some 30 µs for a number near the midpoint of the two largest
// float64 values: 250 KiB of either in an operation cost a fifth to half a
// second to check).
//
// level9 is FeatureLevelNumberRange's rule, whose first builds asked, for
// those numbers, whether ParseFloat refuses them with ErrRange. It is
// exact's answer but where ParseFloat's is not the number's true value
// (parseFloatInexact): there ParseFloat is asked still, so that every
// build decides alike at that level.
func rangeRules(num string) (level9, exact bool) {
	e, ok := leadingExponent(num)
	switch {
	case !ok || e < 308:
		return false, false
	case e > 308:
		return true, true
	}
	exact = !digitsBelow(significantDigits(num), overflowDigits)
	if parseFloatInexact(num) {
		_, err := strconv.ParseFloat(num, 64)
		return err != nil, exact
	}
	return exact, exact
}

// parseFloatInexact reports whether strconv.ParseFloat may misjudge num's
// magnitude (Go 1.26): its exact path keeps the decimal point's place
// after at most 800 digits of an integer part, and stops reading an
// exponent once it passes 10,000. The numbers it reports are at least
// 800 bytes long or have an exponent of five digits or more, so asking
// ParseFloat about them costs little per byte of an operation.
func parseFloatInexact(num string) bool {
	num = strings.TrimPrefix(num, "-")
	mant, exp, _ := strings.Cut(strings.ToLower(num), "e")
	intPart, _, _ := strings.Cut(mant, ".")
	if len(intPart) > 800 {
		return true
	}
	exp = strings.TrimLeft(strings.TrimLeft(exp, "+-"), "0")
	return len(exp) >= 5
}

// overflowDigits are the decimal digits of 2^1024 − 2^970, the midpoint of
// math.MaxFloat64 and 2^1024 (309 digits, the first at 10^308): the least
// number that rounds to infinity, a tie rounding to the even 2^1024.
// Every number at or above it is beyond a float64's range, every one
// below it rounds to a finite float64.
var overflowDigits = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 1024), new(big.Int).Lsh(big.NewInt(1), 970)).String()

// significantDigits returns the digits of num, a JSON number, from its
// first non-zero digit to its last non-zero digit, without sign, point or
// exponent: "1797" for -0.01797e310.
func significantDigits(num string) string {
	num = strings.TrimPrefix(num, "-")
	if i := strings.IndexAny(num, "eE"); i >= 0 {
		num = num[:i]
	}
	intPart, frac, _ := strings.Cut(num, ".")
	return strings.Trim(intPart+frac, "0")
}

// digitsBelow reports whether a, read as a decimal fraction 0.a, is less
// than 0.b; both are digit strings.
func digitsBelow(a, b string) bool {
	for i := range max(len(a), len(b)) {
		x, y := byte('0'), byte('0')
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// leadingExponent is the decimal exponent of the first significant digit
// of num, a JSON number (RFC 8259: -? int frac? exp?): 2 for 123.4, -3 for
// 0.00123e0, 308 for 1.8e308. ok is false for a zero.
func leadingExponent(num string) (e int64, ok bool) {
	num = strings.TrimPrefix(num, "-")
	mant, exp := num, ""
	if i := strings.IndexAny(num, "eE"); i >= 0 {
		mant, exp = num[:i], num[i+1:]
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	nonzero := func(r rune) bool { return r != '0' }
	if i := strings.IndexFunc(intPart, nonzero); i >= 0 {
		e = int64(len(intPart) - 1 - i)
	} else if i := strings.IndexFunc(frac, nonzero); i >= 0 {
		e = int64(-1 - i)
	} else {
		return 0, false
	}
	if exp == "" {
		return e, true
	}
	x, err := strconv.ParseInt(exp, 10, 32)
	if err != nil { // beyond ±2^31: far past either end of a float64's range
		if strings.HasPrefix(exp, "-") {
			return -1 << 40, true
		}
		return 1 << 40, true
	}
	return e + x, true
}

func numberError(what, at, num string) error {
	shown := num
	if len(shown) > 24 {
		shown = fmt.Sprintf("%s… (%d characters)", shown[:16], len(num))
	}
	return Errorf(ErrMalformed, "%s: %s holds the number %s, beyond the range of a 64-bit float (RFC 7493 §2.2): send a smaller number, or the value as a string", what, at, shown)
}

// numberBeyondRange is the first numbers in data beyond a float64's range,
// whatever else data holds, for JSON that is stored as received but that
// no schema walks (a JWS JSON serialization's envelope, a root's
// credential claims, a protected header); none where there is none, or
// where data stops being JSON (what decodes data refuses that).
func numberBeyondRange(what string, data []byte) rangeErrs {
	if !holdsNumber(data) {
		return rangeErrs{}
	}
	dec := jsontext.NewDecoder(bytes.NewBuffer(data), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	var r rangeErrs
	for r.exact == nil || r.level9 == nil {
		tok, err := dec.ReadToken()
		if err != nil {
			break
		}
		if tok.Kind() == '0' {
			r.note(what, func() string { return pointer(string(dec.StackPointer())) }, tok.String())
		}
	}
	return r
}

// holdsNumber reports whether data, read as JSON, may hold a number: a
// '-' or a digit outside every string. It allocates nothing, so the scans
// of what seldom holds a number (a protected header: a few strings) cost
// no decoder.
func holdsNumber(data []byte) bool {
	in, escaped := false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case in && c == '\\':
			escaped = true
		case c == '"':
			in = !in
		case !in && (c == '-' || '0' <= c && c <= '9'):
			return true
		}
	}
	return false
}

// at is the JSON Pointer of the value being read, quoted, for messages.
func (w *jsonWalker) at() string {
	if len(w.path) == 0 {
		return "the document"
	}
	var b strings.Builder
	for _, p := range w.path {
		b.WriteByte('/')
		b.WriteString(pointerEscaper.Replace(p))
	}
	return strconv.Quote(b.String())
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func (w *jsonWalker) syntax(err error) error {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		return Errorf(ErrMalformed, "%s: at %s: %v (send valid UTF-8 JSON)", w.what, pointer(string(se.JSONPointer)), se.Err)
	}
	return Errorf(ErrMalformed, "%s: %v", w.what, err)
}

// value walks one value that decodes into t; member is the name of the
// object member holding it (or holding the array holding it).
func (w *jsonWalker) value(t reflect.Type, member string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := w.dec.ReadToken()
	if err != nil {
		return w.syntax(err)
	}
	switch tok.Kind() {
	case '{':
		return w.object(t)
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t != rawMessageType {
			elem = t.Elem()
		}
		for i := 0; w.dec.PeekKind() != ']'; i++ {
			w.path = append(w.path, strconv.Itoa(i))
			if err := w.value(elem, member); err != nil {
				return err
			}
			w.path = w.path[:len(w.path)-1]
		}
		if _, err := w.dec.ReadToken(); err != nil {
			return w.syntax(err)
		}
	case '0':
		w.checkNumber(tok.String())
	case '"':
		if !w.anyText && !freeTextMembers[member] {
			if i := controlAt(tok.String()); i >= 0 {
				return Errorf(ErrMalformed, "%s: %s holds the control character %U: names and identifiers are printable text", w.what, w.at(), []rune(tok.String()[i:])[0])
			}
		}
	}
	return nil
}

func (w *jsonWalker) object(t reflect.Type) error {
	fields := schemaFields(t)
	seen := map[string]bool{}
	for w.dec.PeekKind() != '}' {
		tok, err := w.dec.ReadToken()
		if err != nil {
			return w.syntax(err)
		}
		name := tok.String()
		if i := controlAt(name); i >= 0 && !w.anyText {
			return Errorf(ErrMalformed, "%s: member name %q in %s holds a control character", w.what, name, w.at())
		}
		w.path = append(w.path, name)
		if seen[name] {
			return Errorf(ErrMalformed, "%s: member %s appears twice: send each member once", w.what, w.at())
		}
		seen[name] = true
		var ft reflect.Type
		if fields != nil {
			f, ok := fields.byName[name]
			if !ok {
				for known := range fields.byName {
					if strings.EqualFold(known, name) {
						return Errorf(ErrMalformed, "%s: member %s differs from the field %q only in case: member names are case-sensitive", w.what, w.at(), known)
					}
				}
			}
			ft = f
		} else if t != nil && t.Kind() == reflect.Map {
			ft = t.Elem()
		}
		if err := w.value(ft, name); err != nil {
			return err
		}
		w.path = w.path[:len(w.path)-1]
	}
	if _, err := w.dec.ReadToken(); err != nil {
		return w.syntax(err)
	}
	return nil
}

func pointer(path string) string {
	if path == "" {
		return "the document"
	}
	return strconv.Quote(path)
}

// controlAt returns the byte offset of the first control character
// (U+0000–U+001F, U+007F–U+009F) in s, or -1.
func controlAt(s string) int {
	for i, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return i
		}
	}
	return -1
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// structFields are the JSON member names of a struct type (embedded
// structs inlined, as encoding/json does) and the type each decodes into.
type structFields struct {
	byName map[string]reflect.Type
}

var schemaCache sync.Map // reflect.Type -> *structFields

// schemaFields returns the members of t when it is a struct decoded field
// by field (not one with its own JSON form, such as time.Time), else nil.
func schemaFields(t reflect.Type) *structFields {
	if t == nil || t.Kind() != reflect.Struct || t.Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		return nil
	}
	if f, ok := schemaCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{byName: map[string]reflect.Type{}}
	addFields(f, t)
	schemaCache.Store(t, f)
	return f
}

var jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func addFields(f *structFields, t reflect.Type) {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" && tag == "-" {
			continue
		}
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			addFields(f, sf.Type)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f.byName[name] = sf.Type
	}
}

// checkPayload is scanJSON for an operation payload that decoded into
// body.
func checkPayload(payload []byte, body any) (number rangeErrs, strict error) {
	return scanJSON("payload", payload, reflect.TypeOf(body))
}

// checkStatusListJSON is scanJSON for a status-list credential's payload,
// with the two members whose form varies (issuer: a string or an object
// with an id) held to their object form's schema.
func checkStatusListJSON(payload []byte) (number rangeErrs, strict error) {
	const what = "credential"
	if number, strict = scanJSON(what, payload, reflect.TypeFor[statusListVC]()); strict != nil {
		return number, strict
	}
	var vc struct {
		Issuer json.RawMessage `json:"issuer"`
	}
	if err := json.Unmarshal(payload, &vc); err != nil {
		return number, Errorf(ErrMalformed, "%s: %v", what, err)
	}
	if t := bytes.TrimSpace(vc.Issuer); len(t) > 0 && t[0] == '{' {
		return number, checkJSON(what+" issuer", t, reflect.TypeFor[issuerObject]())
	}
	return number, nil
}
