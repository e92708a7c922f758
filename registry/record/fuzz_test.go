package record

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

func FuzzParseOperation(f *testing.F) {
	k, err := GenerateKey(KeyEd25519)
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{
		`{"op":"accredit","iat":1,"framework":"https://x.example/f","accreditor":"did:key:z","subject":"did:web:a","action":"issue","resources":["*"]}`,
		`{"op":"revoke","iat":1,"accreditation":"bafk"}`,
		`{"op":"createFramework","iat":1,"id":"https://x.example/f","name":"F"}`,
		`{"op":"nope","iat":1}`, `[]`, `{"op":"revoke"}`,
		`{"op":"revoke","iat":1,"accreditation":"a","accreditation":"b"}`,
		`{"op":"registerEntity","iat":1,"id":"did:web:a","name":"A","Name":"B"}`,
		"{\"op\":\"revoke\",\"iat\":1,\"accreditation\":\"a\xff\"}",
		`{"op":"revoke","iat":1,"accreditation":"a\u0000"}`,
		`{"op":"publishStatusList","iat":1,"list":"l","credential":"e30.e30.e30"}`,
		// Accreditation credentials (VC-JWT claims).
		`{"iss":"did:key:z","sub":"did:web:a","iat":1,"vc":{"type":["VerifiableCredential","VerifiableAccreditationToAttest"],"issuer":"did:key:z","credentialSubject":{"id":"did:web:a","accreditedFor":[{"schemaId":"https://s","types":["VerifiableCredential","https://t"],"limitJurisdiction":["US","https://www.iso.org/obp/ui/#iso:code:3166:US-CA"]}]},"termsOfUse":[{"id":"bafkreictz47figfblkneikbfs4jqqkiv5a6ug2dh6bkrbafy4tonzsey4q","type":"IssuanceCertificate"}]}}`,
		`{"iss":"did:key:z","iat":1,"vc":{"type":["VerifiableCredential","VerifiableAccreditationToAccredit"],"issuer":{"id":"did:key:z"},"validUntil":"2030-01-01T00:00:00Z","credentialSubject":{"id":"did:web:a","accreditedFor":[{"types":["*"]}]},"termsOfUse":{"id":"https://n/trusted-issuers-registry/v4/issuers/did:key:z/attributes/0x` + strings.Repeat("ab", 32) + `"}}}`,
		`{"iss":"did:key:z","iat":1,"vc":{"type":["VerifiableCredential"],"Type":[]}}`,
	} {
		jws, err := k.SignCompact([]byte(p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(jws)
		general, err := SignJSON([]byte(p), k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(general)
	}
	p256 := mustKey(f, KeyP256)
	low, err := p256.SignCompact([]byte(`{"op":"revoke","iat":1,"accreditation":"a"}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(low)
	f.Add(forceHighS(f, low))
	f.Add([]byte("a.b.c"))
	f.Add([]byte(`{"payload":"e30","signatures":[]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		// The plain compact form read without go-jose parses as go-jose's
		// parse does, for any bytes (FuzzParseOperationPlainMatchesGoJose
		// holds it to that over signed headers and encodings).
		d := sha256.Sum256(raw)
		got, gotErr := parseOperation(raw, d, true)
		want, wantErr := parseOperation(raw, d, false)
		if diff := sameParse(got, want, gotErr, wantErr); diff != "" {
			t.Fatalf("%q: %s", raw, diff)
		}
		op, err := ParseOperation(raw)
		if err != nil {
			return
		}
		if !slices.Contains(OperationTypes, op.Op) || op.Body == nil || len(op.Signatures()) == 0 || len(op.SignedContent()) != len(op.Signatures()) {
			t.Fatalf("parsed operation is incomplete: %+v", op)
		}
		// What ParseOperation accepts reads one way, holds no number
		// beyond a float64's range, and has one encoding of each signature.
		check := checkPayload
		if _, ok := op.Body.(*AccreditationCredential); ok {
			check = func(payload []byte, _ any) (rangeErrs, error) { return checkCredentialJSON(payload) }
		}
		number, strict := check(op.Payload, op.Body)
		if !utf8.Valid(op.Payload) || strict != nil || number != (rangeErrs{}) || checkLowS(op.jws) != nil {
			t.Fatalf("accepted an ambiguous operation: %q", op.Payload)
		}
	})
}

// FuzzDecodePayload checks that the one-pass decode agrees with the
// two-pass decode on every input: same op, iat and fields, or an error
// from both.
func FuzzDecodePayload(f *testing.F) {
	for _, seed := range []string{
		`{"op":"accredit","iat":1700000000,"framework":"https://f.example","accreditor":"did:web:a","subject":"did:web:b","action":"issue","resources":["*"]}`,
		`{"op":"accredit","op":"suspend","iat":1,"accreditation":"x"}`,
		`{"op":"suspend","op":"accredit","iat":1,"framework":"f"}`,
		`{"op":"accredit","iat":0}`,
		`{"op":"accredit","iat":null}`,
		`{"op":"revoke","iat":5,"accreditation":"a"} {}`,
		`{"op":"revoke","iat":5,"accreditation":"a"}]`,
		`{"op":"revoke","iat":5,"accreditation":"a","extra":1}`,
		` {"op":"createFramework","iat":9,"id":"https://f.example","name":"F"}`,
		`{"iat":9,"op":"createFramework","id":"https://f.example","name":"F"}`,
		`{"op":"nope","iat":9}`,
		`{"op":"revoke\u0022,"iat":5}`,
		`{"accreditation":"a","iat":5,"op":"revoke","reason":"r"}`,
		`{"iat":5,"keys":[{"op":"revoke"}],"op":"rotateKeys","id":"did:web:x"}`,
		`{"iat":5,"op" : "revoke","accreditation":"a"}`,
		`{"op":"revoke","iat":5,"accreditation":"a","accreditation":"b"}`,
		`{"op":"revoke","iat":5,"Accreditation":"a"}`,
		`{"op":"revoke","IAT":5,"iat":5,"accreditation":"a"}`,
		"{\"op\":\"revoke\",\"iat\":5,\"accreditation\":\"\xff\"}",
		`{"op":"revoke","iat":5,"accreditation":"a\u0085"}`,
		`{"op":"registerEntity","iat":5,"id":"did:web:a","name":"A","metadata":{"country":"US","country":"CA"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		op1, iat1, body1, err1 := decodePayload(payload)
		op2, iat2, body2, err2 := decodePayloadTwoPass(payload)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("one pass: %v; two passes: %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if op1 != op2 || iat1 != iat2 || !reflect.DeepEqual(body1, body2) {
			t.Fatalf("one pass: %s %d %+v; two passes: %s %d %+v", op1, iat1, body1, op2, iat2, body2)
		}
	})
}

// FuzzCheckJSON checks that what scanJSON lets through is JSON that reads
// one way: valid UTF-8, no member twice in an object (RFC 7493's rules,
// which jsontext.Value.IsValid checks by default), and, unless it reports
// a number beyond a float64's range, JSON that an unmarshal into any
// (which refuses such a number) reads too. checkJSON alone does not refuse
// those numbers: the apply refuses them from a later feature level than
// its other rules (testdata/fuzz/FuzzCheckJSON holds a 310-digit one).
func FuzzCheckJSON(f *testing.F) {
	for _, seed := range []string{
		`{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `[{"a":1},{"a":1}]`, "\"\xff\"",
		`"\ud800"`, `{"a":"\u0000"}`, `{"description":"x\ny"}`, `{"a":1} {}`, `{"a":"b","A":"c"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		number, strict := scanJSON("fuzz", data, nil)
		if strict != nil {
			return
		}
		if !utf8.Valid(data) || !jsontext.Value(data).IsValid() {
			t.Fatalf("checkJSON accepted %q", data)
		}
		// An unmarshal asks strconv.ParseFloat, as FeatureLevelNumberRange's
		// rule does (rangeErrs).
		var v any
		if err := json.Unmarshal(data, &v); (err == nil) != (number.level9 == nil) {
			t.Fatalf("scanJSON's number check says %v on %q, an unmarshal into any %v", number.level9, data, err)
		}
		if number.level9 != nil && number.exact == nil {
			t.Fatalf("a number beyond range by ParseFloat but not by its value: %v", number.level9)
		}
	})
}

// BenchmarkDecodePayload compares the one-pass decode of an accredit
// payload with the two-pass decode it falls back on.
func BenchmarkDecodePayload(b *testing.B) {
	payload := []byte(`{"op":"accredit","iat":1700000000,"framework":"https://frameworks.example/nursing","accreditor":"did:web:agency.example","subject":"did:web:college-1.example","action":"issue","resources":["https://schemas.example/BSN"],"jurisdictions":["US-CA"]}`)
	for _, bc := range []struct {
		name   string
		decode func([]byte) (string, int64, any, error)
	}{{"one-pass", decodePayload}, {"two-pass", decodePayloadTwoPass}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, err := bc.decode(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// forceHighS returns a compact ES256 JWS with its s replaced by n − s.
func forceHighS(t testing.TB, jws []byte) []byte {
	t.Helper()
	c := strings.Split(string(jws), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(c[2])
	if HighS(raw) {
		t.Fatal("the signer emitted a high s")
	}
	return []byte(c[0] + "." + c[1] + "." + base64.RawURLEncoding.EncodeToString(LowSTwin(raw)))
}

// Below FeatureLevelSignedContent the apply decides as older builds do
