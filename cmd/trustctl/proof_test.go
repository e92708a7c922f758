package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/node"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/proof"
)

// TestTrustWritesItsProof: trustctl trust --proof FILE writes the
// answer's bundle, which trustctl verify checks against the genesis;
// --proof - writes the bundle alone to stdout.
func TestTrustWritesItsProof(t *testing.T) {
	f := startDevFramework(t)
	d, root, fw := f.devNode, f.root, devFW

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

// TestVerifyPrintsStatusListBundle: trustctl verify checks a status-list
// record's bundle (?proof=true) and prints the list's version with the
// issuer's authorization at its time; a bundle for a past time
// (&timestamp=) proves the version then in force and its successor.
func TestVerifyPrintsStatusListBundle(t *testing.T) {
	d := startDevNode(t)
	gov, rootKey := filepath.Join(d.dir, node.DevGovernanceKey), filepath.Join(d.dir, node.DevRootAccreditorKey)
	root := strings.TrimSpace(d.must("did", rootKey))
	const fw, res = "https://example.org/fw", "https://example.org/Nursing"
	d.must("-q", "framework", "create", "--id", fw, "--name", "FW", "--root", root, "--key", gov)
	collegeKey := filepath.Join(t.TempDir(), "college.key")
	d.must("keygen", "--out", collegeKey)
	college := strings.TrimSpace(d.must("did", collegeKey))
	d.must("-q", "accredit", "--key", rootKey, "--framework", fw, "--subject", college, "--action", "issue", "--resource", res)
	d.must("-q", "status", "create", "--key", collegeKey, "--list", "main")

	u := d.n.GatewayURL() + "/v1/status-lists/" + url.PathEscape(college) + "/main/record?proof=true&consistency=linearizable"
	genesis := filepath.Join(d.dir, node.DevGenesisFile)
	out := d.must("verify", fetchProofFile(t, u), "--genesis", genesis)
	for _, want := range []string{"VERIFIED: status list main of " + college, "the issuer at the version's time: AUTHORIZED (active): " + college + " for issue some resource (none named) (no jurisdiction named) under " + fw} {
		if !strings.Contains(out, want) {
			t.Fatalf("verify printed %q, want %q in it", out, want)
		}
	}

	// A second version; the first was in force between the two.
	d.must("-q", "status", "revoke", "--key", collegeKey, "--list", "main", "5")
	sv := d.n.State.View()
	vs, _, err := sv.StatusListHistory(college, "main", registry.Page{Limit: 10})
	sv.Close()
	if err != nil || len(vs) != 2 {
		t.Fatalf("history: %d versions, %v", len(vs), err)
	}
	at := vs[0].Time.Add(vs[1].Time.Sub(vs[0].Time) / 2)
	out = d.must("verify", fetchProofFile(t, u+"&timestamp="+url.QueryEscape(at.Format(time.RFC3339Nano))), "--genesis", genesis)
	for _, want := range []string{
		"VERIFIED: status list main of " + college + ", version " + vs[0].CID,
		"the version in force at " + at.Format(time.RFC3339Nano) + ": superseded by version " + vs[1].CID,
		"the issuer at that time: AUTHORIZED (active): " + college + " for issue some resource (none named) (no jurisdiction named) under " + fw + " at " + at.Format(time.RFC3339),
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("verify printed %q, want %q in it", out, want)
		}
	}
}

// fetchProofFile gets a proven answer from u (bounded, until the node has
// a checkpoint of its state) and writes its bundle to a file it returns.
func fetchProofFile(t *testing.T, u string) string {
	t.Helper()
	var answer struct {
		Proof json.RawMessage `json:"proof"`
	}
	deadline := time.Now().Add(30 * time.Second)
	poll := time.NewTicker(100 * time.Millisecond) // Retry-After says 1 s; ask sooner
	defer poll.Stop()
	for len(answer.Proof) == 0 {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			if err := json.Unmarshal(body, &answer); err != nil || len(answer.Proof) == 0 {
				t.Fatalf("no proof (%v): %s", err, body)
			}
		case resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline):
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		default:
			<-poll.C
		}
	}
	file := filepath.Join(t.TempDir(), "list.proof.json")
	if err := os.WriteFile(file, answer.Proof, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}
