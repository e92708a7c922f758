package main

import (
	"crypto/ed25519"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/node"
	"github.com/trustreg/trustreg/node/cosign"
	"github.com/trustreg/trustreg/registry/tlog"
)

// TestCosignersSetIsFollowedByVerify: trustctl cosigners set, signed by a
// governance member, changes the cosigner set (the node's key under
// another name beside a key no node runs, quorum 1); signed by anyone else
// it is refused. Proofs after the change verify offline from the genesis
// alone, following the change, and --min-cosigner-changes refuses a
// bundle that follows fewer.
func TestCosignersSetIsFollowedByVerify(t *testing.T) {
	f := startDevFramework(t)
	d, gov, root, fw := f.devNode, f.gov, f.root, devFW

	renamed, spare := d.newCosignerKeys(t)
	stranger := filepath.Join(t.TempDir(), "stranger.key")
	d.must("keygen", "--out", stranger)
	set := []string{"cosigners", "set", "--cosigner", renamed.String(), "--cosigner", spare.String(), "--quorum", "1"}
	if out, errw, err := d.ctl(append(set, "--key", stranger)...); err == nil || !strings.Contains(out+errw+err.Error(), "governance") {
		t.Fatalf("cosigners set by a stranger: %v\n%s%s", err, out, errw)
	}
	if _, _, err := d.ctl("cosigners", "set", "--cosigner", renamed.String(), "--quorum", "2", "--key", gov); err == nil {
		t.Fatal("a quorum above the cosigners was sent")
	}
	if out := d.must(append(set, "--key", gov)...); !strings.Contains(out, "accepted setCosigners") {
		t.Fatalf("cosigners set printed %q", out)
	}

	genesis := filepath.Join(d.dir, node.DevGenesisFile)
	file := filepath.Join(t.TempDir(), "answer.proof.json")
	deadline := time.Now().Add(30 * time.Second)
	poll := time.NewTicker(100 * time.Millisecond) // a checkpoint follows a write within about a second
	defer poll.Stop()
	for {
		d.must("trust", "--entity", root, "--framework", fw, "--action", "accredit", "--proof", file)
		out := d.must("verify", file, "--genesis", genesis)
		if strings.Contains(out, "cosigned by 1 of the cosigners 1 governance changes from the genesis named (quorum 1): renamed.dev") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no proof following the change within 30 s; the last: %q", out)
		}
		<-poll.C
	}
	out, _, err := d.ctl("verify", file, "--genesis", genesis, "--min-cosigner-changes", "2")
	if err == nil || !strings.Contains(out, "NOT VERIFIED") || !strings.Contains(out, "fewer cosigner changes") {
		t.Fatalf("verify --min-cosigner-changes 2: %v\n%s", err, out)
	}
}

// newCosignerKeys returns the dev node's own key as a cosigner renamed
// "renamed.dev", and "spare.dev", a key no node runs: a new cosigner set
// the tests name through setCosigners.
func (d devNode) newCosignerKeys(t *testing.T) (renamed, spare tlog.CosignerKey) {
	t.Helper()
	id, err := consensus.LoadOrCreateIdentity(filepath.Join(d.dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	if renamed, err = cosign.CosignerKeyOf("renamed.dev", id); err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if spare, err = tlog.NewCosignerKey("spare.dev", pub); err != nil {
		t.Fatal(err)
	}
	return renamed, spare
}
