package proof_test

import (
	"testing"

	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/smt"
)

// claimsOf returns the map claims of b's records, as Verify makes them.
func claimsOf(t *testing.T, b *proof.Bundle) []smt.Claim {
	t.Helper()
	var cs []smt.Claim
	for _, r := range b.Records {
		k, err := r.Key()
		if err != nil {
			t.Fatal(err)
		}
		c := smt.Claim{Key: proof.MapKey(k)}
		if r.Bytes != nil {
			c.Value, c.Present = proof.MapValue(r.Bytes), true
		}
		cs = append(cs, c)
	}
	return cs
}

// presentAsOther rewrites a batch map proof of claims (see smt.ProveBatch
// for its bytes) so that target, proven present, is shown as "another
// key's leaf" where the path of an absent key ends: the hashes, and so the
// root, stay the same. It is the strongest forgery of an absence from an
// honest proof, and the verifier must see through it.
func presentAsOther(t *testing.T, claims []smt.Claim, mp []byte, target smt.Key) []byte {
	t.Helper()
	sorted := sortClaims(claims)
	nf := int(mp[0])<<8 | int(mp[1])
	r := &bitsIn{b: mp[2 : 2+nf]}
	data := mp[2+nf:]
	var w bitsOut
	var out []byte
	take := func(n int) {
		out = append(out, data[:n]...)
		data = data[n:]
	}
	var walk func(d int, cs []smt.Claim)
	walk = func(d int, cs []smt.Claim) {
		inner := r.get(t)
		w.put(inner)
		if !inner {
			other := r.get(t)
			if !other && len(cs) == 1 && cs[0].Present && cs[0].Key == target {
				w.put(true)
				out = append(out, cs[0].Key[:]...)
				out = append(out, cs[0].Value[:]...)
				return
			}
			w.put(other)
			if other {
				take(2 * smt.Size)
			}
			return
		}
		i := 0
		for i < len(cs) && bitOf(cs[i].Key, d) == 0 {
			i++
		}
		for _, sub := range [][]smt.Claim{cs[:i], cs[i:]} {
			if len(sub) > 0 {
				walk(d+1, sub)
				continue
			}
			nonEmpty := r.get(t)
			w.put(nonEmpty)
			if nonEmpty {
				take(smt.Size)
			}
		}
	}
	walk(0, sorted)
	res := []byte{byte(len(w.b) >> 8), byte(len(w.b))}
	res = append(res, w.b...)
	return append(res, out...)
}

func sortClaims(cs []smt.Claim) []smt.Claim {
	out := append([]smt.Claim(nil), cs...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && string(out[j].Key[:]) < string(out[j-1].Key[:]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func bitOf(k smt.Key, i int) int { return int(k[i/8]>>(7-uint(i%8))) & 1 }

type bitsIn struct {
	b []byte
	n int
}

func (r *bitsIn) get(t *testing.T) bool {
	t.Helper()
	if r.n >= 8*len(r.b) {
		t.Fatal("batch proof flags end early")
	}
	v := r.b[r.n/8]>>(7-uint(r.n%8))&1 == 1
	r.n++
	return v
}

type bitsOut struct {
	b []byte
	n int
}

func (w *bitsOut) put(v bool) {
	if w.n%8 == 0 {
		w.b = append(w.b, 0)
	}
	if v {
		w.b[w.n/8] |= 1 << (7 - uint(w.n%8))
	}
	w.n++
}
