package smt

import "crypto/sha256"

// Size is the length in bytes of keys, values and hashes.
const Size = 32

// Key is a map key: SHA-256 of a typed record key (see KeyOf).
type Key [Size]byte

// Value is a map value: the digest of a record's exact stored bytes.
type Value [Size]byte

// Hash is the hash of a node, and the root of the map.
type Hash [Size]byte

// Empty is the hash of an empty subtree, and the root of an empty map.
var Empty Hash

// Domain prefixes of the hashed inputs (see the package comment).
const (
	leafPrefix  = 0x00
	innerPrefix = 0x01
)

// KeyOf returns the map key of a typed record key: SHA-256 of its bytes.
func KeyOf(recordKey []byte) Key {
	return sha256.Sum256(recordKey)
}

// LeafHash returns SHA-256(0x00 || key || value).
func LeafHash(k Key, v Value) Hash {
	var b [1 + 2*Size]byte
	b[0] = leafPrefix
	copy(b[1:], k[:])
	copy(b[1+Size:], v[:])
	return sha256.Sum256(b[:])
}

// InnerHash returns SHA-256(0x01 || left || right).
func InnerHash(left, right Hash) Hash {
	var b [1 + 2*Size]byte
	b[0] = innerPrefix
	copy(b[1:], left[:])
	copy(b[1+Size:], right[:])
	return sha256.Sum256(b[:])
}

// bit returns bit i of k (0 is the most significant bit of byte 0).
func bit(k *Key, i int) int {
	return int(k[i/8]>>(7-uint(i%8))) & 1
}

// samePrefix reports whether a and b agree on their first n bits.
func samePrefix(a, b *Key, n int) bool {
	full := n / 8
	if string(a[:full]) != string(b[:full]) {
		return false
	}
	if rem := n % 8; rem != 0 {
		mask := byte(0xff) << (8 - uint(rem))
		return a[full]&mask == b[full]&mask
	}
	return true
}
