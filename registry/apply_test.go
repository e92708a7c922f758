package registry

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

func TestChainAuthorizesCollege(t *testing.T) {
	f := mustChain(t)
	d := f.ask(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 0)
	if !d.Authorized || d.Reason != record.ReasonActive {
		t.Fatalf("decision = %v %s, want authorized active", d.Authorized, d.Reason)
	}
	if len(d.Chain) != 2 || d.Chain[0].Accreditation != f.collegeAcc || d.Chain[1].Accreditation != f.qaAcc {
		t.Fatalf("chain = %+v, want college then QA", d.Chain)
	}
	if d.Root != f.root.DID {
		t.Fatalf("root = %s, want %s", d.Root, f.root.DID)
	}
	// The QA agency may accredit; the root may accredit as root.
	for _, who := range []string{f.qa.DID, f.root.DID} {
		d := f.decide(decide.Question{Entity: who, Framework: fwID, Action: record.ActionAccredit, Resource: nursing})
		if !d.Authorized {
			t.Errorf("%s accredit: %s, want authorized", who, d.Reason)
		}
	}
}

func TestRejectionsLeaveStateUnchanged(t *testing.T) {
	f := mustChain(t)
	stranger := mustKey(t, record.KeyEd25519)
	accredit := func(s *record.Signer, fields map[string]any) []byte {
		m := map[string]any{"framework": fwID, "accreditor": s.DID, "subject": stranger.DID, "action": record.ActionIssue, "resources": []string{nursing}}
		for k, v := range fields {
			m[k] = v
		}
		return f.sign(s, record.OpAccredit, m)
	}
	fromQA := func(fields map[string]any) []byte {
		m := map[string]any{"parent": f.qaAcc, "jurisdictions": []string{"US"}, "validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z"}
		for k, v := range fields {
			m[k] = v
		}
		return accredit(f.qa, m)
	}
	tampered := func() []byte {
		jws := fromQA(nil)
		parts := bytes.Split(jws, []byte("."))
		sig := []byte(string(parts[2]))
		if sig[5] == 'A' {
			sig[5] = 'B'
		} else {
			sig[5] = 'A'
		}
		return bytes.Join([][]byte{parts[0], parts[1], sig}, []byte("."))
	}
	webKey := mustKey(t, record.KeyEd25519)
	unknownKid, _ := record.NewSigner(webKey.Key(), "did:web:unknown.example#key-1")

	cases := []struct {
		name string
		jws  []byte
		code string
	}{
		{"bad signature", tampered(), record.CodeBadSignature},
		{"unknown key", accredit(unknownKid, map[string]any{"parent": f.qaAcc}), record.CodeUnknownKey},
		{"signer is not a root", accredit(stranger, map[string]any{"subject": f.college.DID}), record.CodeNotAuthorized},
		{"accreditor field is not the signer", fromQA(map[string]any{"accreditor": f.root.DID}), record.CodeNotAuthorized},
		{"parent granted to someone else", accredit(f.college, map[string]any{"parent": f.qaAcc}), record.CodeNotAuthorized},
		{"parent grants issue only", accredit(f.college, map[string]any{"parent": f.collegeAcc}), record.CodeScope},
		{"resource escalation", fromQA(map[string]any{"resources": []string{law}}), record.CodeScope},
		{"jurisdiction escalation", fromQA(map[string]any{"jurisdictions": []string{"FR"}}), record.CodeScope},
		{"jurisdiction dropped", fromQA(map[string]any{"jurisdictions": nil}), record.CodeScope},
		{"starts before the grantor", fromQA(map[string]any{"validFrom": "2023-01-01T00:00:00Z"}), record.CodeScope},
		{"ends after the grantor", fromQA(map[string]any{"validUntil": "2031-01-01T00:00:00Z"}), record.CodeScope},
		{"open-ended under a bounded grantor", fromQA(map[string]any{"validUntil": nil}), record.CodeScope},
		{"unknown framework", fromQA(map[string]any{"framework": "https://example.org/none"}), record.CodeInvalid},
		{"bad action", fromQA(map[string]any{"action": "admire"}), record.CodeInvalid},
		{"bad jurisdiction code", fromQA(map[string]any{"jurisdictions": []string{"usa"}}), record.CodeInvalid},
		{"window reversed", fromQA(map[string]any{"validFrom": "2025-06-01T00:00:00Z", "validUntil": "2025-01-01T00:00:00Z"}), record.CodeInvalid},
		{"self accreditation", accredit(f.root, map[string]any{"subject": f.root.DID}), record.CodeInvalid},
		{"unknown field", fromQA(map[string]any{"colour": "blue"}), record.CodeMalformed},
		{"not a JWS", []byte("hello"), record.CodeMalformed},
		{"JSON payload not an object", mustSignRaw(t, f.qa, []byte(`[1,2]`)), record.CodeMalformed},
		{"no iat", mustSignRaw(t, f.qa, []byte(`{"op":"revoke","accreditation":"x"}`)), record.CodeMalformed},
		{"unknown op", mustSignRaw(t, f.qa, []byte(`{"op":"delete","iat":1}`)), record.CodeMalformed},
		{"governance op by non-member", f.sign(f.root, record.OpCreateFramework, map[string]any{"id": "https://example.org/f2", "name": "F2"}), record.CodeNotAuthorized},
		{"framework exists", f.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "again"}), record.CodeConflict},
		{"revoke by a stranger", f.sign(stranger, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc}), record.CodeNotAuthorized},
		{"reinstate an active accreditation", f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc}), record.CodeConflict},
		{"register by a stranger", f.sign(stranger, record.OpRegisterEntity, map[string]any{"id": "did:web:college.example", "name": "College"}), record.CodeNotAuthorized},
		{"update someone else", f.sign(stranger, record.OpUpdateEntity, map[string]any{"id": f.college.DID, "name": "x"}), record.CodeInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.digest()
			r := f.apply(tc.jws)
			if r.Accepted {
				t.Fatalf("accepted, want %s", tc.code)
			}
			if r.Code != tc.code {
				t.Fatalf("code = %s (%s), want %s", r.Code, r.Reason, tc.code)
			}
			if r.Reason == "" {
				t.Fatal("rejection has no reason")
			}
			if after := f.digest(); after != before {
				t.Fatal("state digest changed by a rejected operation")
			}
		})
	}
}

func mustSignRaw(t *testing.T, s *record.Signer, payload []byte) []byte {
	t.Helper()
	jws, err := s.SignCompact(payload)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

func TestIATWindow(t *testing.T) {
	f := mustChain(t)
	suspend := f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc})
	early := f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc})
	f.now = f.now.Add(11 * time.Minute)
	future := f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "reason": "future"})
	f.now = f.now.Add(-2 * time.Minute)
	// 9 minutes after signing is within the window.
	f.mustAccept(suspend)
	f.now = f.now.Add(2 * time.Minute)
	for name, op := range map[string][]byte{"11 minutes old": early} {
		before := f.digest()
		r := f.apply(op)
		if r.Accepted || r.Code != record.CodeIATWindow || !errors.Is(r.Err(), record.ErrIATWindow) {
			t.Fatalf("%s: %+v, want %s", name, r, record.CodeIATWindow)
		}
		if f.digest() != before {
			t.Fatal("state changed")
		}
	}
	f.now = f.now.Add(-12 * time.Minute) // the commit time stays at its maximum
	if r := f.apply(future); !r.Accepted {
		t.Fatalf("iat equal to the commit time rejected: %s", r.Reason)
	}
	f2 := mustChain(t)
	f2.now = f2.now.Add(20 * time.Minute)
	ahead := f2.sign(f2.qa, record.OpSuspend, map[string]any{"accreditation": f2.collegeAcc})
	f2.now = f2.now.Add(-20 * time.Minute)
	if r := f2.apply(ahead); r.Code != record.CodeIATWindow {
		t.Fatalf("iat 20 minutes ahead: %+v, want %s", r, record.CodeIATWindow)
	}
}

func TestResubmissionIsIdempotent(t *testing.T) {
	f := mustChain(t)
	op := f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "audit"})
	first := f.mustAccept(op)
	before := f.digest()
	again := f.apply(op)
	if !again.Accepted || !again.Duplicate || again.Index != first.Index || again.CID != first.CID {
		t.Fatalf("resubmission = %+v, want the original result %+v marked duplicate", again, first)
	}
	// The same signature re-serialized as JWS JSON is the same operation.
	general, err := record.CoSign(op, f.college) // adds a signature: a different operation
	if err != nil {
		t.Fatal(err)
	}
	var g generalJWS
	if err := g.From(op); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(general, []byte(g.Signatures[0].Signature)) {
		t.Fatal("co-signed JWS lost the first signature")
	}
	reser := []byte(`{"payload":"` + g.Payload + `","protected":"` + g.Signatures[0].Protected + `","signature":"` + g.Signatures[0].Signature + `"}`)
	if r := f.apply(reser); !r.Duplicate || r.Index != first.Index {
		t.Fatalf("re-serialized resubmission = %+v, want duplicate of index %d", r, first.Index)
	}
	if f.digest() != before {
		t.Fatal("a duplicate changed the state")
	}
}

func TestGovernanceThreshold(t *testing.T) {
	h := mustNewState(t, 3, 2)
	payload := h.payload(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Health"})
	one, err := record.SignJSON(payload, h.gov[0])
	if err != nil {
		t.Fatal(err)
	}
	if r := h.apply(one); r.Accepted || r.Code != record.CodeNotAuthorized {
		t.Fatalf("1 of 3 signatures: %+v, want not_authorized", r)
	}
	two, err := record.CoSign(one, h.gov[2])
	if err != nil {
		t.Fatal(err)
	}
	h.mustAccept(two)
	// A second signature by the same member is not a second member.
	// (record.CoSign refuses to add it; the JSON serialization is built
	// with both here.)
	dup, err := record.SignJSON(h.payload(record.OpUpdateFramework, map[string]any{"id": fwID, "name": "x"}), h.gov[1], h.gov[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := record.CoSign(mustSignRaw(t, h.gov[1], h.payload(record.OpUpdateFramework, map[string]any{"id": fwID, "name": "y"})), h.gov[1]); err == nil || !strings.Contains(err.Error(), "signed this operation already") {
		t.Fatalf("CoSign by a key that signed already: %v", err)
	}
	if r := h.apply(dup); r.Accepted || r.Code != record.CodeMalformed {
		t.Fatalf("same member twice: %+v, want malformed", r)
	}
}

func TestEntityKeysAndRotation(t *testing.T) {
	f := mustChain(t)
	const web = "did:web:college.example%3A8443:campus"
	k1 := mustKey(t, record.KeyEd25519)
	s1, _ := record.NewSigner(k1.Key(), web+"#key-1")
	jwk1, err := s1.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	// The QA agency, an active accreditor, registers the college's DID.
	f.mustAccept(f.sign(f.qa, record.OpRegisterEntity, map[string]any{"id": web, "name": "Web College", "keys": []any{jwk1},
		"metadata": map[string]any{"country": "US", "identifiers": map[string]string{"ctid": "ce-123"}}}))
	ent, err := f.s.Entity(web)
	if err != nil || ent.Name != "Web College" || len(ent.Keys) != 1 {
		t.Fatalf("entity = %+v, %v", ent, err)
	}
	// The college signs with its registered key.
	f.mustAccept(f.sign(s1, record.OpUpdateEntity, map[string]any{"id": web, "name": "Web College of Nursing"}))
	// It rotates to a new key, signed by the current one.
	k2 := mustKey(t, record.KeyP256)
	s2, _ := record.NewSigner(k2.Key(), web+"#key-2")
	jwk2, _ := s2.PublicJWK()
	f.mustAccept(f.sign(s1, record.OpRotateKeys, map[string]any{"id": web, "keys": []any{jwk2}}))
	// The old key no longer signs.
	if r := f.apply(f.sign(s1, record.OpUpdateEntity, map[string]any{"id": web, "name": "old key"})); r.Code != record.CodeUnknownKey ||
		!strings.Contains(r.Reason, `no key "`+web+`#key-1" is registered for `+web+`: sign with one of its current keys`) {
		t.Fatalf("old key: %+v, want unknown_key naming the key", r)
	}
	// A DID that is not registered cannot sign; the answer says who
	// registers it (not "register it with this key", which it cannot do).
	stranger, _ := record.NewSigner(k1.Key(), "did:web:stranger.example#key-1")
	sjwk, _ := stranger.PublicJWK()
	if r := f.apply(f.sign(stranger, record.OpRegisterEntity, map[string]any{"id": "did:web:stranger.example", "name": "S", "keys": []any{sjwk}})); r.Code != record.CodeUnknownKey ||
		!strings.Contains(r.Reason, "did:web:stranger.example is not registered, so no key of it is known: governance or an active accreditor registers it") {
		t.Fatalf("self-registration of a did:web: %+v", r)
	}
	f.mustAccept(f.sign(s2, record.OpUpdateEntity, map[string]any{"id": web, "name": "new key"}))
	// Registered private key material is refused.
	priv, _ := s2.PrivateJWK()
	if r := f.apply(f.sign(s2, record.OpRotateKeys, map[string]any{"id": web, "keys": []any{string(priv)}})); r.Accepted {
		t.Fatal("rotation to a malformed key accepted")
	}
	// History lists what concerned the entity.
	hist, _, err := f.s.History(web, Page{})
	if err != nil || len(hist) != 4 {
		t.Fatalf("history = %d entries, %v; want 4", len(hist), err)
	}
	// An unregistered did:key is answered with its own key.
	ent, err = f.s.Entity(f.college.DID)
	if err != nil || ent.Registered || len(ent.Keys) != 1 {
		t.Fatalf("did:key entity = %+v, %v", ent, err)
	}
	if _, err := f.s.Entity("did:web:nobody.example"); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("unknown entity: %v, want ErrNotFound", err)
	}
}

func TestChainLengthLimit(t *testing.T) {
	h := mustNewState(t, 1, 1)
	root := mustKey(t, record.KeyEd25519)
	h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Short", "maxChainLength": 2, "roots": []string{root.DID}}))
	a := mustKey(t, record.KeyEd25519)
	b := mustKey(t, record.KeyEd25519)
	c := mustKey(t, record.KeyEd25519)
	p1 := h.mustAccept(h.sign(root, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": root.DID, "subject": a.DID, "action": record.ActionAccredit, "resources": []string{"*"}})).ID
	p2 := h.mustAccept(h.sign(a, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": a.DID, "subject": b.DID, "action": record.ActionAccredit, "resources": []string{nursing}, "parent": p1})).ID
	before := h.digest()
	r := h.apply(h.sign(b, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": b.DID, "subject": c.DID, "action": record.ActionIssue, "resources": []string{nursing}, "parent": p2}))
	if r.Accepted || r.Code != record.CodeScope || !strings.Contains(r.Reason, "allows 2") {
		t.Fatalf("third link: %+v, want scope_exceeded by chain length", r)
	}
	if h.digest() != before {
		t.Fatal("state changed")
	}
}

func TestRecognitionAndRoots(t *testing.T) {
	f := mustChain(t)
	other := "https://other.example/framework"
	recognized := f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other, "resources": []string{nursing}})).Index
	f.now = f.now.Add(time.Second)
	if r := f.apply(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other, "resources": []string{nursing}})); r.Code != record.CodeConflict {
		t.Fatalf("recognize twice: %+v", r)
	}
	view, err := f.s.Framework(fwID)
	if err != nil || len(view.Recognitions) != 1 || len(view.Roots) != 1 {
		t.Fatalf("framework view = %+v, %v", view, err)
	}
	recognizedAt := f.s.AppliedIndex()
	recognizes := func(asOf uint64) *decide.RecognitionDecision {
		t.Helper()
		d, err := f.s.DecideRecognition(decide.RecognitionQuestion{Framework: fwID, Recognized: other, Resource: nursing, AsOf: asOf}, f.now)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := recognizes(0); !d.Recognizes || d.Reason != record.ReasonActive || d.Index != recognizedAt {
		t.Fatalf("recognition: %+v", d)
	}
	f.mustAccept(f.govSign(record.OpUnrecognize, map[string]any{"framework": fwID, "recognized": other}))
	if d := recognizes(0); d.Recognizes || d.Reason != record.ReasonRevoked {
		t.Fatalf("after unrecognize: %+v", d)
	}
	if d := recognizes(recognizedAt); !d.Recognizes {
		t.Fatalf("as of index %d, before unrecognize: %+v", recognizedAt, d)
	}
	if d := recognizes(recognized - 1); d.Recognizes || d.Reason != decide.ReasonNeverRecognized || d.Recognition != nil {
		t.Fatalf("as of index %d, before recognize: %+v", recognized-1, d)
	}
	if _, err := f.s.DecideRecognition(decide.RecognitionQuestion{Framework: fwID, Recognized: other, AsOf: f.s.AppliedIndex() + 1}, f.now); !errors.Is(err, record.ErrBadQuery) {
		t.Fatalf("as_of beyond the applied index: %v", err)
	}
	if _, err := f.s.DecideRecognition(decide.RecognitionQuestion{Framework: fwID}, f.now); !errors.Is(err, record.ErrBadQuery) {
		t.Fatalf("no recognized framework: %v", err)
	}
	// Removing the root breaks every chain under it from now on.
	f.now = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	f.mustAccept(f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.root.DID}))
	if d := f.ask(time.Time{}, 0); d.Reason != record.ReasonChainBroken {
		t.Fatalf("after root removal: %s, want chain_broken", d.Reason)
	}
	if d := f.ask(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), 0); !d.Authorized {
		t.Fatalf("before root removal: %s, want authorized", d.Reason)
	}
	f.mustAccept(f.govSign(record.OpAddRootAccreditor, map[string]any{"framework": fwID, "accreditor": f.root.DID}))
	if d := f.ask(time.Time{}, 0); !d.Authorized {
		t.Fatalf("root added back: %s", d.Reason)
	}
}

func TestCommandEnvelopeGolden(t *testing.T) {
	got := hex.EncodeToString(EncodeOperation([]byte("abc")))
	if got != "0101616263" {
		t.Fatalf("EncodeOperation = %s, want 0101616263 (version 1, type 1, body)", got)
	}
}

func TestUndecodableEntryPanics(t *testing.T) {
	h := mustNewState(t, 1, 1)
	for _, data := range [][]byte{nil, {9, 1}, {1, 200}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("entry %x applied without panic", data)
				}
			}()
			h.index++
			h.s.ApplyBatch([]Entry{{Index: h.index, Time: h.now, Data: data}})
		}()
	}
}

// TestPreVerifiedSignaturesCannotBeReused: a signature checked ahead of
// apply is remembered only for the exact bytes it signed.
func TestPreVerifiedSignaturesCannotBeReused(t *testing.T) {
	f := mustChain(t)
	good := f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "a"})
	f.s.PreVerify(good)
	parts := bytes.Split(good, []byte("."))
	other := f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "reason": "b"})
	forged := bytes.Join([][]byte{bytes.Split(other, []byte("."))[0], bytes.Split(other, []byte("."))[1], parts[2]}, []byte("."))
	f.s.PreVerify(forged) // fails to verify: nothing remembered
	before := f.digest()
	if r := f.apply(forged); r.Code != record.CodeBadSignature {
		t.Fatalf("a pre-verified signature moved onto other content: %+v", r)
	}
	if f.digest() != before {
		t.Fatal("state changed")
	}
	f.mustAccept(good)
}

// TestApplyDropsWhatPreVerifyRemembered: the parse and the signature checks
// PreVerify keeps for the apply are dropped once the apply has used them,
// so a bulk load does not leave them in memory; an operation applied again
// (a resubmission) is parsed and checked afresh and answered the same.
func TestApplyDropsWhatPreVerifyRemembered(t *testing.T) {
	f := mustChain(t)
	op := f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "a"})
	if err := f.s.PreVerify(op); err != nil {
		t.Fatal(err)
	}
	if f.s.verify.parsed.Len() != 1 || f.s.verify.verified.Len() != 1 {
		t.Fatalf("PreVerify remembered %d parses and %d signatures, want 1 and 1", f.s.verify.parsed.Len(), f.s.verify.verified.Len())
	}
	first := f.mustAccept(op)
	if f.s.verify.parsed.Len() != 0 || f.s.verify.verified.Len() != 0 {
		t.Fatalf("after the apply %d parses and %d signatures are still remembered", f.s.verify.parsed.Len(), f.s.verify.verified.Len())
	}
	again := f.apply(op)
	if !again.Duplicate || again.Index != first.Index || again.CID != first.CID {
		t.Fatalf("resubmission: %+v, first %+v", again, first)
	}
}

// TestSignatureChecksCountWhereTheyRan: a signature PreVerify checked is
// counted ahead and not again when applied; one the apply checks itself (an
// entry first seen at the apply) counts while judging; a check that fails
// counts too; a resubmission, found by what it signed, checks nothing.
func TestSignatureChecksCountWhereTheyRan(t *testing.T) {
	f := mustChain(t)
	counts := func(ahead, judging uint64, when string) {
		t.Helper()
		if a, j := f.s.SignatureChecks(); a != ahead || j != judging {
			t.Fatalf("%s: %d ahead, %d judging; want %d and %d", when, a, j, ahead, judging)
		}
	}
	counts(0, 3, "the fixture's three operations, applied without PreVerify")

	other := f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "reason": "b"})
	third := f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "reason": "c"})
	forged := bytes.Join([][]byte{bytes.Split(other, []byte("."))[0], bytes.Split(other, []byte("."))[1], bytes.Split(third, []byte("."))[2]}, []byte("."))
	_ = f.s.PreVerify(forged) // parses; its signature fails
	counts(1, 3, "a forged signature pre-verified")
	if r := f.apply(forged); r.Code != record.CodeBadSignature {
		t.Fatalf("forged: %+v", r)
	}
	counts(1, 4, "a forged signature applied")

	op := f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "a"})
	for range 2 { // the second finds the first's check remembered
		if err := f.s.PreVerify(op); err != nil {
			t.Fatal(err)
		}
	}
	counts(2, 4, "pre-verified twice")
	f.mustAccept(op)
	counts(2, 4, "applied after PreVerify")
	if r := f.apply(op); !r.Duplicate {
		t.Fatalf("resubmission: %+v", r)
	}
	counts(2, 4, "applied again")
}

// TestPrefetchSkipsTheBatchBeingApplied: Prefetch of an entry whose batch
// the apply has begun (its parse taken, its index not yet applied: on a
// single node, the raft log hands Prefetch the entries it stores while
// the apply may already run them) checks nothing again and leaves no parse
// behind. The interleaving is forced: pubMu holds the apply before its
// commit.
func TestPrefetchSkipsTheBatchBeingApplied(t *testing.T) {
	f := mustChain(t)
	op := f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "a"})
	if err := f.s.PreVerify(op); err != nil {
		t.Fatal(err)
	}
	ahead, judging := f.s.SignatureChecks()
	f.index++
	e := Entry{Index: f.index, Time: f.now, Data: EncodeOperation(op)}
	f.entries = append(f.entries, e)

	held := true
	done := make(chan *record.Result, 1)
	t.Cleanup(func() {
		if held {
			f.s.pubMu.Unlock()
		}
		select {
		case <-done:
		case <-time.After(waitForMax):
		}
	})
	f.s.pubMu.Lock() // the apply stops before its commit
	go func() { done <- f.s.ApplyBatch([]Entry{e})[0] }()
	waitFor(t, "the apply to take the operation's parse", func() bool { return f.s.verify.parsed.Len() == 0 })
	f.s.Prefetch([]Entry{e})
	if a, j := f.s.SignatureChecks(); a != ahead || j != judging {
		t.Errorf("Prefetch during the apply checked again: %d ahead, %d judging; %d and %d before", a, j, ahead, judging)
	}
	if n := f.s.verify.parsed.Len(); n != 0 {
		t.Errorf("Prefetch during the apply left %d parses", n)
	}
	f.s.pubMu.Unlock()
	held = false
	res := <-done
	done <- res // for the cleanup
	if !res.Accepted {
		t.Fatalf("the suspension: %+v", res)
	}
	f.s.Prefetch([]Entry{e}) // applied now
	if a, _ := f.s.SignatureChecks(); a != ahead || f.s.verify.parsed.Len() != 0 {
		t.Errorf("Prefetch after the apply: %d ahead, %d parses", a, f.s.verify.parsed.Len())
	}
}

// TestRestoreResetsApplying: after a restore to an older state the
// entries past it are prefetched again (the batch being applied is the
// restored state's, not the one applied before the restore).
func TestRestoreResetsApplying(t *testing.T) {
	f := mustChain(t)
	older := snapshotBytes(t, f.s)
	at := f.index
	for i := range 3 {
		f.tick()
		f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{
			"framework": fwID, "accreditor": f.qa.DID, "subject": fmt.Sprintf("did:web:later%d.example", i), "action": record.ActionIssue,
			"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
			"validFrom": "2024-06-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
		}))
	}
	if err := f.s.Restore(bytes.NewReader(older)); err != nil {
		t.Fatal(err)
	}
	f.index = at
	op := f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "a"})
	ahead, _ := f.s.SignatureChecks()
	f.s.Prefetch([]Entry{{Index: at + 1, Time: f.now, Data: EncodeOperation(op)}})
	if a, _ := f.s.SignatureChecks(); a != ahead+1 {
		t.Fatalf("the entry after the restored index was not prefetched: %d checks ahead, %d before", a, ahead)
	}
	f.mustAccept(op)
}

// TestStatusChangeLeavesCachedRecordsAlone: the apply reads accreditations
// through the read-side cache, which trust queries share; a status change
// must put its event on a copy. Written in place, queries running during
// the apply saw an event not yet committed (and raced with the write).
func TestStatusChangeLeavesCachedRecordsAlone(t *testing.T) {
	f := mustChain(t)
	if d := f.ask(time.Time{}, 0); d.Reason != record.ReasonActive {
		t.Fatalf("before: %s", d.Reason)
	}
	// A trust question caches a subject's accreditations with its listing.
	cached, ok := f.s.caches.records.get(decide.ReceivedKey(f.college.DID, fwID), f.s.seq.Load())
	if !ok || len(cached.([]*record.Accreditation)) != 1 || cached.([]*record.Accreditation)[0].ID != f.collegeAcc {
		t.Fatalf("the trust query did not cache the college's accreditation (%v): the test shows nothing", cached)
	}
	a := cached.([]*record.Accreditation)[0]
	events := slices.Clone(a.Events)
	f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "audit"}))
	if !slices.Equal(a.Events, events) {
		t.Fatalf("the cached accreditation changed under the apply: %d events, were %d", len(a.Events), len(events))
	}
	if d := f.ask(time.Time{}, 0); d.Reason != record.ReasonSuspended {
		t.Fatalf("after the suspension: %s", d.Reason)
	}
}

// TestStatusChangesWhileQueried runs trust queries alongside suspensions
// and reinstatements (go test -race finds a write to a shared record).
func TestStatusChangesWhileQueried(t *testing.T) {
	f := mustChain(t)
	done := make(chan struct{})
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				d, err := f.s.Decide(decide.Question{Entity: f.college.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing}, f.now)
				if err != nil || (d.Reason != record.ReasonActive && d.Reason != record.ReasonSuspended) {
					errs <- fmt.Errorf("decision %+v, %v", d, err)
					return
				}
			}
		})
	}
	for i := range 40 {
		op := record.OpSuspend
		if i%2 == 1 {
			op = record.OpReinstate
		}
		f.mustAccept(f.sign(f.qa, op, map[string]any{"accreditation": f.collegeAcc, "reason": fmt.Sprintf("round %d", i)}))
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestPrefetchLeavesTheChecksForTheApply: Prefetch, given log entries,
// parses and checks the operations among them as PreVerify does (other
// commands it leaves alone, and entries applied already or too far ahead),
// changes nothing, and the apply uses and drops what it kept. A key
// rotated between the prefetch and the apply is checked again:
// TestRotatedKeyRefusedWithWarmCache, with PreVerify.
func TestPrefetchLeavesTheChecksForTheApply(t *testing.T) {
	f := mustChain(t)
	before := f.digest()
	ops := [][]byte{
		f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "a"}),
		f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.qaAcc, "reason": "b"}),
	}
	applied := f.s.AppliedIndex()
	skipped := f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "c"})
	f.s.Prefetch([]Entry{
		{Index: applied, Data: EncodeOperation(skipped)}, // applied already
		{Index: applied + 1, Data: EncodeOperation(ops[0])},
		{Index: applied + 2, Data: EncodeOperation(ops[1])},
		{Index: applied + 3, Data: EncodeFeatureLevel(FeatureLevel)},
		{Index: applied + 4, Data: []byte{commandVersion1}},
		{Index: applied + prefetchAhead + 1, Data: EncodeOperation(skipped)}, // too far ahead
	})
	if f.s.verify.parsed.Len() != 2 || f.s.verify.verified.Len() != 2 {
		t.Fatalf("Prefetch remembered %d parses and %d signatures, want 2 and 2", f.s.verify.parsed.Len(), f.s.verify.verified.Len())
	}
	if f.digest() != before {
		t.Fatal("Prefetch changed the state")
	}
	entries := make([]Entry, len(ops))
	for i, op := range ops {
		f.index++
		entries[i] = Entry{Index: f.index, Time: f.now, Data: EncodeOperation(op)}
	}
	for i, r := range f.s.ApplyBatch(entries) {
		if !r.Accepted {
			t.Fatalf("operation %d: %+v", i, r)
		}
	}
	if f.s.verify.parsed.Len() != 0 || f.s.verify.verified.Len() != 0 {
		t.Fatalf("after the apply %d parses and %d signatures are still remembered", f.s.verify.parsed.Len(), f.s.verify.verified.Len())
	}
}

// preVerifyBatch checks every operation of a batch however the work falls
// between the apply's goroutine and its helpers, and returns.
func TestPreVerifyBatchChecksEveryOperation(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	for _, n := range []int{2, 3, 40} {
		f := mustChain(t)
		applied := f.s.AppliedIndex()
		var entries []Entry
		for i := range n {
			op := f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": fmt.Sprint(i)})
			entries = append(entries, Entry{Index: applied + uint64(i) + 1, Data: EncodeOperation(op)})
		}
		f.s.apply.preVerifyBatch(entries, applied)
		if f.s.verify.parsed.Len() != n || f.s.verify.verified.Len() != n {
			t.Fatalf("%d operations: %d parses and %d signatures remembered", n, f.s.verify.parsed.Len(), f.s.verify.verified.Len())
		}
	}
}

// PreVerify of the same bytes by many callers at once (the gateway, the
// leader's check, Prefetch and the apply can meet) leaves one parse and
// one checked signature, which the apply then uses and drops.
func TestPreVerifyAtOnce(t *testing.T) {
	f := mustChain(t)
	op := f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "at once"})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if err := f.s.PreVerify(op); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if f.s.verify.parsed.Len() != 1 || f.s.verify.verified.Len() != 1 {
		t.Fatalf("%d parses and %d signatures remembered, want 1 and 1", f.s.verify.parsed.Len(), f.s.verify.verified.Len())
	}
	f.mustAccept(op)
	if f.s.verify.parsed.Len() != 0 || f.s.verify.verified.Len() != 0 {
		t.Fatalf("after the apply %d parses and %d signatures are still remembered", f.s.verify.parsed.Len(), f.s.verify.verified.Len())
	}
}
