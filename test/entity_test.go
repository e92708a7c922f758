package test

import (
	"encoding/json"
	"maps"
	"os/exec"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/registry/record"
)

// TestEntityMetadataThroughTrustctl: governance registers a did:web
// college with its metadata, and the college, signing with its registered
// key, changes one field and removes one identifier; the rest stays.
func TestEntityMetadataThroughTrustctl(t *testing.T) {
	bin := mustBuild(t)
	dir := t.TempDir()
	p := startTrustd(t, bin, dir, "--http-addr", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--admin-addr", "127.0.0.1:0")
	defer p.stop(t)
	ctl := func(args ...string) (string, error) {
		cmd := exec.Command(bin+"/trustctl", append([]string{"--server", p.url}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := ctl(args...)
		if err != nil {
			t.Fatalf("trustctl %v: %v\n%s", args, err, out)
		}
		return out
	}
	const web = "did:web:college.example"
	must("keygen", "--out", "web.jwk", "--kid", web+"#k1")
	must("entity", "register", "--id", web, "--name", "College", "--key", "trustd-data/keys/governance.jwk", "--public-key", "web.jwk",
		"--legal-name", "College Ltd", "--country", "GB", "--identifier", "ctid=ce-1", "--identifier", "ukprn=123")
	must("entity", "update", "--id", web, "--key", "web.jwk", "--country", "IE", "--identifier", "ukprn=")

	var e record.Entity
	if out := must("--json", "entity", "show", web); json.Unmarshal([]byte(out), &e) != nil || e.Metadata == nil {
		t.Fatalf("entity show: %s", out)
	}
	if m := e.Metadata; m.LegalName != "College Ltd" || m.Country != "IE" || !maps.Equal(m.Identifiers, map[string]string{"ctid": "ce-1"}) {
		t.Fatalf("metadata after the update: %+v", m)
	}
	if out := must("entity", "show", web); !strings.Contains(out, "country    IE") || !strings.Contains(out, "identifier ctid=ce-1") {
		t.Fatalf("entity show (text): %s", out)
	}
	// An update that changes nothing is refused before anything is signed.
	if out, err := ctl("entity", "update", "--id", web, "--key", "web.jwk"); err == nil || !strings.Contains(out, "nothing to change") {
		t.Fatalf("empty update: %v %s", err, out)
	}
}
