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
}

// trustRoute is the route label of GET /v1/trust in trustd's metrics.
const trustRoute = "/v1/trust"

// bucketCounts reads the cumulative bucket counts of trustd's request
// duration histogram for route, by upper bound in seconds.
func bucketCounts(gatewayURL, route string) (map[float64]uint64, error) {
	resp, err := http.Get(gatewayURL + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", gatewayURL, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s/metrics: %w", gatewayURL, err)
	}
	fam, ok := families["trustd_http_request_duration_seconds"]
	if !ok || fam.GetType() != dto.MetricType_HISTOGRAM {
		return nil, fmt.Errorf("%s/metrics has no trustd_http_request_duration_seconds histogram", gatewayURL)
	}
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && l.GetValue() == route {
				out := map[float64]uint64{}
				for _, b := range m.GetHistogram().GetBucket() {
					out[b.GetUpperBound()] = b.GetCumulativeCount()
				}
				out[math.Inf(1)] = m.GetHistogram().GetSampleCount()
				return out, nil
			}
		}
	}
	return nil, fmt.Errorf("%s/metrics has no series for route %s", gatewayURL, route)
}

// handlerTimesBetween summarizes the runs counted between two readings of
// the same histogram.
func handlerTimesBetween(before, after map[float64]uint64) handlerTimes {
	bounds := make([]float64, 0, len(after))
	for le := range after {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	inf := math.Inf(1)
	h := handlerTimes{Requests: int64(after[inf] - before[inf])}
	if h.Requests == 0 {
		return h
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
// bound of the p99 and how many runs took over 1 ms.
func formatHandler(h *handlerTimes) string {
	switch {
	case h == nil || h.Requests == 0:
		return "-"
	case h.P99AtMostMs == 0:
		return fmt.Sprintf("over the top bound, %d of %d", h.Over1ms, h.Requests)
	}
	return fmt.Sprintf("<= %g ms, %d of %d", h.P99AtMostMs, h.Over1ms, h.Requests)
}
