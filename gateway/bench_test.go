package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/trustreg/trustreg/gateway"
)

// discardWriter is the least a ResponseWriter can be: what the handler
// costs on its own, without net/http writing the answer.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header  { return w.h }
func (w *discardWriter) WriteHeader(code int) { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

// BenchmarkTrustHandler measures a cached trust answer through the
// gateway's handler (routing, metrics, cache, headers) next to a bare
// handler writing the same body: the gateway's own cost per query.
func BenchmarkTrustHandler(b *testing.B) {
	e := mustNewEnv(b)
	e.chain()
	g, err := gateway.New(gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n, Metrics: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	q := url.Values{"entity": {e.college.DID}, "framework": {fw}, "resource": {nurse}}
	r := httptest.NewRequest(http.MethodGet, "/v1/trust?"+q.Encode(), nil)
	w := &discardWriter{h: http.Header{}}
	g.ServeHTTP(w, r)
	if w.status != http.StatusOK && w.status != 0 {
		b.Fatalf("status %d", w.status)
	}
	body := make([]byte, w.n)
	b.Run("gateway", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			g.ServeHTTP(w, r)
		}
	})
	// The same question spelt otherwise (the default action spelt out),
	// asked again: the first ask finds it under the question's key once
	// the query is parsed, and files it under the spelling too (alias).
	respelt := httptest.NewRequest(http.MethodGet, "/v1/trust?action=issue&"+q.Encode(), nil)
	b.Run("gateway, the question spelt otherwise", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			w.status = 0
			g.ServeHTTP(w, respelt)
		}
		if w.status != http.StatusOK && w.status != 0 {
			b.Fatalf("status %d", w.status)
		}
	})
	// Answers without "at" say the second they were given for: the first
	// query of each second about a question gets the cached decision
	// re-rendered for that second. Here every query is the first of its
	// second, the most that can cost.
	var clock time.Time
	g2, err := gateway.New(gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n, Metrics: prometheus.NewRegistry(),
		Now: func() time.Time { return clock }})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("gateway, each query in a new second", func(b *testing.B) {
		clock = time.Now()
		b.ReportAllocs()
		for b.Loop() {
			clock = clock.Add(time.Second)
			clear(w.h)
			w.status = 0
			g2.ServeHTTP(w, r)
		}
		if w.status != http.StatusOK && w.status != 0 {
			b.Fatalf("status %d", w.status)
		}
	})
	// A node with more questions asked than the cache holds (100,000
	// entities against 16,384 answers) decides most of them afresh. The
	// same question asked at distinct times is a distinct cache key with
	// an answer of the same size.
	questions := make([]*http.Request, 1<<18)
	for i := range questions {
		questions[i] = httptest.NewRequest(http.MethodGet, trustPathAt(e.college.DID, i), nil)
	}
	b.Run("gateway, mostly uncached", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			clear(w.h)
			w.status = 0
			g.ServeHTTP(w, questions[i%len(questions)])
			i++
		}
		if w.status != http.StatusOK && w.status != 0 {
			b.Fatalf("status %d", w.status)
		}
	})
	b.Run("bare", func(b *testing.B) {
		bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		})
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			bare.ServeHTTP(w, r)
		}
	})
}
