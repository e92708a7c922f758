package tlog

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"
)

// Fuzz targets for the decoders of outside input not fuzzed beside their
// tests (leaf_test.go, checkpoint_test.go, witness_test.go, tiles_test.go).

// FuzzVerify: Verify never panics, and what it accepts is a note whose text is
// the accepted checkpoint, cosigned by at least a quorum.
func FuzzVerify(f *testing.F) {
	origin := OriginPrefix + "fuzz"
	var keys []CosignerKey
	var signers []*CosignatureSigner
	for _, name := range []string{"a.example", "b.example", "c.example"} {
		s := mustSignerF(f, name)
		signers = append(signers, s)
		keys = append(keys, s.Key())
	}
	v, err := NewVerifier(origin, keys, 2)
	if err != nil {
		f.Fatal(err)
	}
	cp := Checkpoint{Origin: origin, Size: 1, Hash: [HashSize]byte(LeafHash(nil))}
	var sigs []Cosignature
	for _, s := range signers {
		c, err := s.Sign(cp, time.Unix(1_800_000_000, 0))
		if err != nil {
			f.Fatal(err)
		}
		sigs = append(sigs, c)
	}
	f.Add(SignedNote(cp, sigs...))
	f.Add(SignedNote(cp, sigs[0]))
	f.Add([]byte(c2spCheckpointText + "\n" + c2spCheckpointSig))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := v.Verify(b)
		if err != nil {
			return
		}
		if len(got.Cosignatures) < v.Quorum() {
			t.Fatalf("accepted %d cosignatures, quorum %d", len(got.Cosignatures), v.Quorum())
		}
		if !bytes.HasPrefix(b, append(got.Checkpoint.Marshal(), '\n')) {
			t.Fatalf("accepted checkpoint %+v is not the note's text", got.Checkpoint)
		}
	})
}

// FuzzParseSignatureLines: what parses encodes back to the same bytes.
func FuzzParseSignatureLines(f *testing.F) {
	f.Add([]byte(c2spAddCheckpointResponse))
	f.Add([]byte(c2spCosignatureLine))
	f.Fuzz(func(t *testing.T, b []byte) {
		sigs, err := ParseSignatureLines(b)
		if err != nil {
			return
		}
		if got := EncodeSignatureLines(sigs); !bytes.Equal(got, b) {
			t.Fatalf("ParseSignatureLines accepted %q, which encodes back as %q", b, got)
		}
		for _, s := range sigs {
			_, _ = CosignatureFromSignature(s) // must not panic
		}
	})
}

// FuzzParseCosignerKey: what parses prints back to the same vkey.
func FuzzParseCosignerKey(f *testing.F) {
	f.Add(mustSignerF(f, "a.example").Key().String())
	f.Add(c2spNoteVKey)
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseCosignerKey(s)
		if err != nil {
			return
		}
		if k.String() != s {
			t.Fatalf("ParseCosignerKey(%q) prints back as %q", s, k.String())
		}
	})
}

// FuzzParseBundle: what parses encodes back to the same bytes.
func FuzzParseBundle(f *testing.F) {
	b, _ := EncodeBundle([][]byte{[]byte("ab"), nil, []byte("c")})
	f.Add(b, 3)
	f.Fuzz(func(t *testing.T, data []byte, width int) {
		entries, err := ParseBundle(data, width)
		if err != nil {
			return
		}
		again, err := EncodeBundle(entries)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("ParseBundle accepted %x; encoding back: %x, %v", data, again, err)
		}
	})
}

func mustSignerF(f *testing.F, name string) *CosignatureSigner {
	f.Helper()
	seed := LeafHash([]byte(name))
	s, err := NewCosignatureSigner(name, ed25519.NewKeyFromSeed(seed))
	if err != nil {
		f.Fatal(err)
	}
	return s
}
