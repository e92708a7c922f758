package smt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// provenMap returns a map of n random keys (some sharing long prefixes), its
// root, a present key with its value and proof, and absent keys whose proofs
// end at an empty subtree and at another key's leaf.
type provenMap struct {
	m                     *Map
	ref                   refTree
	root                  Hash
	present               Key
	value                 Value
	absentEmpty, absentAt Key
}

func mustProvenMap(t testing.TB, n int) provenMap {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 12))
	pm := provenMap{ref: refTree{}}
	pm.m, _ = mustNewMap(t)
	pm.root = mustUpdate(t, pm.m, randChanges(r, pm.ref, n))
	keys := pm.ref.keys()
	pm.present = keys[len(keys)/2]
	pm.value = pm.ref[pm.present]
	for range 1000 {
		k := randKey(r)
		if _, ok := pm.ref[k]; ok {
			continue
		}
		switch pm.ref.proof(k).Kind {
		case AbsentEmpty:
			pm.absentEmpty = k
		case AbsentOther:
			pm.absentAt = k
		}
	}
	if pm.absentEmpty == (Key{}) || pm.absentAt == (Key{}) {
		t.Fatal("no absent key of each kind found")
	}
	return pm
}

func mustProof(t testing.TB, m *Map, k Key) []byte {
	t.Helper()
	p, err := m.Prove(k)
	if err != nil {
		t.Fatalf("Prove: %v", err)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	return b
}

// Every single-byte change to a proof, and any other value, key or root, is
// refused.
func TestTamperedProofRefused(t *testing.T) {
	pm := mustProvenMap(t, 300)
	cases := []struct {
		name  string
		key   Key
		value *Value
	}{
		{"present", pm.present, &pm.value},
		{"absent at empty", pm.absentEmpty, nil},
		{"absent at another leaf", pm.absentAt, nil},
	}
	verify := func(root Hash, k Key, v *Value, b []byte) error {
		if v == nil {
			return VerifyNonInclusion(root, k, b)
		}
		return VerifyInclusion(root, k, *v, b)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mustProof(t, pm.m, tc.key)
			if err := verify(pm.root, tc.key, tc.value, b); err != nil {
				t.Fatalf("untampered proof: %v", err)
			}
			for i := range b {
				for _, flip := range []byte{0x01, 0x80} {
					bad := bytes.Clone(b)
					bad[i] ^= flip
					if err := verify(pm.root, tc.key, tc.value, bad); err == nil {
						t.Fatalf("proof with byte %d ^ 0x%02x verified", i, flip)
					}
				}
			}
			// An absence proof holds for every key under the same path, so
			// the other key parts from this one at bit 0; a presence proof
			// holds for no other key.
			otherKey := tc.key
			otherKey[0] ^= 0x80
			if err := verify(pm.root, otherKey, tc.value, b); err == nil {
				t.Error("proof verified for a key on another path")
			}
			if tc.value != nil {
				otherKey = tc.key
				otherKey[31] ^= 1
				if err := verify(pm.root, otherKey, tc.value, b); err == nil {
					t.Error("presence proof verified for another key")
				}
			}
			otherRoot := pm.root
			otherRoot[0] ^= 1
			if err := verify(otherRoot, tc.key, tc.value, b); !errors.Is(err, ErrProofMismatch) {
				t.Errorf("proof against another root: %v, want ErrProofMismatch", err)
			}
			if tc.value != nil {
				v := *tc.value
				v[5] ^= 4
				if err := verify(pm.root, tc.key, &v, b); !errors.Is(err, ErrProofMismatch) {
					t.Errorf("proof with another value: %v, want ErrProofMismatch", err)
				}
			}
		})
	}
}

// A proof of absence cannot be read as one of presence, or the other way, and
// no rewriting of one into the other verifies.
func TestAbsenceAndPresenceCannotBeSwapped(t *testing.T) {
	pm := mustProvenMap(t, 300)
	present := mustProof(t, pm.m, pm.present)
	if err := VerifyNonInclusion(pm.root, pm.present, present); !errors.Is(err, ErrWrongKind) {
		t.Errorf("presence proof verified as absence: %v, want ErrWrongKind", err)
	}
	for _, k := range []Key{pm.absentEmpty, pm.absentAt} {
		absent := mustProof(t, pm.m, k)
		for _, v := range []Value{{}, pm.value} {
			if err := VerifyInclusion(pm.root, k, v, absent); !errors.Is(err, ErrWrongKind) {
				t.Errorf("absence proof verified as presence: %v, want ErrWrongKind", err)
			}
		}
		// Relabelled as presence: the path's end no longer hashes to the root.
		relabel := bytes.Clone(absent)
		relabel[0] = byte(Present)
		if k == pm.absentEmpty {
			if err := VerifyInclusion(pm.root, k, Value{}, relabel); err == nil {
				t.Error("an empty-subtree proof relabelled as presence verified")
			}
		} else {
			p, err := ParseProof(absent)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(pm.root, k, p.OtherValue, relabel[:len(relabel)-2*Size]); err == nil {
				t.Error("another leaf's proof relabelled as presence of the key verified")
			}
		}
	}
	// A presence proof rewritten to claim the key's own leaf is "another" key's.
	p, err := pm.m.Prove(pm.present)
	if err != nil {
		t.Fatal(err)
	}
	p.Kind, p.OtherKey, p.OtherValue = AbsentOther, pm.present, pm.value
	if err := p.Verify(pm.root, pm.present, nil); !errors.Is(err, ErrProofMismatch) {
		t.Errorf("the key's own leaf offered as another key's: %v, want ErrProofMismatch", err)
	}
	// Another key's leaf offered from off the key's path.
	p, err = pm.m.Prove(pm.absentAt)
	if err != nil {
		t.Fatal(err)
	}
	k := pm.absentAt
	k[0] ^= 0x80
	if err := p.Verify(pm.root, k, nil); !errors.Is(err, ErrProofMismatch) {
		t.Errorf("a leaf off the key's path: %v, want ErrProofMismatch", err)
	}
	// The same over a root no map makes, where only the path check stops it:
	// a key whose bit 0 is 1 sits as the root's left child.
	off := Key{0x80, 1}
	forged := &Proof{Kind: AbsentOther, Siblings: []Hash{{2}}, OtherKey: off, OtherValue: Value{3}}
	root := InnerHash(LeafHash(off, Value{3}), Hash{2})
	if err := forged.Verify(root, Key{0x00, 1}, nil); !errors.Is(err, ErrProofMismatch) {
		t.Errorf("a leaf off the key's path under a forged root: %v, want ErrProofMismatch", err)
	}
	forged.OtherKey = Key{0x00, 1}
	if err := forged.Verify(InnerHash(LeafHash(forged.OtherKey, Value{3}), Hash{2}), Key{0x00, 1}, nil); !errors.Is(err, ErrProofMismatch) {
		t.Errorf("the key's own leaf as another's: %v, want ErrProofMismatch", err)
	}
}

func TestParseProofStrict(t *testing.T) {
	pm := mustProvenMap(t, 300)
	good := mustProof(t, pm.m, pm.absentAt)
	depth := int(binary.BigEndian.Uint16(good[1:]))
	header := func(kind byte, depth int) []byte {
		return binary.BigEndian.AppendUint16([]byte{kind}, uint16(depth))
	}
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short header", []byte{byte(Present), 0}},
		{"kind 0", append([]byte{0}, good[1:]...)},
		{"kind 4", append([]byte{4}, good[1:]...)},
		{"depth over 256", header(byte(AbsentEmpty), 257)},
		{"other leaf at depth 256", append(append(header(byte(AbsentOther), 256), make([]byte, 32)...), make([]byte, 64)...)},
		{"short bitmap", header(byte(AbsentEmpty), 9)[:4]},
		{"padding bit set", append(append(header(byte(AbsentEmpty), 3), 0x10), bytes.Repeat([]byte{1}, 32)...)},
		{"sibling missing", append(header(byte(AbsentEmpty), 1), 0x80)},
		{"sibling short", append(append(header(byte(AbsentEmpty), 1), 0x80), make([]byte, 31)...)},
		{"empty sibling written out", append(append(header(byte(AbsentEmpty), 1), 0x80), make([]byte, 32)...)},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"other leaf cut", good[:len(good)-1]},
		{"other leaf on a presence proof", append(header(byte(Present), 0), make([]byte, 64)...)},
		{"depth too small for the siblings", append(header(byte(AbsentOther), depth-1), good[3:]...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseProof(tc.b); !errors.Is(err, ErrMalformedProof) {
				t.Errorf("ParseProof(%x): %v, want ErrMalformedProof", tc.b, err)
			}
			if err := VerifyNonInclusion(pm.root, pm.absentAt, tc.b); !errors.Is(err, ErrMalformedProof) {
				t.Errorf("VerifyNonInclusion: %v, want ErrMalformedProof", err)
			}
		})
	}
	if _, err := (&Proof{Kind: 9}).MarshalBinary(); !errors.Is(err, ErrMalformedProof) {
		t.Errorf("MarshalBinary of kind 9: %v, want ErrMalformedProof", err)
	}
	if _, err := (&Proof{Kind: Present, Siblings: make([]Hash, 257)}).MarshalBinary(); !errors.Is(err, ErrMalformedProof) {
		t.Errorf("MarshalBinary of 257 siblings: %v, want ErrMalformedProof", err)
	}
}

func TestEmptyMapProof(t *testing.T) {
	m, _ := mustNewMap(t)
	b := mustProof(t, m, Key{7})
	if want := []byte{byte(AbsentEmpty), 0, 0}; !bytes.Equal(b, want) {
		t.Fatalf("empty map's proof %x, want %x", b, want)
	}
	if err := VerifyNonInclusion(Empty, Key{7}, b); err != nil {
		t.Fatalf("empty map's proof: %v", err)
	}
	if err := VerifyNonInclusion(Hash{1}, Key{7}, b); !errors.Is(err, ErrProofMismatch) {
		t.Fatalf("empty map's proof against another root: %v, want ErrProofMismatch", err)
	}
}

// FuzzParseProof: every input either fails to parse with ErrMalformedProof or
// parses to a proof whose encoding is the input (one encoding per proof), and
// verification of whatever parsed never panics.
func FuzzParseProof(f *testing.F) {
	pm := mustProvenMap(f, 200)
	for _, k := range []Key{pm.present, pm.absentEmpty, pm.absentAt} {
		f.Add(mustProof(f, pm.m, k))
	}
	f.Add([]byte{byte(AbsentEmpty), 0, 0})
	f.Add([]byte{byte(Present), 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProof(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedProof) {
				t.Fatalf("ParseProof: %v, not ErrMalformedProof", err)
			}
			return
		}
		enc, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a parsed proof: %v", err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("parsed %x, encodes back to %x", b, enc)
		}
		_ = p.Verify(pm.root, pm.present, &pm.value)
		_ = p.Verify(pm.root, pm.absentAt, nil)
	})
}
