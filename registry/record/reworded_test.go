package record

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// critErr refuses exactly the "crit" members go-jose refuses before it
// checks a signature, so FeatureLevelClearRefusals changes the words of
// these refusals and never what is accepted: every JWS here carries a
// good signature, and go-jose's Verify fails exactly when critErr
// reports one.
func TestCritErrMatchesGoJose(t *testing.T) {
	enc := base64.RawURLEncoding
	payload := enc.EncodeToString([]byte(`{"op":"x"}`))
	sign := func(protected string) (string, string) {
		p := enc.EncodeToString([]byte(protected))
		return p, enc.EncodeToString(ed25519.Sign(fuzzSigKey, []byte(p+"."+payload)))
	}
	pub := fuzzSigKey.Public()
	cases := []struct {
		name, protected, unprotected string // unprotected "": a compact JWS
		says                         string // "": no refusal
		// envelope, when set, is a JSON serialization of its own
		// (protected header, payload and signature parts given)
		envelope func(p, payload, sig string) string
	}{
		{name: "no crit", protected: `{"alg":"EdDSA","kid":"k"}`},
		{name: "crit null", protected: `{"alg":"EdDSA","kid":"k","crit":null}`},
		{name: "crit empty", protected: `{"alg":"EdDSA","kid":"k","crit":[]}`},
		{name: "crit b64", protected: `{"alg":"EdDSA","kid":"k","b64":true,"crit":["b64"]}`},
		{name: "crit exp", protected: `{"alg":"EdDSA","kid":"k","crit":["exp"],"exp":1}`, says: `crit names "exp"`},
		{name: "crit b64 and exp", protected: `{"alg":"EdDSA","kid":"k","b64":true,"exp":1,"crit":["b64","exp"]}`, says: `crit names "exp"`},
		{name: "escaped crit name", protected: `{"alg":"EdDSA","kid":"k","cr\u0069t":["exp"],"exp":1}`, says: `crit names "exp"`},
		{name: "crit a string", protected: `{"alg":"EdDSA","kid":"k","crit":"b64"}`, says: "crit is not a list of header names"},
		{name: "crit a number in the list", protected: `{"alg":"EdDSA","kid":"k","crit":[1]}`, says: "crit is not a list of header names"},
		{name: "crit an object", protected: `{"alg":"EdDSA","kid":"k","crit":{}}`, says: "crit is not a list of header names"},
		{name: "no crit, JSON", protected: `{"alg":"EdDSA"}`, unprotected: `{"kid":"k"}`},
		{name: "crit unprotected", protected: `{"alg":"EdDSA"}`, unprotected: `{"kid":"k","crit":["b64"]}`, says: "crit is in the unprotected header"},
		{name: "crit unprotected null", protected: `{"alg":"EdDSA"}`, unprotected: `{"kid":"k","crit":null}`, says: "crit is in the unprotected header"},
		{name: "crit unprotected empty", protected: `{"alg":"EdDSA"}`, unprotected: `{"kid":"k","crit":[]}`, says: "crit is in the unprotected header"},
		// go-jose reads the serialization's members by their exact names.
		{name: "crit in a Header member", protected: `{"alg":"EdDSA","kid":"k"}`, envelope: func(p, payload, sig string) string {
			return `{"protected":"` + p + `","payload":"` + payload + `","signature":"` + sig + `","Header":{"crit":null}}`
		}},
		{name: "crit in a heaDer member of a signature", protected: `{"alg":"EdDSA","kid":"k"}`, envelope: func(p, payload, sig string) string {
			return `{"payload":"` + payload + `","signatures":[{"protected":"` + p + `","signature":"` + sig + `","heaDer":{"crit":null}}]}`
		}},
		{name: "crit in Signatures beside a flattened JWS", protected: `{"alg":"EdDSA","kid":"k"}`, envelope: func(p, payload, sig string) string {
			return `{"protected":"` + p + `","payload":"` + payload + `","signature":"` + sig + `","Signatures":[{"header":{"crit":null}}]}`
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, sig := sign(tc.protected)
			var raw string
			for _, flattened := range []bool{false, true} {
				if tc.envelope != nil {
					if flattened {
						break
					}
					raw = tc.envelope(p, payload, sig)
				} else if tc.unprotected == "" {
					if flattened {
						break
					}
					raw = p + "." + payload + "." + sig
				} else if flattened {
					raw = `{"payload":"` + payload + `","protected":"` + p + `","header":` + tc.unprotected + `,"signature":"` + sig + `"}`
				} else {
					raw = `{"payload":"` + payload + `","signatures":[{"protected":"` + p + `","header":` + tc.unprotected + `,"signature":"` + sig + `"}]}`
				}
				obj, err := parseJWS([]byte(raw))
				if err != nil {
					t.Fatalf("parse %s: %v", raw, err)
				}
				_, verr := obj.Verify(pub)
				cerr := firstCritErr([]byte(raw), obj)
				if (verr == nil) != (cerr == nil) {
					t.Fatalf("%s: go-jose's Verify: %v; critErr: %v", raw, verr, cerr)
				}
				if tc.says == "" {
					continue
				}
				if !errors.Is(cerr, ErrMalformed) || !strings.Contains(cerr.Error(), "signature 0: ") || !strings.Contains(cerr.Error(), tc.says) {
					t.Fatalf("%s: critErr %v, want malformed saying %s", raw, cerr, tc.says)
				}
			}
		})
	}
}

// A date-time member that does not decode is named by its JSON Pointer in
// the clear words, with its value; only when it is what failed the
// decoding; any other failure keeps the decoder's words.
func TestTimeFieldErr(t *testing.T) {
	cases := []struct{ payload, says string }{
		{`{"op":"accredit","iat":1,"validFrom":"yesterday"}`, `"/validFrom": "yesterday" is not an RFC 3339 date-time`},
		{`{"op":"accredit","iat":1,"validFrom":"2026-01-01T00:00:00Z","validUntil":7}`, `"/validUntil": 7 is not an RFC 3339 date-time`},
		{`{"op":"suspend","iat":1,"EffectiveAt":"2026-13-01T00:00:00Z"}`, `"/EffectiveAt": "2026-13-01T00:00:00Z" is not`},
		{`{"op":"accredit","iat":1,"validFrom":"` + strings.Repeat("x", 100) + `"}`, `"/validFrom": "` + strings.Repeat("x", 63) + `…`},
		// A member named like a date-time of another operation is
		// unknown here, and only noted: the decoding fails at effectiveAt.
		{`{"op":"suspend","iat":1,"accreditation":"a","validFrom":"yesterday","effectiveAt":"today"}`, `"/effectiveAt": "today" is not`},
		{`{"op":"accredit","iat":1,"effectiveAt":[],"validFrom":{}}`, `"/validFrom": {} is not`},
		{`{"op":"accredit","iat":1,"validFrom":"` + strings.Repeat("€", 30) + `"}`, `"/validFrom": "` + strings.Repeat("€", 21) + `…`},
		// encoding/json ends at a member's own decoding error, after
		// members it only noted as unknown or of the wrong type.
		{`{"op":"accredit","iat":1,"nonsense":1,"validFrom":"yesterday"}`, `"/validFrom": "yesterday" is not`},
		{`{"op":"accredit","iat":1,"nonsense":1,"validFrom":"2026-01-01T00:00:00Z"}`, ""},
		{`{"op":"accredit","iat":1,"resources":5}`, ""},
		{`{"op":"accredit","iat":1,"resources":[1,,"validFrom":"yesterday"}`, ""},
	}
	for _, tc := range cases {
		_, _, _, err := decodePayloadTwoPass([]byte(tc.payload))
		if err == nil {
			t.Fatalf("%s: decoded", tc.payload)
		}
		clear := ClearWords(err)
		var rw *RewordedError
		switch {
		case tc.says == "" && errors.As(err, &rw):
			t.Errorf("%s: reworded as %v; want the decoder's own words (%v)", tc.payload, clear, err)
		case tc.says != "" && (!errors.As(err, &rw) || !strings.Contains(clear.Error(), tc.says) || !errors.Is(clear, ErrMalformed)):
			t.Errorf("%s: %v (clear: %v), want malformed saying %s", tc.payload, err, clear, tc.says)
		case tc.says != "" && !strings.Contains(err.Error(), "parsing time") && !strings.Contains(err.Error(), "Time.UnmarshalJSON"):
			t.Errorf("%s: older words %v, want the decoder's", tc.payload, err)
		case !utf8.ValidString(clear.Error()):
			t.Errorf("%s: %q is not valid UTF-8", tc.payload, clear)
		}
	}
}

// CheckHomepage reads the text itself, the same on every node whatever
// its Go release or GODEBUG settings (net/url's rules move with both).
func TestCheckHomepage(t *testing.T) {
	for _, ok := range []string{"", "https://college.example", "http://college.example/about?x=1#top", "HTTPS://College.Example",
		"https://user:pw@college.example", "https://[::1]:8443/", "https://college.example:8443", "http://localhost:80:80/"} {
		if err := CheckHomepage(ok); err != nil {
			t.Errorf("CheckHomepage(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"javascript:alert(1)", "data:text/html,x", "www.college.example", "college.example", "ftp://college.example",
		"https://", "https:///about", "https://user@", "https://:443", "https:college.example", "https://[]/", "//college.example"} {
		if err := CheckHomepage(bad); err == nil || !strings.Contains(err.Error(), "is not an http or https URL with a host") {
			t.Errorf("CheckHomepage(%q): %v, want refused", bad, err)
		}
	}
}
