package smt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Errors of proof parsing and verification.
var (
	// ErrMalformedProof is returned for bytes that are not a proof's one
	// encoding.
	ErrMalformedProof = errors.New("smt: malformed proof")
	// ErrWrongKind is returned when a proof shows the key present where its
	// absence is to be verified, or absent where its presence is.
	ErrWrongKind = errors.New("smt: proof shows the other outcome")
	// ErrProofMismatch is returned when a proof does not lead from the key
	// (and value) to the root.
	ErrProofMismatch = errors.New("smt: proof does not match the root")
)

// ProofKind says where a proof's path ends.
type ProofKind byte

// Kinds of proof (the first byte of an encoded proof).
const (
	// Present: the path ends at the key's own leaf.
	Present ProofKind = 0x01
	// AbsentEmpty: the path ends at an empty subtree.
	AbsentEmpty ProofKind = 0x02
	// AbsentOther: the path ends at the leaf of another key, the only key
	// under the key's first Depth() bits.
	AbsentOther ProofKind = 0x03
)

// proofHeaderLen is the length of a proof's kind and depth.
const proofHeaderLen = 3

// MaxProofLen is the length of the longest encoded proof.
const MaxProofLen = proofHeaderLen + maxDepth/8 + maxDepth*Size + 2*Size

// Proof is a map proof for one key. Siblings[i] is the hash of the sibling of
// the path's node at depth i+1 (Empty where that sibling is empty), so the
// path ends at depth len(Siblings).
type Proof struct {
	Kind     ProofKind
	Siblings []Hash
	// OtherKey and OtherValue are the leaf the path ends at, for AbsentOther.
	OtherKey   Key
	OtherValue Value
}

// Prove returns the proof for k: of inclusion when k is present, else of
// non-inclusion.
func (m *Map) Prove(k Key) (*Proof, error) {
	p, _, err := m.prove(k)
	return p, err
}

// prove returns the proof for k and, when k is present, its value.
func (m *Map) prove(k Key) (*Proof, Value, error) {
	cur, err := loadRoot(m.store)
	if err != nil {
		return nil, Value{}, err
	}
	p := &Proof{}
	for d := 0; cur.kind == kindInner; d++ {
		if d > maxInnerDepth {
			return nil, Value{}, fmt.Errorf("%w: inner node below depth %d", ErrCorruptNode, maxInnerDepth)
		}
		l, r, err := loadInner(m.store, d, &k)
		if err != nil {
			return nil, Value{}, err
		}
		if bit(&k, d) == 0 {
			cur = l
			p.Siblings = append(p.Siblings, r.digest())
		} else {
			cur = r
			p.Siblings = append(p.Siblings, l.digest())
		}
	}
	switch {
	case cur.kind == kindEmpty:
		p.Kind = AbsentEmpty
	case cur.key == k:
		p.Kind = Present
		return p, cur.value, nil
	default:
		p.Kind = AbsentOther
		p.OtherKey, p.OtherValue = cur.key, cur.value
	}
	return p, Value{}, nil
}

// MarshalBinary returns the proof's encoding (see the package comment). It
// fails only for a proof no Map makes: an unknown kind or over 256 siblings.
func (p *Proof) MarshalBinary() ([]byte, error) {
	depth := len(p.Siblings)
	if p.Kind < Present || p.Kind > AbsentOther || depth > maxDepth {
		return nil, fmt.Errorf("%w: kind %d with %d siblings", ErrMalformedProof, p.Kind, depth)
	}
	nb := (depth + 7) / 8
	b := make([]byte, proofHeaderLen+nb, proofHeaderLen+nb+depth*Size+2*Size)
	b[0] = byte(p.Kind)
	binary.BigEndian.PutUint16(b[1:], uint16(depth))
	for i, s := range p.Siblings {
		if s != Empty {
			b[proofHeaderLen+i/8] |= 0x80 >> uint(i%8)
			b = append(b, s[:]...)
		}
	}
	if p.Kind == AbsentOther {
		b = append(b, p.OtherKey[:]...)
		b = append(b, p.OtherValue[:]...)
	}
	return b, nil
}

// ParseProof parses an encoded proof, refusing any bytes that are not a
// proof's one encoding.
func ParseProof(b []byte) (*Proof, error) {
	if len(b) < proofHeaderLen {
		return nil, fmt.Errorf("%w: %d bytes, shorter than its %d-byte header", ErrMalformedProof, len(b), proofHeaderLen)
	}
	p := &Proof{Kind: ProofKind(b[0])}
	if p.Kind < Present || p.Kind > AbsentOther {
		return nil, fmt.Errorf("%w: unknown kind 0x%02x", ErrMalformedProof, b[0])
	}
	depth := int(binary.BigEndian.Uint16(b[1:]))
	if depth > maxDepth || (p.Kind == AbsentOther && depth == maxDepth) {
		return nil, fmt.Errorf("%w: depth %d", ErrMalformedProof, depth)
	}
	nb := (depth + 7) / 8
	if len(b) < proofHeaderLen+nb {
		return nil, fmt.Errorf("%w: %d bytes, too short for a %d-byte bitmap", ErrMalformedProof, len(b), nb)
	}
	bitmap := b[proofHeaderLen : proofHeaderLen+nb]
	if rem := depth % 8; rem != 0 && bitmap[nb-1]&(0xff>>uint(rem)) != 0 {
		return nil, fmt.Errorf("%w: bitmap bits set past depth %d", ErrMalformedProof, depth)
	}
	count := 0
	for _, x := range bitmap {
		count += bits.OnesCount8(x)
	}
	want := proofHeaderLen + nb + count*Size
	if p.Kind == AbsentOther {
		want += 2 * Size
	}
	if len(b) != want {
		return nil, fmt.Errorf("%w: %d bytes, want %d for kind %d with %d siblings", ErrMalformedProof, len(b), want, p.Kind, count)
	}
	rest := b[proofHeaderLen+nb:]
	p.Siblings = make([]Hash, depth)
	for i := range depth {
		if bitmap[i/8]&(0x80>>uint(i%8)) == 0 {
			continue
		}
		copy(p.Siblings[i][:], rest[:Size])
		rest = rest[Size:]
		if p.Siblings[i] == Empty {
			return nil, fmt.Errorf("%w: sibling %d written out but empty", ErrMalformedProof, i)
		}
	}
	if p.Kind == AbsentOther {
		copy(p.OtherKey[:], rest[:Size])
		copy(p.OtherValue[:], rest[Size:])
	}
	return p, nil
}

// VerifyInclusion checks that proof (encoded) shows k mapped to v in the map
// whose root is root.
func VerifyInclusion(root Hash, k Key, v Value, proof []byte) error {
	p, err := ParseProof(proof)
	if err != nil {
		return err
	}
	return p.Verify(root, k, &v)
}

// VerifyNonInclusion checks that proof (encoded) shows k absent from the map
// whose root is root.
func VerifyNonInclusion(root Hash, k Key, proof []byte) error {
	p, err := ParseProof(proof)
	if err != nil {
		return err
	}
	return p.Verify(root, k, nil)
}

// Verify checks that p shows k mapped to *v (or, when v is nil, k absent) in
// the map whose root is root.
func (p *Proof) Verify(root Hash, k Key, v *Value) error {
	depth := len(p.Siblings)
	if depth > maxDepth {
		return fmt.Errorf("%w: %d siblings", ErrMalformedProof, depth)
	}
	var h Hash
	switch p.Kind {
	case Present:
		if v == nil {
			return fmt.Errorf("%w: it shows the key present", ErrWrongKind)
		}
		h = LeafHash(k, *v)
	case AbsentEmpty, AbsentOther:
		if v != nil {
			return fmt.Errorf("%w: it shows the key absent", ErrWrongKind)
		}
		if p.Kind == AbsentOther {
			if p.OtherKey == k {
				return fmt.Errorf("%w: the leaf it ends at is the key's own", ErrProofMismatch)
			}
			if !samePrefix(&p.OtherKey, &k, depth) {
				return fmt.Errorf("%w: the leaf it ends at is off the key's path", ErrProofMismatch)
			}
			h = LeafHash(p.OtherKey, p.OtherValue)
		}
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrMalformedProof, p.Kind)
	}
	for i := depth - 1; i >= 0; i-- {
		if bit(&k, i) == 0 {
			h = InnerHash(h, p.Siblings[i])
		} else {
			h = InnerHash(p.Siblings[i], h)
		}
	}
	if h != root {
		return fmt.Errorf("%w: it leads to %x, not %x", ErrProofMismatch, h[:8], root[:8])
	}
	return nil
}
