package proof

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// The forms a bundle is written in: its JSON, its CBOR, and either of them
// compressed with gzip (RFC 1952), a byte string that starts with the
// gzip magic 0x1f 0x8b. A JSON text starts with '{' or white space, a
// CBOR map with its initial byte 0xa0 to 0xbf: the first bytes tell the
// forms apart.
const (
	gzipMagic0, gzipMagic1 = 0x1f, 0x8b
)

// ParseAny reads a bundle in any of its forms: JSON (ParseBundle), CBOR
// (ParseBundleCBOR), or gzip of either. A compressed bundle's compressed
// and uncompressed bytes are each at most MaxBundleSize, and the gzip
// stream holds one member and nothing after it. Errors wrap ErrMalformed.
func ParseAny(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(data), MaxBundleSize)
	}
	if len(data) >= 2 && data[0] == gzipMagic0 && data[1] == gzipMagic1 {
		raw, err := gunzip(data)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrMalformed, err)
		}
		if len(raw) >= 2 && raw[0] == gzipMagic0 && raw[1] == gzipMagic1 {
			return nil, fmt.Errorf("%w: gzip inside gzip", ErrMalformed)
		}
		data = raw
	}
	if len(data) > 0 && data[0]>>5 == 5 {
		return ParseBundleCBOR(data)
	}
	return ParseBundle(data)
}

// errTooLarge: a compressed bundle expands past MaxBundleSize.
var errTooLarge = errors.New("the bundle expands past the size limit")

// gunzip returns the bytes one gzip member compresses, at most
// MaxBundleSize of them, and refuses data after the member.
func gunzip(data []byte) ([]byte, error) {
	br := bytes.NewReader(data) // an io.ByteReader: gzip reads no further than its member
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	raw, err := io.ReadAll(io.LimitReader(zr, MaxBundleSize+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxBundleSize {
		return nil, fmt.Errorf("%w: more than %d bytes", errTooLarge, MaxBundleSize)
	}
	if br.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the gzip member", br.Len())
	}
	return raw, nil
}

// Compress returns data (a bundle's JSON or CBOR) compressed with gzip at
// the best compression, a form ParseAny reads.
func Compress(data []byte) []byte {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		panic(err) // unreachable: the level is valid
	}
	// Writes to a bytes.Buffer do not fail.
	_, _ = zw.Write(data)
	_ = zw.Close()
	return buf.Bytes()
}
