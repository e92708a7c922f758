package registry

import (
	"net/url"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/registry/record"
)

// A GODEBUG setting that changes what the apply accepts would let one
// node decide otherwise than the others from the same log: under it the
// state does not open. Others pass.
func TestGODEBUGThatChangesTheApplyIsRefused(t *testing.T) {
	// An identifier with two colons in its host is refused by default.
	const id = "https://a.example:1:2/"
	if err := record.ValidateID("url", id); err == nil {
		t.Fatalf("ValidateID(%q) passed with the default settings", id)
	}
	for _, v := range []string{"", "http2client=0", "madvdontneed=1,gctrace=0"} {
		if err := checkGODEBUG(v); err != nil {
			t.Errorf("GODEBUG=%q: %v", v, err)
		}
	}
	for _, v := range []string{"urlstrictcolons=0", "gctrace=0, urlstrictcolons=1"} {
		if err := checkGODEBUG(v); err == nil || !strings.Contains(err.Error(), "urlstrictcolons") {
			t.Errorf("GODEBUG=%q: %v, want it refused", v, err)
		}
	}
	t.Setenv("GODEBUG", "urlstrictcolons=0")
	// The setting is real: url.Parse takes the identifier under it. (Were
	// this to fail, a Go release dropped the setting, and the list in
	// godebug.go wants looking at again.)
	//lint:ignore SA1007 the identifier is one url.Parse refuses by default, on purpose
	if _, err := url.Parse(id); err != nil { //nolint:staticcheck // SA1007, as above
		t.Fatalf("url.Parse(%q) under urlstrictcolons=0: %v; want it taken, as the setting makes it", id, err)
	}
	// ValidateID reads https URLs by its own rules, which the setting does
	// not move; the guard below is defence in depth.
	if err := record.ValidateID("url", id); err == nil {
		t.Fatalf("ValidateID(%q) passed under urlstrictcolons=0; want it refused as by default", id)
	}
	if _, err := Open(t.TempDir(), []byte(`{}`), Options{}); err == nil || !strings.Contains(err.Error(), "GODEBUG sets urlstrictcolons") {
		t.Fatalf("Open under GODEBUG=urlstrictcolons=0: %v", err)
	}
}
