package tlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// C2SP tlog-tiles parameters.
const (
	// TileWidth is the number of hashes in a full tile, and of entries in a
	// full entry bundle.
	TileWidth = 256
	// TileHeight is the number of tree levels a tile spans: 2^8 = 256.
	TileHeight = 8
	// MaxTileLevel is the highest level a tile path may name.
	MaxTileLevel = 63
	// EntriesLevel is TileID.Level for an entry bundle.
	EntriesLevel = -1
	// MaxEntrySize is the largest entry a bundle carries (uint16 length).
	MaxEntrySize = 1<<16 - 1
)

// TileID names a tile or an entry bundle of a tiled log:
//
//	tile/<L>/<N>[.p/<W>]        level L tile N (Level = L)
//	tile/entries/<N>[.p/<W>]    entry bundle N (Level = EntriesLevel)
//
// N is written in zero-padded groups of three digits, every group but the last
// prefixed with "x" (1234067 is x001/x234/067); W, from 1 to 255, is present
// only for a partial tile, and a full tile has Width TileWidth.
//
// Hash j of tile N at level L is the root of the perfect subtree over leaves
// [(N·256+j)·256^L, (N·256+j+1)·256^L): the node (8·L, N·256+j).
type TileID struct {
	Level int
	Index uint64
	Width int
}

// Path returns the tile's path relative to the log's prefix, with no leading
// slash. The TileID must be valid (see ParseTilePath).
func (t TileID) Path() string {
	var b strings.Builder
	b.WriteString("tile/")
	if t.Level == EntriesLevel {
		b.WriteString("entries")
	} else {
		b.WriteString(strconv.Itoa(t.Level))
	}
	b.WriteByte('/')
	b.WriteString(encodeTileIndex(t.Index))
	if t.Width < TileWidth {
		b.WriteString(".p/")
		b.WriteString(strconv.Itoa(t.Width))
	}
	return b.String()
}

// encodeTileIndex writes n in groups of three digits, all but the last
// prefixed with "x".
func encodeTileIndex(n uint64) string {
	groups := []string{fmt.Sprintf("%03d", n%1000)}
	for n /= 1000; n > 0; n /= 1000 {
		groups = append(groups, fmt.Sprintf("x%03d", n%1000))
	}
	var b strings.Builder
	for i := len(groups) - 1; i >= 0; i-- {
		b.WriteString(groups[i])
		if i > 0 {
			b.WriteByte('/')
		}
	}
	return b.String()
}

// ParseTilePath parses a tile or entry bundle path relative to the log's
// prefix ("tile/..."), accepting only the canonical encoding Path writes: a
// level from 0 to 63 without leading zeros, an index with no leading "x000"
// group, and a partial width from 1 to 255 without leading zeros. Errors wrap
// ErrMalformedTilePath.
func ParseTilePath(path string) (TileID, error) {
	bad := func(why string) (TileID, error) {
		return TileID{}, fmt.Errorf("%w: %q: %s", ErrMalformedTilePath, path, why)
	}
	parts := strings.Split(path, "/")
	if len(parts) < 3 || parts[0] != "tile" {
		return bad("want tile/<level>/<index>")
	}
	var t TileID
	if parts[1] == "entries" {
		t.Level = EntriesLevel
	} else {
		l, err := parseDecimal(parts[1])
		if err != nil || l > MaxTileLevel {
			return bad("level must be 0..63 without leading zeros")
		}
		t.Level = int(l)
	}
	elems := parts[2:]
	t.Width = TileWidth
	if n := len(elems); n >= 2 {
		if last, ok := strings.CutSuffix(elems[n-2], ".p"); ok {
			w, err := parseDecimal(elems[n-1])
			if err != nil || w < 1 || w >= TileWidth {
				return bad("partial width must be 1..255 without leading zeros")
			}
			t.Width = int(w)
			elems = append(elems[:n-2:n-2], last)
		}
	}
	if len(elems) > 7 { // 2^64 has 20 digits: at most 7 groups
		return bad("index too long")
	}
	var idx uint64
	for i, e := range elems {
		if i < len(elems)-1 {
			var ok bool
			if e, ok = strings.CutPrefix(e, "x"); !ok {
				return bad("every index group but the last starts with x")
			}
			if i == 0 && e == "000" {
				return bad("index has a leading zero group")
			}
		}
		if len(e) != 3 || strings.ContainsFunc(e, func(r rune) bool { return r < '0' || r > '9' }) {
			return bad("index groups are three digits")
		}
		g, _ := strconv.ParseUint(e, 10, 64)
		hi, lo := bits.Mul64(idx, 1000)
		sum, carry := bits.Add64(lo, g, 0)
		if hi != 0 || carry != 0 {
			return bad("index overflows 64 bits")
		}
		idx = sum
	}
	t.Index = idx
	return t, nil
}

// Tiles returns the hash tiles of a tree of the given size, level by level:
// at each level its full tiles, then its partial tile if the level has one.
// The level l partial tile has ⌊size/256^l⌋ mod 256 hashes; empty tiles do not
// exist.
func Tiles(size uint64) []TileID {
	var out []TileID
	for level := 0; level <= MaxTileLevel && level*TileHeight < 64; level++ {
		hashes := size >> (uint(level) * TileHeight)
		if hashes == 0 {
			break
		}
		for n := range hashes / TileWidth {
			out = append(out, TileID{Level: level, Index: n, Width: TileWidth})
		}
		if w := hashes % TileWidth; w > 0 {
			out = append(out, TileID{Level: level, Index: hashes / TileWidth, Width: int(w)})
		}
	}
	return out
}

// Bundles returns the entry bundles of a tree of the given size: as its level
// 0 tiles, with Level EntriesLevel.
func Bundles(size uint64) []TileID {
	var out []TileID
	for _, t := range Tiles(size) {
		if t.Level != 0 {
			break
		}
		t.Level = EntriesLevel
		out = append(out, t)
	}
	return out
}

// within reports whether every hash of t exists in a tree of the given size:
// (Index·256 + Width)·256^Level <= size.
func (t TileID) within(size uint64) bool {
	if t.Level < 0 || t.Level*TileHeight >= 64 || t.Width < 1 || t.Width > TileWidth {
		return false
	}
	hi, lo := bits.Mul64(t.Index, TileWidth)
	end, carry := bits.Add64(lo, uint64(t.Width), 0)
	if hi != 0 || carry != 0 {
		return false
	}
	return end <= size>>uint(t.Level*TileHeight)
}

// ReadTile returns the contents of hash tile t of the tree of the given size,
// read from r: its Width hashes, concatenated. It refuses (ErrOutOfRange) a
// tile that is an entry bundle or reaches past size.
func ReadTile(r NodeReader, t TileID, size uint64) ([]byte, error) {
	if t.Level == EntriesLevel || !t.within(size) {
		return nil, fmt.Errorf("%w: tile %s in a tree of size %d", ErrOutOfRange, t.Path(), size)
	}
	out := make([]byte, 0, t.Width*HashSize)
	for j := range uint64(t.Width) {
		h, err := readNode(r, NodeID{Level: uint8(t.Level * TileHeight), Index: t.Index*TileWidth + j})
		if err != nil {
			return nil, fmt.Errorf("tile %s: %w", t.Path(), err)
		}
		out = append(out, h...)
	}
	return out, nil
}

// ParseTile splits a hash tile of the given width into its hashes. Errors
// wrap ErrMalformedTile.
func ParseTile(data []byte, width int) ([][]byte, error) {
	if width < 1 || width > TileWidth || len(data) != width*HashSize {
		return nil, fmt.Errorf("%w: %d bytes for a tile of width %d", ErrMalformedTile, len(data), width)
	}
	out := make([][]byte, width)
	for i := range out {
		out[i] = bytes.Clone(data[i*HashSize : (i+1)*HashSize])
	}
	return out, nil
}

// EncodeBundle returns an entry bundle: each entry prefixed with its length
// as a big-endian uint16. It refuses (ErrMalformedTile) no entries, more than
// 256, or one longer than MaxEntrySize.
func EncodeBundle(entries [][]byte) ([]byte, error) {
	if len(entries) < 1 || len(entries) > TileWidth {
		return nil, fmt.Errorf("%w: %d entries, want 1..%d", ErrMalformedTile, len(entries), TileWidth)
	}
	var b bytes.Buffer
	for i, e := range entries {
		if len(e) > MaxEntrySize {
			return nil, fmt.Errorf("%w: entry %d has %d bytes, at most %d", ErrMalformedTile, i, len(e), MaxEntrySize)
		}
		b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(e))))
		b.Write(e)
	}
	return b.Bytes(), nil
}

// ParseBundle splits an entry bundle of the given width into its entries,
// refusing (ErrMalformedTile) a truncated entry, trailing bytes, or a count
// other than width.
func ParseBundle(data []byte, width int) ([][]byte, error) {
	if width < 1 || width > TileWidth {
		return nil, fmt.Errorf("%w: width %d", ErrMalformedTile, width)
	}
	out := make([][]byte, 0, width)
	for len(data) > 0 {
		if len(out) == width {
			return nil, fmt.Errorf("%w: more than %d entries", ErrMalformedTile, width)
		}
		if len(data) < 2 {
			return nil, fmt.Errorf("%w: truncated length of entry %d", ErrMalformedTile, len(out))
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, fmt.Errorf("%w: entry %d truncated", ErrMalformedTile, len(out))
		}
		out = append(out, bytes.Clone(data[2:2+n]))
		data = data[2+n:]
	}
	if len(out) != width {
		return nil, fmt.Errorf("%w: %d entries, want %d", ErrMalformedTile, len(out), width)
	}
	return out, nil
}
