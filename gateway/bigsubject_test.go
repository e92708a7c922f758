package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

// bigSubject is a registry, applied in process without a cluster, whose
// framework fw holds one subject (big) with k accreditations to issue,
// each for a resource of its own (bigResource(i)), and colleges that
// hold one accreditation each, for nurse; all are granted by one agency
// under the framework's root.
type bigSubject struct {
	tb       testing.TB
	st       *registry.State
	index    uint64
	now      time.Time
	gov      *record.Signer
	root     *record.Signer
	agency   *record.Signer
	agencyID string
	big      string
	colleges []string
}

// bigResource is the resource of big's i-th accreditation.
func bigResource(i int) string { return fmt.Sprintf("https://example.org/credentials/Program-%06d", i) }

// mustBigSubject writes a bigSubject with k accreditations of big and
// the given number of colleges, applied in batches of 64.
func mustBigSubject(tb testing.TB, k, colleges int) *bigSubject {
	tb.Helper()
	f := &bigSubject{tb: tb, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), big: "did:web:big.example"}
	f.gov, f.root, f.agency = mustKeyOf(tb), mustKeyOf(tb), mustKeyOf(tb)
	raw, err := json.Marshal(record.Genesis{Consortium: "big subject", Threshold: 1, Members: []record.Member{{ID: f.gov.DID}}})
	if err != nil {
		tb.Fatal(err)
	}
	st, err := registry.Open(tb.TempDir(), raw, registry.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	f.st = st
	f.apply([][]byte{registry.EncodeFeatureLevel(registry.FeatureLevel)})
	gov := gateway.GovSignOp(tb, []*record.Signer{f.gov}, f.now, record.OpCreateFramework, map[string]any{"id": fw, "name": "Nursing", "roots": []string{f.root.DID}})
	f.apply([][]byte{registry.EncodeOperation(gov)})
	r := f.apply([][]byte{registry.EncodeOperation(f.sign(f.root, record.OpAccredit, map[string]any{"framework": fw, "accreditor": f.root.DID,
		"subject": f.agency.DID, "action": record.ActionAccredit, "resources": []string{"*"}, "validFrom": "2024-01-01T00:00:00Z"}))})
	f.agencyID = r[0].ID
	var batch [][]byte
	grant := func(subject, resource string) {
		batch = append(batch, registry.EncodeOperation(f.sign(f.agency, record.OpAccredit, map[string]any{"framework": fw, "accreditor": f.agency.DID,
			"subject": subject, "action": record.ActionIssue, "resources": []string{resource}, "parent": f.agencyID, "validFrom": "2025-01-01T00:00:00Z"})))
		if len(batch) == 64 {
			f.apply(batch)
			batch = batch[:0]
		}
	}
	for i := range k {
		grant(f.big, bigResource(i))
	}
	for i := range colleges {
		did := fmt.Sprintf("did:web:college-%d.example", i)
		f.colleges = append(f.colleges, did)
		grant(did, nurse)
	}
	if len(batch) > 0 {
		f.apply(batch)
	}
	f.now = f.now.Add(time.Second)
	return f
}

func mustKeyOf(tb testing.TB) *record.Signer {
	tb.Helper()
	k, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func (f *bigSubject) sign(s *record.Signer, op string, fields map[string]any) []byte {
	f.tb.Helper()
	return gateway.SignOp(f.tb, s, f.now, op, fields)
}

// apply applies entries in one batch, a microsecond apart; each must be
// accepted.
func (f *bigSubject) apply(entries [][]byte) []*record.Result {
	f.tb.Helper()
	var batch []registry.Entry
	for _, data := range entries {
		f.index++
		f.now = f.now.Add(time.Microsecond)
		batch = append(batch, registry.Entry{Index: f.index, Time: f.now, Data: data})
	}
	res := f.st.ApplyBatch(batch)
	for _, r := range res {
		if r != nil && r.Op != "" && !r.Accepted {
			f.tb.Fatalf("%s refused: %s", r.Op, r.Reason)
		}
	}
	return res
}

// gateway serves the registry at the fixture's time.
func (f *bigSubject) gateway() *gateway.Server {
	f.tb.Helper()
	now := f.now
	g, err := gateway.New(gateway.Config{Registry: f.st, Node: appliedNode{f.st}, MaxBodyBytes: 1 << 20, Now: func() time.Time { return now }})
	if err != nil {
		f.tb.Fatal(err)
	}
	return g
}

// batch is the body of a POST /v1/trust asking about n questions, the
// i-th asked about entity(i) for resource(i).
func batchBody(tb testing.TB, n int, entity, resource func(i int) string) []byte {
	tb.Helper()
	qs := make([]map[string]string, n)
	for i := range qs {
		qs[i] = map[string]string{"entity": entity(i), "framework": fw, "resource": resource(i)}
	}
	b, err := json.Marshal(qs)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// postBatch sends body to POST /v1/trust.
func postBatch(g *gateway.Server, body []byte) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/v1/trust", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	g.ServeHTTP(w, r)
	return w
}

// appliedNode is a Node whose state is applied up to what it holds.
type appliedNode struct{ st *registry.State }

func (appliedNode) Status() any                                 { return map[string]any{} }
func (appliedNode) Version() any                                { return map[string]any{} }
func (appliedNode) Ready() error                                { return nil }
func (n appliedNode) ReadIndex(context.Context) (uint64, error) { return n.st.AppliedIndex(), nil }
func (appliedNode) WaitApplied(context.Context, uint64) error   { return nil }

// BenchmarkBigSubjectTrust asks about a subject holding k accreditations
// in the framework, and about colleges holding one: GET /v1/trust about
// the subject, each time for another resource (a question the answer
// cache has not seen; the record cache warm), and POST /v1/trust batches
// of 1,000 questions about the subject and about colleges.
func BenchmarkBigSubjectTrust(b *testing.B) {
	const k = 10000
	f := mustBigSubject(b, k, 1000)
	g := f.gateway()
	b.Run("get_big_subject", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			q := url.Values{"entity": {f.big}, "framework": {fw}, "resource": {bigResource(i % k)}, "at": {f.now.Add(time.Duration(i) * time.Second).Format(time.RFC3339)}}
			w := httptest.NewRecorder()
			g.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/trust?"+q.Encode(), nil))
			if w.Code != http.StatusOK {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
			i++
		}
	})
	for _, c := range []struct {
		name     string
		entity   func(int) string
		resource func(int) string
	}{
		{"batch_1000_big_subject", func(int) string { return f.big }, bigResource},
		{"batch_1000_colleges", func(i int) string { return f.colleges[i] }, func(int) string { return nurse }},
	} {
		body := batchBody(b, gateway.MaxBatch, c.entity, c.resource)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if w := postBatch(g, body); w.Code != http.StatusOK && w.Code != http.StatusRequestEntityTooLarge {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// TestBatchesAreBoundedByWhatTheyRead: a batch's decisions read at most
// gateway.MaxBatchReads listed accreditations. 1,000 questions about
// colleges holding one accreditation each are answered; 1,000 about a
// subject holding k (k × 1,000 past the bound) are refused with a 413
// that names the question past the bound and what to send instead, and
// the questions before it, sent alone, are answered (they read exactly
// the bound), as is a batch of one question about the subject. The
// refusal changes nothing: the same questions are answered the same
// afterwards.
func TestBatchesAreBoundedByWhatTheyRead(t *testing.T) {
	const k = 2 * gateway.MaxBatchReads / gateway.MaxBatch
	f := mustBigSubject(t, k, 8)
	g := f.gateway()
	decisions := func(what string, w *httptest.ResponseRecorder, n int) []record.Decision {
		t.Helper()
		var ds []record.Decision
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &ds) != nil || len(ds) != n {
			t.Fatalf("%s: %d, %d decisions of %d: %.300s", what, w.Code, len(ds), n, w.Body)
		}
		for i, d := range ds {
			if !d.Authorized {
				t.Fatalf("%s: question %d not authorized: %+v", what, i, d)
			}
		}
		return ds
	}
	colleges := batchBody(t, gateway.MaxBatch, func(i int) string { return f.colleges[i%len(f.colleges)] }, func(int) string { return nurse })
	before := decisions("1,000 questions about colleges", postBatch(g, colleges), gateway.MaxBatch)

	big := func(n int) []byte {
		return batchBody(t, n, func(int) string { return f.big }, func(i int) string { return bigResource(i % k) })
	}
	applied := f.st.AppliedIndex()
	w := postBatch(g, big(gateway.MaxBatch))
	var p api.Problem
	past := gateway.MaxBatchReads / k // the first question past the bound, counting from 0
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != http.StatusRequestEntityTooLarge || p.Type != "urn:trustreg:problem:too_large" ||
		!strings.Contains(p.Detail, fmt.Sprintf("question %d ", past)) || !strings.Contains(p.Detail, "smaller batches") || !strings.Contains(p.Detail, "GET /v1/trust") {
		t.Fatalf("1,000 questions about a subject holding %d: %d %.300s, want 413 too_large naming question %d and what to send instead", k, w.Code, w.Body, past)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("refusal's Content-Type %q", ct)
	}
	decisions("the questions before the bound", postBatch(g, big(past)), past)
	decisions("one question about the subject", postBatch(g, batchBody(t, 1, func(int) string { return f.big }, bigResource)), 1)

	if got := f.st.AppliedIndex(); got != applied {
		t.Fatalf("applied index %d after the refusal, was %d", got, applied)
	}
	after := decisions("1,000 questions about colleges, again", postBatch(g, colleges), gateway.MaxBatch)
	if !reflect.DeepEqual(before, after) {
		t.Fatal("the colleges' answers changed after a refusal")
	}

	// A batch of one question is not bounded: it costs what GET does.
	// With the bound below what the subject holds, its question alone is
	// answered, and two are refused at the first.
	g.SetBatchReads(k - 1)
	decisions("one question about the subject, past a lower bound", postBatch(g, batchBody(t, 1, func(int) string { return f.big }, bigResource)), 1)
	w = postBatch(g, batchBody(t, 2, func(int) string { return f.big }, bigResource))
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "question 0 ") {
		t.Fatalf("two questions about the subject past a lower bound: %d %.300s, want 413 naming question 0", w.Code, w.Body)
	}
}
