package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"

	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/version"
)

// TestVersionOverHTTP: GET /v1/version names this build, the cluster's
// and the build's feature levels and the genesis, and /metrics carries
// the build as trustd_build_info.
func TestVersionOverHTTP(t *testing.T) {
	e := mustNewEnv(t)
	resp, body := e.get("/v1/version")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /v1/version: %d %q %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), body)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"version", "revision", "time", "modified", "go", "feature_level", "build_feature_level", "genesis"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("GET /v1/version lacks %q: %s", f, body)
		}
	}
	var got struct {
		version.Info
		FeatureLevel      int    `json:"feature_level"`
		BuildFeatureLevel int    `json:"build_feature_level"`
		Genesis           string `json:"genesis"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := version.Get()
	if got.Info != want || got.Go != runtime.Version() {
		t.Errorf("build %+v, want %+v (Go %s)", got.Info, want, runtime.Version())
	}
	if got.FeatureLevel != registry.FeatureLevel || got.BuildFeatureLevel != registry.FeatureLevel || got.Genesis != e.n.State.GenesisCID() {
		t.Errorf("levels %d/%d genesis %q, want %d/%d %q", got.FeatureLevel, got.BuildFeatureLevel, got.Genesis,
			registry.FeatureLevel, registry.FeatureLevel, e.n.State.GenesisCID())
	}

	_, metrics := e.get("/metrics")
	line := fmt.Sprintf("trustd_build_info{go=%q,revision=%q,version=%q} 1\n", want.Go, want.Revision, want.Version)
	if !bytes.Contains(metrics, []byte(line)) {
		t.Errorf("/metrics lacks %q", line)
	}
}
