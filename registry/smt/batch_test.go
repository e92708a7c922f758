package smt

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// refClaims returns the reference's claims for keys.
func refClaims(ref refTree, keys []Key) []Claim {
	cs := make([]Claim, len(keys))
	for i, k := range keys {
		v, ok := ref[k]
		cs[i] = Claim{Key: k, Value: v, Present: ok}
	}
	return cs
}

// pickKeys returns n distinct keys: present ones, absent ones on present keys'
// paths, and random absent ones.
func pickKeys(r *rand.Rand, ref refTree, n int) []Key {
	keys := ref.keys()
	seen := map[Key]bool{}
	var out []Key
	for len(out) < n {
		var k Key
		switch x := r.IntN(3); {
		case x == 0 && len(keys) > 0:
			k = keys[r.IntN(len(keys))]
		case x == 1 && len(keys) > 0:
			k = nearKey(r, keys[r.IntN(len(keys))], r.IntN(256))
		default:
			k = randKey(r)
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func TestBatchProofMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, size := range []int{0, 1, 2, 5, 400} {
		m, _ := mustNewMap(t)
		ref := refTree{}
		root := mustUpdate(t, m, randChanges(r, ref, size))
		for _, n := range []int{1, 2, 15, 60} {
			keys := pickKeys(r, ref, n)
			claims, proof, err := m.ProveBatch(keys)
			if err != nil {
				t.Fatalf("ProveBatch: %v", err)
			}
			want := refClaims(ref, keys)
			byKey := map[Key]Claim{}
			for _, c := range claims {
				byKey[c.Key] = c
			}
			for _, c := range want {
				if byKey[c.Key] != c {
					t.Fatalf("map of %d keys: claim for %x is %+v, reference %+v", size, c.Key[:4], byKey[c.Key], c)
				}
			}
			if err := VerifyBatch(root, want, proof); err != nil {
				t.Fatalf("map of %d keys, %d claims: %v", size, n, err)
			}
			if n == 1 {
				single := mustProof(t, m, keys[0])
				if len(proof) > len(single)+4 {
					t.Errorf("batch proof of one key is %d bytes, single proof %d", len(proof), len(single))
				}
			}
		}
	}
}

func TestBatchProofTamperedRefused(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	m, _ := mustNewMap(t)
	ref := refTree{}
	root := mustUpdate(t, m, randChanges(r, ref, 300))
	keys := pickKeys(r, ref, 12)
	claims, proof, err := m.ProveBatch(keys)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyBatch(root, claims, proof); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	for i := range proof {
		for _, flip := range []byte{0x01, 0x80} {
			bad := bytes.Clone(proof)
			bad[i] ^= flip
			if err := VerifyBatch(root, claims, bad); err == nil {
				t.Fatalf("proof with byte %d ^ 0x%02x verified", i, flip)
			}
		}
	}
	for _, bad := range [][]byte{nil, proof[:1], proof[:len(proof)-1], append(bytes.Clone(proof), 0)} {
		if err := VerifyBatch(root, claims, bad); !errors.Is(err, ErrMalformedProof) {
			t.Errorf("proof of %d bytes: %v, want ErrMalformedProof", len(bad), err)
		}
	}
	var sawPresent, sawAbsent bool
	for i := range claims {
		c := append([]Claim(nil), claims...)
		if c[i].Present {
			sawPresent = true
			c[i].Value[0] ^= 1
			if err := VerifyBatch(root, c, proof); err == nil {
				t.Errorf("claim %d with another value verified", i)
			}
			c[i].Value[0] ^= 1
		} else {
			sawAbsent = true
		}
		c[i].Present = !c[i].Present
		if err := VerifyBatch(root, c, proof); err == nil {
			t.Errorf("claim %d turned (present %v) verified", i, c[i].Present)
		}
		c[i].Key[0] ^= 0x80
		c[i].Present = claims[i].Present
		if err := VerifyBatch(root, c, proof); err == nil {
			t.Errorf("claim %d with a key on another path verified", i)
		}
	}
	// Over a root no map makes, where only the path check stops it: a leaf
	// whose key has bit 0 set, as the root's left child.
	off := Key{0x80, 1}
	forgedRoot := InnerHash(LeafHash(off, Value{3}), Hash{2})
	forged := []byte{0, 1, 0b1_01_1_0000} // inner; left: other leaf; right: a sibling
	forged = append(forged, off[:]...)
	forged = append(forged, Value{3}.bytes()...)
	forged = append(forged, Hash{2}.bytes()...)
	if err := VerifyBatch(forgedRoot, []Claim{{Key: Key{0x00, 1}}}, forged); !errors.Is(err, ErrProofMismatch) {
		t.Errorf("a leaf off the keys' path under a forged root: %v, want ErrProofMismatch", err)
	}
	if !sawPresent || !sawAbsent {
		t.Fatalf("claims lack a present or an absent key: %v %v", sawPresent, sawAbsent)
	}
	if err := VerifyBatch(root, claims[1:], proof); err == nil {
		t.Error("proof verified with a claim left out")
	}
	if err := VerifyBatch(root, append(claims, claims[0]), proof); !errors.Is(err, ErrBadClaims) {
		t.Errorf("claims with a key twice: %v, want ErrBadClaims", err)
	}
	if _, _, err := m.ProveBatch(nil); !errors.Is(err, ErrBadClaims) {
		t.Errorf("ProveBatch of no keys: %v, want ErrBadClaims", err)
	}
}

// FuzzVerifyBatch: no input panics, and any proof that verifies is the one
// ProveBatch makes (a batch proof has one encoding).
func FuzzVerifyBatch(f *testing.F) {
	r := rand.New(rand.NewPCG(19, 20))
	m, _ := mustNewMap(f)
	ref := refTree{}
	root := mustUpdate(f, m, randChanges(r, ref, 100))
	keys := pickKeys(r, ref, 4)
	claims, proof, err := m.ProveBatch(keys)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(proof)
	f.Add([]byte{0, 1, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := VerifyBatch(root, claims, b); err == nil && !bytes.Equal(b, proof) {
			t.Fatalf("%x verified, the proof is %x", b, proof)
		}
	})
}

func (v Value) bytes() []byte { return v[:] }
func (h Hash) bytes() []byte  { return h[:] }

// MaxBatchKeys keys sharing their first 240 bits, half of them present, make
// one deep walk that verifies; one key more is refused.
func TestBatchProofLongestWalk(t *testing.T) {
	m, _ := mustNewMap(t)
	var keys []Key
	var ch []Change
	base := Key{0x5a}
	for i := range MaxBatchKeys {
		k := base
		k[30], k[31] = byte(i>>8), byte(i)
		keys = append(keys, k)
		if i%2 == 0 {
			ch = append(ch, Change{Key: k, Value: Value{byte(i)}})
		}
	}
	root := mustUpdate(t, m, ch)
	claims, proof, err := m.ProveBatch(keys)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyBatch(root, claims, proof); err != nil {
		t.Fatalf("%d keys parting at the last bits: %v", len(keys), err)
	}
	if _, _, err := m.ProveBatch(append(keys, Key{1})); !errors.Is(err, ErrBadClaims) {
		t.Errorf("ProveBatch of %d keys: %v, want ErrBadClaims", len(keys)+1, err)
	}
}
