// Package smt is a compact sparse Merkle map from 32-byte keys to 32-byte
// values: the commitment to the whole registry state that verifiable answers
// prove against (SPEC §7, issue #32). It imports nothing but the standard
// library, so an offline verifier can import it without Pebble, libp2p or raft.
//
// # The tree
//
// The map is a binary tree of depth 256 over the bits of the key, most
// significant bit of byte 0 first (bit 0 picks the root's child: 0 is left).
// A subtree that holds no key is empty; a subtree that holds exactly one key is
// that key's leaf, wherever it sits; a subtree that holds two or more keys is
// an inner node with two children. The tree is therefore a pure function of the
// set of (key, value) pairs, whatever the order or batches they were written in.
//
// # Hashes
//
// All hashes are SHA-256. The three kinds of node are separated by domain:
//
//	empty = 32 zero bytes (a constant, not a hash output)
//	leaf  = SHA-256(0x00 || key (32 bytes) || value (32 bytes))
//	inner = SHA-256(0x01 || left (32 bytes) || right (32 bytes))
//
// The root of the map is the hash of its top node: empty for an empty map, the
// leaf hash for a map of one key. A leaf's hash covers its whole key, so it
// binds the key even where the leaf sits high in the tree; an inner node's
// prefix byte keeps a leaf from passing as an inner node and back; and no
// input is known whose SHA-256 is 32 zero bytes.
//
// # Proofs
//
// A proof for a key follows the key's path from the root down to where the
// path ends, which is one of:
//
//	the key's own leaf                 the key is present (inclusion)
//	an empty subtree                   the key is absent (non-inclusion)
//	the leaf of another key            the key is absent (non-inclusion): the
//	                                   subtree that would hold it holds only
//	                                   that other key
//
// Its encoding (see Proof.MarshalBinary) is
//
//	kind (1 byte: 0x01 present, 0x02 absent at an empty subtree,
//	              0x03 absent at another key's leaf)
//	depth (2 bytes, big-endian, at most 256): how many siblings the path has
//	bitmap (ceil(depth/8) bytes): bit i (most significant bit of byte i/8
//	        first) is set when the sibling at depth i+1 is not empty; the
//	        bits after depth are zero
//	siblings (32 bytes each, one per set bit, from the root down)
//	for kind 0x03 only: the other key (32 bytes) and its value (32 bytes)
//
// A proof of absence that ends at depth d also shows absent every key that
// shares the key's first d bits: they would all be in the same subtree.
//
// An empty sibling is never written out, so every proof has one encoding and a
// parser refuses any other (trailing bytes, short input, set padding bits,
// an all-zero sibling written out, an unknown kind).
//
// ProveBatch and VerifyBatch prove several keys in one proof that sends the
// nodes their paths share once (its bytes are described in batch.go).
//
// To verify by hand: start from the node where the path ends (the leaf hash of
// the key and its claimed value; 32 zero bytes; or the leaf hash of the other
// key and value, after checking that the other key differs from the key and
// shares its first depth bits), then for i from depth-1 down to 0 hash it with
// sibling i as inner = SHA-256(0x01 || left || right), putting it on the left
// when bit i of the key is 0; the result must equal the root.
//
// # Storage
//
// Nodes live in a NodeStore given by the caller (the registry backs it with its
// Pebble batch; MemStore serves tests). Only inner nodes are stored, each as
// one record holding its children (an inner child's hash, a leaf child's key
// and value); see nodeKey and encodeInner for the bytes. Leaves live inside
// their parent's record, and a map of one key keeps its leaf in the root
// record. A batch update writes and deletes only records, so the stored
// records, like the root, are a pure function of the (key, value) set.
package smt
