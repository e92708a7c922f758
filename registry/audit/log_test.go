package audit

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/tlog"
)

// testLog is a log of n leaves with raft indices 1..n (index idx[i] when
// set) written to a mirror directory, and a verifier of its checkpoints.
type testLog struct {
	dir    string
	leaves [][]byte
	nodes  *tlog.MemStore
	signer *tlog.CosignatureSigner
	v      *tlog.Verifier
	origin string
}

func mustNewTestLog(t *testing.T, n int, index func(i int) uint64) *testLog {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tlog.NewCosignatureSigner("cosigner.example", priv)
	if err != nil {
		t.Fatal(err)
	}
	origin, err := tlog.Origin("bafkreitest")
	if err != nil {
		t.Fatal(err)
	}
	v, err := tlog.NewVerifier(origin, []tlog.CosignerKey{s.Key()}, 1)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{dir: t.TempDir(), nodes: tlog.NewMemStore(), signer: s, v: v, origin: origin}
	tree := tlog.NewLog()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		leaf := tlog.Leaf{Index: index(i), CommitTime: base.Add(time.Duration(i) * time.Second), Ops: []tlog.Op{{CID: []byte{1, byte(i)}, ResultCID: []byte{2, byte(i)}}}}
		enc, err := tree.AppendLeaf(l.nodes, leaf)
		if err != nil {
			t.Fatal(err)
		}
		l.leaves = append(l.leaves, enc)
	}
	size := uint64(n)
	for _, id := range tlog.Tiles(size) {
		b, err := tlog.ReadTile(l.nodes, id, size)
		if err != nil {
			t.Fatal(err)
		}
		l.write(t, id.Path(), b)
	}
	for _, id := range tlog.Bundles(size) {
		first := id.Index * tlog.TileWidth
		b, err := tlog.EncodeBundle(l.leaves[first : first+uint64(id.Width)])
		if err != nil {
			t.Fatal(err)
		}
		l.write(t, id.Path(), b)
	}
	l.write(t, "checkpoint", l.note(t, size, nil))
	return l
}

func (l *testLog) write(t *testing.T, rel string, b []byte) {
	t.Helper()
	p := filepath.Join(l.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// note is the signed checkpoint at size, with root (nil: the log's own).
func (l *testLog) note(t *testing.T, size uint64, root []byte) []byte {
	t.Helper()
	if root == nil {
		var err error
		if root, err = tlog.RootAt(l.nodes, size); err != nil {
			t.Fatal(err)
		}
	}
	cp := tlog.Checkpoint{Origin: l.origin, Size: size}
	copy(cp.Hash[:], root)
	sig, err := l.signer.Sign(cp, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tlog.SignedNote(cp, sig)
}

func seq(i int) uint64 { return uint64(i) + 1 }

func TestReadLogFromAMirror(t *testing.T) {
	l := mustNewTestLog(t, 300, seq)
	got, err := ReadLog(Dir{Root: l.dir}, l.v, l.note(t, 100, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Leaves) != 300 || got.Checkpoint.Checkpoint.Size != 300 {
		t.Fatalf("%d leaves, size %d", len(got.Leaves), got.Checkpoint.Checkpoint.Size)
	}
	// A mirror holding only full tiles: partial ones are their prefixes.
	if err := os.Remove(filepath.Join(l.dir, "tile", "0", "001.p", "44")); err != nil {
		t.Fatal(err)
	}
	prefix, err := tlog.ReadTile(l.nodes, tlog.TileID{Level: 0, Index: 1, Width: 44}, 300)
	if err != nil {
		t.Fatal(err)
	}
	full := append(prefix, make([]byte, (tlog.TileWidth-44)*tlog.HashSize)...) // past the prefix: not read
	l.write(t, "tile/0/001", full)
	if _, err := ReadLog(Dir{Root: l.dir}, l.v, nil); err != nil {
		t.Fatalf("a mirror with the full tile 0/001 only: %v", err)
	}
	full[0] ^= 1
	l.write(t, "tile/0/001", full)
	var d *Divergence
	if _, err := ReadLog(Dir{Root: l.dir}, l.v, nil); !errors.As(err, &d) || d.Leaf != 256 {
		t.Fatalf("a full tile 0/001 whose first hash differs: %v, want a divergence at leaf 256", err)
	}
}

func TestReadLogDivergences(t *testing.T) {
	tests := []struct {
		name     string
		index    func(int) uint64
		alter    func(t *testing.T, l *testLog) []byte // returns --since
		wantLeaf uint64
	}{
		{name: "raft index goes back", index: func(i int) uint64 {
			if i == 7 {
				return 3
			}
			return seq(i)
		}, wantLeaf: 7},
		{name: "hash tile differs", index: seq, alter: func(t *testing.T, l *testLog) []byte {
			b, _ := tlog.ReadTile(l.nodes, tlog.TileID{Level: 0, Width: 20}, 20)
			b[5*tlog.HashSize] ^= 1
			l.write(t, "tile/0/000.p/20", b)
			return nil
		}, wantLeaf: 5},
		{name: "saved checkpoint of another history", index: seq, alter: func(t *testing.T, l *testLog) []byte {
			return l.note(t, 10, make([]byte, tlog.HashSize))
		}, wantLeaf: 10},
		{name: "rolled back past the saved checkpoint", index: seq, alter: func(t *testing.T, l *testLog) []byte {
			return l.note(t, 30, make([]byte, tlog.HashSize))
		}, wantLeaf: 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := mustNewTestLog(t, 20, tc.index)
			var since []byte
			if tc.alter != nil {
				since = tc.alter(t, l)
			}
			got, err := ReadLog(Dir{Root: l.dir}, l.v, since)
			var d *Divergence
			if !errors.As(err, &d) || d.Leaf != tc.wantLeaf || got == nil {
				t.Fatalf("ReadLog: %v, want a divergence at leaf %d with the log", err, tc.wantLeaf)
			}
		})
	}
}

func TestReadLogRefusesAnUncosignedCheckpoint(t *testing.T) {
	l := mustNewTestLog(t, 5, seq)
	other := mustNewTestLog(t, 5, seq) // another cosigner's key
	if _, err := ReadLog(Dir{Root: l.dir}, other.v, nil); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("ReadLog with another cosigner set: %v, want ErrCheckpoint", err)
	}
}
