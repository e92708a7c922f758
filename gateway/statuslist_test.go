package gateway_test

import (
	"crypto"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/record"
)

// What this file checks, from the W3C Bitstring Status List v1.0
// Recommendation (15 May 2025) and the specifications it names:
//
//   - REC §2.1 statusListCredential: "When the URL is dereferenced, the
//     resulting verifiable credential MUST have type property that
//     includes the BitstringStatusListCredential value."
//   - REC §4 Media Types: the content "might be any media type registered
//     for the purpose of expressing a verifiable credential with one or
//     more proofs" (application/vc for Data Integrity; here also
//     application/vc+jwt, VC-JOSE-COSE §6.1.1), or "less specific media
//     types such as application/ld+json or application/json", negotiated
//     with Accept.
//   - VC Data Model 2.0 §4.13: a credential secured by an enveloping proof
//     (a VC-JWT) is expressed in JSON as an EnvelopedVerifiableCredential
//     whose id is a data: URL of it.
//   - REC §3.2: the dereferenced list's encodedList expands (§3.4) to the
//     bitstring whose entry at statusListIndex is the status.

// fetchCredential GETs a status-list URL with an Accept field (none when
// accept is empty) and returns the credential JSON found in the answer,
// unwrapping a VC-JWT or an enveloped one.
func fetchCredential(t *testing.T, rawURL, accept string) (int, string, []byte, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", rawURL, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, ct, body, nil
	}
	payload := body
	fromJWT := func(s string) []byte {
		jws, err := jose.ParseSignedCompact(s, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
		if err != nil {
			t.Fatalf("Accept %q: %s is no JWS: %v", accept, ct, err)
		}
		return jws.UnsafePayloadWithoutVerification()
	}
	if ct == "application/vc+jwt" {
		payload = fromJWT(string(body))
	}
	var vc map[string]any
	if err := json.Unmarshal(payload, &vc); err != nil {
		t.Fatalf("Accept %q: %s body is no JSON credential: %v\n%s", accept, ct, err, payload)
	}
	if vc["type"] == "EnvelopedVerifiableCredential" {
		id, _ := vc["id"].(string)
		jwt, ok := strings.CutPrefix(id, "data:application/vc+jwt,")
		if !ok {
			t.Fatalf("Accept %q: enveloped credential id %q", accept, id)
		}
		if err := json.Unmarshal(fromJWT(jwt), &vc); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, ct, body, vc
}

// statusOf decodes a credential's encodedList and reads entry i (1 bit).
func statusOf(t *testing.T, vc map[string]any, i int) int {
	t.Helper()
	types, _ := vc["type"].([]any)
	found := false
	for _, ty := range types {
		found = found || ty == "BitstringStatusListCredential"
	}
	cs, _ := vc["credentialSubject"].(map[string]any)
	enc, _ := cs["encodedList"].(string)
	if !found || cs["type"] != "BitstringStatusList" {
		t.Fatalf("not a BitstringStatusListCredential: %v", vc)
	}
	bits, err := record.DecodeBitstring(enc)
	if err != nil {
		t.Fatal(err)
	}
	v, err := record.GetStatus(bits, i, 1)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestStatusListDereferencedForEveryMediaType(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	// An Ed25519 issuer, as Open Badges and DCC issuers sign Data
	// Integrity proofs, accredited like the college.
	di, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	e.mustSubmit(e.sign(e.qa, record.OpAccredit, map[string]any{"framework": fw, "accreditor": e.qa.DID, "subject": di.DID,
		"action": "issue", "resources": []string{nurse}, "parent": e.qaAcc, "validFrom": "2022-09-01T00:00:00Z"}))
	bits := make([]byte, record.MinStatusListEntries/8)
	record.SetStatus(bits, 42, 1, 1)
	if _, _, err := e.publishList("jwt", "", bits); err != nil {
		t.Fatal(err)
	}
	secured := map[string][]byte{}
	for _, suite := range []string{record.CryptosuiteEdDSARDFC, record.CryptosuiteEdDSAJCS} {
		vc, err := record.StatusListCredential(di.DID, suite, []string{record.PurposeRevocation}, 1, nil, 0, bits)
		if err != nil {
			t.Fatal(err)
		}
		s, err := di.SignDataIntegrity(vc, suite, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		secured[suite] = s
		if _, err := e.c.Submit(t.Context(), e.sign(di, record.OpPublishStatusList, map[string]any{"list": suite, "credential": string(s)})); err != nil {
			t.Fatalf("publish %s list: %v", suite, err)
		}
	}
	resolve := func(vm string) (crypto.PublicKey, error) {
		d, _, _ := strings.Cut(vm, "#")
		return record.ParseDIDKey(d)
	}
	base := e.n.GatewayURL() + "/v1/status-lists/"
	type list struct {
		url string
		di  []byte // the bytes as issued, for a Data Integrity list
	}
	lists := []list{
		{url: base + url.PathEscape(e.college.DID) + "/jwt"},
		{url: base + url.PathEscape(di.DID) + "/" + record.CryptosuiteEdDSARDFC, di: secured[record.CryptosuiteEdDSARDFC]},
		{url: base + url.PathEscape(di.DID) + "/" + record.CryptosuiteEdDSAJCS, di: secured[record.CryptosuiteEdDSAJCS]},
	}
	for _, l := range lists {
		for _, accept := range []string{"application/vc+jwt", "application/vc", "application/ld+json", "application/json", "*/*", ""} {
			code, ct, body, vc := fetchCredential(t, l.url, accept)
			if l.di != nil && accept == "application/vc+jwt" {
				// Only the issuer's key makes a VC-JWT.
				var p api.Problem
				if json.Unmarshal(body, &p); code != http.StatusNotAcceptable || !strings.Contains(p.Detail, "application/vc") {
					t.Fatalf("%s as vc+jwt: %d %s", l.url, code, body)
				}
				continue
			}
			if code != http.StatusOK {
				t.Fatalf("%s Accept %q: %d %s", l.url, accept, code, body)
			}
			want := accept
			if accept == "*/*" || accept == "" {
				want = "application/vc+jwt"
				if l.di != nil {
					want = "application/vc"
				}
			}
			if ct != want {
				t.Fatalf("%s Accept %q: Content-Type %s, want %s", l.url, accept, ct, want)
			}
			if statusOf(t, vc, 42) != 1 || statusOf(t, vc, 41) != 0 {
				t.Fatalf("%s Accept %q: entry 42 not revoked or 41 revoked", l.url, accept)
			}
			if l.di != nil {
				if string(body) != string(l.di) {
					t.Fatalf("%s Accept %q: served bytes differ from those issued", l.url, accept)
				}
				if _, err := record.VerifyDataIntegrity(body, resolve); err != nil {
					t.Fatalf("%s Accept %q: the served credential does not verify: %v", l.url, accept, err)
				}
			}
		}
	}
	// q-values decide: JSON preferred over the VC-JWT gets the envelope;
	// a type of q=0 is refused.
	if _, ct, body, _ := fetchCredential(t, lists[0].url, "application/vc+jwt;q=0.2, application/json;q=0.9"); ct != "application/json" || !strings.Contains(string(body), "EnvelopedVerifiableCredential") {
		t.Fatalf("q-values: %s %s", ct, body)
	}
	if code, _, _, _ := fetchCredential(t, lists[1].url, "application/json;q=0, text/html"); code != http.StatusNotAcceptable {
		t.Fatalf("no acceptable type: %d", code)
	}
	// The registry's record of a Data Integrity version: its bytes as issued.
	var doc api.StatusListDocument
	if err := e.c.Get(t.Context(), "/v1/status-lists/"+url.PathEscape(di.DID)+"/"+record.CryptosuiteEdDSAJCS+"/record", nil, &doc); err != nil ||
		string(doc.Credential) != string(secured[record.CryptosuiteEdDSAJCS]) || doc.MediaType != "application/vc" || doc.JWT != "" {
		t.Fatalf("record: %+v %v", doc, err)
	}
}
