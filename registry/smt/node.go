package smt

import (
	"errors"
	"fmt"
)

// ErrCorruptNode is returned when a stored record cannot be a node of the
// map: the store was altered, or holds something else under the map's keys.
var ErrCorruptNode = errors.New("smt: corrupt node record")

// Kinds of node, as stored in a record's child-kind nibbles.
const (
	kindEmpty = 0
	kindLeaf  = 1
	kindInner = 2
)

// Record tags (the first byte of a record).
const (
	tagInner    = 0x01 // an inner node: its two children
	tagRootLeaf = 0x02 // the root record of a map of one key: that leaf
)

// Record sizes, in bytes.
const (
	maxNodeKeyLen = 1 + Size       // depth byte and a 255-bit prefix
	maxRecordLen  = 2 + 2*(2*Size) // tag, kinds, two leaf children
	rootLeafLen   = 1 + 2*Size     // tag, key, value
	innerChildLen = Size           // an inner child: its hash
	leafChildLen  = 2 * Size       // a leaf child: its key and value
	maxDepth      = 8 * Size       // bits in a key
	maxInnerDepth = maxDepth - 1   // an inner node splits on bit depth
)

// node is a subtree as its parent sees it: empty, a leaf, or an inner node
// known by its hash (its children are in its own record).
type node struct {
	kind  int
	hash  Hash // inner only
	key   Key  // leaf only
	value Value
}

// digest returns the node's hash.
func (n *node) digest() Hash {
	switch n.kind {
	case kindLeaf:
		return LeafHash(n.key, n.value)
	case kindInner:
		return n.hash
	}
	return Empty
}

// nodeKey returns the store key of the inner node at depth d (0..255) on k's
// path: the byte d, then the first d bits of k in ceil(d/8) bytes, the bits
// after them zero. The root record's key is the single byte 0x00.
func nodeKey(d int, k *Key) []byte {
	return appendNodeKey(make([]byte, 0, 1+(d+7)/8), d, k)
}

// appendNodeKey appends nodeKey(d, k) to b.
func appendNodeKey(b []byte, d int, k *Key) []byte {
	n := (d + 7) / 8
	b = append(b, byte(d))
	b = append(b, k[:n]...)
	if rem := d % 8; rem != 0 {
		b[len(b)-1] &= byte(0xff) << (8 - uint(rem))
	}
	return b
}

// encodeInner returns the record of an inner node:
//
//	0x01, left kind << 4 | right kind, left child, right child
//
// with kinds 0 (empty: no bytes), 1 (leaf: key and value, 64 bytes) and
// 2 (inner: hash, 32 bytes).
func encodeInner(l, r *node) []byte {
	b := make([]byte, 2, 2+childLen(l)+childLen(r)) // the store may keep it: no spare capacity
	b[0] = tagInner
	b[1] = byte(l.kind<<4 | r.kind)
	for _, c := range []*node{l, r} {
		switch c.kind {
		case kindLeaf:
			b = append(b, c.key[:]...)
			b = append(b, c.value[:]...)
		case kindInner:
			b = append(b, c.hash[:]...)
		}
	}
	return b
}

// childLen is the length of a child's part of an inner node's record.
func childLen(c *node) int {
	switch c.kind {
	case kindLeaf:
		return leafChildLen
	case kindInner:
		return innerChildLen
	}
	return 0
}

// encodeRootLeaf returns the root record of a map of one key:
// 0x02, key, value.
func encodeRootLeaf(n *node) []byte {
	b := make([]byte, 0, rootLeafLen)
	b = append(b, tagRootLeaf)
	b = append(b, n.key[:]...)
	return append(b, n.value[:]...)
}

// decodeInner parses the record of the inner node at depth d on k's path and
// checks that it is canonical: two children, not both empty, not a lone leaf
// beside an empty child (that subtree is the leaf), and each leaf child's key
// on the child's path.
func decodeInner(rec []byte, d int, k *Key) (l, r node, err error) {
	if len(rec) < 2 || rec[0] != tagInner {
		return l, r, fmt.Errorf("%w: inner node at depth %d: bad tag", ErrCorruptNode, d)
	}
	l.kind, r.kind = int(rec[1]>>4), int(rec[1]&0x0f)
	rest := rec[2:]
	for side, c := range []*node{&l, &r} {
		switch c.kind {
		case kindEmpty:
		case kindLeaf:
			if len(rest) < leafChildLen {
				return l, r, fmt.Errorf("%w: inner node at depth %d: short leaf child", ErrCorruptNode, d)
			}
			copy(c.key[:], rest[:Size])
			copy(c.value[:], rest[Size:leafChildLen])
			rest = rest[leafChildLen:]
			if !samePrefix(&c.key, k, d) || bit(&c.key, d) != side {
				return l, r, fmt.Errorf("%w: inner node at depth %d: leaf child off its path", ErrCorruptNode, d)
			}
		case kindInner:
			if d == maxInnerDepth {
				return l, r, fmt.Errorf("%w: inner node at depth %d has an inner child", ErrCorruptNode, d)
			}
			if len(rest) < innerChildLen {
				return l, r, fmt.Errorf("%w: inner node at depth %d: short inner child", ErrCorruptNode, d)
			}
			copy(c.hash[:], rest[:Size])
			rest = rest[innerChildLen:]
		default:
			return l, r, fmt.Errorf("%w: inner node at depth %d: child kind %d", ErrCorruptNode, d, c.kind)
		}
	}
	if len(rest) != 0 {
		return l, r, fmt.Errorf("%w: inner node at depth %d: %d trailing bytes", ErrCorruptNode, d, len(rest))
	}
	if l.kind+r.kind <= kindLeaf && (l.kind == kindEmpty || r.kind == kindEmpty) {
		return l, r, fmt.Errorf("%w: inner node at depth %d holds fewer than two keys", ErrCorruptNode, d)
	}
	return l, r, nil
}

// loadInner reads and parses the inner node at depth d on k's path.
func loadInner(s NodeStore, d int, k *Key) (l, r node, err error) {
	return loadInnerAt(s, nodeKey(d, k), d, k)
}

// loadInnerAt is loadInner with the node's store key given (a scratch
// buffer the caller reuses: the store keeps no key GetNode is passed).
func loadInnerAt(s NodeStore, key []byte, d int, k *Key) (l, r node, err error) {
	rec, err := s.GetNode(key)
	if err != nil {
		if errors.Is(err, ErrNodeNotFound) {
			return l, r, fmt.Errorf("%w: inner node at depth %d is missing", ErrCorruptNode, d)
		}
		return l, r, fmt.Errorf("read node at depth %d: %w", d, err)
	}
	return decodeInner(rec, d, k)
}

// loadRoot reads the root record: absent for an empty map, a leaf for a map of
// one key, else an inner node (whose hash it computes).
func loadRoot(s NodeStore) (node, error) {
	var zero Key
	rec, err := s.GetNode(nodeKey(0, &zero))
	if errors.Is(err, ErrNodeNotFound) {
		return node{kind: kindEmpty}, nil
	}
	if err != nil {
		return node{}, fmt.Errorf("read root: %w", err)
	}
	if len(rec) > 0 && rec[0] == tagRootLeaf {
		if len(rec) != rootLeafLen {
			return node{}, fmt.Errorf("%w: root leaf of %d bytes", ErrCorruptNode, len(rec))
		}
		n := node{kind: kindLeaf}
		copy(n.key[:], rec[1:1+Size])
		copy(n.value[:], rec[1+Size:])
		return n, nil
	}
	l, r, err := decodeInner(rec, 0, &zero)
	if err != nil {
		return node{}, err
	}
	return node{kind: kindInner, hash: InnerHash(l.digest(), r.digest())}, nil
}
