package version

import (
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
)

// Info is a binary's build information.
type Info struct {
	// Version is the main module's version: a release tag (v1.2.0), a
	// pseudo-version naming the commit (v0.0.0-20261203172740-f5ac1fc1234a,
	// with +dirty when the work tree had changes), "(devel)" when the go
	// command stamped none, or "unknown" when the binary carries no build
	// information at all.
	Version string `json:"version"`
	// Revision is the VCS revision (a git commit hash) the binary was
	// built from; empty when none was stamped.
	Revision string `json:"revision"`
	// Time is the revision's commit time, RFC 3339 in UTC; empty when none
	// was stamped.
	Time string `json:"time"`
	// Modified is true when the work tree had uncommitted changes at build
	// time: the binary is not exactly Revision.
	Modified bool `json:"modified"`
	// Go is the version of Go the binary was built with (go1.26.8).
	Go string `json:"go"`
}

// Unknown is Info.Version for a binary without build information.
const Unknown = "unknown"

// Get returns the running binary's build information. It is read once.
func Get() Info { return get() }

var get = sync.OnceValue(func() Info { return FromBuildInfo(debug.ReadBuildInfo()) })

// FromBuildInfo returns the Info in bi; ok is ReadBuildInfo's second
// result. Without build information, Version is Unknown and Go is the
// running Go version.
func FromBuildInfo(bi *debug.BuildInfo, ok bool) Info {
	if !ok || bi == nil {
		return Info{Version: Unknown, Go: runtime.Version()}
	}
	info := Info{Version: bi.Main.Version, Go: bi.GoVersion}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	if info.Go == "" {
		info.Go = runtime.Version()
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified, _ = strconv.ParseBool(s.Value)
		}
	}
	return info
}

// String is one line for people:
//
//	v1.2.0, revision 0123abcd…, committed 2026-12-03T17:27:40Z, modified, go1.26.8
//
// leaving out what the binary does not carry.
func (i Info) String() string {
	parts := []string{i.Version}
	if i.Revision != "" {
		parts = append(parts, "revision "+i.Revision)
	}
	if i.Time != "" {
		parts = append(parts, "committed "+i.Time)
	}
	if i.Modified {
		parts = append(parts, "modified")
	}
	parts = append(parts, i.Go)
	return strings.Join(parts, ", ")
}
