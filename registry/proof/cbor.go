package proof

import (
	"bytes"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/trustreg/trustreg/registry/tlog"
)

// MediaTypeCBOR is the media type of a bundle's CBOR form.
const MediaTypeCBOR = "application/cbor"

// Bounds of what the CBOR decoder reads, beyond MaxBundleSize: a bundle is
// 3 levels deep today (the bundle map, its records array, a record map),
// with at most 12 pairs in a map and MaxRecords items in an array; the
// bounds leave room for fields to come.
const (
	cborMaxNesting  = 8
	cborMaxMapPairs = 64
	cborMaxArray    = MaxRecords
)

// cborEnc writes the CBOR form in RFC 8949's core deterministic encoding
// (§4.2.1: shortest heads, definite lengths, map keys sorted by their
// encoded bytes), times as RFC 3339 text as in JSON, and a nil byte string
// (an absent record) as null.
var cborEnc = func() cbor.EncMode {
	m, err := cbor.EncOptions{
		Sort:          cbor.SortCoreDeterministic,
		Time:          cbor.TimeRFC3339Nano,
		IndefLength:   cbor.IndefLengthForbidden,
		NilContainers: cbor.NilContainerAsNull,
		TagsMd:        cbor.TagsForbidden,
	}.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// cborDec reads the CBOR form strictly: definite lengths only, no tags, no
// duplicate or unknown keys, keys matched case-sensitively, byte strings
// only where bytes go, nesting bounded.
var cborDec = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:          cbor.DupMapKeyEnforcedAPF,
		IndefLength:        cbor.IndefLengthForbidden,
		TagsMd:             cbor.TagsForbidden,
		ExtraReturnErrors:  cbor.ExtraDecErrorUnknownField,
		FieldNameMatching:  cbor.FieldNameMatchingCaseSensitive,
		MaxNestedLevels:    cborMaxNesting,
		MaxArrayElements:   cborMaxArray,
		MaxMapPairs:        cborMaxMapPairs,
		UTF8:               cbor.UTF8RejectInvalid,
		ByteStringToString: cbor.ByteStringToStringForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// MarshalCBOR returns the bundle's CBOR form (the package comment
// describes it).
func (b *Bundle) MarshalCBOR() ([]byte, error) {
	type plain Bundle // no MarshalCBOR: encode the fields
	p := plain(*b)
	if len(p.Consistency) == 0 {
		p.Consistency = nil // omitted, as in JSON (a Marshaler is never "empty")
	}
	return cborEnc.Marshal(&p)
}

// ParseBundleCBOR reads a bundle's CBOR form strictly: one CBOR map of at
// most MaxBundleSize bytes and nothing after it, no duplicate or unknown
// keys, version 1, and exactly the bytes MarshalCBOR writes for the bundle
// it holds (the deterministic encoding). Errors wrap ErrMalformed.
func ParseBundleCBOR(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(data), MaxBundleSize)
	}
	type plain Bundle
	var b plain
	if err := cborDec.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if b.Version != Version {
		return nil, fmt.Errorf("%w: version %d; this build reads version %d", ErrMalformed, b.Version, Version)
	}
	// One bundle, one encoding: what the decoder lets through in another
	// form (a time as a number, keys out of order, an explicit zero for
	// an omitted field) is refused.
	again, err := (*Bundle)(&b).MarshalCBOR()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !bytes.Equal(again, data) {
		return nil, fmt.Errorf("%w: CBOR not in the deterministic encoding of its bundle (RFC 8949 §4.2.1, times as RFC 3339 text, empty optional fields left out)", ErrMalformed)
	}
	return (*Bundle)(&b), nil
}

// MarshalCBOR writes the hashes as one byte string of their
// concatenation.
func (h Hashes) MarshalCBOR() ([]byte, error) {
	b, err := h.concat()
	if err != nil {
		return nil, err
	}
	return cborEnc.Marshal(b)
}

// UnmarshalCBOR reads one byte string of concatenated 32-byte hashes.
func (h *Hashes) UnmarshalCBOR(data []byte) error {
	var b []byte
	if err := cborDec.Unmarshal(data, &b); err != nil {
		return err
	}
	return h.split(b)
}

// concat is the hashes concatenated, each checked to be 32 bytes.
func (h Hashes) concat() ([]byte, error) {
	b := make([]byte, 0, len(h)*tlog.HashSize)
	for _, x := range h {
		if len(x) != tlog.HashSize {
			return nil, fmt.Errorf("%w: a hash of %d bytes", ErrMalformed, len(x))
		}
		b = append(b, x...)
	}
	return b, nil
}

// split sets h to the 32-byte hashes b concatenates.
func (h *Hashes) split(b []byte) error {
	if len(b)%tlog.HashSize != 0 {
		return fmt.Errorf("%d bytes of hashes, not a multiple of %d", len(b), tlog.HashSize)
	}
	if len(b)/tlog.HashSize > tlog.MaxProofHashes {
		return fmt.Errorf("%d hashes, at most %d", len(b)/tlog.HashSize, tlog.MaxProofHashes)
	}
	out := make(Hashes, 0, len(b)/tlog.HashSize)
	for i := 0; i < len(b); i += tlog.HashSize {
		out = append(out, b[i:i+tlog.HashSize:i+tlog.HashSize])
	}
	*h = out
	return nil
}
