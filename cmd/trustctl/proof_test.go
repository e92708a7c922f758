package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/node"
	"github.com/trustreg/trustreg/registry/proof"
)

// TestTrustWritesItsProof: trustctl trust --proof FILE writes the
// answer's bundle, which trustctl verify checks against the genesis;
// --proof - writes the bundle alone to stdout.
func TestTrustWritesItsProof(t *testing.T) {
	d := startDevNode(t)
	gov, rootKey := filepath.Join(d.dir, node.DevGovernanceKey), filepath.Join(d.dir, node.DevRootAccreditorKey)
	root := strings.TrimSpace(d.must("did", rootKey))
	const fw = "https://example.org/fw"
	d.must("-q", "framework", "create", "--id", fw, "--name", "FW", "--root", root, "--key", gov)

	file := filepath.Join(t.TempDir(), "answer.proof.json")
	out := d.must("trust", "--entity", root, "--framework", fw, "--action", "accredit", "--proof", file)
	if !strings.Contains(out, "AUTHORIZED (active)") {
		t.Fatalf("trust --proof FILE printed %q", out)
	}
	genesis := filepath.Join(d.dir, node.DevGenesisFile)
	if out := d.must("verify", file, "--genesis", genesis); !strings.Contains(out, "VERIFIED: AUTHORIZED (active)") {
		t.Fatalf("verify printed %q", out)
	}

	out = d.must("trust", "--entity", root, "--framework", fw, "--action", "accredit", "--proof", "-")
	b, err := proof.ParseBundle([]byte(out))
	if err != nil {
		t.Fatalf("--proof - printed no bundle alone: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(genesis)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proof.Verify(b, raw, proof.Options{}); err != nil {
		t.Fatal(err)
	}
}
