package proof_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/proof/prooftest"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// jwsSig is one signature of a JWS JSON serialization: its protected
// header and signature, base64url.
type jwsSig struct{ protected, signature string }

// resign returns compact's payload in the JWS JSON serialization with
// sigs as its signatures.
func resign(t *testing.T, compact []byte, sigs []jwsSig) []byte {
	t.Helper()
	parts := strings.Split(string(compact), ".")
	list := make([]any, 0, len(sigs))
	for _, s := range sigs {
		list = append(list, map[string]any{"protected": s.protected, "signature": s.signature})
	}
	out, err := json.Marshal(map[string]any{"payload": parts[1], "signatures": list})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := record.ParseOperation(out); err != nil {
		t.Fatalf("the re-signed change does not parse: %v", err)
	}
	return out
}

// own is compact's own signature; bad the same header with its signature
// altered; stranger a signature by a key outside the governance.
func own(compact []byte) jwsSig {
	p := strings.Split(string(compact), ".")
	return jwsSig{p[0], p[2]}
}

func bad(compact []byte, i int) jwsSig {
	s := own(compact)
	raw, _ := base64.RawURLEncoding.DecodeString(s.signature)
	raw[i%len(raw)] ^= 0xff
	return jwsSig{s.protected, base64.RawURLEncoding.EncodeToString(raw)}
}

func stranger(compact []byte, i int) jwsSig {
	h := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"alg":"EdDSA","kid":"did:web:stranger-%d.example#key-1"}`, i))
	return jwsSig{h, own(compact).signature}
}

// TestVerifyCostOfHostileChanges: a bundle carrying the most cosigner
// changes a bundle may (64), each signed 31 times, costs a verifier at
// most one governance signature verification per member per change, and
// none while something that needs no signature verification fails (the
// note's lines by the set in force, a change's leaf in the log). Each
// hostile bundle fails with its own reason.
func TestVerifyCostOfHostileChanges(t *testing.T) {
	s1 := prooftest.NewCosignatureSigner(t, "s1.example")
	s2 := prooftest.NewCosignatureSigner(t, "s2.example")
	sets := [][]*tlog.CosignatureSigner{{s1}, {s2}}
	const n, sigsPerChange = proof.MaxCosignerChanges, 31
	// world logs n changes, alternating between the two sets, each signed
	// as sign makes it from the honest compact change, and returns the
	// bundle over them, its note cosigned by the last set.
	world := func(t *testing.T, sign func(compact []byte) []byte) (*prooftest.World, *proof.Bundle) {
		w := prooftest.New(t, prooftest.Options{})
		jwss := make([][]byte, n)
		for i := range n {
			w.Now = w.Now.Add(time.Second) // another iat: another payload
			jwss[i] = sign(w.SignSetCosigners(1, sets[i%2]...))
		}
		last := sets[(n-1)%2]
		b := w.CommitChanges([]string{last[0].Key().String()}, 1, jwss...).RecordsBundleWithChanges(last, decide.EntityKey(prooftest.College))
		return w, b
	}
	honest := func(c []byte) []byte { return c }
	badThenGood := func(c []byte) []byte { // 30 bad signatures by the member, then its good one
		var sigs []jwsSig
		for i := range sigsPerChange - 1 {
			sigs = append(sigs, bad(c, i))
		}
		return resign(t, c, append(sigs, own(c)))
	}
	strangersThenBad := func(c []byte) []byte { // 30 strangers, then the member's bad signature
		var sigs []jwsSig
		for i := range sigsPerChange - 1 {
			sigs = append(sigs, stranger(c, i))
		}
		return resign(t, c, append(sigs, bad(c, 0)))
	}
	strangersOnly := func(c []byte) []byte {
		var sigs []jwsSig
		for i := range sigsPerChange {
			sigs = append(sigs, stranger(c, i))
		}
		return resign(t, c, sigs)
	}
	for _, tc := range []struct {
		name                    string
		sign                    func([]byte) []byte
		alter                   func(w *prooftest.World, b *proof.Bundle)
		want                    error
		governance, checkpoints int64
	}{
		// An honest bundle: one verification per change (the threshold is
		// 1), and one note.
		{"honest", honest, nil, nil, n, 1},
		{"a member signs each change 31 times", badThenGood, nil, proof.ErrMalformed, 0, 0},
		{"the member's only signature is bad", strangersThenBad, nil, proof.ErrCosignerChangeUnauthorized, 1, 0},
		{"no member signs", strangersOnly, nil, proof.ErrCosignerChangeUnauthorized, 0, 0},
		{"no line by the set in force", strangersThenBad, func(w *prooftest.World, b *proof.Bundle) {
			b.Checkpoint = w.Checkpoint(w.Now, prooftest.NewCosignatureSigner(t, "s3.example"))
		}, proof.ErrUnknownCosigner, 0, 0},
		{"cosigned by the set the last change replaced", strangersThenBad, func(w *prooftest.World, b *proof.Bundle) {
			b.Checkpoint = w.Checkpoint(w.Now, sets[n%2]...)
		}, proof.ErrCosignedByOldSet, 0, 1},
		{"a change not in the log", strangersThenBad, func(w *prooftest.World, b *proof.Bundle) {
			b.Cosigners.Changes[n-1].Inclusion = b.Cosigners.Changes[0].Inclusion
		}, proof.ErrCosignerChangeNotLogged, 0, 0},
		{"a bad cosignature", honest, func(w *prooftest.World, b *proof.Bundle) {
			i := len(b.Checkpoint) - 5 // in the signature's bytes
			c := byte('A')
			if b.Checkpoint[i] == 'A' {
				c = 'B'
			}
			b.Checkpoint = b.Checkpoint[:i] + string(c) + b.Checkpoint[i+1:]
		}, proof.ErrBadCosignature, n, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, b := world(t, tc.sign)
			if tc.alter != nil {
				tc.alter(w, b)
			}
			enc, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			g0, c0 := proof.SignatureChecks()
			_, err = proof.Verify(b, w.Genesis, proof.Options{Now: w.Now})
			g1, c1 := proof.SignatureChecks()
			t.Logf("%d-byte bundle: %v; %d governance signatures and %d notes verified", len(enc), err, g1-g0, c1-c0)
			if (tc.want == nil) != (err == nil) || !errors.Is(err, tc.want) && tc.want != nil {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
			if g1-g0 != tc.governance || c1-c0 != tc.checkpoints {
				t.Fatalf("verified %d governance signatures and %d notes, want %d and %d", g1-g0, c1-c0, tc.governance, tc.checkpoints)
			}
		})
	}
}
