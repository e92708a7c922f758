package registry

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// mustRaiseLevel applies the log command that raises the cluster's
// feature level.
func (h *harness) mustRaiseLevel(level int) {
	h.t.Helper()
	if r := h.applyCommand(EncodeFeatureLevel(level)); !r.Accepted || h.s.ClusterFeatureLevel() != level {
		h.t.Fatalf("raise the feature level to %d: %+v", level, r)
	}
}

// mustSignedContentState opens a state at FeatureLevelSignedContent whose
// governance members are did:keys of the given kinds, threshold 1.
func mustSignedContentState(t testing.TB, kinds ...string) *harness {
	t.Helper()
	return mustSignedContentGenesis(t, record.Genesis{Consortium: "test consortium", Threshold: 1}, kinds...)
}

// mustSignedContentGenesis is mustSignedContentState with genesis g, to
// which the members are added.
func mustSignedContentGenesis(t testing.TB, g record.Genesis, kinds ...string) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), now: t0}
	for _, kind := range kinds {
		h.addMembers(&g, kind, 1)
	}
	h.openGenesis(g)
	h.mustRaiseLevel(FeatureLevelSignedContent)
	return h
}

// generalJWS is record.GeneralJWS with the tests' own ways to write it out.
type generalJWS struct{ record.GeneralJWS }

// jwsParts reads a JWS (compact or JSON) into its general form.
func jwsParts(t testing.TB, jws []byte) generalJWS {
	t.Helper()
	var g generalJWS
	if err := g.From(jws); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g generalJWS) json(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flattened is the JWS JSON flattened serialization of g's one signature.
func (g generalJWS) flattened(t testing.TB) []byte {
	t.Helper()
	if len(g.Signatures) != 1 {
		t.Fatalf("flattened form of %d signatures", len(g.Signatures))
	}
	return []byte(`{"payload":"` + g.Payload + `","protected":"` + g.Signatures[0].Protected + `","signature":"` + g.Signatures[0].Signature + `"}`)
}

// highSTwins returns g with every ES256 signature's s replaced by n − s
// (each still verifies), and whether it had any.
func highSTwins(t testing.TB, g generalJWS) (generalJWS, bool) {
	t.Helper()
	out := g
	out.Signatures = nil
	changed := false
	for _, sig := range g.Signatures {
		h, _ := base64.RawURLEncoding.DecodeString(sig.Protected)
		var hdr struct {
			Alg string `json:"alg"`
		}
		if err := json.Unmarshal(h, &hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Alg == string(jose.ES256) {
			raw, _ := base64.RawURLEncoding.DecodeString(sig.Signature)
			sig.Signature = base64.RawURLEncoding.EncodeToString(record.LowSTwin(raw))
			changed = true
		}
		out.Signatures = append(out.Signatures, sig)
	}
	return out, changed
}

// withUnusedBitsSet encodes the same bytes as b64 with the unused low bits
// of its last character set (base64url without padding, which go-jose
// decodes as the canonical form); "" when b64 has no unused bits.
func withUnusedBitsSet(b64 string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(b64)%4 == 0 {
		return ""
	}
	last := strings.IndexByte(alphabet, b64[len(b64)-1])
	return b64[:len(b64)-1] + string(alphabet[last|1])
}

// reencodings returns other encodings of one signed operation, each with
// the signed content of the original: the name says what changed. highS
// names those that carry an ES256 signature with a high s.
func reencodings(t testing.TB, jws []byte) (variants map[string][]byte, highS map[string]bool) {
	t.Helper()
	g := jwsParts(t, jws)
	variants = map[string][]byte{"the same bytes": jws, "the general JSON serialization": g.json(t)}
	highS = map[string]bool{}
	if len(g.Signatures) == 1 {
		variants["the flattened JSON serialization"] = g.flattened(t)
	} else {
		rev := g
		rev.Signatures = nil
		for i := len(g.Signatures) - 1; i >= 0; i-- {
			rev.Signatures = append(rev.Signatures, g.Signatures[i])
		}
		variants["its signatures in another order"] = rev.json(t)
	}
	withHeader := g
	withHeader.Signatures = nil
	for _, s := range g.Signatures {
		s.Header = json.RawMessage(`{"x-note":"replayed"}`)
		withHeader.Signatures = append(withHeader.Signatures, s)
	}
	variants["an unprotected header added"] = withHeader.json(t)
	if p := withUnusedBitsSet(g.Payload); p != "" {
		odd := g
		odd.Payload = p
		variants["the payload's base64 with unused bits set"] = odd.json(t)
	}
	if twin, ok := highSTwins(t, g); ok {
		variants["s replaced by n - s"] = twin.json(t)
		highS["s replaced by n - s"] = true
		if len(twin.Signatures) == 1 {
			variants["s replaced by n - s, flattened"] = twin.flattened(t)
			highS["s replaced by n - s, flattened"] = true
		}
	}
	return variants, highS
}

// requireSameOperation applies jws and requires the result of orig marked
// duplicate (or, for a high-s signature, a refusal as malformed at
// PreVerify, at the leader's check and at the apply) and the state
// unchanged. The leader's check answers a duplicate without proposing it.
func requireSameOperation(t *testing.T, h *harness, name string, orig *record.Result, jws []byte, isHighS bool) {
	t.Helper()
	before := h.digest()
	if isHighS {
		if err := h.s.PreVerify(jws); !errors.Is(err, record.ErrMalformed) {
			t.Fatalf("%s: PreVerify = %v, want ErrMalformed", name, err)
		}
		if r := h.s.Check(jws, h.now); r == nil || r.Index != 0 || r.Code != record.CodeMalformed {
			t.Fatalf("%s: check = %+v, want a refusal as malformed", name, r)
		}
		if r := h.apply(jws); r.Accepted || r.Code != record.CodeMalformed {
			t.Fatalf("%s: %+v, want malformed", name, r)
		}
	} else {
		if r := h.s.Check(jws, h.now); r == nil || !r.Duplicate || r.Index != orig.Index {
			t.Fatalf("%s: check = %+v, want the original result of index %d marked duplicate", name, r, orig.Index)
		}
		if r := h.apply(jws); !r.Accepted || !r.Duplicate || r.Index != orig.Index || r.ID != orig.ID {
			t.Fatalf("%s: %+v, want the original result %+v marked duplicate", name, r, orig)
		}
	}
	if h.digest() != before {
		t.Fatalf("%s changed the state", name)
	}
}

// The issue's case: an accreditation, its revocation, then the
// accreditation's JWS with s replaced by n − s and re-serialized as JWS
// JSON. It must not create a new accreditation: the college stays revoked.
func TestReencodedAccreditationStaysRevoked(t *testing.T) {
	h := mustSignedContentState(t, record.KeyEd25519)
	root, qa, college := mustKey(t, record.KeyP256), mustKey(t, record.KeyP256), mustKey(t, record.KeyP256)
	h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Health", "roots": []string{root.DID}}))
	qaAcc := h.mustAccept(h.sign(root, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": root.DID, "subject": qa.DID, "action": record.ActionAccredit, "resources": []string{nursing},
	})).ID
	grant := h.sign(qa, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": qa.DID, "subject": college.DID, "action": record.ActionIssue, "resources": []string{nursing}, "parent": qaAcc,
	})
	first := h.mustAccept(grant)
	h.mustAccept(h.sign(qa, record.OpRevoke, map[string]any{"accreditation": first.ID, "reason": "fraud"}))
	ask := func() *record.Decision {
		return h.decide(decide.Question{Entity: college.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing, At: h.now})
	}
	if d := ask(); d.Authorized || d.Reason != record.ReasonRevoked {
		t.Fatalf("after the revocation: %+v", d)
	}

	twin, _ := highSTwins(t, jwsParts(t, grant))
	replay := twin.flattened(t)
	requireSameOperation(t, h, "the grant with s replaced by n - s, as JWS JSON", first, replay, true)
	// The same grant signed again by its signer (ECDSA: another
	// signature over the same header and payload) is the same operation.
	again, err := qa.SignCompact(mustPayload(t, grant))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again, grant) {
		t.Fatal("ECDSA signed the same content twice alike")
	}
	requireSameOperation(t, h, "the grant signed again", first, again, false)
	if d := ask(); d.Authorized || d.Reason != record.ReasonRevoked {
		t.Fatalf("after the replays: %+v", d)
	}
}

func mustPayload(t testing.TB, jws []byte) []byte {
	t.Helper()
	p, err := base64.RawURLEncoding.DecodeString(jwsParts(t, jws).Payload)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every operation type, once accepted, is the same operation in every
// other encoding of its signed content: another serialization, an
// unprotected header, base64 with unused bits set, the same content
// signed again (by its signer, or for governance by other members); an
// ES256 signature with a high s is refused as malformed. None changes the
// state. ES256 signs most of them; Ed25519 some.
func TestEveryOperationReencodedIsTheSameOperation(t *testing.T) {
	h := mustSignedContentGenesis(t, record.Genesis{Consortium: "test consortium", Threshold: 1, Cosigners: []string{mustCosignerVKey(t, "c0.example")}},
		record.KeyP256, record.KeyEd25519, record.KeyP256)
	root, qa, college, stranger := mustKey(t, record.KeyP256), mustKey(t, record.KeyP256), mustKey(t, record.KeyP256), mustKey(t, record.KeyP256)
	selfEd := mustKey(t, record.KeyEd25519)
	web := "did:web:agency.example"
	ws, _ := mustKey(t, record.KeyP256).WithKID(web + "#k1")
	wjwk, _ := ws.PublicJWK()
	nk, _ := mustKey(t, record.KeyP256).WithKID(web + "#k2")
	njwk, _ := nk.PublicJWK()
	other := "https://other.example/fw"
	var qaAcc, collegeAcc string
	list, err := record.StatusListCredential(college.DID, "l1", []string{record.PurposeRevocation}, 1, nil, 0, make([]byte, record.MinStatusListEntries/8))
	if err != nil {
		t.Fatal(err)
	}
	vcJWT, err := college.SignVCJWT(list)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		op     string
		signer *record.Signer // nil: governance member 0
		fields func() map[string]any
		id     *string
	}{
		{record.OpCreateFramework, nil, func() map[string]any {
			return map[string]any{"id": fwID, "name": "Health", "roots": []string{root.DID}}
		}, nil},
		{record.OpUpdateFramework, nil, func() map[string]any { return map[string]any{"id": fwID, "name": "Health professions"} }, nil},
		{record.OpAddRootAccreditor, nil, func() map[string]any { return map[string]any{"framework": fwID, "accreditor": stranger.DID} }, nil},
		{record.OpRemoveRootAccredit, nil, func() map[string]any { return map[string]any{"framework": fwID, "accreditor": stranger.DID} }, nil},
		{record.OpRegisterEntity, stranger, func() map[string]any { return map[string]any{"id": stranger.DID, "name": "Stranger"} }, nil},
		{record.OpRegisterEntity, selfEd, func() map[string]any { return map[string]any{"id": selfEd.DID, "name": "Ed25519 college"} }, nil},
		{record.OpUpdateEntity, stranger, func() map[string]any {
			return map[string]any{"id": stranger.DID, "metadata": map[string]any{"country": "US"}}
		}, nil},
		{record.OpRegisterEntity, nil, func() map[string]any { return map[string]any{"id": web, "name": "Agency", "keys": []any{wjwk}} }, nil},
		{record.OpRotateKeys, ws, func() map[string]any { return map[string]any{"id": web, "keys": []any{wjwk, njwk}} }, nil},
		{record.OpAccredit, root, func() map[string]any {
			return map[string]any{"framework": fwID, "accreditor": root.DID, "subject": qa.DID, "action": record.ActionAccredit, "resources": []string{nursing}}
		}, &qaAcc},
		{record.OpAccredit, qa, func() map[string]any {
			return map[string]any{"framework": fwID, "accreditor": qa.DID, "subject": college.DID, "action": record.ActionIssue, "resources": []string{nursing}, "parent": qaAcc}
		}, &collegeAcc},
		{record.OpPublishStatusList, college, func() map[string]any { return map[string]any{"list": "l1", "credential": string(vcJWT)} }, nil},
		{record.OpSuspend, qa, func() map[string]any { return map[string]any{"accreditation": collegeAcc, "reason": "audit"} }, nil},
		{record.OpReinstate, qa, func() map[string]any { return map[string]any{"accreditation": collegeAcc} }, nil},
		{record.OpRevoke, qa, func() map[string]any { return map[string]any{"accreditation": collegeAcc} }, nil},
		{record.OpRecognize, nil, func() map[string]any { return map[string]any{"framework": fwID, "recognized": other} }, nil},
		{record.OpUnrecognize, nil, func() map[string]any { return map[string]any{"framework": fwID, "recognized": other} }, nil},
		{record.OpSetCosigners, nil, func() map[string]any {
			h.mustRaiseLevel(FeatureLevelCosignerSet)
			return map[string]any{"cosigners": []string{mustCosignerVKey(t, "c1.example")}}
		}, nil},
	}
	seen := map[string]bool{}
	for _, st := range steps {
		payload := h.payload(st.op, st.fields())
		var jws []byte
		var err error
		if st.signer == nil {
			jws, err = record.SignJSON(payload, h.gov[0])
		} else {
			jws, err = st.signer.SignCompact(payload)
		}
		if err != nil {
			t.Fatal(err)
		}
		orig := h.mustAccept(jws)
		if st.id != nil {
			*st.id = orig.ID
		}
		seen[st.op] = true
		variants, highS := reencodings(t, jws)
		if st.signer == nil {
			// The same payload signed by other members, alone or with the
			// first: the same signed content.
			for name, signers := range map[string][]*record.Signer{
				"signed by another member":              {h.gov[1]},
				"signed by two other members":           {h.gov[2], h.gov[1]},
				"signed by the first and another again": {h.gov[0], h.gov[2]},
			} {
				v, err := record.SignJSON(payload, signers...)
				if err != nil {
					t.Fatal(err)
				}
				variants[name] = v
			}
		} else {
			v, err := st.signer.SignCompact(payload)
			if err != nil {
				t.Fatal(err)
			}
			variants["signed again by its signer"] = v
		}
		for name, v := range variants {
			requireSameOperation(t, h, st.op+": "+name, orig, v, highS[name])
		}
	}
	for _, op := range record.OperationTypes {
		if !seen[op] {
			t.Errorf("operation type %s is not covered", op)
		}
	}
	if d := h.decide(decide.Question{Entity: college.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing, At: h.now}); d.Authorized {
		t.Fatalf("the college is authorized after its revocation: %+v", d)
	}
}

// forceHighS returns a compact ES256 JWS with its s replaced by n − s.
func forceHighS(t testing.TB, jws []byte) []byte {
	t.Helper()
	c := strings.Split(string(jws), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(c[2])
	if record.HighS(raw) {
		t.Fatal("the signer emitted a high s")
	}
	return []byte(c[0] + "." + c[1] + "." + base64.RawURLEncoding.EncodeToString(record.LowSTwin(raw)))
}

// Below FeatureLevelSignedContent the apply decides as older builds do
// (a high-s signature is accepted, a resubmission is found by its
// signature bytes), so a cluster being upgraded stays one state; PreVerify
// refuses a high s at every level. Operations applied before the level
// are still found after it: the same bytes and another serialization of a
// low-s signature, and the low-s twin of a high-s one. A high s is
// malformed from the level on, even in bytes applied before it.
func TestOperationsBeforeTheLevelAreFoundAfterIt(t *testing.T) {
	f := mustChain(t) // level 1
	subject := mustKey(t, record.KeyEd25519)
	grant := forceHighS(t, f.sign(f.qa, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.qa.DID, "subject": subject.DID, "action": record.ActionIssue, "resources": []string{nursing}, "parent": f.qaAcc,
		"jurisdictions": []string{"US"}, "validFrom": "2025-01-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
	}))
	if err := f.s.PreVerify(grant); !errors.Is(err, record.ErrMalformed) {
		t.Fatalf("PreVerify of a high s at level 1 = %v, want ErrMalformed", err)
	}
	first := f.mustAccept(grant) // as an older build applies it
	revoke := f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": first.ID})
	revoked := f.mustAccept(revoke)
	// Below the level, the high-s twin of a low-s signature is another
	// operation, as it is for an older build.
	if r := f.apply(forceHighS(t, f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))); !r.Accepted || r.Duplicate {
		t.Fatalf("a high s below the level: %+v, want accepted as older builds do", r)
	}

	f.mustRaiseLevel(FeatureLevelSignedContent)
	low, _ := highSTwins(t, jwsParts(t, grant)) // n − (n − s): the low s the signer made
	requireSameOperation(t, f.harness, "the high-s grant's low-s twin", first, low.flattened(t), false)
	requireSameOperation(t, f.harness, "the high-s grant itself", first, grant, true)
	requireSameOperation(t, f.harness, "the revocation, the same bytes", revoked, revoke, false)
	requireSameOperation(t, f.harness, "the revocation as JWS JSON", revoked, jwsParts(t, revoke).flattened(t), false)
	if d := f.decide(decide.Question{Entity: subject.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing, At: f.now}); d.Authorized || d.Reason != record.ReasonRevoked {
		t.Fatalf("after the replays: %+v", d)
	}
}

// The duplicate keys survive a reopen and a snapshot: the filter is
// rebuilt from both tables.
func TestSignedContentFoundAfterReopenAndRestore(t *testing.T) {
	h := mustSignedContentState(t, record.KeyP256)
	payload := h.payload(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Health"})
	jws, err := record.SignJSON(payload, h.gov[0])
	if err != nil {
		t.Fatal(err)
	}
	first := h.mustAccept(jws)
	again, err := h.gov[0].SignCompact(payload)
	if err != nil {
		t.Fatal(err)
	}
	h.s.Close()
	h.open()
	requireSameOperation(t, h, "signed again, after a reopen", first, again, false)

	fresh := &harness{t: t, dir: t.TempDir(), raw: h.raw, now: h.now, index: h.index}
	fresh.open()
	if err := fresh.s.Restore(bytes.NewReader(snapshotBytes(t, h.s))); err != nil {
		t.Fatal(err)
	}
	requireSameOperation(t, fresh, "signed again, after a restore", first, again, false)
}

// Our signer emits only low-s ES256 signatures, in every form it signs:
// otherwise the registry would refuse about half of what honest clients
// send.
func TestSignerEmitsLowS(t *testing.T) {
	s := mustKey(t, record.KeyP256)
	other := mustKey(t, record.KeyP256)
	pub := s.Key().Public().(*ecdsa.PublicKey)
	half := new(big.Int).Rsh(pub.Curve.Params().N, 1)
	check := func(form string, jws []byte) {
		t.Helper()
		for i, sig := range jwsParts(t, jws).Signatures {
			raw, err := base64.RawURLEncoding.DecodeString(sig.Signature)
			if err != nil || len(raw) != 64 {
				t.Fatalf("%s: signature %d: %d bytes, %v", form, i, len(raw), err)
			}
			if new(big.Int).SetBytes(raw[32:]).Cmp(half) > 0 {
				t.Fatalf("%s: signature %d has a high s", form, i)
			}
		}
		if _, err := record.ParseOperation(jws); err != nil && form != "vc+jwt" {
			t.Fatalf("%s: %v", form, err)
		}
		parse := jose.ParseSignedJSON
		if form == "compact" || form == "vc+jwt" {
			parse = jose.ParseSignedCompact
		}
		obj, err := parse(string(jws), record.AcceptedAlgs)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := obj.VerifyMulti(pub); err != nil {
			t.Fatalf("%s: does not verify: %v", form, err)
		}
	}
	// 64 signatures of each form: with a high s half the time, a signer
	// that does not normalise passes with probability 2^-64.
	for i := range 64 {
		payload := []byte(`{"op":"revoke","iat":1,"accreditation":"a` + strings.Repeat("x", i) + `"}`)
		c, err := s.SignCompact(payload)
		if err != nil {
			t.Fatal(err)
		}
		check("compact", c)
		j, err := record.SignJSON(payload, s)
		if err != nil {
			t.Fatal(err)
		}
		check("JSON", j)
		co, err := record.CoSign(mustSignRaw(t, other, payload), s)
		if err != nil {
			t.Fatal(err)
		}
		check("co-signed", co)
		vc, err := s.SignVCJWT(payload)
		if err != nil {
			t.Fatal(err)
		}
		check("vc+jwt", vc)
	}
}
