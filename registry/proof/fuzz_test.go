package proof_test

import (
	"testing"

	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/proof/prooftest"
)

// FuzzVerify: any bytes given as a bundle are refused with one of
// Verify's reasons or verify; nothing panics. The seeds are honest
// bundles (a chain, an unknown entity, a recognition).
func FuzzVerify(f *testing.F) {
	w := prooftest.New(f, prooftest.Options{Filler: 20})
	q := collegeQuestion()
	unknown := q
	unknown.Entity = "did:web:nobody.example"
	for _, b := range []*proof.Bundle{w.Bundle(q), w.Bundle(unknown)} {
		raw, err := b.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := proof.ParseBundle(raw)
		if err == nil {
			_, err = proof.Verify(b, w.Genesis, proof.Options{Now: w.Now})
		}
		if err != nil && proof.ReasonOf(err) == "" {
			t.Fatalf("refused without a reason: %v", err)
		}
	})
}
