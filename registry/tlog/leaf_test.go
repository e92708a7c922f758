package tlog

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

func testLeaf() Leaf {
	l := Leaf{
		Index:      42,
		CommitTime: time.Unix(1_800_000_000, 123456789).UTC(),
		Ops: []Op{
			{CID: []byte{0x01, 0x55, 0x12, 0x02, 0xaa, 0xbb}, ResultCID: []byte{0x01, 0x71, 0x12, 0x01, 0xcc}},
			{CID: []byte{0x01}, ResultCID: []byte{0x02, 0x03}},
		},
	}
	for i := range l.MapRoot {
		l.MapRoot[i] = byte(i)
	}
	return l
}

// TestLeafGolden pins the version 1 encoding and its leaf hash (the hash was
// computed outside Go, with python3 hashlib over these bytes): a change to
// either is a new leaf version, never an edit of this one.
func TestLeafGolden(t *testing.T) {
	const (
		wantHex = "01" + // version
			"000000000000002a" + // index 42
			"18fae2769b0fcd15" + // 1_800_000_000.123456789 s in ns
			"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" + // map root
			"0002" + // two operations
			"06015512 02aabb" + "05017112 01cc" +
			"0101" + "020203"
		wantHash = "3427fe38e74f4e027e95126de296f1155358d3742a064afe3e422b9639d1d55e"
	)
	want, err := hex.DecodeString(removeSpaces(wantHex))
	if err != nil {
		t.Fatal(err)
	}
	got, err := testLeaf().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode =\n%x\nwant\n%x", got, want)
	}
	if h := hex.EncodeToString(LeafHash(got)); h != wantHash {
		t.Fatalf("LeafHash = %s, want %s", h, wantHash)
	}
	back, err := DecodeLeaf(got)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := back.Encode(); !bytes.Equal(again, got) {
		t.Fatal("decode then encode changed the bytes")
	}
	if !back.CommitTime.Equal(testLeaf().CommitTime) || back.Index != 42 || len(back.Ops) != 2 {
		t.Fatalf("decoded %+v", back)
	}
}

func removeSpaces(s string) string { return string(bytes.ReplaceAll([]byte(s), []byte(" "), nil)) }

func TestLeafNoOps(t *testing.T) {
	l := Leaf{Index: 1, CommitTime: time.Unix(0, 0)}
	b, err := l.Encode()
	if err != nil || len(b) != leafFixedSize {
		t.Fatalf("Encode = %d bytes, %v", len(b), err)
	}
	back, err := DecodeLeaf(b)
	if err != nil || len(back.Ops) != 0 {
		t.Fatalf("DecodeLeaf = %+v, %v", back, err)
	}
}

func TestLeafEncodeRefusals(t *testing.T) {
	base := testLeaf()
	with := func(f func(*Leaf)) Leaf {
		l := base
		l.Ops = append([]Op(nil), base.Ops...)
		f(&l)
		return l
	}
	bigOps := make([]Op, 200)
	for i := range bigOps {
		bigOps[i] = Op{CID: make([]byte, MaxCIDSize), ResultCID: make([]byte, MaxCIDSize)}
	}
	tests := []struct {
		name string
		leaf Leaf
		want error
	}{
		{"index 0", with(func(l *Leaf) { l.Index = 0 }), ErrLeafMalformed},
		{"commit time past 2262", with(func(l *Leaf) { l.CommitTime = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }), ErrLeafMalformed},
		{"zero commit time", with(func(l *Leaf) { l.CommitTime = time.Time{} }), ErrLeafMalformed},
		{"empty operation CID", with(func(l *Leaf) { l.Ops[0].CID = nil }), ErrLeafMalformed},
		{"empty result CID", with(func(l *Leaf) { l.Ops[1].ResultCID = nil }), ErrLeafMalformed},
		{"CID of 256 bytes", with(func(l *Leaf) { l.Ops[0].CID = make([]byte, 256) }), ErrLeafMalformed},
		{"larger than a bundle entry", with(func(l *Leaf) { l.Ops = bigOps }), ErrLeafTooLarge},
	}
	for _, tc := range tests {
		if _, err := tc.leaf.Encode(); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestDecodeLeafRefusals(t *testing.T) {
	good, err := testLeaf().Encode()
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrLeafMalformed},
		{"version 2", mod(func(b []byte) []byte { b[0] = 2; return b }), ErrLeafVersion},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0; return b }), ErrLeafVersion},
		{"short of the fixed part", good[:leafFixedSize-1], ErrLeafMalformed},
		{"index 0", mod(func(b []byte) []byte { copy(b[1:9], make([]byte, 8)); return b }), ErrLeafMalformed},
		{"one op more than present", mod(func(b []byte) []byte { b[leafFixedSize-1]++; return b }), ErrLeafMalformed},
		{"a truncated CID", good[:len(good)-1], ErrLeafMalformed},
		{"trailing bytes", append(bytes.Clone(good), 0), ErrLeafMalformed},
		{"an empty CID", mod(func(b []byte) []byte { b[leafFixedSize] = 0; return b }), ErrLeafMalformed},
		{"larger than a bundle entry", append(bytes.Clone(good), make([]byte, MaxLeafSize)...), ErrLeafTooLarge},
	}
	for _, tc := range tests {
		if _, err := DecodeLeaf(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzDecodeLeaf: whatever DecodeLeaf accepts encodes back to the same bytes
// (one leaf, one encoding).
func FuzzDecodeLeaf(f *testing.F) {
	good, _ := testLeaf().Encode()
	f.Add(good)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeLeaf(b)
		if err != nil {
			return
		}
		again, err := l.Encode()
		if err != nil {
			t.Fatalf("a decoded leaf does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("DecodeLeaf accepted a non-canonical encoding:\n%x\n%x", b, again)
		}
	})
}
