package record

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// sameStatus fails t unless EncodedStatus's answer for entry i of size
// bits of encoded is GetStatus's for bits: the same value, or an error of
// the same text.
func sameStatus(t *testing.T, encoded string, bits []byte, i, size int) {
	t.Helper()
	want, werr := GetStatus(bits, i, size)
	got, err := EncodedStatus(encoded, i, size)
	if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) || got != want {
		t.Fatalf("%d bytes, entry %d of %d bits: %d %v, GetStatus gives %d %v", len(bits), i, size, got, err, want, werr)
	}
}

// TestEncodedStatusIsGetStatus: EncodedStatus answers every entry of a
// list, and indexes outside it, as GetStatus answers them from the decoded
// bitstring (the value, or the error's text), for every statusSize from 1
// to MaxStatusSize, over lists whose length is not a whole number of
// entries, entries that cross bytes, and a list longer than the
// decompressor's 32 KiB window.
func TestEncodedStatusIsGetStatus(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 3, 37, 70000} {
		bits := make([]byte, n)
		for i := range bits {
			if rng.IntN(4) == 0 {
				bits[i] = byte(rng.Uint32())
			}
		}
		encoded, err := EncodeBitstring(bits)
		if err != nil {
			t.Fatal(err)
		}
		for size := 1; size <= MaxStatusSize; size++ {
			if n > 100 && size != 1 && size != 7 && size != MaxStatusSize {
				continue // the long list at a few sizes: each read decompresses it
			}
			entries := StatusEntries(bits, size)
			indexes := []int{-1, math.MinInt, math.MaxInt, entries, entries + 1, MaxStatusListBytes*8/size - 1, MaxStatusListBytes * 8 / size}
			if entries <= 300 {
				for i := range entries {
					indexes = append(indexes, i)
				}
			} else {
				indexes = append(indexes, 0, 1, entries/2, entries-1)
				for range 10 {
					indexes = append(indexes, rng.IntN(entries))
				}
			}
			for _, i := range indexes {
				sameStatus(t, encoded, bits, i, size)
			}
		}
	}
}

// TestEncodedStatusRefusesWhatDecodeBitstringRefuses: an encodedList that
// is not one, and a statusSize outside 1 to MaxStatusSize, are errors.
func TestEncodedStatusRefusesWhatDecodeBitstringRefuses(t *testing.T) {
	good, err := EncodeBitstring(make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, encoded string
		size          int
	}{
		{"no multibase prefix", good[1:], 1},
		{"not base64url", "u!!!!", 1},
		{"not GZIP", "u" + base64.RawURLEncoding.EncodeToString([]byte("plain bytes, no header")), 1},
		{"statusSize 0", good, 0},
		{"statusSize above the largest", good, MaxStatusSize + 1},
	} {
		_, err := EncodedStatus(c.encoded, 0, c.size)
		if !errors.Is(err, ErrMalformedValue) {
			t.Fatalf("%s: %v, want MALFORMED_VALUE", c.name, err)
		}
		if _, derr := DecodeBitstring(c.encoded); c.size == 1 && (derr == nil || derr.Error() != err.Error()) {
			t.Fatalf("%s: %v, DecodeBitstring says %v", c.name, err, derr)
		}
	}
}

// TestEncodedStatusReadsOnlyUpToTheEntry: an entry is read without
// decompressing what follows it. A GZIP stream cut off after its first
// half, which DecodeBitstring refuses, answers every entry of that half;
// an entry of the half that is missing is a MALFORMED_VALUE error.
func TestEncodedStatusReadsOnlyUpToTheEntry(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	bits := make([]byte, 2*MinStatusListEntries/8)
	for i := range bits {
		bits[i] = byte(rng.Uint32())
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	half := len(bits) / 2
	if _, err := zw.Write(bits[:half]); err != nil {
		t.Fatal(err)
	}
	if err := zw.Flush(); err != nil { // the first half, whole, byte-aligned
		t.Fatal(err)
	}
	cut := buf.Len()
	if _, err := zw.Write(bits[half:]); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	encoded := "u" + base64.RawURLEncoding.EncodeToString(buf.Bytes()[:cut])
	if _, err := DecodeBitstring(encoded); !errors.Is(err, ErrMalformedValue) {
		t.Fatalf("DecodeBitstring read the stream cut off: %v", err)
	}
	for _, i := range []int{0, 1, half*8 - 1, rng.IntN(half * 8)} {
		want, _ := GetStatus(bits, i, 1)
		if got, err := EncodedStatus(encoded, i, 1); err != nil || got != want {
			t.Fatalf("entry %d, before the cut: %d %v, want %d", i, got, err, want)
		}
	}
	if got, err := EncodedStatus(encoded, half*8, 1); !errors.Is(err, ErrMalformedValue) {
		t.Fatalf("entry %d, after the cut: %d %v, want MALFORMED_VALUE", half*8, got, err)
	}
}

// FuzzEncodedStatus: whatever encodedList DecodeBitstring decodes,
// EncodedStatus answers each entry as GetStatus does from its bitstring.
func FuzzEncodedStatus(f *testing.F) {
	f.Add("uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA", 131071, uint8(1))
	twelve, _ := EncodeBitstring([]byte{0xa5, 0x5a, 0xff, 0x00, 0x81, 0x18, 0x3c})
	f.Add(twelve, 3, uint8(12))
	f.Add(twelve, 4, uint8(12))
	f.Add(twelve, -1, uint8(3))
	f.Fuzz(func(t *testing.T, encoded string, i int, size uint8) {
		bits, err := DecodeBitstring(encoded)
		if err != nil || size < 1 || size > MaxStatusSize {
			return
		}
		sameStatus(t, encoded, bits, i, int(size))
	})
}

// BenchmarkDecodeBitstring decodes a list of 2^17 entries (16 KiB) and
// one of 2^27 (16 MiB, the most a list holds), a tenth of its bits set.
func BenchmarkDecodeBitstring(b *testing.B) {
	for _, n := range []int{1 << 14, MaxStatusListBytes} {
		bits := make([]byte, n)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range n / 10 {
			_ = i
			bits[rng.IntN(n)] |= 1 << rng.IntN(8)
		}
		encoded, err := EncodeBitstring(bits)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("bytes="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeBitstring(encoded); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDecodeBitstringTrailerSizes: the room DecodeBitstring makes from a
// stream's size trailer is bounded by what the stream can hold, and a
// trailer that lies (too large, too small) changes no answer: the list
// decodes as before where the trailer is right, and one whose trailer is
// wrong is refused by GZIP's own check.
func TestDecodeBitstringTrailerSizes(t *testing.T) {
	bits := bytes.Repeat([]byte{0, 0x80, 0, 0, 0x01}, 1000)
	encoded, err := EncodeBitstring(bits)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(encoded[1:])
	if err != nil {
		t.Fatal(err)
	}
	if got := sizeHint(raw); got != len(bits) {
		t.Fatalf("sizeHint %d for a stream of %d bytes", got, len(bits))
	}
	if got, err := DecodeBitstring(encoded); err != nil || !bytes.Equal(got, bits) {
		t.Fatalf("decoded %d bytes, %v", len(got), err)
	}
	for _, size := range []uint32{math.MaxUint32, 1} {
		lying := bytes.Clone(raw)
		lying[len(lying)-4], lying[len(lying)-3], lying[len(lying)-2], lying[len(lying)-1] = byte(size), byte(size>>8), byte(size>>16), byte(size>>24)
		if h := sizeHint(lying); h > 1032*len(lying) || h > MaxStatusListBytes {
			t.Fatalf("trailer %d: room for %d bytes from a stream of %d", size, h, len(lying))
		}
		if _, err := DecodeBitstring("u" + base64.RawURLEncoding.EncodeToString(lying)); err == nil || !errors.Is(err, ErrMalformedValue) {
			t.Fatalf("trailer %d: %v, want a malformed GZIP stream", size, err)
		}
	}
	if sizeHint(raw[:10]) != 0 {
		t.Fatal("sizeHint of a stream too short for a trailer")
	}
}
