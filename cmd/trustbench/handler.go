package main

import (
	"fmt"
	"math"
	"net/http"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// handlerTimes is how long trustd's own handler took for the trust
// queries of one paced run, from the request-duration histogram trustd
// exports on /metrics: the time from the handler's start to its return,
// not counting the wait for a CPU, the kernel or the load generator. Next
// to the latency the client saw, it tells trustd's code apart from the
// machine's queueing.
type handlerTimes struct {
	Requests int64 `json:"requests"`
	// Over1ms: handler runs that took longer than 1 ms.
	Over1ms int64 `json:"over_1ms"`
	// P99AtMostMs: the histogram bucket bound under which at least 99 %
	// of the runs finished (the p99 is at most this); 0 if over the
	// largest bound.
	P99AtMostMs float64 `json:"p99_at_most_ms"`
	// AllocPerRequest is what the whole trustd process allocated during
	// the run, in bytes per trust query (net/http's share included, and
	// the one /metrics answer between the readings); GCCycles is how many
	// collections it ran. Unlike CPU time on a shared machine, both move
	// little between runs of the same build.
	AllocPerRequest float64 `json:"process_alloc_bytes_per_request"`
	GCCycles        uint64  `json:"process_gc_cycles"`
}

// trustRoute is the route label of GET /v1/trust in trustd's metrics.
const trustRoute = "/v1/trust"

// metricsReading is one reading of trustd's /metrics: the cumulative
// bucket counts of the request duration histogram for one route, by upper
// bound in seconds, and the Go runtime's allocation and collection totals.
type metricsReading struct {
	buckets    map[float64]uint64
	allocBytes float64
	gcCycles   uint64
	// sysBytes is the memory the Go runtime has taken from the operating
	// system (go_memstats_sys_bytes): its heap, stacks and own metadata,
	// not what C code (Pebble's block cache and memtables) allocates.
	sysBytes float64
}

// readMetrics reads trustd's metrics at gatewayURL for route.
func readMetrics(gatewayURL, route string) (metricsReading, error) {
	var out metricsReading
	resp, err := http.Get(gatewayURL + "/metrics")
	if err != nil {
		return out, err
	}
	defer closeRead(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("GET %s/metrics: %s", gatewayURL, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return out, fmt.Errorf("parse %s/metrics: %w", gatewayURL, err)
	}
	if f, ok := families["go_memstats_alloc_bytes_total"]; ok && len(f.GetMetric()) == 1 {
		out.allocBytes = f.GetMetric()[0].GetCounter().GetValue()
	}
	if f, ok := families["go_memstats_sys_bytes"]; ok && len(f.GetMetric()) == 1 {
		out.sysBytes = f.GetMetric()[0].GetGauge().GetValue()
	}
	if f, ok := families["go_gc_duration_seconds"]; ok && len(f.GetMetric()) == 1 {
		out.gcCycles = f.GetMetric()[0].GetSummary().GetSampleCount()
	}
	fam, ok := families["trustd_http_request_duration_seconds"]
	if !ok || fam.GetType() != dto.MetricType_HISTOGRAM {
		return out, fmt.Errorf("%s/metrics has no trustd_http_request_duration_seconds histogram", gatewayURL)
	}
	for _, m := range fam.GetMetric() {
		if v, ok := labelValue(m, "route"); ok && v == route {
			out.buckets = map[float64]uint64{}
			for _, b := range m.GetHistogram().GetBucket() {
				out.buckets[b.GetUpperBound()] = b.GetCumulativeCount()
			}
			out.buckets[math.Inf(1)] = m.GetHistogram().GetSampleCount()
			return out, nil
		}
	}
	return out, fmt.Errorf("%s/metrics has no series for route %s", gatewayURL, route)
}

// handlerTimesBetween summarizes the runs counted between two readings of
// the same histogram.
func handlerTimesBetween(r0, r1 metricsReading) handlerTimes {
	before, after := r0.buckets, r1.buckets
	bounds := make([]float64, 0, len(after))
	for le := range after {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	inf := math.Inf(1)
	h := handlerTimes{Requests: int64(after[inf] - before[inf])}
	if r1.gcCycles >= r0.gcCycles {
		h.GCCycles = r1.gcCycles - r0.gcCycles
	}
	if h.Requests == 0 {
		return h
	}
	if r1.allocBytes >= r0.allocBytes {
		h.AllocPerRequest = (r1.allocBytes - r0.allocBytes) / float64(h.Requests)
	}
	if n, ok := after[0.001]; ok {
		h.Over1ms = h.Requests - int64(n-before[0.001])
	}
	for _, le := range bounds {
		if float64(after[le]-before[le]) >= 0.99*float64(h.Requests) {
			if !math.IsInf(le, 1) { // else over the largest bound: left 0
				h.P99AtMostMs = le * 1000
			}
			break
		}
	}
	return h
}

// formatHandler prints handler times for the report's table: the bucket
// bound of the p99, how many runs took over 1 ms, and the process's
// allocation per query and collections.
func formatHandler(h *handlerTimes) string {
	if h == nil || h.Requests == 0 {
		return "-"
	}
	p99 := fmt.Sprintf("<= %g ms", h.P99AtMostMs)
	if h.P99AtMostMs == 0 {
		p99 = "over the top bound"
	}
	return fmt.Sprintf("%s, %d of %d; %.0f B/q, %d GCs", p99, h.Over1ms, h.Requests, h.AllocPerRequest, h.GCCycles)
}
