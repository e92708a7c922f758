package tlog

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
)

// HashSize is the size of every hash in the log: SHA-256.
const HashSize = 32

// LeafVersion1 is the first byte of a version 1 leaf. Versions are
// append-only: a number once used is never given another meaning.
const LeafVersion1 byte = 0x01

// Limits of a leaf, each in bytes or items.
const (
	// MaxLeafSize is the largest encoded leaf, in bytes: a tlog-tiles entry
	// bundle prefixes each entry with a uint16 length.
	MaxLeafSize = 1<<16 - 1
	// MaxCIDSize is the largest binary CID a leaf carries, in bytes (its
	// length prefix is one byte).
	MaxCIDSize = 1<<8 - 1
	// leafFixedSize is version, index, commit time, map root and op count.
	leafFixedSize = 1 + 8 + 8 + HashSize + 2
)

// Op is one operation of an applied entry: the CID of the operation as
// submitted and the CID of the result the state machine recorded for it
// (accepted or rejected). Both are binary CIDs (cid.Cid.Bytes()), opaque here.
type Op struct {
	CID       []byte
	ResultCID []byte
}

// Leaf is what the log commits to for one applied raft entry.
//
// Version 1 encoding, all integers big-endian, no padding:
//
//	version      uint8     0x01
//	index        uint64    raft log index of the entry, at least 1
//	commit_time  int64     the leader's commit time stamped on the entry, Unix nanoseconds
//	map_root     [32]byte  root of the state map after the entry was applied
//	op_count     uint16    number of operations in the entry, in entry order
//	op_count times:
//	  cid_len        uint8   1..255
//	  cid            [cid_len]byte      binary CID of the operation
//	  result_len     uint8   1..255
//	  result_cid     [result_len]byte   binary CID of its result
//
// The whole encoding is at most MaxLeafSize bytes. The encoding is canonical:
// DecodeLeaf accepts exactly the bytes EncodeLeaf produces, so a leaf has one
// encoding and one leaf hash, RFC 6962's SHA-256(0x00 || encoding).
type Leaf struct {
	Index      uint64
	CommitTime time.Time
	MapRoot    [HashSize]byte
	Ops        []Op
}

// Encode returns the version 1 encoding of l, or an error wrapping
// ErrLeafMalformed or ErrLeafTooLarge.
func (l Leaf) Encode() ([]byte, error) {
	if l.Index == 0 {
		return nil, fmt.Errorf("%w: raft index 0", ErrLeafMalformed)
	}
	ns := l.CommitTime.UnixNano()
	if !time.Unix(0, ns).Equal(l.CommitTime) {
		return nil, fmt.Errorf("%w: commit time %v is outside the years 1678-2262", ErrLeafMalformed, l.CommitTime)
	}
	if len(l.Ops) > 1<<16-1 {
		return nil, fmt.Errorf("%w: %d operations", ErrLeafTooLarge, len(l.Ops))
	}
	size := leafFixedSize
	for i, op := range l.Ops {
		if n := len(op.CID); n == 0 || n > MaxCIDSize {
			return nil, fmt.Errorf("%w: operation %d has a CID of %d bytes, want 1..%d", ErrLeafMalformed, i, n, MaxCIDSize)
		}
		if n := len(op.ResultCID); n == 0 || n > MaxCIDSize {
			return nil, fmt.Errorf("%w: operation %d has a result CID of %d bytes, want 1..%d", ErrLeafMalformed, i, n, MaxCIDSize)
		}
		size += 2 + len(op.CID) + len(op.ResultCID)
	}
	if size > MaxLeafSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrLeafTooLarge, size, MaxLeafSize)
	}
	b := make([]byte, 0, size)
	b = append(b, LeafVersion1)
	b = binary.BigEndian.AppendUint64(b, l.Index)
	b = binary.BigEndian.AppendUint64(b, uint64(ns))
	b = append(b, l.MapRoot[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(l.Ops)))
	for _, op := range l.Ops {
		b = append(b, byte(len(op.CID)))
		b = append(b, op.CID...)
		b = append(b, byte(len(op.ResultCID)))
		b = append(b, op.ResultCID...)
	}
	return b, nil
}

// DecodeLeaf parses a leaf encoding. It refuses an unknown version
// (ErrLeafVersion), and anything that is not exactly the encoding of a leaf:
// short or trailing bytes, empty CIDs, index 0 (ErrLeafMalformed), or more
// than MaxLeafSize bytes (ErrLeafTooLarge). The returned leaf does not alias b.
func DecodeLeaf(b []byte) (Leaf, error) {
	if len(b) == 0 {
		return Leaf{}, fmt.Errorf("%w: empty", ErrLeafMalformed)
	}
	if b[0] != LeafVersion1 {
		return Leaf{}, fmt.Errorf("%w: version %d; this build reads version %d", ErrLeafVersion, b[0], LeafVersion1)
	}
	if len(b) > MaxLeafSize {
		return Leaf{}, fmt.Errorf("%w: %d bytes", ErrLeafTooLarge, len(b))
	}
	if len(b) < leafFixedSize {
		return Leaf{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrLeafMalformed, len(b), leafFixedSize)
	}
	var l Leaf
	l.Index = binary.BigEndian.Uint64(b[1:9])
	if l.Index == 0 {
		return Leaf{}, fmt.Errorf("%w: raft index 0", ErrLeafMalformed)
	}
	l.CommitTime = time.Unix(0, int64(binary.BigEndian.Uint64(b[9:17]))).UTC()
	copy(l.MapRoot[:], b[17:17+HashSize])
	n := int(binary.BigEndian.Uint16(b[17+HashSize:]))
	rest := b[leafFixedSize:]
	if n > 0 {
		l.Ops = make([]Op, 0, min(n, len(rest)/4))
	}
	for i := range n {
		cid, r, err := cutCID(rest)
		if err != nil {
			return Leaf{}, fmt.Errorf("%w: operation %d: %w", ErrLeafMalformed, i, err)
		}
		res, r, err := cutCID(r)
		if err != nil {
			return Leaf{}, fmt.Errorf("%w: result of operation %d: %w", ErrLeafMalformed, i, err)
		}
		rest = r
		l.Ops = append(l.Ops, Op{CID: cid, ResultCID: res})
	}
	if len(rest) != 0 {
		return Leaf{}, fmt.Errorf("%w: %d trailing bytes", ErrLeafMalformed, len(rest))
	}
	return l, nil
}

// cutCID reads one length-prefixed CID and returns a copy of it and the rest.
func cutCID(b []byte) ([]byte, []byte, error) {
	if len(b) < 1 {
		return nil, nil, fmt.Errorf("truncated CID length")
	}
	n := int(b[0])
	if n == 0 {
		return nil, nil, fmt.Errorf("empty CID")
	}
	if len(b) < 1+n {
		return nil, nil, fmt.Errorf("CID of %d bytes truncated at %d", n, len(b)-1)
	}
	return append([]byte(nil), b[1:1+n]...), b[1+n:], nil
}

// LeafHash returns the RFC 6962 leaf hash of an encoded leaf:
// SHA-256(0x00 || leaf).
func LeafHash(encoded []byte) []byte {
	return rfc6962.DefaultHasher.HashLeaf(encoded)
}
