package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/record"
)

// provenList is a status-list record answer with its proof.
type provenList struct {
	CID   string          `json:"cid"`
	JWT   string          `json:"jwt"`
	Proof json.RawMessage `json:"proof"`
}

// TestDevNodeProvesStatusLists: a status list's record with proof=true
// carries the list's and its current version's stored records and the
// issuer's issue authorization at the version's time in one bundle that
// proof.Verify accepts; a changed credential, a revoked issuer claimed
// authorized and the list claimed absent fail verification.
func TestDevNodeProvesStatusLists(t *testing.T) {
	d := mustDevProofChain(t)
	n, genesis, gov, submit, c := d.n, d.genesis, d.gov, d.submit, d.chain
	bits := make([]byte, record.MinStatusListEntries/8)
	publish := func(previous string) []byte {
		t.Helper()
		vc, err := record.StatusListCredential(c.college.DID, "main", []string{"revocation"}, 1, nil, 0, bits)
		if err != nil {
			t.Fatal(err)
		}
		jwt, err := c.college.SignVCJWT(vc)
		if err != nil {
			t.Fatal(err)
		}
		op := map[string]any{"op": record.OpPublishStatusList, "iat": time.Now().Unix(), "list": "main", "credential": string(jwt)}
		if previous != "" {
			op["previous"] = previous
		}
		raw, _ := json.Marshal(op)
		jws, err := c.college.SignCompact(raw)
		if err != nil {
			t.Fatal(err)
		}
		submit(jws)
		return jwt
	}
	jwt := publish("")
	base := n.GatewayURL() + "/v1/status-lists/" + url.PathEscape(c.college.DID) + "/main/record"
	fetch := func() (provenList, *proof.Bundle) {
		t.Helper()
		_, body := getProven(t, func() (*http.Response, error) {
			return http.Get(base + "?proof=true&consistency=linearizable")
		})
		var a provenList
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatal(err)
		}
		if len(a.Proof) == 0 {
			t.Fatalf("no proof: %s", body)
		}
		b, err := proof.ParseBundle(a.Proof)
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}

	a, b := fetch()
	if a.JWT != string(jwt) {
		t.Fatal("the record's jwt is not the published credential")
	}
	v, err := proof.Verify(b, genesis, proof.Options{Credential: []byte(a.JWT)})
	if err != nil {
		t.Fatalf("the bundle does not verify: %v", err)
	}
	if b.Question.Type != proof.TypeStatusList || b.Question.Framework != c.fw || !v.Decision.Authorized ||
		v.StatusListVersion.Credential != string(jwt) || v.StatusList.Current != a.CID || !b.Question.At.Equal(v.StatusListVersion.Time) {
		t.Fatalf("question %+v, decision %+v, list %+v", b.Question, v.Decision, v.StatusList)
	}

	// The credential served changed, or the proven version's bytes.
	if _, err := proof.Verify(b, genesis, proof.Options{Credential: []byte(alterTail(a.JWT))}); !errors.Is(err, proof.ErrCredentialMismatch) {
		t.Fatalf("changed credential served: %v, want ErrCredentialMismatch", err)
	}
	changed := *b
	sl := *b.StatusList
	sl.Version = bytes.Replace(sl.Version, jwt, []byte(alterTail(string(jwt))), 1)
	changed.StatusList = &sl
	if _, err := proof.Verify(&changed, genesis, proof.Options{}); !errors.Is(err, proof.ErrRecordDigest) {
		t.Fatalf("changed version bytes: %v, want ErrRecordDigest", err)
	}
	// The list claimed absent.
	absent := *b
	sl = *b.StatusList
	sl.List = nil
	absent.StatusList = &sl
	if _, err := proof.Verify(&absent, genesis, proof.Options{}); !errors.Is(err, proof.ErrRecordDigest) {
		t.Fatalf("list claimed absent: %v, want ErrRecordDigest", err)
	}
	// framework is a proof's (a past version's proof is
	// TestDevNodeProvesPastStatusListVersions).
	for _, q := range []string{"?framework=" + url.QueryEscape(c.fw)} {
		resp, err := http.Get(base + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400", q, resp.StatusCode)
		}
	}

	// The college's accreditation revoked, then a new version (an issuer
	// without accreditation may still set revocation bits): the proven
	// answer is not authorized, and claiming it is fails.
	submit(signed(t, gov, map[string]any{"op": record.OpRevoke, "accreditation": c.collegeAcc, "reason": "closed"}))
	record.SetStatus(bits, 7, 1, 1)
	jwt2 := publish(a.CID)
	a2, b2 := fetch()
	if a2.JWT != string(jwt2) {
		t.Fatal("the record's jwt is not the second version")
	}
	v2, err := proof.Verify(b2, genesis, proof.Options{Credential: jwt2})
	if err != nil || v2.Decision.Authorized {
		t.Fatalf("after revocation: %+v, %v", v2, err)
	}
	claimed := *b2
	yes := true
	claimed.Answer = b.Answer
	claimed.Answer.Authorized, claimed.Answer.Index = &yes, b2.Answer.Index
	if _, err := proof.Verify(&claimed, genesis, proof.Options{}); !errors.Is(err, proof.ErrDecisionMismatch) {
		t.Fatalf("revoked issuer claimed authorized: %v, want ErrDecisionMismatch", err)
	}
}

// alterTail returns s with its third-last character replaced by another
// base64url character (always a different one: replacing a tail with a
// fixed string leaves it unchanged when it already ends that way).
func alterTail(s string) string {
	i := len(s) - 3
	c := byte('A')
	if s[i] == c {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// A local proven read of a status list, an accreditation or an entity
// written since the latest checkpoint waits for a checkpoint that covers it
// and proves it (the node holds the record: a 404 would deny what its
// plain read serves); one the node never held is a 404 at once.
func TestProvenReadOfANewRecordWaitsForItsCheckpoint(t *testing.T) {
	d := mustDevProofChain(t)
	c := d.chain
	base := d.n.GatewayURL() + "/v1/status-lists/" + url.PathEscape(c.college.DID)
	for i := range 5 {
		list := fmt.Sprintf("new%d", i)
		vc, err := record.StatusListCredential(c.college.DID, list, []string{record.PurposeRevocation}, 1, nil, 0, make([]byte, record.MinStatusListEntries/8))
		if err != nil {
			t.Fatal(err)
		}
		jwt, err := c.college.SignVCJWT(vc)
		if err != nil {
			t.Fatal(err)
		}
		res := d.submit(signed(t, c.college, map[string]any{"op": record.OpPublishStatusList, "list": list, "credential": string(jwt)}))
		_, body := getProven(t, func() (*http.Response, error) { return http.Get(base + "/" + list + "/record?proof=true") })
		var a provenList
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatal(err)
		}
		b, err := proof.ParseBundle(a.Proof)
		if err != nil {
			t.Fatal(err)
		}
		v, err := proof.Verify(b, d.genesis, proof.Options{Credential: []byte(a.JWT)})
		if err != nil || v.StatusList.Current != a.CID || a.JWT != string(jwt) || b.Answer.Index < res.Index {
			t.Fatalf("list %s published at index %d: proven at index %d, %v", list, res.Index, b.Answer.Index, err)
		}
	}
	// The same for an accreditation and an entity written just before.
	gw := d.n.GatewayURL()
	for i := range 3 {
		k := mustKey(t)
		acc := d.submit(signed(t, d.root, map[string]any{"op": record.OpAccredit, "framework": c.fw, "accreditor": d.root.DID,
			"subject": k.DID, "action": record.ActionIssue, "resources": []string{c.nursing}}))
		// A did:web, which is a 404 until registered (a did:key is
		// answered, unregistered, from its key).
		web, err := mustKey(t).WithKID(fmt.Sprintf("did:web:college%d.example#k1", i))
		if err != nil {
			t.Fatal(err)
		}
		jwk, err := web.PublicJWK()
		if err != nil {
			t.Fatal(err)
		}
		ent := d.submit(signed(t, d.gov, map[string]any{"op": record.OpRegisterEntity, "id": web.DID, "name": fmt.Sprintf("College %d", i), "keys": []json.RawMessage{jwk}}))
		for u, written := range map[string]uint64{gw + "/v1/accreditations/" + acc.ID: acc.Index, gw + "/v1/entities/" + url.PathEscape(web.DID): ent.Index} {
			a, body := getProven(t, func() (*http.Response, error) { return http.Get(u + "?proof=true") })
			b, v := mustVerify(t, a, d.genesis)
			if len(v.Records) != 1 || v.Records[0].Bytes == nil || b.Answer.Index < written {
				t.Fatalf("%s written at index %d: proven at index %d, records %+v: %s", u, written, b.Answer.Index, v.Records, body)
			}
		}
	}
	for _, u := range []string{base + "/never/record", gw + "/v1/accreditations/bafkreinever", gw + "/v1/entities/did:web:never.example"} {
		resp, err := http.Get(u + "?proof=true")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s, which the node never held: status %d, want 404", u, resp.StatusCode)
		}
	}
}
