package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestStateDiskUsageAndCommitmentShare: the state's parts are read from
// trustd_state_disk_usage_bytes in MiB, and the commitment's share is its
// parts over all the others.
func TestStateDiskUsageAndCommitmentShare(t *testing.T) {
	const mib = 1 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "# TYPE trustd_state_disk_usage_bytes gauge\n")
		for _, p := range []struct {
			part string
			mib  int
		}{{"records", 60}, {"results", 30}, {"meta", 0}, {"other", 10}, {"commitment_map", 30}, {"commitment_log_nodes", 10}, {"commitment_log_leaves", 5}} {
			fmt.Fprintf(w, "trustd_state_disk_usage_bytes{part=%q} %d\n", p.part, p.mib*mib)
		}
	}))
	defer srv.Close()
	parts, err := stateDiskUsage(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 7 || parts["records"] != 60 || parts["commitment_log_leaves"] != 5 {
		t.Fatalf("parts %v", parts)
	}
	if got := commitmentShare(parts); got != 0.45 {
		t.Errorf("commitment share %v, want 45/100", got)
	}
	if got := partsLine(parts); got != "records 60.0 MiB, results 30.0 MiB, meta 0.0 MiB, other 10.0 MiB, commitment_map 30.0 MiB, commitment_log_nodes 10.0 MiB, commitment_log_leaves 5.0 MiB" {
		t.Errorf("parts printed as %q", got)
	}
	if got := commitmentShare(map[string]float64{"commitment_map": 1}); got != 0 {
		t.Errorf("commitment share without any other part %v, want 0", got)
	}
}

// TestStateDiskUsageOfAnOlderTrustd: a trustd without the metric is an
// error that says so, not a share of 0.
func TestStateDiskUsageOfAnOlderTrustd(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE trustd_pebble_disk_usage_bytes gauge\ntrustd_pebble_disk_usage_bytes{db=\"state\"} 1024\n")
	}))
	defer srv.Close()
	if parts, err := stateDiskUsage(srv.URL); err == nil {
		t.Fatalf("parts %v from a trustd without trustd_state_disk_usage_bytes", parts)
	}
}
