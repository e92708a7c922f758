package record

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"io"
	"strings"
)

// Bitstring Status List encoding (W3C Bitstring Status List v1.0):
// encodedList is the multibase base64url (no padding, prefix "u") of the
// GZIP-compressed bitstring. Index 0 is the most significant bit of the
// first byte; an entry of statusSize bits starts at bit index×statusSize
// and is read most significant bit first.

// MinStatusListEntries is the smallest list the Recommendation allows (it
// keeps a verifier's fetch from revealing which credential it checks).
const MinStatusListEntries = 131072

// MaxStatusListBytes bounds a decompressed bitstring (2^24 entries of 8
// bits), so a small GZIP stream cannot expand without limit.
const MaxStatusListBytes = 1 << 24

// Status-list errors, named after the Recommendation's error types. A
// client reads no words for them beyond the detail: the problem type is the
// Recommendation's. A list that cannot be retrieved is also not found.
var (
	ErrStatusListLength = NewKind("registry: STATUS_LIST_LENGTH_ERROR", "", nil)
	ErrMalformedValue   = NewKind("registry: MALFORMED_VALUE_ERROR", "", nil)
	ErrRange            = NewKind("registry: RANGE_ERROR", "", nil)
	ErrStatusRetrieval  = NewKind("registry: STATUS_RETRIEVAL_ERROR", "not found", ErrNotFound)
	// ErrStatusVerification: the status purpose asked for is not the
	// list's (REC §3.2).
	ErrStatusVerification = NewKind("registry: STATUS_VERIFICATION_ERROR", "", nil)
)

// EncodeBitstring compresses and encodes a bitstring as an encodedList.
func EncodeBitstring(bits []byte) (string, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(bits); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return "u" + base64.RawURLEncoding.EncodeToString(buf.Bytes()), nil
}

// DecodeBitstring decodes an encodedList into its bitstring. Errors wrap
// ErrMalformedValue.
func DecodeBitstring(encoded string) ([]byte, error) {
	zr, size, err := openBitstringSized(encoded)
	if err != nil {
		return nil, err
	}
	// Room for the whole bitstring at once, as its GZIP trailer gives its
	// size, where io.ReadAll would grow a buffer step by step (a 16 MiB
	// list took some 37 MB of allocations and twice the time that way:
	// BenchmarkDecodeBitstring); bytes.MinRead more, so that reading the
	// stream's end does not grow it. A trailer that lies only moves the
	// allocation (sizeHint bounds it), not the result.
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(zr, MaxStatusListBytes+1)); err != nil {
		return nil, Errorf(ErrMalformedValue, "GZIP stream: %v", err)
	}
	if buf.Len() > MaxStatusListBytes {
		return nil, Errorf(ErrStatusListLength, "the bitstring exceeds %d bytes", MaxStatusListBytes)
	}
	return buf.Bytes(), nil
}

// sizeHint is the size of the data a GZIP stream says it holds (ISIZE,
// its last four bytes: the size of its last member modulo 2^32), bounded
// by what the stream can hold (deflate expands at most some 1,032 times)
// and by MaxStatusListBytes; 0 for a stream too short to have a trailer.
func sizeHint(raw []byte) int {
	if len(raw) < 18 { // a GZIP header and trailer
		return 0
	}
	n := int(binary.LittleEndian.Uint32(raw[len(raw)-4:]))
	return min(n, 1032*len(raw), MaxStatusListBytes)
}

// openBitstring returns a reader of the bitstring an encodedList holds,
// which decompresses it as it is read.
func openBitstring(encoded string) (*gzip.Reader, error) {
	zr, _, err := openBitstringSized(encoded)
	return zr, err
}

// openBitstringSized is openBitstring, with the bitstring's size as the
// stream's trailer gives it (sizeHint).
func openBitstringSized(encoded string) (*gzip.Reader, int, error) {
	rest, ok := strings.CutPrefix(encoded, "u")
	if !ok {
		return nil, 0, Errorf(ErrMalformedValue, "encodedList must be multibase base64url with the prefix \"u\"")
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return nil, 0, Errorf(ErrMalformedValue, "encodedList is not base64url without padding: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, 0, Errorf(ErrMalformedValue, "encodedList is not GZIP-compressed: %v", err)
	}
	return zr, sizeHint(raw), nil
}

// EncodedStatus reads entry index of size bits (1 to MaxStatusSize) from
// an encodedList, as GetStatus reads it from the bitstring DecodeBitstring
// gives, but decompresses the bitstring only up to the entry's last byte,
// passing over the bytes before it: in memory of a fixed size (the
// decompressor's state, its 32 KiB window among it), and in time that
// grows with the entry's place in the list, not with the list. Its answers
// and errors for a valid encodedList are GetStatus's: an index outside the
// list is ErrRange with the list's entries, counted by decompressing the
// rest; a bitstring longer than MaxStatusListBytes is ErrStatusListLength
// when the entry is not before its end. What lies after the entry is not
// read, so a stream damaged there (its checksum, at its end, among it)
// still answers: it is for lists checked whole when they were published.
func EncodedStatus(encoded string, index, size int) (int, error) {
	if size < 1 || size > MaxStatusSize {
		return 0, Errorf(ErrMalformedValue, "statusSize %d must be an integer from 1 to %d", size, MaxStatusSize)
	}
	zr, err := openBitstring(encoded)
	if err != nil {
		return 0, err
	}
	lr := io.LimitReader(zr, MaxStatusListBytes+1)
	// The entry's bits are bits index×size to (index+1)×size-1, in bytes
	// first to last; an index no bitstring reaches is read as one past the
	// end, so that the rest is counted for its error.
	first, last := int64(MaxStatusListBytes), int64(MaxStatusListBytes)
	if index >= 0 && index < MaxStatusListBytes*8/size {
		first, last = int64(index*size/8), int64(((index+1)*size-1)/8)
	}
	var entry [3]byte // MaxStatusSize bits span at most 3 bytes
	skipped, err := io.CopyN(io.Discard, lr, first)
	got := 0
	if err == nil {
		got, err = io.ReadFull(lr, entry[:last-first+1])
	}
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
	case err != nil:
		return 0, Errorf(ErrMalformedValue, "GZIP stream: %v", err)
	case index >= 0 && index < MaxStatusListBytes*8/size:
		v := 0
		for bit := index * size; bit < (index+1)*size; bit++ {
			v = v<<1 | int(entry[int64(bit/8)-first]>>(7-bit%8))&1
		}
		return v, nil
	}
	// The entry is not in the list: count the rest of it.
	rest, err := io.Copy(io.Discard, lr)
	if err != nil {
		return 0, Errorf(ErrMalformedValue, "GZIP stream: %v", err)
	}
	n := skipped + int64(got) + rest
	if n > MaxStatusListBytes {
		return 0, Errorf(ErrStatusListLength, "the bitstring exceeds %d bytes", MaxStatusListBytes)
	}
	return 0, Errorf(ErrRange, "index %d is outside the list's %d entries", index, n*8/int64(size))
}

// StatusEntries returns how many entries of size bits a bitstring holds.
func StatusEntries(bits []byte, size int) int { return len(bits) * 8 / size }

// GetStatus reads entry index of size bits (1 to MaxStatusSize; an entry
// may cross a byte boundary), most significant bit first.
func GetStatus(bits []byte, index, size int) (int, error) {
	if index < 0 || index >= StatusEntries(bits, size) {
		return 0, Errorf(ErrRange, "index %d is outside the list's %d entries", index, StatusEntries(bits, size))
	}
	v := 0
	for bit := index * size; bit < (index+1)*size; bit++ {
		v = v<<1 | int(bits[bit/8]>>(7-bit%8))&1
	}
	return v, nil
}

// SetStatus writes value into entry index of size bits.
func SetStatus(bits []byte, index, size, value int) error {
	if index < 0 || index >= StatusEntries(bits, size) {
		return Errorf(ErrRange, "index %d is outside the list's %d entries", index, StatusEntries(bits, size))
	}
	if value < 0 || value >= 1<<size {
		return Errorf(ErrRange, "value %d does not fit in %d bits", value, size)
	}
	for i := range size {
		bit := index*size + i
		mask := byte(0x80 >> (bit % 8))
		if value>>(size-1-i)&1 == 1 {
			bits[bit/8] |= mask
		} else {
			bits[bit/8] &^= mask
		}
	}
	return nil
}
