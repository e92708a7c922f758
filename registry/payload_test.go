package registry

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// The case: a case-variant name was applied (encoding/json
// matches names without regard to case) while readers of the signed
// payload saw another. From FeatureLevelSignedContent on it is refused at
// the apply and the state is unchanged; below it the apply decides as
// older builds do.
func TestAmbiguousPayloadRefusedFromTheLevelOn(t *testing.T) {
	h := mustNewState(t, 1, 1)
	college := mustKey(t, record.KeyEd25519)
	op := mustSignRaw(t, college, h.payload(record.OpRegisterEntity, map[string]any{"id": college.DID, "name": "Shown", "Name": "Applied"}))
	if err := h.s.PreVerify(op); !errors.Is(err, record.ErrMalformed) {
		t.Fatalf("PreVerify at level 1 = %v, want ErrMalformed", err)
	}
	h.mustRaiseLevel(FeatureLevelSignedContent)
	before := h.digest()
	if r := h.apply(op); r.Accepted || r.Code != record.CodeMalformed || !strings.Contains(r.Reason, `"/Name"`) {
		t.Fatalf("at the level: %+v, want malformed naming /Name", r)
	}
	if h.digest() != before {
		t.Fatal("a refused operation changed the state")
	}
	if e, err := h.s.Entity(college.DID); err != nil || (e != nil && e.Registered) {
		t.Fatalf("entity after the refusal: %+v, %v", e, err)
	}

	old := mustNewState(t, 1, 1) // level 1, as a cluster being upgraded
	if r := old.apply(op); !r.Accepted {
		t.Fatalf("below the level: %+v, want accepted as older builds do", r)
	}
}

// A number beyond a float64's range in a member no typed field decodes (a
// key's extra JWK member) entered the state below FeatureLevelNumberRange,
// in the stored operation that every operations listing serves. Every check before the log refuses it at any
// level; the apply refuses it from the level on, leaving the state as it
// was, and below it accepts it as older builds do, so a cluster being
// upgraded stays one state.
func TestNumberBeyondRangeRefusedFromTheLevelOn(t *testing.T) {
	const web = "did:web:numbers.example"
	big := strings.Repeat("4", 310)
	for _, level := range []int{FeatureLevelNumberRange - 1, FeatureLevelNumberRange} {
		t.Run(fmt.Sprintf("level=%d", level), func(t *testing.T) {
			f := mustChain(t)
			f.mustRaiseLevel(level)
			jwk := mustJWK(t, mustAs(t, mustKey(t, record.KeyEd25519), web+"#key-1"))
			withN := json.RawMessage(strings.TrimSuffix(string(jwk), "}") + `,"size":` + big + `}`)
			op := f.sign(f.qa, record.OpRegisterEntity, map[string]any{"id": web, "name": "Numbers College", "keys": []any{withN}})
			const want = `"/keys/0/size" holds the number 4444444444444444… (310 characters)`

			if err := f.s.PreVerify(op); !errors.Is(err, record.ErrMalformed) || !strings.Contains(err.Error(), want) {
				t.Fatalf("PreVerify: %v, want ErrMalformed saying %s", err, want)
			}
			if r := f.s.Check(op, f.now); r == nil || r.Accepted || r.Code != record.CodeMalformed || !strings.Contains(r.Reason, want) {
				t.Fatalf("the leader's check: %+v, want malformed saying %s", r, want)
			}

			before := f.digest()
			r := f.apply(op)
			ent, err := f.s.Entity(web)
			if level < FeatureLevelNumberRange {
				if !r.Accepted || err != nil || !ent.Registered {
					t.Fatalf("below the level: %+v, entity %+v, %v; want it accepted as older builds do", r, ent, err)
				}
				// The entity's key is stored as go-jose encodes it, without
				// the extra member; the operation is stored and served as
				// signed, number and all.
				if stored, err := f.s.Operation(r.CID); err != nil || !strings.Contains(string(stored.Payload), `"size":`+big) {
					t.Fatalf("the stored operation: %v; want its payload with the number", err)
				}
				return
			}
			mustRefuseForANumber(t, f.harness, r, before, want)
			if !errors.Is(err, record.ErrNotFound) {
				t.Fatalf("entity after the refusal: %+v, %v; want none", ent, err)
			}
			// The same registration without the number is accepted.
			f.mustAccept(f.sign(f.qa, record.OpRegisterEntity, map[string]any{"id": web, "name": "Numbers College", "keys": []any{jwk}}))
		})
	}
}

// The same for a status-list credential's member the apply does not read
// (credentialSubject.x): below the level the version is published as older
// builds publish it, from the level on it is refused.
func TestNumberInAStatusListCredentialFromTheLevelOn(t *testing.T) {
	for _, level := range []int{FeatureLevelNumberRange - 1, FeatureLevelNumberRange} {
		t.Run(fmt.Sprintf("level=%d", level), func(t *testing.T) {
			f := recList(t)
			f.mustRaiseLevel(level)
			vc := credential(t, f.college.DID, map[string]any{"statusPurpose": "revocation", "x": json.RawMessage("1e400")})
			before := f.digest()
			r := f.publishVC(f.college, f.college, "l1", "", vc)
			if level < FeatureLevelNumberRange {
				if !r.Accepted {
					t.Fatalf("below the level: %+v, want it published as older builds do", r)
				}
				return
			}
			mustRefuseForANumber(t, f.harness, r, before, `credential: "/credentialSubject/x" holds the number 1e400`)
		})
	}
}

// A root's credential claims hold a member nothing reads: below the level
// the root is added and the EBSI binding serves the credential as the
// root's attribute body (the stored operation read back as accepted, not
// refused for its number); from the level on the operation is refused.
func TestRootCredentialNumberFromTheLevelOn(t *testing.T) {
	for _, level := range []int{FeatureLevelNumberRange - 1, FeatureLevelNumberRange} {
		t.Run(fmt.Sprintf("level=%d", level), func(t *testing.T) {
			h, root, claims := mustRootClaims(t, level)
			cred := string(mustSignVC(t, h.gov[0], append([]byte(`{"x":1e400,`), claims[1:]...)))
			before := h.digest()
			r := h.apply(h.govSign(record.OpAddRootAccreditor, map[string]any{"framework": fwID, "accreditor": root.DID, "credential": cred}))
			if level < FeatureLevelNumberRange {
				if !r.Accepted {
					t.Fatalf("below the level: %+v, want the root added as older builds add it", r)
				}
				attrs, err := h.s.TIRIssuer(root.DID, h.now)
				if err != nil || len(attrs) != 1 || string(attrs[0].Body) != cred {
					t.Fatalf("root attribute: %+v %v; want the credential as its body", attrs, err)
				}
				return
			}
			mustRefuseForANumber(t, h, r, before, `credential: "/x" holds the number 1e400`)
		})
	}
}

// A setCosigners accepted below the level with a number in its JWS JSON
// serialization's members is read back as accepted: the cosigners in
// force at an index between two changes come from that stored operation.
func TestStoredCosignerChangeWithANumber(t *testing.T) {
	h, _ := mustCosignerState(t)
	a, b := mustCosignerVKey(t, "a.example"), mustCosignerVKey(t, "b.example")
	h.mustRaiseLevel(FeatureLevelNumberRange - 1)
	op := h.setCosigners(2, map[string]any{"cosigners": []string{a, b}})
	withNumber := append([]byte(`{"x":1e400,`), bytes.TrimPrefix(op, []byte("{"))...)
	if bytes.Equal(withNumber[len(`{"x":1e400,`):], op) {
		t.Fatal("the operation is not a JSON serialization")
	}
	h.mustAccept(withNumber)
	first := h.index
	h.mustAccept(h.setCosigners(2, map[string]any{"cosigners": []string{b}}))
	got, err := h.s.CosignersThrough(first)
	if err != nil || len(got.Keys) != 2 || got.Changes != 1 {
		t.Fatalf("cosigners through the first change: %+v, %v", got, err)
	}
	// From the level on, the same bytes are refused.
	h.mustRaiseLevel(FeatureLevelNumberRange)
	again := h.setCosigners(2, map[string]any{"cosigners": []string{a}})
	if r := h.apply(append([]byte(`{"x":1e400,`), bytes.TrimPrefix(again, []byte("{"))...)); r.Accepted || r.Code != record.CodeMalformed {
		t.Fatalf("at the level: %+v, want malformed", r)
	}
}

// mustRootClaims makes a one-member governance with a framework at level,
// and the claims of a root credential its member would sign for a new
// root accreditor, which it returns.
func mustRootClaims(t *testing.T, level int) (h *harness, root *record.Signer, claims []byte) {
	t.Helper()
	h = mustNewState(t, 1, 1)
	h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Health"}))
	h.mustRaiseLevel(level)
	root = mustKey(t, record.KeyEd25519)
	claims, err := record.NewRootCredential(h.gov[0].DID, root.DID, h.now)
	if err != nil {
		t.Fatal(err)
	}
	return h, root, claims
}

// signWithHeader signs payload with s, an Ed25519 signer, as a compact JWS
// whose protected header is {"alg":"EdDSA","kid":…,"typ":typ, extra}.
func signWithHeader(t *testing.T, s *record.Signer, typ, extra string, payload []byte) string {
	t.Helper()
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(`{"alg":"EdDSA","kid":"`+s.KID+`","typ":"`+typ+`",`+extra+`}`)) + "." + enc.EncodeToString(payload)
	sig, err := s.Key().Sign(rand.Reader, []byte(in), crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + enc.EncodeToString(sig)
}

// headerJWK is a protected header's "jwk" member with one more member,
// which go-jose drops from the key it decodes and the stored operation
// keeps.
func headerJWK(member string) string {
	return `"jwk":{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",` + member + `}`
}

// Two kinds of number beyond a float64's range got past
// FeatureLevelNumberRange into the stored operation: one in a protected
// header's "jwk" member (in the operation's own header, a status-list
// credential's or a root credential's), which its scans of the payload,
// the credentials' claims and the JSON serialization's members do not
// see, and one strconv.ParseFloat misjudges, whose answer the level keeps
// so that every build decides alike there. Every check before the log
// refuses both at any level; the apply refuses them from
// FeatureLevelHeaderNumbers on, leaving the state as it was, and below it
// accepts them as older builds do.
func TestExactNumberRefusedFromTheLevelOn(t *testing.T) {
	const want = `protected header: "/jwk/zz" holds the number 1e400`
	for _, level := range []int{FeatureLevelHeaderNumbers - 1, FeatureLevelHeaderNumbers} {
		t.Run(fmt.Sprintf("misjudged by ParseFloat/level=%d", level), func(t *testing.T) {
			f := mustChain(t)
			f.mustRaiseLevel(level)
			const web = "did:web:misjudged.example"
			jwk := mustJWK(t, mustAs(t, mustKey(t, record.KeyEd25519), web+"#key-1"))
			// 1.8e308, beyond range; ParseFloat reads 1.8e206.
			n := "18" + strings.Repeat("0", 900) + "e-593"
			withN := json.RawMessage(strings.TrimSuffix(string(jwk), "}") + `,"size":` + n + `}`)
			op := f.sign(f.qa, record.OpRegisterEntity, map[string]any{"id": web, "name": "Misjudged College", "keys": []any{withN}})
			const said = `"/keys/0/size" holds the number 1800000000000000… (907 characters)`
			if err := f.s.PreVerify(op); !errors.Is(err, record.ErrMalformed) || !strings.Contains(err.Error(), said) {
				t.Fatalf("PreVerify: %v, want ErrMalformed saying %s", err, said)
			}
			before := f.digest()
			mustDecideByLevel10(t, f.harness, level, f.apply(op), before, said)
		})
		t.Run(fmt.Sprintf("own header/level=%d", level), func(t *testing.T) {
			f := mustChain(t)
			f.mustRaiseLevel(level)
			const subject = "did:web:header-numbers.example"
			op := []byte(signWithHeader(t, f.root, "trustreg-op+jws", headerJWK(`"zz":1e400`), f.payload(record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.root.DID, "subject": subject, "action": record.ActionAccredit,
				"resources": []string{nursing}, "jurisdictions": []string{"US"},
			})))
			if err := f.s.PreVerify(op); !errors.Is(err, record.ErrMalformed) || !strings.Contains(err.Error(), "signature 0 "+want) {
				t.Fatalf("PreVerify: %v, want ErrMalformed saying %s", err, want)
			}
			if r := f.s.Check(op, f.now); r == nil || r.Accepted || r.Code != record.CodeMalformed || !strings.Contains(r.Reason, want) {
				t.Fatalf("the leader's check: %+v, want malformed saying %s", r, want)
			}
			before := f.digest()
			if r := f.apply(op); mustDecideByLevel10(t, f.harness, level, r, before, "signature 0 "+want) {
				if stored, err := f.s.Operation(r.CID); err != nil || stored.JWS != string(op) {
					t.Fatalf("the stored operation: %v; want it as signed, header and all", err)
				}
			}
		})
		t.Run(fmt.Sprintf("status-list credential/level=%d", level), func(t *testing.T) {
			f := recList(t)
			f.mustRaiseLevel(level)
			vc := credential(t, f.college.DID, map[string]any{"statusPurpose": "revocation"})
			jwt := signWithHeader(t, f.college, "vc+jwt", headerJWK(`"zz":1e400`), vc)
			f.now = f.now.Add(time.Second)
			before := f.digest()
			r := f.apply(f.sign(f.college, record.OpPublishStatusList, map[string]any{"list": "l1", "previous": "", "credential": jwt}))
			mustDecideByLevel10(t, f.harness, level, r, before, "credential "+want)
		})
		t.Run(fmt.Sprintf("root credential/level=%d", level), func(t *testing.T) {
			h, root, claims := mustRootClaims(t, level)
			cred := signWithHeader(t, h.gov[0], "JWT", headerJWK(`"zz":1e400`), claims)
			before := h.digest()
			r := h.apply(h.govSign(record.OpAddRootAccreditor, map[string]any{"framework": fwID, "accreditor": root.DID, "credential": cred}))
			mustDecideByLevel10(t, h, level, r, before, "credential "+want)
		})
	}
}

// mustDecideByLevel10 checks r, the result of an operation applied at
// level that holds a number FeatureLevelHeaderNumbers refuses: accepted
// below that level, as older builds accept it (it reports true), else
// refused as malformed saying want with the state as it was (before, its
// digest).
func mustDecideByLevel10(t *testing.T, h *harness, level int, r *record.Result, before, want string) (accepted bool) {
	t.Helper()
	if level < FeatureLevelHeaderNumbers {
		if !r.Accepted {
			t.Fatalf("below the level: %+v, want it accepted as older builds do", r)
		}
		return true
	}
	mustRefuseForANumber(t, h, r, before, want)
	return false
}

// mustRefuseForANumber checks r, the result of an operation applied at
// FeatureLevelNumberRange: refused as malformed, saying want, and the state
// as it was (before, its digest).
func mustRefuseForANumber(t *testing.T, h *harness, r *record.Result, before, want string) {
	t.Helper()
	if r.Accepted || r.Code != record.CodeMalformed || !strings.Contains(r.Reason, want) {
		t.Fatalf("at the level: %+v, want malformed saying %s", r, want)
	}
	if h.digest() != before {
		t.Fatal("a refused operation changed the state")
	}
}
