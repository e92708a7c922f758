package node

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/record"
)

// provenAnswer is an answer with its proof bundle, as ?proof=true and a
// TRQP body's "proof": true return it.
type provenAnswer struct {
	Authorized *bool           `json:"authorized"`
	Recognized *bool           `json:"recognized"`
	Reason     string          `json:"reason"`
	Proof      json.RawMessage `json:"proof"`
}

// proofChain is a depth-3 chain on a node: a framework whose root
// accredits an agency to accredit, which accredits a board to accredit,
// which accredits a college to issue nursing credentials; and a
// recognition of another framework.
type proofChain struct {
	fw, nursing, other string
	college            *record.Signer
	collegeAcc         string
	accIndex           uint64 // the index the college's accreditation was applied at
}

func signed(t *testing.T, k *record.Signer, fields map[string]any) []byte {
	t.Helper()
	fields["iat"] = time.Now().Unix()
	raw, _ := json.Marshal(fields)
	jws, err := record.SignJSON(raw, k)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

func mustProofChain(t *testing.T, submit func([]byte) *record.Result, gov, root *record.Signer) *proofChain {
	t.Helper()
	c := &proofChain{fw: "https://example.org/fw", nursing: "https://example.org/Nursing", other: "https://other.example/fw"}
	submit(signed(t, gov, map[string]any{"op": record.OpCreateFramework, "id": c.fw, "name": "FW", "roots": []string{root.DID}}))
	agency, board := mustKey(t), mustKey(t)
	c.college = mustKey(t)
	parent := ""
	for _, link := range []struct {
		by, to *record.Signer
		action string
	}{{root, agency, record.ActionAccredit}, {agency, board, record.ActionAccredit}, {board, c.college, record.ActionIssue}} {
		f := map[string]any{"op": record.OpAccredit, "framework": c.fw, "accreditor": link.by.DID, "subject": link.to.DID,
			"action": link.action, "resources": []string{c.nursing}}
		if parent != "" {
			f["parent"] = parent
		}
		res := submit(signed(t, link.by, f))
		parent, c.accIndex = res.ID, res.Index
	}
	c.collegeAcc = parent
	submit(signed(t, c.college, map[string]any{"op": record.OpRegisterEntity, "id": c.college.DID, "name": "College"}))
	submit(signed(t, gov, map[string]any{"op": record.OpRecognize, "framework": c.fw, "recognized": c.other, "resources": []string{c.nursing}}))
	return c
}

// devProofChain is a dev node (LoopbackConfig in a test directory) with
// a proofChain on it, and what the proof tests verify and sign with.
type devProofChain struct {
	n       *Node
	genesis []byte         // the dev genesis, which bundles verify against
	gov     *record.Signer // the dev governance key
	root    *record.Signer // the dev root accreditor's key
	// submit applies an operation through n, failing the test unless it
	// is accepted.
	submit func(jws []byte) *record.Result
	chain  *proofChain
}

// mustDevProofChain starts a dev node and writes a proofChain on it,
// signed with the dev governance and root accreditor keys.
func mustDevProofChain(t *testing.T) *devProofChain {
	t.Helper()
	cfg := LoopbackConfig(t.TempDir())
	n := mustNewNode(t, cfg)
	d := &devProofChain{
		n:       n,
		genesis: mustRead(t, filepath.Join(cfg.DataDir, DevGenesisFile)),
		gov:     mustReadKey(t, filepath.Join(cfg.DataDir, DevGovernanceKey)),
	}
	root := mustReadKey(t, filepath.Join(cfg.DataDir, DevRootAccreditorKey))
	d.root = root
	d.submit = func(jws []byte) *record.Result {
		t.Helper()
		res, err := n.Submit(context.Background(), jws)
		if err != nil || !res.Accepted {
			t.Fatalf("submit: %+v, %v", res, err)
		}
		return res
	}
	d.chain = mustProofChain(t, d.submit, d.gov, root)
	return d
}

func mustKey(t *testing.T) *record.Signer {
	t.Helper()
	k, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// getProven fetches url until it answers 200 (a 503 must carry
// Retry-After), bounded; it returns the answer and its raw body.
func getProven(t *testing.T, do func() (*http.Response, error)) (provenAnswer, []byte) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	poll := time.NewTicker(100 * time.Millisecond) // Retry-After says 1 s; ask sooner
	defer poll.Stop()
	for {
		resp, err := do()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			var a provenAnswer
			if err := json.Unmarshal(body, &a); err != nil {
				t.Fatalf("answer: %v\n%s", err, body)
			}
			return a, body
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("status %d (Retry-After %q): %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no proven answer within 30 s: %s", body)
		}
		<-poll.C
	}
}

func trustURL(base string, q url.Values) func() (*http.Response, error) {
	q.Set("proof", "true")
	return func() (*http.Response, error) { return http.Get(base + "/v1/trust?" + q.Encode()) }
}

func trqpPost(base, path string, body map[string]any) func() (*http.Response, error) {
	body["proof"] = true
	raw, _ := json.Marshal(body)
	return func() (*http.Response, error) {
		return http.Post(base+path, "application/json", bytes.NewReader(raw))
	}
}

// mustVerify checks a's bundle against genesis and returns what Verify
// found.
func mustVerify(t *testing.T, a provenAnswer, genesis []byte) (*proof.Bundle, *proof.Verified) {
	t.Helper()
	if len(a.Proof) == 0 {
		t.Fatal("the answer carries no proof")
	}
	b, err := proof.ParseBundle(a.Proof)
	if err != nil {
		t.Fatal(err)
	}
	v, err := proof.Verify(b, genesis, proof.Options{})
	if err != nil {
		t.Fatalf("the bundle does not verify: %v", err)
	}
	return b, v
}

// TestDevNodeAnswersWithProofs: a development node answers ?proof=true
// and TRQP's "proof": true with bundles proof.Verify accepts, for a
// depth-3 chain, an unknown entity's "not authorized" and a recognition;
// a changed answer fails verification.
func TestDevNodeAnswersWithProofs(t *testing.T) {
	d := mustDevProofChain(t)
	n, genesis, c := d.n, d.genesis, d.chain
	base := n.GatewayURL()

	// A linearizable read is answered from a checkpoint that covers the
	// writes before it.
	a, body := getProven(t, trustURL(base, url.Values{"entity": {c.college.DID}, "framework": {c.fw}, "resource": {c.nursing}, "consistency": {"linearizable"}}))
	b, v := mustVerify(t, a, genesis)
	if a.Authorized == nil || !*a.Authorized || !v.Decision.Authorized || len(b.Answer.Chain) != 3 {
		t.Fatalf("depth-3 chain: authorized %v, verified %+v, chain %v", a.Authorized, v.Decision, b.Answer.Chain)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(a.Proof)
	_ = zw.Close()
	t.Logf("depth-3 chain: bundle %d bytes, %d gzipped; answer with it %d bytes", len(a.Proof), gz.Len(), len(body))

	// A local read asked again is served from the proof cache while the
	// checkpoint and the second hold: every copy still verifies.
	local := trustURL(base, url.Values{"entity": {c.college.DID}, "framework": {c.fw}, "resource": {c.nursing}})
	for range 3 {
		again, _ := getProven(t, local)
		if _, v := mustVerify(t, again, genesis); !v.Decision.Authorized {
			t.Fatalf("repeated local proof read: %+v", v.Decision)
		}
	}

	// A tampered answer: the verdict flipped, or a record's bytes changed.
	flipped := *b
	no := false
	flipped.Answer.Authorized = &no
	if _, err := proof.Verify(&flipped, genesis, proof.Options{}); !errors.Is(err, proof.ErrDecisionMismatch) {
		t.Fatalf("flipped answer: %v, want ErrDecisionMismatch", err)
	}
	changed := *b
	changed.Records = append([]proof.Record(nil), b.Records...)
	for i, r := range changed.Records {
		if r.Kind == "accreditation" {
			changed.Records[i].Bytes = bytes.Replace(r.Bytes, []byte(c.nursing), []byte(c.nursing+"X"), 1)
			break
		}
	}
	if _, err := proof.Verify(&changed, genesis, proof.Options{}); !errors.Is(err, proof.ErrRecordDigest) {
		t.Fatalf("changed record: %v, want ErrRecordDigest", err)
	}

	// As of the index the college's accreditation was applied at: proven
	// from the checkpoint's state, evaluated as of that index.
	a, _ = getProven(t, trustURL(base, url.Values{"entity": {c.college.DID}, "framework": {c.fw}, "resource": {c.nursing}, "as_of": {fmt.Sprint(c.accIndex)}}))
	if b, v = mustVerify(t, a, genesis); !v.Decision.Authorized || b.Answer.Index != c.accIndex || b.Question.AsOf != c.accIndex {
		t.Fatalf("as_of %d: answer %+v, question %+v", c.accIndex, b.Answer, b.Question)
	}
	a, _ = getProven(t, trustURL(base, url.Values{"entity": {c.college.DID}, "framework": {c.fw}, "resource": {c.nursing}, "as_of": {fmt.Sprint(c.accIndex - 1)}}))
	if _, v = mustVerify(t, a, genesis); v.Decision.Authorized {
		t.Fatalf("as_of %d, before the college's accreditation: %+v", c.accIndex-1, v.Decision)
	}

	unknown := "did:web:unknown.example"
	a, _ = getProven(t, trustURL(base, url.Values{"entity": {unknown}, "framework": {c.fw}, "resource": {c.nursing}}))
	b, v = mustVerify(t, a, genesis)
	if a.Authorized == nil || *a.Authorized || v.Decision.Authorized || v.Decision.Reason != record.ReasonNeverAuthorized {
		t.Fatalf("unknown entity: %s, verified %+v", a.Reason, v.Decision)
	}
	absent := false
	for _, r := range b.Records {
		absent = absent || (r.Kind == "received" && r.A == unknown && r.Bytes == nil)
	}
	if !absent {
		t.Fatalf("the unknown entity's listing is not proven absent: %+v", b.Records)
	}

	a, _ = getProven(t, trqpPost(base, "/authorization", map[string]any{"entity_id": c.college.DID, "authority_id": c.fw, "action": "issue", "resource": c.nursing}))
	if _, v = mustVerify(t, a, genesis); !v.Decision.Authorized {
		t.Fatalf("TRQP authorization: %+v", v.Decision)
	}
	a, _ = getProven(t, trqpPost(base, "/recognition", map[string]any{"entity_id": c.other, "authority_id": c.fw, "action": "recognize", "resource": c.nursing}))
	mustVerify(t, a, genesis)
	if a.Recognized == nil || !*a.Recognized {
		t.Fatalf("TRQP recognition: %+v", a)
	}

	// Records as stored: the college's entity record and its accreditation.
	get := func(path string) func() (*http.Response, error) {
		return func() (*http.Response, error) { return http.Get(base + path + "?proof=true&consistency=linearizable") }
	}
	for _, tc := range []struct{ path, kind, a string }{
		{"/v1/entities/" + url.PathEscape(c.college.DID), "entity", c.college.DID},
		{"/v1/accreditations/" + c.collegeAcc, "accreditation", c.collegeAcc},
	} {
		a, _ = getProven(t, get(tc.path))
		b, v := mustVerify(t, a, genesis)
		if b.Question.Type != proof.TypeRecords || len(v.Records) != 1 || v.Records[0].Kind != tc.kind || v.Records[0].A != tc.a || v.Records[0].Bytes == nil {
			t.Fatalf("%s: records %+v", tc.path, v.Records)
		}
	}

	checkCBORForms(t, base, c, genesis)

	// Without proof=true nothing changes.
	resp, err := http.Get(base + "/v1/trust?" + url.Values{"entity": {c.college.DID}, "framework": {c.fw}, "resource": {c.nursing}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(plain), `"proof"`) {
		t.Fatalf("an answer without proof=true carries one: %s", plain)
	}
}
