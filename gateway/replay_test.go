package gateway_test

import (
	"bytes"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// highSFlattened returns a compact ES256 JWS as the JWS JSON flattened
// serialization with its s replaced by n − s: a signature that verifies,
// in bytes never submitted.
func highSFlattened(t *testing.T, compact []byte) []byte {
	t.Helper()
	c := strings.Split(string(compact), ".")
	sig, err := base64.RawURLEncoding.DecodeString(c[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("ES256 signature: %d bytes, %v", len(sig), err)
	}
	n := elliptic.P256().Params().N
	new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:])).FillBytes(sig[32:])
	b, _ := json.Marshal(map[string]string{"payload": c[1], "protected": c[0], "signature": base64.RawURLEncoding.EncodeToString(sig)})
	return b
}

// post submits body and returns the status and the problem or result.
func post(t *testing.T, e *env, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(e.n.GatewayURL()+"/v1/operations", "application/jose", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// Over HTTP: after a revocation, the revoked grant re-encoded (s → n − s,
// as JWS JSON) is refused as malformed before the log, and the grant
// signed again is answered as the original; the college stays revoked. A
// payload with a member named like a field but for case is refused too.
func TestReencodedGrantRefusedOverHTTP(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	agency, _ := record.GenerateKey(record.KeyP256)
	college, _ := record.GenerateKey(record.KeyP256)
	agencyAcc := e.mustSubmit(e.sign(e.root, record.OpAccredit, map[string]any{"framework": fw, "accreditor": e.root.DID, "subject": agency.DID,
		"action": "accredit", "resources": []string{nurse}, "validFrom": "2020-01-01T00:00:00Z"})).ID
	payload := e.payload(record.OpAccredit, map[string]any{"framework": fw, "accreditor": agency.DID, "subject": college.DID,
		"action": "issue", "resources": []string{nurse}, "parent": agencyAcc, "validFrom": "2022-09-01T00:00:00Z"})
	grant, err := agency.SignCompact(payload)
	if err != nil {
		t.Fatal(err)
	}
	first := e.mustSubmit(grant)
	e.mustSubmit(e.sign(agency, record.OpRevoke, map[string]any{"accreditation": first.ID, "reason": "fraud"}))

	applied := e.n.State.AppliedIndex()
	before, _ := e.n.State.StateDigest()
	if status, body := post(t, e, highSFlattened(t, grant)); status != 400 || !bytes.Contains(body, []byte("urn:trustreg:problem:malformed")) {
		t.Fatalf("the grant with s replaced by n - s: %d %s, want 400 malformed", status, body)
	}
	ambiguous, err := college.SignCompact([]byte(strings.Replace(string(e.payload(record.OpRegisterEntity, map[string]any{"id": college.DID, "name": "Shown"})),
		`"name"`, `"Name":"Applied","name"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	status, body := post(t, e, ambiguous)
	var p api.Problem
	if status != 400 || json.Unmarshal(body, &p) != nil || p.Type != "urn:trustreg:problem:malformed" || !strings.Contains(p.Detail, `"/Name"`) {
		t.Fatalf("a payload naming Name beside name: %d %s, want 400 malformed naming /Name", status, body)
	}
	again, err := agency.SignCompact(payload)
	if err != nil {
		t.Fatal(err)
	}
	status, body = post(t, e, again)
	var res record.Result
	if status != 200 || json.Unmarshal(body, &res) != nil || !res.Duplicate || res.Index != first.Index {
		t.Fatalf("the grant signed again: %d %s, want 200 duplicate of index %d", status, body, first.Index)
	}
	if got := e.n.State.AppliedIndex(); got != applied {
		t.Fatalf("the log grew from %d to %d: a refused or repeated operation entered it", applied, got)
	}
	if after, _ := e.n.State.StateDigest(); after != before {
		t.Fatal("state digest changed")
	}
	view := e.n.State.View()
	defer view.Close()
	d, err := view.Decide(decide.Question{Entity: college.DID, Framework: fw, Action: record.ActionIssue, Resource: nurse}, time.Now())
	if err != nil || d.Authorized || d.Reason != record.ReasonRevoked {
		t.Fatalf("the college after the replays: %+v", d)
	}
}
