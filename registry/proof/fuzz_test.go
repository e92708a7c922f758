package proof_test

import (
	"testing"

	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/proof/prooftest"
)

// FuzzVerify: any bytes given as a bundle, in any form (JSON, CBOR, gzip
// of either), are refused with one of Verify's reasons or verify; nothing
// panics. A bundle that parses reads back from its CBOR form as the same
// bundle (the same JSON). The seeds are honest bundles (a chain, an
// unknown entity) in every form.
func FuzzVerify(f *testing.F) {
	w := prooftest.New(f, prooftest.Options{Filler: 20})
	q := collegeQuestion()
	unknown := q
	unknown.Entity = "did:web:nobody.example"
	for _, b := range []*proof.Bundle{w.Bundle(q), w.Bundle(unknown)} {
		js, err := b.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		cb, err := b.MarshalCBOR()
		if err != nil {
			f.Fatal(err)
		}
		for _, form := range [][]byte{js, cb, proof.Compress(js), proof.Compress(cb)} {
			f.Add(form)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := proof.ParseAny(raw)
		if err == nil {
			mustRoundTrip(t, b)
			_, err = proof.Verify(b, w.Genesis, proof.Options{Now: w.Now})
		}
		if err != nil && proof.ReasonOf(err) == "" {
			t.Fatalf("refused without a reason: %v", err)
		}
	})
}

// mustRoundTrip checks that a parsed bundle's CBOR form reads back as the
// same bundle, and its JSON form too.
func mustRoundTrip(t *testing.T, b *proof.Bundle) {
	t.Helper()
	js, err := b.Marshal()
	if err != nil {
		t.Fatalf("a parsed bundle's JSON: %v", err)
	}
	cb, err := b.MarshalCBOR()
	if err != nil {
		t.Fatalf("a parsed bundle's CBOR: %v", err)
	}
	for name, parse := range map[string]func() (*proof.Bundle, error){
		"JSON": func() (*proof.Bundle, error) { return proof.ParseBundle(js) },
		"CBOR": func() (*proof.Bundle, error) { return proof.ParseBundleCBOR(cb) },
	} {
		again, err := parse()
		if err != nil {
			t.Fatalf("a parsed bundle's %s form does not parse: %v", name, err)
		}
		mustSameJSON(t, again, b)
	}
}
