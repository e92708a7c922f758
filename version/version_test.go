package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/trustreg/trustreg", Version: "v0.0.0-20261203172740-f5ac1fc1234a+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "-compiler", Value: "gc"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "f5ac1fc1234a5678901234567890123456789012"},
			{Key: "vcs.time", Value: "2026-12-03T17:27:40Z"},
			{Key: "vcs.modified", Value: "true"},
		}}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want Info
		line string
	}{
		{"go build in a git checkout", stamped, true,
			Info{Version: "v0.0.0-20261203172740-f5ac1fc1234a+dirty", Revision: "f5ac1fc1234a5678901234567890123456789012", Time: "2026-12-03T17:27:40Z", Modified: true, Go: "go1.26.8"},
			"v0.0.0-20261203172740-f5ac1fc1234a+dirty, revision f5ac1fc1234a5678901234567890123456789012, committed 2026-12-03T17:27:40Z, modified, go1.26.8"},
		{"a release", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{{Key: "vcs.modified", Value: "false"}}}, true,
			Info{Version: "v1.2.0", Go: "go1.26.8"}, "v1.2.0, go1.26.8"},
		{"go run", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true,
			Info{Version: "(devel)", Go: "go1.26.8"}, "(devel), go1.26.8"},
		{"no build information", nil, false, Info{Version: Unknown, Go: runtime.Version()}, Unknown + ", " + runtime.Version()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FromBuildInfo(tc.bi, tc.ok)
			if got != tc.want {
				t.Errorf("FromBuildInfo = %+v, want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.line {
				t.Errorf("String = %q, want %q", s, tc.line)
			}
		})
	}
}

// TestGetReadsThisBinary: the test binary carries build information, so
// Get reports its Go version and a version, never Unknown.
func TestGetReadsThisBinary(t *testing.T) {
	got := Get()
	if got.Go != runtime.Version() || got.Version == "" || got.Version == Unknown {
		t.Fatalf("Get = %+v, want this binary's Go %s and a version", got, runtime.Version())
	}
}
