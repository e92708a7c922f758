package registry

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// vcClaims builds accreditation credential claims signed at h.now, then
// lets edit change them as JSON.
func (h *harness) vcClaims(f record.AccreditationCredentialFields, edit func(claims map[string]any)) []byte {
	h.t.Helper()
	f.IAT = h.now
	raw, err := record.NewAccreditationCredential(f)
	if err != nil {
		h.t.Fatal(err)
	}
	if edit == nil {
		return raw
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		h.t.Fatal(err)
	}
	edit(m)
	if raw, err = json.Marshal(m); err != nil {
		h.t.Fatal(err)
	}
	return raw
}

func mustSignVC(t *testing.T, s *record.Signer, claims []byte) []byte {
	t.Helper()
	jwt, err := s.SignVCJWT(claims)
	if err != nil {
		t.Fatal(err)
	}
	return jwt
}

// TestAccreditationCredentialForm applies accreditations submitted as EBSI
// Verifiable Accreditation VC-JWTs (ebsi-accreditation 2022-11_01): only
// from FeatureLevelAccreditationCredential on; the framework and parent
// from the attribute termsOfUse names; the authority and attenuation rules
// of the operation form; the credential kept byte for byte as the TIR body.
func TestAccreditationCredentialForm(t *testing.T) {
	f := mustChain(t)
	h := f.harness
	attrs, err := h.s.TIRIssuer(f.root.DID, h.now)
	if err != nil || len(attrs) != 1 {
		t.Fatalf("root attributes: %v %v", attrs, err)
	}
	rootRole := "https://node.example/trusted-issuers-registry/v4/issuers/" + f.root.DID + "/attributes/" + attrs[0].ID
	agency := mustKey(t, record.KeyEd25519)
	from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	until := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	grant := record.AccreditationCredentialFields{Accreditor: f.root.DID, Subject: agency.DID, Action: record.ActionAccredit,
		Resources: []string{nursing}, Jurisdictions: []string{"US"}, ValidFrom: &from, ValidUntil: &until, TermsOfUse: rootRole}
	jwt := mustSignVC(t, f.root, h.vcClaims(grant, nil))

	// Below the level every build refuses it alike.
	if r := h.apply(jwt); r.Accepted || r.Code != record.CodeInvalid {
		t.Fatalf("at level %d: %+v", h.s.ClusterFeatureLevel(), r)
	}
	h.applyCommand(EncodeFeatureLevel(FeatureLevelAccreditationCredential))
	res := h.mustAccept(jwt)
	if res.Op != record.OpAccredit || res.ID != record.CIDOf(jwt) {
		t.Fatalf("result: %+v", res)
	}
	a, err := h.s.Accreditation(res.ID, h.now)
	if err != nil {
		t.Fatal(err)
	}
	if a.Framework != fwID || a.Parent != "" || a.Accreditor != f.root.DID || a.Subject != agency.DID || a.Action != record.ActionAccredit ||
		!slices.Equal(a.Resources, []string{nursing}) || !slices.Equal(a.Jurisdictions, []string{"US"}) ||
		!a.ValidFrom.Equal(from) || a.ValidUntil == nil || !a.ValidUntil.Equal(until) {
		t.Fatalf("accreditation derived from the credential: %+v", a)
	}
	if r := h.apply(jwt); !r.Duplicate || r.ID != res.ID {
		t.Fatalf("resubmitted: %+v", r)
	}
	got, err := h.s.TIRIssuer(agency.DID, h.now)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].Body, jwt) || got[0].IssuerType != TIRTAO {
		t.Fatalf("TIR attribute of the agency: %+v %v", got, err)
	}

	// The agency grants under its accreditation, named by its CID.
	school := mustKey(t, record.KeyP256)
	sub := record.AccreditationCredentialFields{Accreditor: agency.DID, Subject: school.DID, Action: record.ActionIssue,
		Resources: []string{nursing}, Jurisdictions: []string{"US"}, ValidFrom: &from, ValidUntil: &until, TermsOfUse: res.ID}
	child := h.mustAccept(mustSignVC(t, agency, h.vcClaims(sub, nil)))
	if c, _ := h.s.Accreditation(child.ID, h.now); c == nil || c.Parent != res.ID || c.Framework != fwID || c.Depth != 2 || c.Action != record.ActionIssue {
		t.Fatalf("child accreditation: %+v", c)
	}

	for name, tc := range map[string]struct {
		signer *record.Signer
		fields record.AccreditationCredentialFields
		edit   func(map[string]any)
		code   string
	}{
		"a resource outside the grantor's":     {agency, withResources(sub, law), nil, record.CodeScope},
		"a jurisdiction outside the grantor's": {agency, withJurisdictions(sub, "CA"), nil, record.CodeScope},
		"longer than the grantor's validity":   {agency, withUntil(sub, until.AddDate(1, 0, 0)), nil, record.CodeScope},
		"signed by another than the issuer":    {school, sub, nil, record.CodeNotAuthorized},
		"termsOfUse names no attribute":        {agency, withTerms(sub, record.CIDOf([]byte("nothing"))), nil, record.CodeInvalid},
		"termsOfUse names another's attribute": {agency, withTerms(sub, rootRole), nil, record.CodeMalformed},
		"both accreditation types": {agency, sub, func(m map[string]any) {
			vc := m["vc"].(map[string]any)
			vc["type"] = append(vc["type"].([]any), record.TypeAccreditationToAccredit)
		}, record.CodeMalformed},
		"no accreditedFor": {agency, sub, func(m map[string]any) {
			delete(m["vc"].(map[string]any)["credentialSubject"].(map[string]any), "accreditedFor")
		}, record.CodeMalformed},
		"iss differs from vc.issuer":            {agency, sub, func(m map[string]any) { m["iss"] = school.DID }, record.CodeMalformed},
		"sub differs from credentialSubject.id": {agency, sub, func(m map[string]any) { m["sub"] = f.college.DID }, record.CodeMalformed},
		"a jurisdiction that is no ISO 3166 code": {agency, sub, func(m map[string]any) {
			afs := m["vc"].(map[string]any)["credentialSubject"].(map[string]any)["accreditedFor"].([]any)
			afs[0].(map[string]any)["limitJurisdiction"] = "https://publications.europa.eu/resource/authority/atu/FIN"
		}, record.CodeMalformed},
	} {
		before := h.digest()
		f := tc.fields
		f.Subject = mustKey(t, record.KeyEd25519).DID
		claims := h.vcClaims(f, tc.edit)
		if r := h.apply(mustSignVC(t, tc.signer, claims)); r.Accepted || r.Code != tc.code {
			t.Errorf("%s: %+v, want %s", name, r, tc.code)
		}
		if h.digest() != before {
			t.Errorf("%s: a rejected credential changed the state", name)
		}
	}
}

func withResources(f record.AccreditationCredentialFields, rs ...string) record.AccreditationCredentialFields {
	f.Resources = rs
	return f
}

func withJurisdictions(f record.AccreditationCredentialFields, js ...string) record.AccreditationCredentialFields {
	f.Jurisdictions = js
	return f
}

func withUntil(f record.AccreditationCredentialFields, u time.Time) record.AccreditationCredentialFields {
	f.ValidUntil = &u
	return f
}

func withTerms(f record.AccreditationCredentialFields, ref string) record.AccreditationCredentialFields {
	f.TermsOfUse = ref
	return f
}

// TestRootCredential: addRootAccreditor may carry the root's
// VerifiableAuthorisationForTrustChain (EBSI's credential of a RootTAO),
// issued and signed by a governance member that signs the operation; the
// EBSI binding serves it as the root's attribute body.
func TestRootCredential(t *testing.T) {
	h := mustNewState(t, 1, 1)
	h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Health"}))
	root, stranger := mustKey(t, record.KeyEd25519), mustKey(t, record.KeyEd25519)
	member := h.gov[0]
	cred := func(issuer *record.Signer, subject string, signer *record.Signer) string {
		claims, err := record.NewRootCredential(issuer.DID, subject, h.now)
		if err != nil {
			t.Fatal(err)
		}
		return string(mustSignVC(t, signer, claims))
	}
	good := cred(member, root.DID, member)
	add := h.govSign(record.OpAddRootAccreditor, map[string]any{"framework": fwID, "accreditor": root.DID, "credential": good})
	if r := h.apply(add); r.Accepted || r.Code != record.CodeInvalid {
		t.Fatalf("at level %d: %+v", h.s.ClusterFeatureLevel(), r)
	}
	h.applyCommand(EncodeFeatureLevel(FeatureLevelAccreditationCredential))
	for name, tc := range map[string]struct {
		credential string
		code       string
	}{
		"issued to another":              {cred(member, stranger.DID, member), record.CodeInvalid},
		"issued by one who did not sign": {cred(stranger, root.DID, stranger), record.CodeNotAuthorized},
		"signed by another key":          {cred(member, root.DID, stranger), record.CodeNotAuthorized},
		"no credential":                  {"e30.e30.e30", record.CodeMalformed},
	} {
		before := h.digest()
		r := h.apply(h.govSign(record.OpAddRootAccreditor, map[string]any{"framework": fwID, "accreditor": root.DID, "credential": tc.credential}))
		if r.Accepted || r.Code != tc.code {
			t.Errorf("%s: %+v, want %s", name, r, tc.code)
		}
		if h.digest() != before {
			t.Errorf("%s: a rejected root credential changed the state", name)
		}
	}
	h.mustAccept(add)
	attrs, err := h.s.TIRIssuer(root.DID, h.now)
	if err != nil || len(attrs) != 1 || string(attrs[0].Body) != good || attrs[0].IssuerType != TIRRootTAO {
		t.Fatalf("root attribute: %+v %v", attrs, err)
	}
}
