package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/registry/record"
)

// benchFillEntities is how many entity records the proof benchmark adds
// to the chain's state, so that the state map has some depth.
const benchFillEntities = 400

// BenchmarkProofAnswers measures an uncached proof answer (GET
// /v1/trust?proof=true, each request pinned to its own instant with
// &at=, so the proof cache serves none: every one is decided and proven
// afresh) next to the plain answer of the same question about now (what
// trustbench's plain row asks), both over real HTTP on loopback against
// a gateway over a real single-node registry (Pebble, cosigned
// checkpoints). Each iteration makes one request of each, one after the
// other; it reports the process's CPU time for each (client and server
// share the process, so each figure holds the client's share too) and
// plain/proof-cpu, the throughput ratio issue #32 budgets (at least 0.3)
// on a CPU-bound node, with the wall-clock ratio beside it. "handler"
// runs the proof answers through the handler alone (no net/http), the
// figure to profile. CPU time, not wall time, because the machine is
// shared; still compare runs with -count 5 and their medians.
func BenchmarkProofAnswers(b *testing.B) {
	e := mustNewEnv(b)
	e.chain()
	fillEntities(b, e, benchFillEntities)
	g, err := gateway.New(gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n, Checkpoints: e.n, Metrics: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(g)
	defer ts.Close()
	c := ts.Client()
	q := "/v1/trust?" + url.Values{"entity": {e.college.DID}, "framework": {fw}, "resource": {nurse}}.Encode()
	waitProven(b, c, ts.URL+q+"&proof=true")
	settle(b)
	// Every request of every run (-count repeats the sub-benchmarks
	// over the same gateway) is at an instant of its own.
	from, seq := time.Now(), 0
	at := func() string {
		seq++
		return "&proof=true&at=" + from.Add(-time.Duration(seq)*time.Microsecond).UTC().Format(time.RFC3339Nano)
	}
	get := func(u string) {
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: status %d", u, resp.StatusCode)
		}
	}
	b.Run("http", func(b *testing.B) {
		var plain, proven, plainCPU, provenCPU time.Duration
		i := 0
		for b.Loop() {
			t0, c0 := time.Now(), processCPU(b)
			get(ts.URL + q)
			t1, c1 := time.Now(), processCPU(b)
			get(ts.URL + q + at())
			plain += t1.Sub(t0)
			proven += time.Since(t1)
			plainCPU += c1 - c0
			provenCPU += processCPU(b) - c1
			i++
		}
		b.ReportMetric(float64(plainCPU.Microseconds())/float64(i), "plain-cpu-µs/answer")
		b.ReportMetric(float64(provenCPU.Microseconds())/float64(i), "proof-cpu-µs/answer")
		b.ReportMetric(float64(plainCPU)/float64(provenCPU), "plain/proof-cpu")
		b.ReportMetric(float64(plain)/float64(proven), "plain/proof-wall")
	})
	b.Run("handler", func(b *testing.B) {
		w := &discardWriter{h: http.Header{}}
		r := httptest.NewRequest(http.MethodGet, q, nil)
		raw := r.URL.RawQuery
		b.ReportAllocs()
		i := 0
		c0 := processCPU(b)
		for b.Loop() {
			clear(w.h)
			w.status = 0
			r.URL.RawQuery = raw + at()
			g.ServeHTTP(w, r)
			i++
		}
		b.ReportMetric(float64((processCPU(b)-c0).Microseconds())/float64(i), "cpu-µs/answer")
		b.ReportMetric(float64(w.n)/float64(i), "body-bytes/answer")
		if w.status != http.StatusOK && w.status != 0 {
			b.Fatalf("status %d", w.status)
		}
	})
}

// settle waits, at most 10 s, until the process is about idle (the
// node's compactions and checkpoints after the writes are done): the
// figures are of the process's CPU, background work included.
func settle(tb testing.TB) {
	tb.Helper()
	const idle = 20 * time.Millisecond // CPU per 200 ms: 10 % of a core
	poll := time.NewTicker(200 * time.Millisecond)
	defer poll.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for last := processCPU(tb); time.Now().Before(deadline); {
		<-poll.C
		now := processCPU(tb)
		if now-last < idle {
			return
		}
		last = now
	}
}

// processCPU is the CPU time the process has used (user and system, all
// threads: the garbage collector's share included).
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fillEntities registers n entities (their records are in the state map).
func fillEntities(tb testing.TB, e *env, n int) {
	tb.Helper()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				jws := e.sign(e.qa, record.OpRegisterEntity, map[string]any{"id": fmt.Sprintf("did:web:e%d.example", i), "name": fmt.Sprintf("Entity %d", i)})
				if _, err := e.c.Submit(context.Background(), jws); err != nil {
					tb.Error(err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

// waitProven polls u until it is answered 200 (the first cosigned
// checkpoint covering the state), for at most 30 s.
func waitProven(tb testing.TB, c *http.Client, u string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		resp, err := c.Get(u)
		if err != nil {
			tb.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no proven answer within 30 s: %d %s", resp.StatusCode, body)
		}
		<-poll.C
	}
}
