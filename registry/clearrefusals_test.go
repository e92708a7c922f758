package registry

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// outcome is what the apply makes of an operation: accepted (code ""), or
// refused with code, its reason containing says.
type outcome struct{ code, says string }

// Five refusals change their words at FeatureLevelClearRefusals and two
// rules what the apply accepts. Below the level the apply decides as
// older builds do (a result's words are committed state); from it on, in
// the new words, with the state as it was. A check before the log answers
// the new words at any level.
func TestClearRefusalsFromTheLevelOn(t *testing.T) {
	accredit := func(f *chainFixture, subject string, extra map[string]any) map[string]any {
		m := map[string]any{
			"framework": fwID, "accreditor": f.root.DID, "subject": subject, "action": record.ActionAccredit,
			"resources": []string{nursing}, "jurisdictions": []string{"US"},
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name  string
		op    func(f *chainFixture) []byte
		older outcome
		clear outcome
		// checked: what PreVerify says at every level ("" : it passes)
		checked string
	}{{
		name: "crit names an extension not understood",
		op: func(f *chainFixture) []byte {
			return []byte(signWithHeader(t, f.root, "trustreg-op+jws", `"crit":["exp"],"exp":1`,
				f.payload(record.OpAccredit, accredit(f, "did:web:crit.example", nil))))
		},
		older:   outcome{record.CodeBadSignature, "does not verify"},
		clear:   outcome{record.CodeMalformed, `signature 0: the protected header's crit names "exp", an extension trustreg does not understand`},
		checked: `crit names "exp"`,
	}, {
		name: "crit is not a list of names",
		op: func(f *chainFixture) []byte {
			return []byte(signWithHeader(t, f.root, "trustreg-op+jws", `"crit":"b64"`,
				f.payload(record.OpAccredit, accredit(f, "did:web:crit2.example", nil))))
		},
		older:   outcome{record.CodeBadSignature, "does not verify"},
		clear:   outcome{record.CodeMalformed, "signature 0: the protected header's crit is not a list of header names"},
		checked: "crit is not a list",
	}, {
		name: "a date-time that does not decode",
		op: func(f *chainFixture) []byte {
			return f.sign(f.root, record.OpAccredit, accredit(f, "did:web:when.example", map[string]any{"validUntil": "2031-01-01T00:00:00Z", "validFrom": "yesterday"}))
		},
		older:   outcome{record.CodeMalformed, `accredit payload: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00"`},
		clear:   outcome{record.CodeMalformed, `accredit payload: "/validFrom": "yesterday" is not an RFC 3339 date-time (such as 2026-01-02T15:04:05Z)`},
		checked: `"/validFrom": "yesterday" is not an RFC 3339 date-time`,
	}, {
		name: "updateEntity names no id",
		op: func(f *chainFixture) []byte {
			return f.sign(f.college, record.OpUpdateEntity, map[string]any{"name": "No One"})
		},
		older: outcome{record.CodeInvalid, " is not registered: use registerEntity"},
		clear: outcome{record.CodeMalformed, "updateEntity names no id: give the DID of the entity to update"},
	}, {
		name: "registerEntity with a javascript: homepage",
		op: func(f *chainFixture) []byte {
			return f.sign(f.college, record.OpRegisterEntity, map[string]any{"id": f.college.DID, "name": "College",
				"metadata": map[string]any{"homepage": "javascript:alert(1)"}})
		},
		clear: outcome{record.CodeInvalid, `homepage "javascript:alert(1)" is not an http or https URL with a host`},
	}, {
		name: "updateEntity to a homepage without a host",
		op: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.college, record.OpRegisterEntity, map[string]any{"id": f.college.DID, "name": "College",
				"metadata": map[string]any{"homepage": "https://college.example"}}))
			return f.sign(f.college, record.OpUpdateEntity, map[string]any{"id": f.college.DID, "metadata": map[string]any{"homepage": "https://"}})
		},
		clear: outcome{record.CodeInvalid, `homepage "https://" is not an http or https URL with a host`},
	}, {
		name:  "updateFramework that changes nothing",
		op:    func(f *chainFixture) []byte { return f.govSign(record.OpUpdateFramework, map[string]any{"id": fwID}) },
		clear: outcome{record.CodeInvalid, "updateFramework changes nothing: give name, description, url or maxChainLength"},
	}, {
		name: "updateEntity that changes nothing",
		op: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.college, record.OpRegisterEntity, map[string]any{"id": f.college.DID, "name": "College"}))
			return f.sign(f.college, record.OpUpdateEntity, map[string]any{"id": f.college.DID})
		},
		clear: outcome{record.CodeInvalid, "updateEntity changes nothing: give name or metadata"},
	}}
	for _, tc := range cases {
		for _, level := range []int{FeatureLevelClearRefusals - 1, FeatureLevelClearRefusals} {
			t.Run(fmt.Sprintf("%s/level=%d", tc.name, level), func(t *testing.T) {
				f := mustChain(t)
				f.mustRaiseLevel(level)
				op := tc.op(f)
				err := f.s.PreVerify(op)
				switch {
				case tc.checked == "" && err != nil:
					t.Fatalf("PreVerify: %v, want it to pass (the apply decides)", err)
				case tc.checked != "" && (!errors.Is(err, record.ErrMalformed) || !strings.Contains(err.Error(), tc.checked)):
					t.Fatalf("PreVerify: %v, want malformed saying %s at any level", err, tc.checked)
				}
				want := tc.clear
				if level < FeatureLevelClearRefusals {
					want = tc.older
				}
				before := f.digest()
				r := f.apply(op)
				if want.code == "" {
					if !r.Accepted {
						t.Fatalf("below the level: %s: %s, want it accepted as older builds do", r.Code, r.Reason)
					}
					return
				}
				if r.Accepted || r.Code != want.code || !strings.Contains(r.Reason, want.says) {
					t.Fatalf("applied: accepted=%v %s: %s\nwant %s saying %s", r.Accepted, r.Code, r.Reason, want.code, want.says)
				}
				if f.digest() != before {
					t.Fatal("a refused operation changed the state")
				}
			})
		}
	}
}

// What the level changes is words and the two rules, never what was
// accepted: an operation applied already and sent again in a JSON
// serialization whose unprotected header carries a crit (which go-jose
// refuses) keeps its first answer at either level, as the duplicates are
// found before the signature check; and an entity whose homepage the
// level would refuse, registered before it, can still update the rest of
// its metadata, which clients send whole.
func TestClearRefusalsKeepWhatWasAccepted(t *testing.T) {
	for _, level := range []int{FeatureLevelClearRefusals - 1, FeatureLevelClearRefusals} {
		t.Run(fmt.Sprintf("resent with crit/level=%d", level), func(t *testing.T) {
			f := mustChain(t)
			f.mustRaiseLevel(level)
			op := f.sign(f.root, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.root.DID, "subject": "did:web:again.example", "action": record.ActionAccredit,
				"resources": []string{nursing}, "jurisdictions": []string{"US"},
			})
			first := f.mustAccept(op)
			parts := strings.Split(string(op), ".")
			again := []byte(`{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `","header":{"crit":null}}`)
			r := f.apply(again)
			if !r.Accepted || !r.Duplicate || r.ID != first.ID {
				t.Fatalf("resent: %+v, want the first answer (%s) as a duplicate", r, first.ID)
			}
		})
	}
	t.Run("a homepage from before the level", func(t *testing.T) {
		f := mustChain(t)
		f.mustRaiseLevel(FeatureLevelClearRefusals - 1)
		meta := map[string]any{"homepage": "www.college.example", "country": "US"}
		f.mustAccept(f.sign(f.college, record.OpRegisterEntity, map[string]any{"id": f.college.DID, "name": "College", "metadata": meta}))
		f.mustRaiseLevel(FeatureLevelClearRefusals)
		f.now = f.now.Add(time.Second)
		meta["country"] = "CA"
		f.mustAccept(f.sign(f.college, record.OpUpdateEntity, map[string]any{"id": f.college.DID, "metadata": meta}))
		f.now = f.now.Add(time.Second)
		meta["homepage"] = "college.example"
		before := f.digest()
		if r := f.apply(f.sign(f.college, record.OpUpdateEntity, map[string]any{"id": f.college.DID, "metadata": meta})); r.Accepted || r.Code != record.CodeInvalid ||
			!strings.Contains(r.Reason, `homepage "college.example" is not an http or https URL with a host`) {
			t.Fatalf("a new homepage that is no URL: %+v, want invalid", r)
		}
		if f.digest() != before {
			t.Fatal("a refused operation changed the state")
		}
	})
}
