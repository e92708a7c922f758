package node

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// cosignerSigner is the cosignature signer of node i's identity key
// under name.
func cosignerSigner(t *testing.T, c *testCluster, i int, name string) *tlog.CosignatureSigner {
	t.Helper()
	id, err := consensus.LoadOrCreateIdentity(filepath.Join(c.cfgs[i].DataDir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := id.Raw()
	if err != nil {
		t.Fatal(err)
	}
	s, err := tlog.NewCosignatureSigner(name, ed25519.PrivateKey(raw))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// provenWithChanges asks node i for the chain's proof until the bundle
// follows changes cosigner changes, and returns it with what Verify gave.
func provenWithChanges(t *testing.T, c *testCluster, i int, q url.Values, genesis []byte, changes int) (*proof.Bundle, *proof.Verified) {
	t.Helper()
	var b *proof.Bundle
	var v *proof.Verified
	waitFor(t, fmt.Sprintf("a bundle following %d cosigner changes", changes), 30*time.Second, func() bool {
		a, _ := getProven(t, trustURL(c.node(i).GatewayURL(), q))
		b, v = mustVerify(t, a, genesis)
		return v.CosignerChanges == changes
	})
	return b, v
}

// TestClusterCosignerSetChanges: governance changes the cosigner set of a
// 3-node cluster twice through the log. Checkpoints after each change are
// cosigned by the new set (a node whose key left stops cosigning; one
// whose key joined, under a new name, starts without a restart), and
// proofs verify offline from the genesis alone. A change without the
// governance threshold is refused, and each way of tampering with a
// bundle's cosigner evidence fails with its own reason.
func TestClusterCosignerSetChanges(t *testing.T) {
	c, genesis, _ := mustNewCosigningCluster(t, 3, 0) // cosigners node-0..2, quorum 3
	leader := c.waitLeader()
	submit := func(jws []byte) *record.Result { return c.mustSubmit(leader, jws) }
	ch := mustProofChain(t, submit, c.gov, mustKey(t))
	q := url.Values{"entity": {ch.college.DID}, "framework": {ch.fw}, "resource": {ch.nursing}, "consistency": {"linearizable"}}
	if _, v := provenWithChanges(t, c, leader, q, genesis, 0); len(v.Cosigners) != 3 {
		t.Fatalf("before any change: cosigned by %q", v.Cosigners)
	}
	vkey := func(i int, name string) string { return cosignerSigner(t, c, i, name).Key().String() }

	// Without a governance member's signature: refused.
	stranger := mustKey(t)
	setA := []string{vkey(1, "node-1"), vkey(2, "node-2b")}
	if res, err := c.submit(leader, signed(t, stranger, map[string]any{"op": record.OpSetCosigners, "cosigners": setA})); err != nil || res.Accepted || res.Code != record.CodeNotAuthorized {
		t.Fatalf("setCosigners by a non-member: %+v, %v", res, err)
	}

	// Change 1: node 0 leaves, node 2 is renamed; quorum 2.
	change1 := c.govOp(record.OpSetCosigners, map[string]any{"cosigners": setA, "quorum": 2})
	c.mustSubmit(leader, change1)
	submit(signed(t, stranger, map[string]any{"op": record.OpRegisterEntity, "id": stranger.DID, "name": "After the change"}))
	b1, v1 := provenWithChanges(t, c, leader, q, genesis, 1)
	if !slices.Equal(v1.Cosigners, []string{"node-1", "node-2b"}) || v1.Quorum != 2 || !v1.Decision.Authorized {
		t.Fatalf("after change 1: cosigned by %q, quorum %d, %+v", v1.Cosigners, v1.Quorum, v1.Decision)
	}

	// Change 2: node 0 joins again, as node-0c.
	setB := []string{vkey(0, "node-0c"), vkey(1, "node-1"), vkey(2, "node-2b")}
	change2 := c.govOp(record.OpSetCosigners, map[string]any{"cosigners": setB})
	c.mustSubmit(leader, change2)
	other := mustKey(t)
	submit(signed(t, other, map[string]any{"op": record.OpRegisterEntity, "id": other.DID, "name": "After the second change"}))
	b2, v2 := provenWithChanges(t, c, (leader+1)%3, q, genesis, 2)
	waitFor(t, "node-0c to cosign", 30*time.Second, func() bool {
		b2, v2 = provenWithChanges(t, c, (leader+1)%3, q, genesis, 2)
		return len(v2.Cosigners) == 3
	})
	if !slices.Equal(v2.Cosigners, []string{"node-0c", "node-1", "node-2b"}) || len(b2.Cosigners.Changes) != 2 {
		t.Fatalf("after change 2: cosigned by %q, %d changes", v2.Cosigners, len(b2.Cosigners.Changes))
	}

	// The compact form (CBOR, gzip'd) carries the changes too.
	cb, err := b2.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	bare := *b2
	bare.Cosigners = nil
	cbBare, err := bare.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("two cosigner changes add %d bytes to the bundle's CBOR form (%d without them)", len(cb)-len(cbBare), len(cbBare))
	if pb, err := proof.ParseAny(cb); err != nil || pb.Cosigners == nil {
		t.Fatalf("the CBOR form: %v", err)
	} else if v, err := proof.Verify(pb, genesis, proof.Options{}); err != nil || v.CosignerChanges != 2 {
		t.Fatalf("the CBOR form verifies: %+v, %v", v, err)
	}

	attacks := []struct {
		name   string
		bundle func() *proof.Bundle
		opts   proof.Options
		want   error
	}{
		{"the evidence left out", func() *proof.Bundle { x := *b2; x.Cosigners = nil; return &x }, proof.Options{}, proof.ErrUnknownCosigner},
		{"the first change left out", func() *proof.Bundle {
			x := *b2
			x.Cosigners = &proof.Cosigners{Record: b2.Cosigners.Record, Changes: b2.Cosigners.Changes[1:]}
			return &x
		}, proof.Options{}, proof.ErrCosignerChangeOmitted},
		{"the last change left out", func() *proof.Bundle {
			x := *b2
			x.Cosigners = &proof.Cosigners{Record: b2.Cosigners.Record, Changes: b2.Cosigners.Changes[:1]}
			return &x
		}, proof.Options{}, proof.ErrCosignerChangeOmitted},
		{"a change signed by a non-member", func() *proof.Bundle {
			x := *b2
			forged := append([]proof.CosignerChange(nil), b2.Cosigners.Changes...)
			op, err := record.ParseOperation(forged[0].JWS)
			if err != nil {
				t.Fatal(err)
			}
			if forged[0].JWS, err = record.SignJSON(op.Payload, stranger); err != nil {
				t.Fatal(err)
			}
			x.Cosigners = &proof.Cosigners{Record: b2.Cosigners.Record, Changes: forged}
			return &x
		}, proof.Options{}, proof.ErrCosignerChangeUnauthorized},
		{"a change not in the log", func() *proof.Bundle {
			x := *b2
			moved := append([]proof.CosignerChange(nil), b2.Cosigners.Changes...)
			moved[1].Inclusion = moved[0].Inclusion
			x.Cosigners = &proof.Cosigners{Record: b2.Cosigners.Record, Changes: moved}
			return &x
		}, proof.Options{}, proof.ErrCosignerChangeNotLogged},
		{"cosigned by the set change 1 replaced", func() *proof.Bundle {
			x := *b1
			cp, err := tlog.ParseCheckpoint([]byte(b1.Checkpoint[:strings.Index(b1.Checkpoint, "\n\n")+1]))
			if err != nil {
				t.Fatal(err)
			}
			var sigs []tlog.Cosignature
			for i := range 3 {
				s, err := cosignerSigner(t, c, i, fmt.Sprintf("node-%d", i)).Sign(cp, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				sigs = append(sigs, s)
			}
			x.Checkpoint = string(tlog.SignedNote(cp, sigs...))
			return &x
		}, proof.Options{}, proof.ErrCosignedByOldSet},
		{"fewer changes than the verifier has seen", func() *proof.Bundle { return b1 }, proof.Options{MinCosignerChanges: 2}, proof.ErrCosignerSetBehind},
	}
	for _, a := range attacks {
		// Through JSON, as a verifier receives it.
		enc, err := json.Marshal(a.bundle())
		if err != nil {
			t.Fatal(err)
		}
		pb, err := proof.ParseBundle(enc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := proof.Verify(pb, genesis, a.opts); !errors.Is(err, a.want) {
			t.Errorf("%s: %v, want %v", a.name, err, a.want)
		}
	}
}
