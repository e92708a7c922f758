package record

import (
	"bytes"
	"crypto"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// A payload that readers could take two ways is malformed, with a message
// naming the member: a member twice (at any depth), a member named like a
// schema field but for case, invalid UTF-8, control characters in names
// and identifiers. Prose (description, reason) may hold line breaks.
func TestPayloadReadsOneWay(t *testing.T) {
	k := mustKey(t, KeyEd25519)
	jwk, err := k.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	// jwkTwice names its kty twice.
	jwkTwice := strings.Replace(string(jwk), `"kty":`, `"kty":"OKP","kty":`, 1)
	did := k.DID
	// manyIDs is an identifiers object of n members, then those named in
	// again.
	manyIDs := func(n int, again ...int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `"id%d":"x",`, i)
		}
		for _, i := range again {
			fmt.Fprintf(&b, `"id%d":"y",`, i)
		}
		return `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"C","metadata":{"identifiers":{` + strings.TrimSuffix(b.String(), ",") + `}}}`
	}
	for _, tc := range []struct {
		name, payload, want string // want: "" accepted, else a part of the error
	}{
		{"many members", manyIDs(3 * 32), ""},
		{"a member twice among few", manyIDs(32, 0), `"/metadata/identifiers/id0" appears twice`},
		{"a member twice among many, the first again", manyIDs(3*32, 0), `"/metadata/identifiers/id0" appears twice`},
		{"a member twice among many, the last again", manyIDs(3*32, 3*32-1), `appears twice`},
		{"plain", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"College"}`, ""},
		{"prose with line breaks", `{"op":"createFramework","iat":1,"id":"https://f.example","name":"F","description":"line one\nline two\ttab"}`, ""},
		{"reason with a line break", `{"op":"revoke","iat":1,"accreditation":"a","reason":"fraud\nfound late"}`, ""},
		{"identifiers are free-form names", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"C","metadata":{"identifiers":{"Name":"x","name":"y"}}}`, ""},

		{"a member twice", `{"op":"revoke","iat":1,"accreditation":"a","accreditation":"b"}`, `"/accreditation" appears twice`},
		{"op twice", `{"op":"revoke","iat":1,"op":"revoke","accreditation":"a"}`, `"/op" appears twice`},
		{"a nested member twice", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"C","metadata":{"country":"US","country":"CA"}}`, `"/metadata/country" appears twice`},
		{"a map key twice", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"C","metadata":{"identifiers":{"ctid":"a","ctid":"b"}}}`, `"/metadata/identifiers/ctid" appears twice`},
		{"a key's member twice", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"C","keys":[` + jwkTwice + `]}`, `"/keys/0/kty" appears twice`},

		{"a field's name in another case beside it", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"Shown","Name":"Applied"}`, `"/Name" differs from the field "name" only in case`},
		{"a field's name in another case alone", `{"op":"registerEntity","iat":1,"id":"` + did + `","NAME":"College"}`, `"/NAME" differs from the field "name" only in case`},
		{"a nested field in another case", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"C","metadata":{"Country":"US"}}`, `"/metadata/Country" differs from the field "country"`},
		{"a header field in another case", `{"op":"revoke","IAT":1,"iat":1,"accreditation":"a"}`, `"/IAT" differs from the field "iat"`},
		{"a field folded by Unicode (long s)", `{"op":"accredit","iat":1,"framework":"https://f.example","accreditor":"did:key:z","ſubject":"did:web:a","action":"issue","resources":["*"]}`, `differs from the field "subject" only in case`},
		{"a field folded by Unicode (Kelvin sign)", `{"op":"rotateKeys","iat":1,"id":"did:web:a","` + "\u212a" + `eys":[]}`, `differs from the field "keys" only in case`},

		{"invalid UTF-8 in a name", "{\"op\":\"registerEntity\",\"iat\":1,\"id\":\"" + did + "\",\"name\":\"Coll\xffege\"}", "UTF-8"},
		{"invalid UTF-8 in prose", "{\"op\":\"revoke\",\"iat\":1,\"accreditation\":\"a\",\"reason\":\"\xc3\"}", "UTF-8"},
		{"invalid UTF-8 in a member name", "{\"op\":\"registerEntity\",\"iat\":1,\"id\":\"" + did + "\",\"name\":\"C\",\"metadata\":{\"identifiers\":{\"\xfe\":\"x\"}}}", "UTF-8"},
		{"a lone surrogate", `{"op":"revoke","iat":1,"accreditation":"a","reason":"\ud800"}`, "UTF-8"},

		{"NUL in a name", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"Col\u0000lege"}`, `"/name" holds the control character U+0000`},
		{"a line break in a name", `{"op":"createFramework","iat":1,"id":"https://f.example","name":"F\nG"}`, `"/name" holds the control character U+000A`},
		{"DEL in an identifier", `{"op":"revoke","iat":1,"accreditation":"a` + "\u007f" + `"}`, `"/accreditation" holds the control character U+007F`},
		{"a C1 control in an identifier", `{"op":"accredit","iat":1,"framework":"https://f.example` + "\u0085" + `","accreditor":"did:key:z","subject":"did:web:a","action":"issue","resources":["*"]}`, `"/framework" holds the control character U+0085`},
		{"a control in a resource", `{"op":"accredit","iat":1,"framework":"https://f.example","accreditor":"did:key:z","subject":"did:web:a","action":"issue","resources":["*","x\u001b"]}`, `"/resources/1" holds the control character U+001B`},
		{"a control in metadata", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"C","metadata":{"legalName":"C\u0009C"}}`, `"/metadata/legalName" holds the control character U+0009`},
		{"a control in a member name", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"C","metadata":{"identifiers":{"ct\u0001id":"x"}}}`, `holds a control character`},
	} {
		t.Run(tc.name, func(t *testing.T) { mustParseAs(t, k, tc.payload, tc.want) })
	}
}

// The issuer-signed status-list credential is held to the same rules, by
// ParseStatusListCredential and inside a publishStatusList operation.
func TestStatusListCredentialReadsOneWay(t *testing.T) {
	issuer := mustKey(t, KeyEd25519)
	good := string(mustVC(t, issuer.DID, make([]byte, MinStatusListEntries/8)))
	if _, err := ParseStatusListCredential([]byte(good)); err != nil {
		t.Fatalf("a plain credential: %v", err)
	}
	iss := `"issuer":"` + issuer.DID + `"`
	for _, tc := range []struct{ name, vc, want string }{
		{"issuer twice", strings.Replace(good, iss, iss+`,"issuer":"did:web:other.example"`, 1), `"/issuer" appears twice`},
		{"issuer in another case", strings.Replace(good, iss, iss+`,"Issuer":"did:web:other.example"`, 1), `"/Issuer" differs from the field "issuer"`},
		{"the issuer object's id in another case", strings.Replace(good, iss, `"issuer":{"ID":"`+issuer.DID+`"}`, 1), `"/ID" differs from the field "id"`},
		{"a subject member in another case", strings.Replace(good, `"encodedList"`, `"EncodedList":"uH4sIAAAAAAAA_wMAAAAAAAAAAAA","encodedList"`, 1), `"/credentialSubject/EncodedList" differs`},
		{"a subject member twice", strings.Replace(good, `"type":"BitstringStatusList"`, `"type":"BitstringStatusList","type":"BitstringStatusList"`, 1), `"/credentialSubject/type" appears twice`},
		{"a control in the id", strings.Replace(good, `"id":"urn:`, `"id":"\u0000urn:`, 1), `"/id" holds the control character U+0000`},
		{"invalid UTF-8", strings.Replace(good, `"id":"urn:`, "\"id\":\"\xffurn:", 1), "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.vc == good {
				t.Fatal("the case changed nothing")
			}
			_, err := ParseStatusListCredential([]byte(tc.vc))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseStatusListCredential: %v, want ErrMalformed saying %s", err, tc.want)
			}
			jwt, err := issuer.SignVCJWT([]byte(tc.vc))
			if err != nil {
				t.Fatal(err)
			}
			op := mustSignRaw(t, issuer, []byte(`{"op":"publishStatusList","iat":1,"list":"l1","credential":"`+string(jwt)+`"}`))
			if _, err := ParseOperation(op); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseOperation: %v, want ErrMalformed saying %s", err, tc.want)
			}
		})
	}
}

// BenchmarkCheckPayload measures checkJSON over an operation's payload,
// the cost every parse adds to the decode (BenchmarkDecodePayload).
func BenchmarkCheckPayload(b *testing.B) {
	p := []byte(`{"op":"accredit","iat":1700000000,"framework":"https://f.example","accreditor":"did:web:a.example","subject":"did:web:b.example","action":"issue","resources":["https://example.org/credentials/Nursing"],"jurisdictions":["US"]}`)
	body := &Accredit{}
	b.ReportAllocs()
	for range b.N {
		if number, strict := checkPayload(p, body); strict != nil || number != (rangeErrs{}) {
			b.Fatal(strict, number)
		}
	}
}

// A JSON number beyond a float64's range (RFC 7493 §2.2) is refused by
// ParseOperation and PreVerify at any depth, with the member's pointer,
// apart from the strict rules (NumberErr: the apply refuses it from its
// own feature level); a number too small for a float64 reads as zero
// everywhere and is accepted, as is one that fits.
func TestNumbersBeyondRange(t *testing.T) {
	k := mustKey(t, KeyEd25519)
	jwk, err := k.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("4", 310)
	withMember := func(member string) string { // the key with one more member
		return strings.TrimSuffix(string(jwk), "}") + `,` + member + `}`
	}
	did := k.DID
	for _, tc := range []struct {
		name, payload, want string // want: "" accepted, else a part of the error
	}{
		{"a key member that fits", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"C","keys":[` + withMember(`"size":1.7976931348623157e308`) + `]}`, ""},
		{"a key member too small to tell from zero", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"C","keys":[` + withMember(`"size":1e-400`) + `]}`, ""},
		{"310 digits in a key member", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"C","keys":[` + withMember(`"size":`+big) + `]}`, `"/keys/0/size" holds the number 4444444444444444… (310 characters), beyond the range of a 64-bit float`},
		{"an exponent beyond range", `{"op":"registerEntity","iat":1,"id":"` + did + `","name":"C","keys":[` + withMember(`"x5":[1,[-2e308]]`) + `]}`, `"/keys/0/x5/1/0" holds the number -2e308`},
		{"beyond range in a typed field", `{"op":"registerEntity","iat":1e400,"id":"` + did + `","name":"C"}`, "iat"},
	} {
		t.Run(tc.name, func(t *testing.T) { mustParseAs(t, k, tc.payload, tc.want) })
	}

	// Kept apart from the strict rules: ParseOperationDigest returns the
	// operation with NumberErr set and StrictErr nil; with a strict error
	// as well, CheckErr is the strict one.
	raw := mustSignRaw(t, k, []byte(`{"op":"registerEntity","iat":1,"id":"`+did+`","name":"C","keys":[`+withMember(`"size":`+big)+`]}`))
	op, err := ParseOperationDigest(raw, sha256.Sum256(raw))
	if err != nil || op.StrictErr() != nil || !errors.Is(op.NumberErr(), ErrMalformed) || op.CheckErr() != op.NumberErr() {
		t.Fatalf("number only: err %v, strict %v, number %v", err, op.StrictErr(), op.NumberErr())
	}
	raw = mustSignRaw(t, k, []byte(`{"op":"registerEntity","iat":1,"id":"`+did+`","name":"C","keys":[`+withMember(`"size":`+big)+`],"name":"D"}`))
	op, err = ParseOperationDigest(raw, sha256.Sum256(raw))
	if err != nil || op.StrictErr() == nil || !errors.Is(op.NumberErr(), ErrMalformed) || op.CheckErr() != op.StrictErr() {
		t.Fatalf("number and a member twice: err %v, strict %v, number %v", err, op.StrictErr(), op.NumberErr())
	}
	if _, err := ParseStoredOperation(raw); err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Fatalf("ParseStoredOperation of a strict refusal: %v, want the strict error", err)
	}

	// In the issuer's status-list credential too, inside the operation
	// that publishes it; ParseStatusListCredential, which reads a stored
	// version, lets it through (a list published below the level may hold
	// one, and its issuer reads it to publish the next version).
	issuer := mustKey(t, KeyEd25519)
	good := string(mustVC(t, issuer.DID, make([]byte, MinStatusListEntries/8)))
	vc := strings.Replace(good, `"type":"BitstringStatusList"`, `"type":"BitstringStatusList","x":9e999`, 1)
	if vc == good {
		t.Fatal("the credential did not change")
	}
	if _, err := ParseStatusListCredential([]byte(vc)); err != nil {
		t.Fatalf("ParseStatusListCredential: %v, want the stored version read", err)
	}
	jwt, err := issuer.SignVCJWT([]byte(vc))
	if err != nil {
		t.Fatal(err)
	}
	mustNumberErr := func(name string, raw []byte, want string) {
		t.Helper()
		op, err := ParseOperationDigest(raw, sha256.Sum256(raw))
		if err != nil || op.StrictErr() != nil || !strings.Contains(fmt.Sprint(op.NumberErr()), want) {
			t.Fatalf("%s: err %v, strict %v, number %v; want a number error saying %s", name, err, op.StrictErr(), op.NumberErr(), want)
		}
		if _, err := ParseOperation(raw); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: ParseOperation: %v, want ErrMalformed", name, err)
		}
		// Accepted below the level, it is read back from the state, a
		// bundle or a mirror as it was accepted.
		if _, err := ParseStoredOperation(raw); err != nil {
			t.Fatalf("%s: ParseStoredOperation: %v", name, err)
		}
	}
	mustNumberErr("publishStatusList", mustSignRaw(t, issuer, []byte(`{"op":"publishStatusList","iat":1,"list":"l1","credential":"`+string(jwt)+`"}`)),
		`credential: "/credentialSubject/x" holds the number 9e999`)

	// Stored as received and walked by no schema: the members of a JWS
	// JSON serialization, and a root's credential claims.
	plain := []byte(`{"op":"revoke","iat":1,"accreditation":"a"}`)
	general, err := SignJSON(plain, k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseOperation(general); err != nil {
		t.Fatalf("the JSON serialization as signed: %v", err)
	}
	withEnvelope := bytes.Replace(general, []byte(`{`), []byte(`{"x":-1e400,`), 1)
	mustNumberErr("a JWS JSON serialization's member", withEnvelope, `JWS JSON serialization: "/x" holds the number -1e400`)
	withSignature := bytes.Replace(general, []byte(`"signatures":[{`), []byte(`"signatures":[{"x":[2E+308],`), 1)
	if bytes.Equal(withSignature, general) {
		t.Fatal("no signatures member in the JSON serialization")
	}
	mustNumberErr("a signature's member", withSignature, `"/signatures/0/x/0" holds the number 2E+308`)

	claims := `{"iss":"` + issuer.DID + `","sub":"did:web:root.example","iat":1,"x":1e400,"vc":{"type":["VerifiableCredential","` + TypeAuthorisationForTrustChn + `"],"issuer":"` + issuer.DID + `","credentialSubject":{"id":"did:web:root.example"}}}`
	rootJWT, err := issuer.SignVCJWT([]byte(claims))
	if err != nil {
		t.Fatal(err)
	}
	mustNumberErr("a root's credential", mustSignRaw(t, k, []byte(`{"op":"addRootAccreditor","iat":1,"framework":"https://f.example","accreditor":"did:web:root.example","credential":"`+string(rootJWT)+`"}`)),
		`credential: "/x" holds the number 1e400`)
}

// beyondRange decides from the first significant digit's exponent and asks
// ParseFloat only between 1e308 and 1e309; it must agree with ParseFloat's
// ErrRange on every number.
func TestBeyondRangeMatchesParseFloat(t *testing.T) {
	nums := []string{
		"0", "-0", "0.0", "0e999999999999", "0.000e-5", "1", "-1", "123.456", "1e308", "1e309", "-1e309",
		"1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308", "-1.7976931348623159e308",
		"179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791",
		"179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792",
		"0.1e310", "0.01e310", "0.001e310", "100e306", "1000e306", "10E+307", "1E+308", "1e-320", "1e-400", "4.9e-324",
		"1e2147483647", "1e2147483648", "1e-2147483649", "1e99999999999999999999", "-1e-99999999999999999999", "1e+0000000000000000000308",
		"0.000000000000000000000000000000000000001e347", "0.000000000000000000000000000000000000001e348",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b strings.Builder
		if rng.IntN(2) == 0 {
			b.WriteByte('-')
		}
		lead := rng.IntN(4)
		if lead == 0 {
			b.WriteString("0")
		} else {
			b.WriteByte(byte('1' + rng.IntN(9)))
			for range rng.IntN(25) {
				b.WriteByte(byte('0' + rng.IntN(10)))
			}
		}
		if rng.IntN(2) == 0 {
			b.WriteByte('.')
			for range 1 + rng.IntN(25) {
				b.WriteByte(byte('0' + rng.IntN(10)))
			}
		}
		if rng.IntN(4) != 0 {
			fmt.Fprintf(&b, "e%d", 280+rng.IntN(50)-rng.IntN(2)*rng.IntN(700))
		}
		nums = append(nums, b.String())
	}
	// Numbers about the least one beyond the range (the midpoint of the
	// two largest float64 values), where ParseFloat takes its slow path and
	// beyondRange compares digits: a prefix of it, its last digit moved by
	// one or kept, more digits after it, written with the point and the
	// exponent in several places.
	for range 20000 {
		d := []byte(overflowDigits[:1+rng.IntN(len(overflowDigits))])
		switch last := len(d) - 1; rng.IntN(3) {
		case 0:
			if d[last] > '0' {
				d[last]--
			}
		case 1:
			if d[last] < '9' {
				d[last]++
			}
		}
		for range rng.IntN(3) * rng.IntN(12) {
			d = append(d, byte('0'+rng.IntN(10)))
		}
		var n string
		switch shift := rng.IntN(len(d)); rng.IntN(3) {
		case 0: // d.ddd e308, the point after the shift-th digit
			n = fmt.Sprintf("%s.%se%d", d[:shift+1], d[shift+1:], 308-shift)
		case 1: // 0.000ddd e(309 + zeros)
			zeros := rng.IntN(5)
			n = fmt.Sprintf("0.%s%se%d", strings.Repeat("0", zeros), d, 309+zeros)
		default: // digits, zeros for the rest, no exponent when it fits
			if len(d) <= 309 {
				n = string(d) + strings.Repeat("0", 309-len(d))
			} else {
				n = fmt.Sprintf("%s.%s", d[:309], d[309:])
			}
		}
		if strings.HasSuffix(n, ".") {
			n += "0"
		}
		n = strings.Replace(n, ".e", "e", 1)
		if rng.IntN(2) == 0 {
			n = "-" + n
		}
		nums = append(nums, n)
	}
	nums = append(nums, overflowDigits, overflowDigits+".0", overflowDigits[:308]+"1", "0."+overflowDigits+"e309",
		overflowDigits[:308]+"."+overflowDigits[308:]+"e1", "1.797693134862315708145274237317043567981e308",
		"1.797693134862315807937289714053034150799341327100378269361737789804449682927647509466490179775872070963302864166928879109465555478519404026306574886715058206819089020007083836762738548458177115317644757302700698555713669596228429148198608349364752927190741684443655107043427115596995080930428801779041744977919999e308")
	for _, n := range nums {
		_, err := strconv.ParseFloat(n, 64)
		if got, want := beyondRange(n), err != nil; got != want {
			t.Fatalf("beyondRange(%q) = %v, ParseFloat says %v", n, got, err)
		}
	}
}

// mustParseAs signs payload with k and parses it: accepted when want is
// "", else refused as malformed with a message holding want.
func mustParseAs(t *testing.T, k *Signer, payload, want string) {
	t.Helper()
	_, err := ParseOperation(mustSignRaw(t, k, []byte(payload)))
	switch {
	case want == "" && err != nil:
		t.Fatalf("refused: %v", err)
	case want == "":
	case !errors.Is(err, ErrMalformed):
		t.Fatalf("err = %v, want ErrMalformed", err)
	case !strings.Contains(err.Error(), want):
		t.Fatalf("err = %v, want it to say %s", err, want)
	}
}

// signWithHeader signs payload with k, an Ed25519 signer, under the
// protected header {"alg":"EdDSA","kid":…,"typ":…, extra}, and returns
// the header and signature, base64url-encoded.
func signWithHeader(t *testing.T, k *Signer, extra, payload string) (header, sig string) {
	t.Helper()
	enc := base64.RawURLEncoding
	header = enc.EncodeToString([]byte(`{"alg":"EdDSA","kid":"` + k.KID + `","typ":"trustreg-op+jws",` + extra + `}`))
	s, err := k.Key().Sign(crand.Reader, []byte(header+"."+enc.EncodeToString([]byte(payload))), crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	return header, enc.EncodeToString(s)
}

// A number beyond a float64's range in a protected header's "jwk" member
// (go-jose drops the members of a header key it does not know, and the
// stored operation keeps them) is ExactNumberErr, apart from the
// payload's NumberErr: refused by every check, not by
// ParseStoredOperation. go-jose refuses one elsewhere in the header.
func TestHeaderNumbersBeyondRange(t *testing.T) {
	k, other := mustKey(t, KeyEd25519), mustKey(t, KeyEd25519)
	enc := base64.RawURLEncoding
	payload := `{"op":"revoke","iat":1,"accreditation":"a"}`
	body := enc.EncodeToString([]byte(payload))
	jwk := func(member string) string {
		return `"jwk":{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",` + member + `}`
	}
	compact := func(extra string) []byte {
		h, s := signWithHeader(t, k, extra, payload)
		return []byte(h + "." + body + "." + s)
	}
	for _, tc := range []struct {
		name string
		raw  []byte
		want string // "" accepted, else a part of ExactNumberErr
	}{
		{"a jwk member that fits", compact(jwk(`"zz":1.7976931348623157e308`)), ""},
		{"a jwk member beyond range", compact(jwk(`"zz":1e400`)), `signature 0 protected header: "/jwk/zz" holds the number 1e400, beyond the range of a 64-bit float`},
		{"deep in a jwk member", compact(jwk(`"zz":{"a":[0,-1e309]}`)), `"/jwk/zz/a/1" holds the number -1e309`},
		{"the second signature of a JSON serialization", func() []byte {
			h0, s0 := signWithHeader(t, k, jwk(`"zz":1`), payload)
			h1, s1 := signWithHeader(t, other, jwk(`"zz":`+strings.Repeat("9", 400)), payload)
			return []byte(`{"payload":"` + body + `","signatures":[{"protected":"` + h0 + `","signature":"` + s0 + `"},{"protected":"` + h1 + `","signature":"` + s1 + `"}]}`)
		}(), `signature 1 protected header: "/jwk/zz" holds the number 9999999999999999… (400 characters)`},
		{"a top-level protected header beside signatures", func() []byte {
			h0, s0 := signWithHeader(t, k, jwk(`"zz":1`), payload)
			top, topSig := signWithHeader(t, other, jwk(`"zz":1e400`), payload)
			return []byte(`{"payload":"` + body + `","protected":"` + top + `","signature":"` + topSig + `","signatures":[{"protected":"` + h0 + `","signature":"` + s0 + `"}]}`)
		}(), `JWS JSON serialization's top-level protected header: "/jwk/zz" holds the number 1e400`},
		{"a flattened JSON serialization", func() []byte {
			h, s := signWithHeader(t, k, jwk(`"zz":1e400`), payload)
			return []byte(`{"payload":"` + body + `","protected":"` + h + `","signature":"` + s + `"}`)
		}(), `signature 0 protected header: "/jwk/zz" holds the number 1e400`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, err := ParseOperationDigest(tc.raw, sha256.Sum256(tc.raw))
			if err != nil || op.StrictErr() != nil || op.NumberErr() != nil {
				t.Fatalf("parse: %v, strict %v, number %v", err, op.StrictErr(), op.NumberErr())
			}
			_, checked := ParseOperation(tc.raw)
			_, stored := ParseStoredOperation(tc.raw)
			if stored != nil {
				t.Fatalf("ParseStoredOperation: %v, want it read back", stored)
			}
			if tc.want == "" {
				if op.ExactNumberErr() != nil || checked != nil {
					t.Fatalf("header number %v, ParseOperation %v; want accepted", op.ExactNumberErr(), checked)
				}
				return
			}
			herr := op.ExactNumberErr()
			if !errors.Is(herr, ErrMalformed) || !strings.Contains(herr.Error(), tc.want) || op.CheckErr() != herr || checked == nil || checked.Error() != herr.Error() {
				t.Fatalf("header number %v, CheckErr %v, ParseOperation %v; want ErrMalformed saying %s", herr, op.CheckErr(), checked, tc.want)
			}
		})
	}
	// Elsewhere in the header go-jose refuses such a number itself.
	if _, err := ParseOperationDigest(compact(`"x":1e400`), [32]byte{}); err == nil {
		t.Fatal("a header member of 1e400 parsed")
	}
	// A credential's protected header (a root's, a status list's) is
	// scanned as the operation's own is.
	h, s := signWithHeader(t, k, jwk(`"zz":1e400`), `{"iss":"x"}`)
	if err := compactHeaderNumber("credential", h+"."+enc.EncodeToString([]byte(`{"iss":"x"}`))+"."+s).exact; err == nil || !strings.Contains(err.Error(), `credential protected header: "/jwk/zz" holds the number 1e400`) {
		t.Fatalf("credential header: %v", err)
	}
}

// beyondRange is FeatureLevelNumberRange's rule (rangeRules).
func beyondRange(num string) bool {
	level9, _ := rangeRules(num)
	return level9
}

// beyondRangeExact is FeatureLevelHeaderNumbers's rule (rangeRules).
func beyondRangeExact(num string) bool {
	_, exact := rangeRules(num)
	return exact
}

// beyondRangeAsBuilt is FeatureLevelNumberRange's rule as the level's
// first builds decided it (2bd033b): the exponent of the first
// significant digit, and strconv.ParseFloat between 1e308 and 1e309.
func beyondRangeAsBuilt(num string) bool {
	if e, ok := leadingExponent(num); !ok || e != 308 {
		return ok && e > 308
	}
	_, err := strconv.ParseFloat(num, 64)
	return err != nil
}

// beyondRangeByValue is whether num's value is at least the least number
// that rounds to infinity, by exact rational arithmetic.
func beyondRangeByValue(t *testing.T, num string) bool {
	x, ok := new(big.Rat).SetString(num)
	if !ok {
		t.Fatalf("big.Rat cannot read %q", num)
	}
	limit := new(big.Rat).SetInt(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 1024), new(big.Int).Lsh(big.NewInt(1), 970)))
	return x.Abs(x).Cmp(limit) >= 0
}

// strconv.ParseFloat misjudges some numbers' magnitude: it keeps the
// decimal point's place after at most 800 digits of an integer part, and
// stops reading an exponent past 10,000 ("18" and 900 zeros, "e-593", is
// 1.8e308, which it reads as 1.8e206). FeatureLevelNumberRange's rule
// (beyondRange) keeps the answers of the level's first builds for them,
// so every build decides alike at that level; FeatureLevelHeaderNumbers's
// (beyondRangeExact) is the numbers' true value.
func TestBeyondRangeWhereParseFloatMisjudges(t *testing.T) {
	misjudged := "18" + strings.Repeat("0", 900) + "e-593"
	if _, err := strconv.ParseFloat(misjudged, 64); err != nil {
		t.Skipf("ParseFloat now reads %s… right (%v): the two rules agree", misjudged[:8], err)
	}
	if beyondRange(misjudged) || !beyondRangeExact(misjudged) {
		t.Fatalf("%s…: level 9 %v, exact %v; want false, true", misjudged[:8], beyondRange(misjudged), beyondRangeExact(misjudged))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	nums := []string{misjudged, "1" + strings.Repeat("0", 900) + "e-592", "17976931348623158" + strings.Repeat("0", 900) + "e-607",
		"0." + strings.Repeat("0", 10000) + "18e10309", "0." + strings.Repeat("0", 10000) + "1e10309", "1e-00000000000308", overflowDigits + strings.Repeat("0", 500) + "e-500"}
	for range 3000 {
		// About the midpoint of the two largest float64 values: its digits,
		// the last moved or not, then zeros or digits; an integer part of
		// 790 to 1,100 digits with an exponent that brings it back, or
		// thousands of zeros after the point with an exponent of five
		// digits.
		d := []byte(overflowDigits[:1+rng.IntN(len(overflowDigits))])
		if last := len(d) - 1; rng.IntN(2) == 0 && d[last] < '9' {
			d[last]++
		} else if d[last] > '0' && rng.IntN(2) == 0 {
			d[last]--
		}
		var n string
		if rng.IntN(2) == 0 {
			intLen := 790 + rng.IntN(310)
			for len(d) < intLen {
				d = append(d, byte('0'+rng.IntN(2)*rng.IntN(10)))
			}
			n = fmt.Sprintf("%se-%d", d[:intLen], intLen-309+rng.IntN(3)-1)
		} else {
			zeros := 9990 + rng.IntN(30)
			n = fmt.Sprintf("0.%s%se%d", strings.Repeat("0", zeros), d, 309+zeros+rng.IntN(3)-1)
		}
		nums = append(nums, n)
	}
	for _, n := range nums {
		if got, want := beyondRange(n), beyondRangeAsBuilt(n); got != want {
			t.Fatalf("beyondRange(%.20s…) = %v, the level's first builds %v", n, got, want)
		}
		if got, want := beyondRangeExact(n), beyondRangeByValue(t, n); got != want {
			t.Fatalf("beyondRangeExact(%.20s…) = %v, its value says %v", n, got, want)
		}
	}

	// In an operation: NumberErr keeps the level's first answer,
	// ExactNumberErr refuses it, and so does every check.
	k := mustKey(t, KeyEd25519)
	jwk, err := k.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	raw := mustSignRaw(t, k, []byte(`{"op":"registerEntity","iat":1,"id":"`+k.DID+`","name":"C","keys":[`+strings.TrimSuffix(string(jwk), "}")+`,"size":`+misjudged+`}]}`))
	op, err := ParseOperationDigest(raw, sha256.Sum256(raw))
	if err != nil || op.StrictErr() != nil || op.NumberErr() != nil || !errors.Is(op.ExactNumberErr(), ErrMalformed) || op.CheckErr() != op.ExactNumberErr() {
		t.Fatalf("parse %v, strict %v, number %v, exact %v", err, op.StrictErr(), op.NumberErr(), op.ExactNumberErr())
	}
	if !strings.Contains(op.ExactNumberErr().Error(), `"/keys/0/size" holds the number 1800000000000000… (907 characters)`) {
		t.Fatalf("exact: %v", op.ExactNumberErr())
	}
}

// GeneralJWS.From reads a JSON serialization as go-jose, and so the
// registry, reads it: the flattened form's members count only without
// signatures; beside them they are no signature of it.
func TestGeneralJWSFromReadsAsGoJose(t *testing.T) {
	k, other := mustKey(t, KeyEd25519), mustKey(t, KeyEd25519)
	payload := `{"op":"revoke","iat":1,"accreditation":"a"}`
	body := base64.RawURLEncoding.EncodeToString([]byte(payload))
	h0, s0 := signWithHeader(t, k, `"x":1`, payload)
	top, topSig := signWithHeader(t, other, `"x":2`, payload)
	for _, tc := range []struct {
		name string
		raw  string
		want []JWSSignature
	}{
		{"flattened", `{"payload":"` + body + `","protected":"` + top + `","signature":"` + topSig + `"}`, []JWSSignature{{Protected: top, Signature: topSig}}},
		{"general", `{"payload":"` + body + `","signatures":[{"protected":"` + h0 + `","signature":"` + s0 + `"}]}`, []JWSSignature{{Protected: h0, Signature: s0}}},
		{"both", `{"payload":"` + body + `","protected":"` + top + `","signature":"` + topSig + `","signatures":[{"protected":"` + h0 + `","signature":"` + s0 + `"}]}`, []JWSSignature{{Protected: h0, Signature: s0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g GeneralJWS
			if err := g.From([]byte(tc.raw)); err != nil {
				t.Fatal(err)
			}
			obj, err := parseJWS([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if g.Payload != body || len(g.Signatures) != len(tc.want) || len(obj.Signatures) != len(tc.want) {
				t.Fatalf("read %+v, go-jose %d signatures; want %+v", g, len(obj.Signatures), tc.want)
			}
			for i, w := range tc.want {
				if g.Signatures[i].Protected != w.Protected || g.Signatures[i].Signature != w.Signature {
					t.Fatalf("signature %d: %+v, want %+v", i, g.Signatures[i], w)
				}
			}
		})
	}
}

// holdsNumber says whether JSON holds a number token, as a tokenizer
// reads it, without allocating: on hand-picked documents, and on random
// ones of strings (with escapes, digits and quotes inside), literals and
// numbers.
func TestHoldsNumber(t *testing.T) {
	for doc, want := range map[string]bool{
		`{"alg":"EdDSA","kid":"did:key:z6Mk1#z6Mk1"}`: false,
		`{"a":"\"1"}`:          false,
		`{"a":"\\","b":1}`:     true,
		`{"a":[true,null]}`:    false,
		`{"a":-0.5}`:           true,
		`["x\\\"2", 3e4]`:      true,
		`{"jwk":{"zz":1e400}}`: true,
	} {
		if got := holdsNumber([]byte(doc)); got != want {
			t.Fatalf("holdsNumber(%s) = %v, want %v", doc, got, want)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	pieces := []string{`"a1"`, `"\"2"`, `"\\"`, `"\\\"3\\"`, `"-"`, `true`, `null`, `"\u0031"`}
	for range 5000 {
		var b strings.Builder
		b.WriteByte('[')
		for i := range 1 + rng.IntN(6) {
			if i > 0 {
				b.WriteByte(',')
			}
			if rng.IntN(8) == 0 {
				fmt.Fprintf(&b, "%d", rng.IntN(200)-100)
			} else {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
		}
		b.WriteByte(']')
		doc := []byte(b.String())
		dec := jsontext.NewDecoder(bytes.NewReader(doc))
		tokens := false
		for {
			tok, err := dec.ReadToken()
			if err != nil {
				if err != io.EOF {
					t.Fatalf("%s: %v", doc, err)
				}
				break
			}
			tokens = tokens || tok.Kind() == '0'
		}
		if got := holdsNumber(doc); got != tokens {
			t.Fatalf("holdsNumber(%s) = %v, a tokenizer finds a number: %v", doc, got, tokens)
		}
	}
}
