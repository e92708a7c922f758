package tlog

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestTilePathRoundTrip(t *testing.T) {
	tests := []struct {
		tile TileID
		path string
	}{
		{TileID{0, 0, 256}, "tile/0/000"},
		{TileID{0, 5, 17}, "tile/0/005.p/17"},
		{TileID{1, 999, 256}, "tile/1/999"},
		{TileID{2, 1000, 256}, "tile/2/x001/000"},
		{TileID{63, 1234067, 255}, "tile/63/x001/x234/067.p/255"},
		{TileID{EntriesLevel, 1234067, 256}, "tile/entries/x001/x234/067"},
		{TileID{EntriesLevel, 0, 112}, "tile/entries/000.p/112"},
		{TileID{0, math.MaxUint64, 256}, "tile/0/x018/x446/x744/x073/x709/x551/615"},
	}
	for _, tc := range tests {
		if got := tc.tile.Path(); got != tc.path {
			t.Errorf("%+v.Path() = %q, want %q", tc.tile, got, tc.path)
		}
		if got, err := ParseTilePath(tc.path); err != nil || got != tc.tile {
			t.Errorf("ParseTilePath(%q) = %+v, %v; want %+v", tc.path, got, err, tc.tile)
		}
	}
}

func TestParseTilePathRefusals(t *testing.T) {
	for _, p := range []string{
		"",
		"tile",
		"tile/0",
		"/tile/0/000",
		"tiles/0/000",
		"tile/64/000",      // level above 63
		"tile/01/000",      // level with a leading zero
		"tile/-1/000",      // entries are named, not numbered
		"tile/0/0",         // index group of one digit
		"tile/0/0000",      // of four
		"tile/0/x000/001",  // leading zero group
		"tile/0/001/002",   // a group without x
		"tile/0/x001",      // the last group with x
		"tile/0/00a",       // not a digit
		"tile/0/000.p/0",   // width 0
		"tile/0/000.p/256", // width of a full tile
		"tile/0/000.p/017", // width with a leading zero
		"tile/0/000.p",     // no width
		"tile/0/000.p/",    // empty width
		"tile/0/x018/x446/x744/x073/x709/x551/616",      // 2^64
		"tile/0/x001/x018/x446/x744/x073/x709/x551/615", // eight groups
		"tile/entries/000/",                             // trailing slash
	} {
		if got, err := ParseTilePath(p); !errors.Is(err, ErrMalformedTilePath) {
			t.Errorf("ParseTilePath(%q) = %+v, %v; want ErrMalformedTilePath", p, got, err)
		}
	}
}

// TestReadTile checks tile contents against the definition: hash j of tile N
// at level L is MTH of leaves [(N*256+j)*256^L, (N*256+j+1)*256^L).
func TestReadTile(t *testing.T) {
	const size = 256*256 + 3*256 + 7 // two levels of tiles, partial at both
	leaves := testLeaves(size)
	_, s := mustBuildLog(t, leaves)
	tiles := Tiles(size)
	var checked int
	for _, tile := range tiles {
		data, err := ReadTile(s, tile, size)
		if err != nil {
			t.Fatalf("ReadTile(%s): %v", tile.Path(), err)
		}
		hashes, err := ParseTile(data, tile.Width)
		if err != nil {
			t.Fatal(err)
		}
		// Check the first and last hash of each tile against the reference.
		span := uint64(1) << (TileHeight * tile.Level)
		for j, h := range hashes {
			if j != 0 && j != len(hashes)-1 {
				continue
			}
			lo := (tile.Index*TileWidth + uint64(j)) * span
			if ref := refMTH(leaves[lo : lo+span]); !bytes.Equal(h, ref) {
				t.Fatalf("%s hash %d differs from MTH of leaves [%d, %d)", tile.Path(), j, lo, lo+span)
			}
			checked++
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d hashes", checked)
	}
	// The partial tiles of this size.
	last := tiles[len(tiles)-1]
	if last != (TileID{Level: 2, Index: 0, Width: 1}) {
		t.Fatalf("last tile %+v", last)
	}
}

func TestReadTileRefusals(t *testing.T) {
	const size = 300
	_, s := mustBuildLog(t, testLeaves(size))
	for _, tile := range []TileID{
		{0, 1, 45},             // one past the 44 leaves of the partial tile
		{0, 1, 256},            // the full tile is not there yet
		{1, 0, 2},              // only one level-1 hash exists
		{EntriesLevel, 0, 1},   // a bundle is not a hash tile
		{8, 0, 1},              // a level-8 hash spans 2^64 leaves
		{0, math.MaxUint64, 1}, // overflow
	} {
		if _, err := ReadTile(s, tile, size); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("ReadTile(%+v) = %v, want ErrOutOfRange", tile, err)
		}
	}
	// Asking for more than is stored reports the missing node.
	if _, err := ReadTile(s, TileID{0, 1, 50}, 400); !errors.Is(err, ErrNodeNotFound) {
		t.Errorf("ReadTile past the store = %v, want ErrNodeNotFound", err)
	}
	for _, tc := range []struct {
		data  []byte
		width int
	}{{make([]byte, 31), 1}, {make([]byte, 64), 1}, {nil, 0}, {make([]byte, 257*32), 257}} {
		if _, err := ParseTile(tc.data, tc.width); !errors.Is(err, ErrMalformedTile) {
			t.Errorf("ParseTile(%d bytes, %d) = %v, want ErrMalformedTile", len(tc.data), tc.width, err)
		}
	}
}

// TestBundles: entry bundles of leaves round-trip, and their entries hash to
// the level 0 tile.
func TestBundles(t *testing.T) {
	const size = 300
	var leaves [][]byte
	for i := range size {
		l, err := (Leaf{Index: uint64(i + 1), CommitTime: testClockStart, Ops: []Op{{CID: []byte{byte(i)}, ResultCID: []byte{1}}}}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, l)
	}
	_, s := mustBuildLog(t, leaves)
	bundles := Bundles(size)
	if len(bundles) != 2 || bundles[1] != (TileID{EntriesLevel, 1, 44}) || bundles[1].Path() != "tile/entries/001.p/44" {
		t.Fatalf("bundles %+v", bundles)
	}
	for _, b := range bundles {
		lo := b.Index * TileWidth
		data, err := EncodeBundle(leaves[lo : lo+uint64(b.Width)])
		if err != nil {
			t.Fatal(err)
		}
		entries, err := ParseBundle(data, b.Width)
		if err != nil {
			t.Fatal(err)
		}
		tile, err := ReadTile(s, TileID{0, b.Index, b.Width}, size)
		if err != nil {
			t.Fatal(err)
		}
		hashes, _ := ParseTile(tile, b.Width)
		for j, e := range entries {
			if _, err := DecodeLeaf(e); err != nil {
				t.Fatalf("bundle entry %d: %v", j, err)
			}
			if !bytes.Equal(LeafHash(e), hashes[j]) {
				t.Fatalf("bundle %d entry %d does not hash to the tile", b.Index, j)
			}
		}
	}
}

func TestBundleRefusals(t *testing.T) {
	if _, err := EncodeBundle(nil); !errors.Is(err, ErrMalformedTile) {
		t.Errorf("EncodeBundle(none) = %v", err)
	}
	if _, err := EncodeBundle(make([][]byte, 257)); !errors.Is(err, ErrMalformedTile) {
		t.Errorf("EncodeBundle(257) = %v", err)
	}
	if _, err := EncodeBundle([][]byte{make([]byte, MaxEntrySize+1)}); !errors.Is(err, ErrMalformedTile) {
		t.Errorf("EncodeBundle(an entry of 65536) = %v", err)
	}
	good, _ := EncodeBundle([][]byte{[]byte("ab"), []byte("c")})
	for name, tc := range map[string]struct {
		data  []byte
		width int
	}{
		"fewer entries":    {good, 3},
		"more entries":     {good, 1},
		"truncated entry":  {good[:len(good)-1], 2},
		"truncated length": {append(bytes.Clone(good), 0), 3},
		"width 0":          {good, 0},
		"width 257":        {good, 257},
	} {
		if _, err := ParseBundle(tc.data, tc.width); !errors.Is(err, ErrMalformedTile) {
			t.Errorf("ParseBundle, %s: err = %v, want ErrMalformedTile", name, err)
		}
	}
}

// FuzzParseTilePath: whatever parses prints back to the same path.
func FuzzParseTilePath(f *testing.F) {
	f.Add("tile/0/x001/x234/067.p/112")
	f.Add("tile/entries/000")
	f.Fuzz(func(t *testing.T, p string) {
		tile, err := ParseTilePath(p)
		if err != nil {
			return
		}
		if got := tile.Path(); got != p {
			t.Fatalf("ParseTilePath(%q) printed back as %q", p, got)
		}
	})
}
