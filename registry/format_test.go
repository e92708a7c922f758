package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/record"
)

// A state written by a build before value separation (Pebble's default
// format, values inline) is moved to the current format when opened, keeps
// every record and decision, and from then on stores long values apart.
func TestStateFormatUpgrade(t *testing.T) {
	stateOptions = func(l pebble.Logger) *pebble.Options {
		o := pebbleOptions(l)
		o.FormatMajorVersion = pebble.FormatDefault
		o.Experimental.EnableColumnarBlocks = nil
		o.Experimental.ValueSeparationPolicy = nil
		return o
	}
	defer func() { stateOptions = pebbleOptions }()

	f := mustChain(t)
	// An operation longer than separatedValueBytes, stored before and
	// after the upgrade.
	resources := func(tag string) []string {
		var out []string
		for i := range 24 {
			out = append(out, "https://example.org/credentials/"+tag+"/"+strings.Repeat("x", 20)+string(rune('a'+i)))
		}
		return out
	}
	big := func(tag string) []byte {
		return f.sign(f.root, record.OpAccredit, map[string]any{
			"framework": fwID, "accreditor": f.root.DID, "subject": mustKey(t, record.KeyEd25519).DID, "action": record.ActionAccredit,
			"resources": resources(tag), "validFrom": "2024-06-01T00:00:00Z",
		})
	}
	before := big("before")
	if len(before) < 2*separatedValueBytes {
		t.Fatalf("test operation is only %d bytes", len(before))
	}
	res := f.mustAccept(before)
	if v := f.s.db.FormatMajorVersion(); v >= pebble.FormatValueSeparation {
		t.Fatalf("the legacy state was opened at format %d", v)
	}
	digest := f.digest()
	decision := f.ask(t0, 0)
	f.s.Close()

	stateOptions = pebbleOptions
	f.open()
	if v := f.s.db.FormatMajorVersion(); v != pebble.FormatValueSeparation {
		t.Fatalf("format %d after reopening, want %d", v, pebble.FormatValueSeparation)
	}
	if got := f.digest(); got != digest {
		t.Fatalf("state digest changed across the upgrade: %s, was %s", got, digest)
	}
	if got := f.ask(t0, 0); got.Authorized != decision.Authorized || got.Reason != decision.Reason {
		t.Fatalf("decision changed across the upgrade: %+v, was %+v", got, decision)
	}
	if view, err := f.s.Operation(res.CID); err != nil || string(view.JWS) != string(before) {
		t.Fatalf("operation stored before the upgrade: %v", err)
	}
	after := big("after")
	res2 := f.mustAccept(after)
	if err := f.s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	blobs, _ := filepath.Glob(filepath.Join(f.dir, "*.blob"))
	if len(blobs) == 0 {
		entries, _ := os.ReadDir(f.dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("no blob file after flushing a %d-byte operation: %v", len(after), names)
	}
	f.s.Close()
	f.open()
	for _, r := range []*record.Result{res, res2} {
		if _, err := f.s.Operation(r.CID); err != nil {
			t.Fatalf("operation %s after reopening: %v", r.CID, err)
		}
	}
}
