package proof_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/proof/prooftest"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// A bundle carries the registry's cosigner changes as it applied them: a
// governance payload once (however encoded), and never a change to the set
// already in force. A dishonest quorum of a set that a later change
// replaced, logging its own fork that ends on its set, cannot pad the
// count of changes a verifier pins (Options.MinCosignerChanges) with
// repeats or no-ops.
func TestCosignerChangesCarriedAsTheRegistryAppliesThem(t *testing.T) {
	s1 := prooftest.NewCosignatureSigner(t, "s1.example")
	s2 := prooftest.NewCosignatureSigner(t, "s2.example")
	set1 := []string{s1.Key().String()}
	// asJSON is a compact JWS in the JWS JSON serialization: the same
	// signed payload under another CID.
	asJSON := func(t *testing.T, compact []byte) []byte {
		parts := strings.Split(string(compact), ".")
		out, _ := json.Marshal(map[string]any{"payload": parts[1], "signatures": []any{map[string]any{"protected": parts[0], "signature": parts[2]}}})
		if _, err := record.ParseOperation(out); err != nil || record.CIDOf(out) == record.CIDOf(compact) {
			t.Fatalf("the JSON form of the change: %v", err)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		changes func(t *testing.T, w *prooftest.World) [][]byte
		ok      bool
	}{
		{"one honest change", func(t *testing.T, w *prooftest.World) [][]byte {
			return [][]byte{w.SignSetCosigners(1, s1)}
		}, true},
		{"a change whose JSON serialization holds a number beyond range", func(t *testing.T, w *prooftest.World) [][]byte {
			// Accepted below feature level 9 (an envelope member nothing
			// reads), it is read back as the registry accepted it.
			parts := strings.Split(string(w.SignSetCosigners(1, s1)), ".")
			out, _ := json.Marshal(map[string]any{"x": json.RawMessage("1e400"), "payload": parts[1], "signatures": []any{map[string]any{"protected": parts[0], "signature": parts[2]}}})
			if _, err := record.ParseOperation(out); err == nil {
				t.Fatal("ParseOperation took the number")
			}
			return [][]byte{out}
		}, true},
		{"the same change twice", func(t *testing.T, w *prooftest.World) [][]byte {
			c1 := w.SignSetCosigners(1, s1)
			return [][]byte{c1, c1}
		}, false},
		{"a change again in another encoding", func(t *testing.T, w *prooftest.World) [][]byte {
			c1 := w.SignSetCosigners(1, s1)
			return [][]byte{c1, w.SignSetCosigners(1, s2), asJSON(t, c1)}
		}, false},
		{"a change to the set already in force", func(t *testing.T, w *prooftest.World) [][]byte {
			c1 := w.SignSetCosigners(1, s1)
			w.Now = w.Now.Add(time.Second) // another iat: another payload
			return [][]byte{c1, w.SignSetCosigners(1, s1)}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := prooftest.New(t, prooftest.Options{})
			changes := tc.changes(t, w)
			b := w.CommitChanges(set1, 1, changes...).RecordsBundleWithChanges([]*tlog.CosignatureSigner{s1}, decide.EntityKey(prooftest.College))
			v, err := proof.Verify(b, w.Genesis, proof.Options{Now: w.Now, MinCosignerChanges: len(changes)})
			t.Log(err)
			switch {
			case tc.ok && (err != nil || v.CosignerChanges != len(changes)):
				t.Fatalf("%+v, %v", v, err)
			case !tc.ok && !errors.Is(err, proof.ErrMalformed):
				t.Fatalf("verified as %d changes: %v, want ErrMalformed", len(changes), err)
			}
		})
	}
}
