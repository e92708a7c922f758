package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestHandlerTimesCountOnlyTheRunBetweenReadings(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "trustd", Subsystem: "http", Name: "request_duration_seconds",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
	reg.MustRegister(h)
	// The Go runtime's totals, under the names trustd exports them.
	allocs := prometheus.NewCounter(prometheus.CounterOpts{Name: "go_memstats_alloc_bytes_total"})
	gcs := prometheus.NewSummary(prometheus.SummaryOpts{Name: "go_gc_duration_seconds"})
	sys := prometheus.NewGauge(prometheus.GaugeOpts{Name: "go_memstats_sys_bytes"})
	reg.MustRegister(allocs, gcs, sys)
	sys.Set(300 << 20)
	allocs.Add(1 << 30)
	gcs.Observe(0.001)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	trust, other := h.WithLabelValues(trustRoute), h.WithLabelValues("/v1/status")
	for range 5000 { // before the run: not counted
		trust.Observe(0.02)
	}
	before, err := readMetrics(srv.URL, trustRoute)
	if err != nil {
		t.Fatal(err)
	}
	allocs.Add(2_500_000) // 2,500 bytes for each of the run's 1,000 queries
	for range 3 {
		gcs.Observe(0.001)
	}
	for range 990 {
		trust.Observe(0.00005)
	}
	for range 8 {
		trust.Observe(0.002)
	}
	for range 2 {
		trust.Observe(0.02)
	}
	for range 100 {
		other.Observe(3) // another route: not counted
	}
	after, err := readMetrics(srv.URL, trustRoute)
	if err != nil {
		t.Fatal(err)
	}
	if after.sysBytes != 300<<20 {
		t.Fatalf("the Go runtime's memory read as %v bytes, want %v", after.sysBytes, 300<<20)
	}
	got := handlerTimesBetween(before, after)
	if want := (handlerTimes{Requests: 1000, Over1ms: 10, P99AtMostMs: 0.1, AllocPerRequest: 2500, GCCycles: 3}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// One more slow run moves the p99 past the first bucket.
	trust.Observe(0.0003)
	after, _ = readMetrics(srv.URL, trustRoute)
	if got = handlerTimesBetween(before, after); got.Requests != 1001 || got.P99AtMostMs != 0.5 {
		t.Fatalf("got %+v, want 1001 runs with the p99 at most 0.5 ms", got)
	}
	if s := formatHandler(&got); s != "<= 0.5 ms, 10 of 1001; 2498 B/q, 3 GCs" {
		t.Fatalf("formatted %q", s)
	}

	if _, err := readMetrics(srv.URL, "/v1/nothing"); err == nil || !strings.Contains(err.Error(), "no series for route /v1/nothing") {
		t.Fatalf("a route with no series: %v", err)
	}
	empty := httptest.NewServer(promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{}))
	defer empty.Close()
	if _, err := readMetrics(empty.URL, trustRoute); err == nil || !strings.Contains(err.Error(), "no trustd_http_request_duration_seconds histogram") {
		t.Fatalf("metrics without the histogram: %v", err)
	}
}
