package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/node/cosign"
	"github.com/trustreg/trustreg/registry/tlog"
)

// TestIdentityPrintsCosignerKey: `trustd identity --cosigner` prints the
// vkey of the node's own libp2p key, named by its peer id (or --name),
// which is what an operator lists in the genesis; plain `trustd identity`
// still prints the peer id alone.
func TestIdentityPrintsCosignerKey(t *testing.T) {
	dir := t.TempDir()
	out := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), append([]string{"identity", "--data-dir", dir}, args...), nil, &stdout, &stderr); err != nil {
			t.Fatalf("identity %v: %v\n%s", args, err, stderr.String())
		}
		return strings.TrimSpace(stdout.String())
	}
	id := out()
	for _, tc := range []struct {
		args []string
		name string
	}{{[]string{"--cosigner"}, id}, {[]string{"--cosigner", "--name", "qa-agency"}, "qa-agency"}} {
		k, err := tlog.ParseCosignerKey(out(tc.args...))
		if err != nil {
			t.Fatalf("identity %v: %v", tc.args, err)
		}
		p, err := cosign.PeerOf(k)
		if err != nil {
			t.Fatal(err)
		}
		if k.Name != tc.name || p.String() != id {
			t.Fatalf("identity %v: key %s of peer %s, want name %s and peer %s", tc.args, k.Name, p, tc.name, id)
		}
	}
}
