package gateway_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

// The published material these tests hold the binding to:
//
//   - [tir-v5-e2e] EBSI's own end-to-end tests of its Trusted Issuers
//     Registry API v5 ("TIR API v5 - Issuers (e2e)", the api's
//     issuers e2e spec): the shapes of /issuers, /issuers/{did} with
//     version=latest|deprecated, /attributes, /revisions with
//     version=latest|deprecated and /revisions/{id}, compared with
//     toStrictEqual (no other member allowed), and the status of a
//     malformed DID (400), an unknown issuer and attribute (404).
//   - [tir-v4-e2e] the same suite for v4: /revisions items are whole
//     attributes (hash, body, issuerType, tao, rootTao); an attribute's
//     hash is ethers.utils.sha256 of its data (the body) without "0x",
//     i.e. hex SHA-256 of the body string.
//   - [accreditation-2022-11_01] EBSI's JSON schema "EBSI Verifiable
//     Accreditation Record", ebsi-accreditation/2022-11_01/schema.json:
//     credentialSubject {id, accreditedFor: [{schemaId, types,
//     limitJurisdiction}]} and termsOfUse; types
//     VerifiableAccreditationToAccredit / ToAttest.
//
// EBSI's TIR OpenAPI documents themselves (v5 5.0.0 and v4 4.0.0, with
// the commits read) are written out in tir_openapi_rules_test.go and
// checked by tir_openapi_test.go.

// accreditVC signs and submits an accreditation in its credential form.
func (e *env) accreditVC(s *record.Signer, subject, action, termsOfUse string, from *time.Time) *record.Result {
	e.t.Helper()
	claims, err := record.NewAccreditationCredential(record.AccreditationCredentialFields{
		Accreditor: s.DID, Subject: subject, Action: action, Resources: []string{nurse},
		Jurisdictions: []string{"US"}, ValidFrom: from, TermsOfUse: termsOfUse, IAT: time.Now(),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	jwt, err := s.SignVCJWT(claims)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.mustSubmit(jwt)
}

// attributeURL is the v4 URL of an attribute of did.
func (e *env) attributeURL(did, id string) string {
	return e.n.GatewayURL() + "/trusted-issuers-registry/v4/issuers/" + url.PathEscape(did) + "/attributes/" + id
}

// chainVC builds framework -> QA agency (accredit) -> college (issue), the
// root added with its VerifiableAuthorisationForTrustChain and the
// accreditations in their credential form, each termsOfUse naming the TIR
// attribute its accreditor grants under. It returns the attribute ids of
// the root's role, the QA agency's and the college's accreditations.
func (e *env) chainVC() (rootAttr, qaAttr, colAttr string) {
	e.t.Helper()
	e.mustSubmit(e.govSign(record.OpCreateFramework, map[string]any{"id": fw, "name": "Nursing"}))
	claims, err := record.NewRootCredential(e.gov.DID, e.root.DID, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	auth, err := e.gov.SignVCJWT(claims)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mustSubmit(e.govSign(record.OpAddRootAccreditor, map[string]any{"framework": fw, "accreditor": e.root.DID, "credential": string(auth)}))
	var roots tirPage
	e.tirGet("/v5/issuers/"+url.PathEscape(e.root.DID)+"/attributes", &roots)
	if len(roots.Items) != 1 {
		e.t.Fatalf("root attributes: %+v", roots)
	}
	rootAttr = roots.Items[0].ID
	from := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	e.qaAcc = e.accreditVC(e.root, e.qa.DID, record.ActionAccredit, e.attributeURL(e.root.DID, rootAttr), &from).ID
	qaAttr = attrIDOf(e.qaAcc)
	colFrom := time.Date(2022, 9, 1, 0, 0, 0, 0, time.UTC)
	e.colAcc = e.accreditVC(e.qa, e.college.DID, record.ActionIssue, e.attributeURL(e.qa.DID, qaAttr), &colFrom).ID
	return rootAttr, qaAttr, attrIDOf(e.colAcc)
}

// attrIDOf is the TIR attribute id of an accreditation: its CID's digest.
func attrIDOf(cid string) string {
	d, err := record.ParseAttributeRef(cid, "")
	if err != nil {
		panic(err)
	}
	return hex.EncodeToString(d[:])
}

// TestEBSIAttributeBodiesAreAccreditationJWTs reads every attribute body
// the binding serves (v4 inline, every revision) as EBSI's clients do: a
// JWT, verified with the key of its signer — the accreditor for an
// accreditation, a governance member for a root role — holding the
// accreditation's types and its parent in termsOfUse (a root's: the
// VerifiableAuthorisationForTrustChain type and the root as subject); and
// each hash the hex SHA-256 of the body string [tir-v4-e2e].
func TestEBSIAttributeBodiesAreAccreditationJWTs(t *testing.T) {
	e := mustNewEnv(t)
	rootAttr, qaAttr, _ := e.chainVC()
	// A status change adds a revision; the body stays the credential.
	e.mustSubmit(e.sign(e.qa, record.OpSuspend, map[string]any{"accreditation": e.colAcc}))

	wantType := map[string]string{registry.TIRTAO: record.TypeAccreditationToAccredit, registry.TIRTI: record.TypeAccreditationToAttest}
	wantParent := map[string]string{e.qa.DID: rootAttr, e.college.DID: qaAttr}
	var issuers tirPage
	e.tirGet("/v4/issuers", &issuers)
	if issuers.Total != 3 {
		t.Fatalf("issuers: %+v", issuers)
	}
	bodies := 0
	for _, is := range issuers.Items {
		var attrs tirPage
		e.tirGet("/v5/issuers/"+url.PathEscape(is.DID)+"/attributes", &attrs)
		for _, ref := range attrs.Items {
			var revs struct {
				Items []tirAttr `json:"items"`
			}
			e.tirGet(strings.Replace(ref.Href, "/v5/", "/v4/", 1)+"/revisions", &revs) // v4: whole attributes
			var one struct {
				Attribute tirAttr `json:"attribute"`
			}
			e.tirGet(ref.Href, &one)
			for _, a := range append(revs.Items, one.Attribute) {
				bodies++
				sum := sha256.Sum256([]byte(a.Body))
				if a.Hash != hex.EncodeToString(sum[:]) {
					t.Errorf("%s: hash %s is not the SHA-256 of the body", is.DID, a.Hash)
				}
				jwt, err := jose.ParseSignedCompact(a.Body, record.AcceptedAlgs)
				if err != nil {
					t.Fatalf("%s: body is no JWT: %v", is.DID, err)
				}
				signer, _, _ := strings.Cut(jwt.Signatures[0].Protected.KeyID, "#")
				if a.IssuerType == registry.TIRRootTAO {
					if signer != e.gov.DID {
						t.Fatalf("root %s: body signed by %s, not by governance", is.DID, signer)
					}
				} else if signer != a.TAO {
					t.Fatalf("%s: body signed by %s, not by its accreditor %s", is.DID, signer, a.TAO)
				}
				pub, err := record.ParseDIDKey(signer)
				if err != nil {
					t.Fatal(err)
				}
				payload, err := jwt.Verify(pub)
				if err != nil {
					t.Fatalf("%s: body does not verify with %s's key: %v", is.DID, signer, err)
				}
				var claims struct {
					Iss string `json:"iss"`
					VC  struct {
						Type              []string `json:"type"`
						CredentialSubject struct {
							ID            string `json:"id"`
							AccreditedFor []struct {
								Types []string `json:"types"`
							} `json:"accreditedFor"`
						} `json:"credentialSubject"`
						TermsOfUse []struct {
							ID string `json:"id"`
						} `json:"termsOfUse"`
					} `json:"vc"`
				}
				if err := json.Unmarshal(payload, &claims); err != nil {
					t.Fatal(err)
				}
				if a.IssuerType == registry.TIRRootTAO {
					// The root's VerifiableAuthorisationForTrustChain,
					// issued to it by governance.
					if !slices.Contains(claims.VC.Type, record.TypeAuthorisationForTrustChn) || claims.VC.CredentialSubject.ID != is.DID || claims.Iss != e.gov.DID {
						t.Fatalf("root %s: credential %+v", is.DID, claims)
					}
					continue
				}
				typ := wantType[a.IssuerType]
				if a.IssuerType == registry.TIRRevoked {
					typ = record.TypeAccreditationToAttest // the suspended college
				}
				vc := claims.VC
				if !slices.Contains(vc.Type, typ) || vc.CredentialSubject.ID != is.DID || claims.Iss != a.TAO ||
					len(vc.CredentialSubject.AccreditedFor) != 1 || !slices.Contains(vc.CredentialSubject.AccreditedFor[0].Types, nurse) {
					t.Fatalf("%s (%s): credential %+v", is.DID, a.IssuerType, claims)
				}
				if len(vc.TermsOfUse) != 1 || !strings.HasSuffix(vc.TermsOfUse[0].ID, "/attributes/"+wantParent[is.DID]) {
					t.Fatalf("%s: termsOfUse %+v does not name the parent attribute %s", is.DID, vc.TermsOfUse, wantParent[is.DID])
				}
			}
		}
	}
	// root: 1 revision + attribute; qa: 1 + 1; college: 2 + 1.
	if bodies != 7 {
		t.Fatalf("read %d bodies, want 7", bodies)
	}
}

// strictKeys fails unless the JSON object raw has exactly the members
// want, as EBSI's tests compare with toStrictEqual.
func strictKeys(t *testing.T, what string, raw json.RawMessage, want ...string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v in %s", what, err, raw)
	}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: members %v, want exactly %v (%s)", what, got, want, raw)
	}
	return m
}

// TestEBSITIRPublishedShapes checks the binding's answers against the
// rules of EBSI's TIR API as its published tests state them [tir-v5-e2e],
// [tir-v4-e2e].
func TestEBSITIRPublishedShapes(t *testing.T) {
	e := mustNewEnv(t)
	_, _, colAttr := e.chainVC()
	col := url.PathEscape(e.college.DID)
	raw := func(path string, status int) json.RawMessage {
		t.Helper()
		resp, body := e.get("/trusted-issuers-registry" + path)
		if resp.StatusCode != status {
			t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, body, status)
		}
		return body
	}
	attrMembers := []string{"body", "hash", "issuerType", "rootTao", "tao"}
	pageMembers := []string{"items", "links", "pageSize", "self", "total"}
	linkMembers := []string{"first", "last", "next", "prev"}

	// [tir-v5-e2e] "/issuers": a paged list; links name the list with
	// page[after]=1&page[size]=10 on the first page.
	m := strictKeys(t, "v5 /issuers", raw("/v5/issuers", 200), pageMembers...)
	links := strictKeys(t, "v5 /issuers links", m["links"], linkMembers...)
	if !strings.Contains(string(links["first"]), "/trusted-issuers-registry/v5/issuers?page[after]=1&page[size]=10") ||
		!strings.Contains(string(m["self"]), "/trusted-issuers-registry/v5/issuers?page[after]=1&page[size]=10") {
		t.Fatalf("v5 /issuers links: %s", m["links"])
	}
	// [tir-v5-e2e] "/issuers/{did} (version: latest)": {attributes: string,
	// did, hasAttributes: boolean}; "(version: deprecated)": {attributes:
	// array, did}.
	latest := strictKeys(t, "v5 issuer latest", raw("/v5/issuers/"+col+"?version=latest", 200), "attributes", "did", "hasAttributes")
	if latest["attributes"][0] != '"' || string(latest["hasAttributes"]) != "true" {
		t.Fatalf("v5 issuer latest: %v", latest)
	}
	dep := strictKeys(t, "v5 issuer deprecated", raw("/v5/issuers/"+col+"?version=deprecated", 200), "attributes", "did")
	var inline []json.RawMessage
	if json.Unmarshal(dep["attributes"], &inline) != nil || len(inline) != 1 {
		t.Fatalf("v5 issuer deprecated attributes: %s", dep["attributes"])
	}
	strictKeys(t, "v5 deprecated attribute", inline[0], attrMembers...)
	strictKeys(t, "v4 issuer", raw("/v4/issuers/"+col, 200), "attributes", "did")

	// [tir-v5-e2e] "/attributes/{id}": {attribute: {body, hash, issuerType,
	// rootTao, tao}, did}.
	ans := strictKeys(t, "v5 attribute", raw("/v5/issuers/"+col+"/attributes/"+colAttr, 200), "attribute", "did")
	strictKeys(t, "v5 attribute.attribute", ans["attribute"], attrMembers...)

	// [tir-v5-e2e] "/revisions (version: latest)": items {href, id};
	// "(version: deprecated)": items {body, hash, issuerType, rootTao, tao};
	// [tir-v4-e2e] v4's items are whole attributes too.
	for _, tc := range []struct {
		path string
		item []string
	}{
		{"/v5/issuers/" + col + "/attributes/" + colAttr + "/revisions", []string{"href", "id"}},
		{"/v5/issuers/" + col + "/attributes/" + colAttr + "/revisions?version=latest", []string{"href", "id"}},
		{"/v5/issuers/" + col + "/attributes/" + colAttr + "/revisions?version=deprecated", attrMembers},
		{"/v4/issuers/" + col + "/attributes/" + colAttr + "/revisions", attrMembers},
	} {
		page := strictKeys(t, tc.path, raw(tc.path, 200), pageMembers...)
		strictKeys(t, tc.path+" links", page["links"], linkMembers...)
		if !strings.Contains(string(page["self"]), "/issuers/"+col+"/attributes/"+colAttr+"/revisions") {
			t.Fatalf("%s: self %s", tc.path, page["self"])
		}
		var items []json.RawMessage
		if json.Unmarshal(page["items"], &items) != nil || len(items) != 1 {
			t.Fatalf("%s: items %s", tc.path, page["items"])
		}
		strictKeys(t, tc.path+" item", items[0], tc.item...)
	}
	// [tir-v5-e2e] "/revisions/{revisionId}": {attribute: {...}, did}.
	var revs tirPage
	e.tirGet("/v5/issuers/"+col+"/attributes/"+colAttr+"/revisions", &revs)
	one := strictKeys(t, "v5 revision", raw(strings.TrimPrefix(revs.Items[0].Href, e.n.GatewayURL()+"/trusted-issuers-registry"), 200), "attribute", "did")
	strictKeys(t, "v5 revision.attribute", one["attribute"], attrMembers...)

	// trustreg's own fields only when asked for.
	ext := strictKeys(t, "attribute ?trustreg=true", raw("/v4/issuers/"+col+"/attributes/"+colAttr+"?trustreg=true", 200), "attribute", "did")
	strictKeys(t, "attribute.attribute ?trustreg=true", ext["attribute"], append(slices.Clone(attrMembers), "trustreg")...)

	// [tir-v5-e2e] a DID that is not correctly formatted is 400, on every
	// endpoint with a DID, whatever version; an unknown issuer and an
	// unknown attribute are 404.
	stranger, _ := record.GenerateKey(record.KeyEd25519)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/v5/issuers/not-a-did?version=latest", 400},
		{"/v5/issuers/not-a-did?version=deprecated", 400},
		{"/v4/issuers/not-a-did", 400},
		{"/v4/issuers/not-a-did/attributes", 400},
		{"/v5/issuers/not-a-did/attributes/" + colAttr, 400},
		{"/v5/issuers/not-a-did/attributes/" + colAttr + "/revisions?version=deprecated", 400},
		{"/v5/issuers/not-a-did/attributes/" + colAttr + "/revisions/" + colAttr, 400},
		{"/v5/issuers/" + stranger.DID + "?version=latest", 404},
		{"/v5/issuers/" + stranger.DID + "/attributes/" + colAttr + "/revisions?version=deprecated", 404},
		{"/v5/issuers/" + col + "/attributes/0x31a014c390aa9ad2b47a1df8904c8addf87db279b06eae50797f546da63229d2/revisions?version=latest", 404},
		{"/v5/issuers/" + col + "/revisions?version=old", 404},
		{"/v5/issuers/" + col + "/attributes/" + colAttr + "/revisions?version=old", 400},
		{"/v4/issuers/" + col + "?trustreg=yes", 400},
		// Endpoints of EBSI's API that trustreg has nothing for.
		{"/v5/issuers/" + col + "/proxies", http.StatusNotImplemented},
		{"/v4/issuers/" + col + "/proxies/0x01", http.StatusNotImplemented},
	} {
		resp, body := e.get("/trusted-issuers-registry" + tc.path)
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d %s, want %d problem", tc.path, resp.StatusCode, body, tc.status)
		}
	}
	resp, err := http.Post(e.n.GatewayURL()+"/trusted-issuers-registry/v5/jsonrpc", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("POST jsonrpc: %d, want 501", resp.StatusCode)
	}
}
