package smt

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// MaxBatchKeys is the most keys one batch proof covers. A walk writes at most
// two flag bits at each of at most 257 nodes per key, so the flags of
// MaxBatchKeys keys fit the 2-byte flag length.
const MaxBatchKeys = 512

// maxFlagLen is the most bytes of flags a batch proof can hold.
const maxFlagLen = 1<<16 - 1

// ErrBadClaims is returned for a claim list a batch proof cannot cover: empty,
// over MaxBatchKeys, or naming a key twice.
var ErrBadClaims = errors.New("smt: bad claims")

// Claim is what a batch proof shows of one key: mapped to Value when Present,
// else absent.
type Claim struct {
	Key     Key
	Value   Value
	Present bool
}

// ProveBatch returns the claims for keys (their values or absence, sorted by
// key) and a batch proof of them.
//
// A batch proof covers several keys at once, sharing the nodes their paths
// share: for the ~15 records of a trust chain it is about a quarter smaller
// than 15 single proofs (see DESIGN.md). The verifier walks the union of the
// keys' paths from the root, in key order (left subtree before right), and
// the proof is what it cannot compute:
//
//	flagLen (2 bytes, big-endian): the length of flags in bytes
//	flags (flagLen bytes): bits, most significant first, read as the walk
//	      goes; the bits after the last one read are zero
//	data: 32-byte sibling hashes and 64-byte (key, value) leaves, in the order
//	      the walk reads them, to the end of the proof
//
// At each node of the walk, with the claimed keys under it (never none):
//
//	bit 1: an inner node (at depth 255 at most). For its left then right
//	       child: if no claimed key is under it, one bit, 1 if the child is
//	       not empty (its hash is next in data), 0 if it is; else the walk
//	       goes down into it.
//	bit 0: the path ends here; one more bit: 0 if the subtree is what the
//	       claims say (the leaf of the one key claimed present, or empty when
//	       none is), 1 if it is the leaf of another key, whose key and value
//	       are next in data (none of the claimed keys may be present then,
//	       and the other key shares the node's path and is none of them).
//
// The hash of each node is then computed as in a single proof, and the root's
// must match.
func (m *Map) ProveBatch(keys []Key) ([]Claim, []byte, error) {
	ks, err := sortedKeys(keys, func(k Key) Key { return k })
	if err != nil {
		return nil, nil, err
	}
	root, err := loadRoot(m.store)
	if err != nil {
		return nil, nil, err
	}
	// The data is a few sibling hashes per key: room for them up front.
	bp := batchProver{m: m, claims: make([]Claim, len(ks)), data: make([]byte, 0, 8*Size*len(ks))}
	for i, k := range ks {
		bp.claims[i].Key = k
	}
	if err := bp.walk(0, root, bp.claims); err != nil {
		return nil, nil, err
	}
	if len(bp.flags.b) > maxFlagLen {
		// Unreachable for MaxBatchKeys keys (see there).
		panic(fmt.Sprintf("smt: %d bytes of batch proof flags", len(bp.flags.b)))
	}
	out := make([]byte, 2, 2+len(bp.flags.b)+len(bp.data))
	out[0], out[1] = byte(len(bp.flags.b)>>8), byte(len(bp.flags.b))
	out = append(out, bp.flags.b...)
	return bp.claims, append(out, bp.data...), nil
}

// sortedKeys returns the keys of xs sorted, refusing an empty list, one over
// MaxBatchKeys or one with a key twice.
func sortedKeys[T any](xs []T, key func(T) Key) ([]Key, error) {
	if len(xs) == 0 || len(xs) > MaxBatchKeys {
		return nil, fmt.Errorf("%w: %d keys, want 1 to %d", ErrBadClaims, len(xs), MaxBatchKeys)
	}
	ks := make([]Key, len(xs))
	for i, x := range xs {
		ks[i] = key(x)
	}
	slices.SortFunc(ks, func(a, b Key) int { return cmp.Compare(string(a[:]), string(b[:])) })
	for i := 1; i < len(ks); i++ {
		if ks[i] == ks[i-1] {
			return nil, fmt.Errorf("%w: key %x twice", ErrBadClaims, ks[i][:8])
		}
	}
	return ks, nil
}

// splitClaims returns the index of the first claim whose key has bit d set.
func splitClaims(cs []Claim, d int) int {
	i, _ := slices.BinarySearchFunc(cs, 1, func(c Claim, _ int) int {
		return cmp.Compare(bit(&c.Key, d), 1)
	})
	return i
}

type bitWriter struct {
	b []byte
	n int // bits written
}

func (w *bitWriter) put(one bool) {
	if w.n%8 == 0 {
		w.b = append(w.b, 0)
	}
	if one {
		w.b[w.n/8] |= 0x80 >> uint(w.n%8)
	}
	w.n++
}

type batchProver struct {
	m      *Map
	claims []Claim
	flags  bitWriter
	data   []byte
	key    []byte // scratch for the store key of the node loaded
}

// walk writes the proof of the subtree cur at depth d, under which the keys of
// cs are, and fills in their values.
func (bp *batchProver) walk(d int, cur node, cs []Claim) error {
	if cur.kind != kindInner {
		bp.flags.put(false)
		if cur.kind == kindLeaf {
			for i := range cs {
				if cs[i].Key == cur.key {
					cs[i].Value, cs[i].Present = cur.value, true
					bp.flags.put(false)
					return nil
				}
			}
			bp.flags.put(true)
			bp.data = append(bp.data, cur.key[:]...)
			bp.data = append(bp.data, cur.value[:]...)
			return nil
		}
		bp.flags.put(false)
		return nil
	}
	if d > maxInnerDepth {
		return fmt.Errorf("%w: inner node below depth %d", ErrCorruptNode, maxInnerDepth)
	}
	bp.flags.put(true)
	bp.key = appendNodeKey(bp.key[:0], d, &cs[0].Key)
	l, r, err := loadInnerAt(bp.m.store, bp.key, d, &cs[0].Key)
	if err != nil {
		return err
	}
	i := splitClaims(cs, d)
	for _, side := range []struct {
		n  *node
		cs []Claim
	}{{&l, cs[:i]}, {&r, cs[i:]}} {
		if len(side.cs) > 0 {
			if err := bp.walk(d+1, *side.n, side.cs); err != nil {
				return err
			}
			continue
		}
		h := side.n.digest()
		bp.flags.put(h != Empty)
		if h != Empty {
			bp.data = append(bp.data, h[:]...)
		}
	}
	return nil
}

type bitReader struct {
	b []byte
	n int // bits read
}

func (r *bitReader) get() (bool, error) {
	if r.n >= 8*len(r.b) {
		return false, fmt.Errorf("%w: flags end early", ErrMalformedProof)
	}
	one := r.b[r.n/8]&(0x80>>uint(r.n%8)) != 0
	r.n++
	return one, nil
}

type batchVerifier struct {
	flags bitReader
	data  []byte
}

func (bv *batchVerifier) take(n int) ([]byte, error) {
	if len(bv.data) < n {
		return nil, fmt.Errorf("%w: data ends early", ErrMalformedProof)
	}
	b := bv.data[:n]
	bv.data = bv.data[n:]
	return b, nil
}

// VerifyBatch checks that proof shows every claim (any order, each key once)
// in the map whose root is root.
func VerifyBatch(root Hash, claims []Claim, proof []byte) error {
	if _, err := sortedKeys(claims, func(c Claim) Key { return c.Key }); err != nil {
		return err
	}
	cs := slices.Clone(claims)
	slices.SortFunc(cs, func(a, b Claim) int { return cmp.Compare(string(a.Key[:]), string(b.Key[:])) })
	if len(proof) < 2 {
		return fmt.Errorf("%w: %d bytes, shorter than its 2-byte flag length", ErrMalformedProof, len(proof))
	}
	nf := int(proof[0])<<8 | int(proof[1])
	if len(proof) < 2+nf {
		return fmt.Errorf("%w: %d bytes, too short for %d bytes of flags", ErrMalformedProof, len(proof), nf)
	}
	bv := batchVerifier{flags: bitReader{b: proof[2 : 2+nf]}, data: proof[2+nf:]}
	h, err := bv.walk(0, cs)
	if err != nil {
		return err
	}
	if used := (bv.flags.n + 7) / 8; used != nf {
		return fmt.Errorf("%w: %d bytes of flags, %d used", ErrMalformedProof, nf, used)
	}
	if rem := bv.flags.n % 8; rem != 0 && bv.flags.b[nf-1]&(0xff>>uint(rem)) != 0 {
		return fmt.Errorf("%w: flag bits set past the last one read", ErrMalformedProof)
	}
	if len(bv.data) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformedProof, len(bv.data))
	}
	if h != root {
		return fmt.Errorf("%w: it leads to %x, not %x", ErrProofMismatch, h[:8], root[:8])
	}
	return nil
}

// walk returns the hash of the subtree at depth d under which the claims of cs
// (sorted, never none) are.
func (bv *batchVerifier) walk(d int, cs []Claim) (Hash, error) {
	inner, err := bv.flags.get()
	if err != nil {
		return Hash{}, err
	}
	if !inner {
		return bv.terminal(d, cs)
	}
	if d > maxInnerDepth {
		return Hash{}, fmt.Errorf("%w: inner node at depth %d", ErrMalformedProof, d)
	}
	i := splitClaims(cs, d)
	var hs [2]Hash
	for side, sub := range [][]Claim{cs[:i], cs[i:]} {
		if len(sub) > 0 {
			if hs[side], err = bv.walk(d+1, sub); err != nil {
				return Hash{}, err
			}
			continue
		}
		nonEmpty, err := bv.flags.get()
		if err != nil {
			return Hash{}, err
		}
		if nonEmpty {
			b, err := bv.take(Size)
			if err != nil {
				return Hash{}, err
			}
			copy(hs[side][:], b)
			if hs[side] == Empty {
				return Hash{}, fmt.Errorf("%w: sibling at depth %d written out but empty", ErrMalformedProof, d+1)
			}
		}
	}
	return InnerHash(hs[0], hs[1]), nil
}

// terminal returns the hash of the subtree at depth d where the claims of cs
// end.
func (bv *batchVerifier) terminal(d int, cs []Claim) (Hash, error) {
	var present *Claim
	for i := range cs {
		if cs[i].Present {
			if present != nil {
				return Hash{}, fmt.Errorf("%w: two keys claimed present under one leaf at depth %d", ErrProofMismatch, d)
			}
			present = &cs[i]
		}
	}
	other, err := bv.flags.get()
	if err != nil {
		return Hash{}, err
	}
	if !other {
		if present == nil {
			return Empty, nil
		}
		return LeafHash(present.Key, present.Value), nil
	}
	if present != nil {
		return Hash{}, fmt.Errorf("%w: key %x claimed present where the proof has another key's leaf", ErrWrongKind, present.Key[:8])
	}
	b, err := bv.take(2 * Size)
	if err != nil {
		return Hash{}, err
	}
	var k Key
	var v Value
	copy(k[:], b[:Size])
	copy(v[:], b[Size:])
	for i := range cs {
		if cs[i].Key == k {
			return Hash{}, fmt.Errorf("%w: key %x claimed absent where the proof has its leaf", ErrWrongKind, k[:8])
		}
	}
	if !samePrefix(&k, &cs[0].Key, d) {
		return Hash{}, fmt.Errorf("%w: the leaf at depth %d is off the keys' path", ErrProofMismatch, d)
	}
	return LeafHash(k, v), nil
}
