package test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// readmeTour returns the shell block of README.md marked as the tour.
func readmeTour(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "<!-- tour")
	if !ok {
		t.Fatal("README.md has no tour block")
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatal("tour block has no sh fence")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("tour block is not closed")
	}
	return block
}

// TestReadmeTour starts trustd with no configuration (only its ports moved
// off the defaults so the test cannot collide with a running node) and runs
// the README's tour verbatim, but for two substitutions: the gateway address
// the node printed, and binaries built by the test instead of the tour's
// own go build line.
func TestReadmeTour(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed by the README tour: install it (apt-get install curl)")
	}
	bin := mustBuild(t)
	dir := t.TempDir()
	p := startTrustd(t, bin, dir, "--http-addr", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--admin-addr", "127.0.0.1:0")

	tour := readmeTour(t)
	const buildLine = "go build -o bin/ ./cmd/... && export PATH=$PWD/bin:$PATH"
	if !strings.Contains(tour, buildLine) || !strings.Contains(tour, "http://127.0.0.1:8080") {
		t.Fatal("the tour changed: update the substitutions of this test")
	}
	script := strings.Replace(tour, buildLine, "export PATH="+bin+":$PATH", 1)
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", p.url)

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TRUSTCTL_SERVER="+p.url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tour failed: %v\n%s\ntrustd:\n%s", err, out, p.stderr)
	}
	// The documented answers, in order.
	rest := string(out)
	for _, want := range []string{
		"NOT AUTHORIZED (unknown_framework)", // asked before the first write: at index 0
		"exit 3",                             // trustctl trust's exit code for a no
		"accepted createFramework",
		"accepted accredit",
		"AUTHORIZED (active)",
		"AUTHORIZED (active)",           // the same answer, with --proof
		"VERIFIED: AUTHORIZED (active)", // checked offline by trustctl verify
		"accepted publishStatusList",
		"accepted publishStatusList",
		"entry 42: status 1 (revocation, NOT valid)",
		"eyJ",
		"accepted revoke",
		"NOT AUTHORIZED (chain_broken)",
		"exit 3",
		"AUTHORIZED (active) at 2024-06-01T00:00:00Z",
		`"authorized":true,"reason":"active"`,
		`"time_requested":"2024-06-01T00:00:00Z"`,
		`"authorized":true,"reason":"active"`,
	} {
		i := strings.Index(rest, want)
		if i < 0 {
			t.Fatalf("tour output lacks %q (in order):\n%s", want, out)
		}
		rest = rest[i+len(want):]
	}

	// Issuers hand out random unused indexes for new credentials.
	alloc := exec.Command(bin+"/trustctl", "--server", p.url, "status", "allocate", "--key", "college.jwk", "--list", "2024", "--count", "3")
	alloc.Dir = dir
	got, err := alloc.Output()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	idx := strings.Fields(string(got))
	if len(idx) != 3 || idx[0] == idx[1] || idx[1] == idx[2] || slices.Contains(idx, "42") {
		t.Fatalf("allocate handed out %q", got)
	}
	show := exec.Command(bin+"/trustctl", "--server", p.url, "status", "show", "--key", "college.jwk", "--list", "2024")
	show.Dir = dir
	if got, err := show.Output(); err != nil || !strings.Contains(string(got), "131072 entries of 1 bits, 1 set") {
		t.Fatalf("show: %v\n%s", err, got)
	}

	// trustctl fails with a clear message and a non-zero exit.
	bad := exec.Command(bin+"/trustctl", "--server", p.url, "revoke", "bafkreinotanaccreditation", "--key", "qa.jwk")
	bad.Dir = dir
	msg, err := bad.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "422 invalid") || !strings.Contains(string(msg), "does not exist") {
		t.Fatalf("revoking an unknown accreditation: %v\n%s", err, msg)
	}
	// A missing status list: the W3C code once, then what is missing, with
	// no Go package prefixes.
	missing := exec.Command(bin+"/trustctl", "--server", p.url, "status", "check", "--issuer", "did:example:nobody", "--list", "l1", "3")
	missing.Dir = dir
	msg, err = missing.CombinedOutput()
	if want := `trustctl: 404 STATUS_RETRIEVAL_ERROR: not found: no status list "l1" of did:example:nobody`; err == nil || strings.TrimSpace(string(msg)) != want {
		t.Fatalf("checking a missing list: %v\n%s\nwant %s", err, msg, want)
	}
	// The node line names both indexes: raft's (which counts its own
	// entries) and the registry's. The tour's last log entry is a registry
	// write, applied long before this runs, so here they are the same.
	node := exec.Command(bin+"/trustctl", "--server", p.url, "node")
	got, err = node.Output()
	if f := strings.Fields(string(got)); err != nil || len(f) != 14 || f[9] != "applied" || f[11] != "registry" || f[12] != "index" || f[10] != f[13] {
		t.Fatalf("trustctl node: %v\n%s", err, got)
	}
	p.stop(t)
}
