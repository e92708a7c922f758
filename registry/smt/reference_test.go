package smt

import (
	"crypto/sha256"
	"sort"
)

// refTree is the test's reference: the map's definition written plainly, over
// all 256 levels, recomputed from the whole (key, value) set on every call. It
// shares no code with the package but the key type: its own SHA-256 calls,
// its own bit reading, no storage.
type refTree map[Key]Value

func refBit(k Key, i int) byte {
	return (k[i/8] >> (7 - i%8)) & 1
}

func refLeaf(k Key, v Value) Hash {
	return sha256.Sum256(append(append([]byte{0}, k[:]...), v[:]...))
}

func refInner(l, r Hash) Hash {
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// keys returns the tree's keys in a fixed order.
func (t refTree) keys() []Key {
	ks := make([]Key, 0, len(t))
	for k := range t {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return string(ks[i][:]) < string(ks[j][:]) })
	return ks
}

// hashAt returns the hash of the subtree at depth d holding keys: empty with
// none, the leaf with one, else the inner node over the keys split on bit d.
func (t refTree) hashAt(d int, keys []Key) Hash {
	switch len(keys) {
	case 0:
		return Hash{}
	case 1:
		return refLeaf(keys[0], t[keys[0]])
	}
	var l, r []Key
	for _, k := range keys {
		if refBit(k, d) == 0 {
			l = append(l, k)
		} else {
			r = append(r, k)
		}
	}
	return refInner(t.hashAt(d+1, l), t.hashAt(d+1, r))
}

func (t refTree) root() Hash {
	return t.hashAt(0, t.keys())
}

// proof returns the reference proof for k: the siblings down the path to the
// first subtree holding at most one key, and what that subtree is.
func (t refTree) proof(k Key) *Proof {
	p := &Proof{}
	keys := t.keys()
	for d := 0; len(keys) > 1; d++ {
		var on, off []Key
		for _, x := range keys {
			if refBit(x, d) == refBit(k, d) {
				on = append(on, x)
			} else {
				off = append(off, x)
			}
		}
		p.Siblings = append(p.Siblings, t.hashAt(d+1, off))
		keys = on
	}
	switch {
	case len(keys) == 0:
		p.Kind = AbsentEmpty
	case keys[0] == k:
		p.Kind = Present
	default:
		p.Kind = AbsentOther
		p.OtherKey, p.OtherValue = keys[0], t[keys[0]]
	}
	return p
}
