package tlog

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
)

// The reference below is RFC 6962 section 2.1 written out as recursion, with
// no compact ranges or node IDs: MTH, PATH and PROOF straight from the text.

func refLeafHash(d []byte) []byte {
	h := sha256.Sum256(append([]byte{0}, d...))
	return h[:]
}

func refNodeHash(l, r []byte) []byte {
	h := sha256.Sum256(append(append([]byte{1}, l...), r...))
	return h[:]
}

// refSplit is the largest power of two smaller than n (n >= 2).
func refSplit(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

func refMTH(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		h := sha256.Sum256(nil)
		return h[:]
	case 1:
		return refLeafHash(leaves[0])
	}
	k := refSplit(len(leaves))
	return refNodeHash(refMTH(leaves[:k]), refMTH(leaves[k:]))
}

func refPath(m int, leaves [][]byte) [][]byte {
	if len(leaves) <= 1 {
		return nil
	}
	k := refSplit(len(leaves))
	if m < k {
		return append(refPath(m, leaves[:k]), refMTH(leaves[k:]))
	}
	return append(refPath(m-k, leaves[k:]), refMTH(leaves[:k]))
}

func refSubproof(m int, leaves [][]byte, b bool) [][]byte {
	n := len(leaves)
	if m == n {
		if b {
			return nil
		}
		return [][]byte{refMTH(leaves)}
	}
	k := refSplit(n)
	if m <= k {
		return append(refSubproof(m, leaves[:k], b), refMTH(leaves[k:]))
	}
	return append(refSubproof(m-k, leaves[k:], false), refMTH(leaves[:k]))
}

func refProof(m int, leaves [][]byte) [][]byte {
	if m == 0 || m == len(leaves) {
		return nil
	}
	return refSubproof(m, leaves, true)
}

func testLeaves(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "leaf %d", i)
	}
	return out
}

// mustBuildLog appends the leaves to a new log over a MemStore.
func mustBuildLog(t *testing.T, leaves [][]byte) (*Log, *MemStore) {
	t.Helper()
	l, s := NewLog(), NewMemStore()
	for i, d := range leaves {
		if err := l.Append(s, LeafHash(d)); err != nil {
			t.Fatalf("append leaf %d: %v", i, err)
		}
	}
	return l, s
}

func TestLogAgainstReference(t *testing.T) {
	const n = 70
	leaves := testLeaves(n)
	l, s := NewLog(), NewMemStore()
	if got := l.Root(); !bytes.Equal(got, refMTH(nil)) {
		t.Fatalf("empty root = %x, want %x", got, refMTH(nil))
	}
	for i, d := range leaves {
		if err := l.Append(s, LeafHash(d)); err != nil {
			t.Fatal(err)
		}
		if got, want := l.Root(), refMTH(leaves[:i+1]); !bytes.Equal(got, want) {
			t.Fatalf("size %d: root %x, want %x", i+1, got, want)
		}
	}
	if l.Size() != n {
		t.Fatalf("size %d, want %d", l.Size(), n)
	}
	// A tree of n leaves has 2n - popcount(n) complete subtrees.
	if got, want := s.Len(), 2*n-3; got != want { // popcount(70) = 3
		t.Errorf("stored %d nodes, want %d", got, want)
	}
	for size := 0; size <= n; size++ {
		root, err := RootAt(s, uint64(size))
		if err != nil {
			t.Fatalf("RootAt(%d): %v", size, err)
		}
		if want := refMTH(leaves[:size]); !bytes.Equal(root, want) {
			t.Fatalf("RootAt(%d) = %x, want %x", size, root, want)
		}
		for i := range size {
			p, err := InclusionProof(s, uint64(i), uint64(size))
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, size, err)
			}
			if want := refPath(i, leaves[:size]); !equalHashes(p, want) {
				t.Fatalf("InclusionProof(%d, %d) differs from RFC 6962 PATH", i, size)
			}
			if err := VerifyInclusion(uint64(i), uint64(size), LeafHash(leaves[i]), p, root); err != nil {
				t.Fatalf("VerifyInclusion(%d, %d): %v", i, size, err)
			}
		}
		for m := 1; m <= size; m++ {
			p, err := ConsistencyProof(s, uint64(m), uint64(size))
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", m, size, err)
			}
			if want := refProof(m, leaves[:size]); !equalHashes(p, want) {
				t.Fatalf("ConsistencyProof(%d, %d) differs from RFC 6962 PROOF", m, size)
			}
			if err := VerifyConsistency(uint64(m), uint64(size), p, refMTH(leaves[:m]), root); err != nil {
				t.Fatalf("VerifyConsistency(%d, %d): %v", m, size, err)
			}
		}
	}
}

func equalHashes(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestOpenLogContinues reopens a log from its store at every size, as after a
// restart, and checks that appending continues to the same roots.
func TestOpenLogContinues(t *testing.T) {
	leaves := testLeaves(40)
	_, s := mustBuildLog(t, leaves[:20])
	for size := range 21 {
		l, err := OpenLog(s, uint64(size))
		if err != nil {
			t.Fatalf("OpenLog(%d): %v", size, err)
		}
		scratch := NewMemStore()
		for i := size; i < len(leaves); i++ {
			if err := l.Append(scratch, LeafHash(leaves[i])); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := l.Root(), refMTH(leaves); !bytes.Equal(got, want) {
			t.Fatalf("reopened at %d: root %x, want %x", size, got, want)
		}
	}
}

// TestCloneAppendsApart: a clone and its original, appended to with
// different leaves from every size of a log, each keep the root of their
// own leaves, and a clone of a clone too.
func TestCloneAppendsApart(t *testing.T) {
	leaves, other := testLeaves(24), testLeaves(48)[24:]
	for size := range 17 {
		l, _ := mustBuildLog(t, leaves[:size])
		c := l.Clone()
		cc := c.Clone()
		for i := size; i < len(leaves); i++ {
			if err := l.Append(NewMemStore(), LeafHash(leaves[i])); err != nil {
				t.Fatal(err)
			}
			if err := c.Append(NewMemStore(), LeafHash(other[i])); err != nil {
				t.Fatal(err)
			}
		}
		mixed := append(append([][]byte(nil), leaves[:size]...), other[size:]...)
		if got, want := l.Root(), refMTH(leaves); !bytes.Equal(got, want) {
			t.Fatalf("size %d: the original's root %x, want %x", size, got, want)
		}
		if got, want := c.Root(), refMTH(mixed); !bytes.Equal(got, want) {
			t.Fatalf("size %d: the clone's root %x, want %x", size, got, want)
		}
		if got, want := cc.Root(), refMTH(leaves[:size]); cc.Size() != uint64(size) || !bytes.Equal(got, want) {
			t.Fatalf("size %d: the clone of the clone is at size %d, root %x, want %x", size, cc.Size(), got, want)
		}
	}
}

type failingWriter struct {
	after int // writes that succeed before the failure
	n     int
}

var errDisk = errors.New("disk full")

func (w *failingWriter) WriteNode(NodeID, []byte) error {
	if w.n >= w.after {
		return errDisk
	}
	w.n++
	return nil
}

// TestAppendFailureLeavesLogUnchanged: a writer that fails part-way leaves
// the log at its old size and root, and a later append succeeds normally.
func TestAppendFailureLeavesLogUnchanged(t *testing.T) {
	leaves := testLeaves(8)
	l, s := mustBuildLog(t, leaves[:7])
	before := l.Root()
	// Leaf 7 completes subtrees at levels 0..3: four writes; fail the third.
	err := l.Append(&failingWriter{after: 2}, LeafHash(leaves[7]))
	if !errors.Is(err, errDisk) {
		t.Fatalf("err = %v, want the writer's error", err)
	}
	if l.Size() != 7 || !bytes.Equal(l.Root(), before) {
		t.Fatalf("after a failed append: size %d root %x, want 7 and %x", l.Size(), l.Root(), before)
	}
	if err := l.Append(s, LeafHash(leaves[7])); err != nil {
		t.Fatal(err)
	}
	if got, want := l.Root(), refMTH(leaves); !bytes.Equal(got, want) {
		t.Fatalf("root %x, want %x", got, want)
	}
}

func TestRootIsACopy(t *testing.T) {
	l, _ := mustBuildLog(t, testLeaves(4)) // a perfect tree: the root is the range's only hash
	r := l.Root()
	r[0] ^= 0xff
	if got, want := l.Root(), refMTH(testLeaves(4)); !bytes.Equal(got, want) {
		t.Fatalf("changing a returned root changed the log: %x, want %x", got, want)
	}
}

type badSizeStore struct{ *MemStore }

func (s badSizeStore) ReadNode(id NodeID) ([]byte, error) {
	h, err := s.MemStore.ReadNode(id)
	if err != nil {
		return nil, err
	}
	return h[:HashSize-1], nil
}

func TestLogRefusals(t *testing.T) {
	leaves := testLeaves(5)
	l, s := mustBuildLog(t, leaves)
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"append a short hash", l.Append(s, make([]byte, 31)), ErrHashSize},
		{"append a leaf that does not encode", errOnly(l.AppendLeaf(s, Leaf{})), ErrLeafMalformed},
		{"inclusion index = size", errOnly(InclusionProof(s, 5, 5)), ErrOutOfRange},
		{"consistency size1 > size2", errOnly(ConsistencyProof(s, 4, 3)), ErrOutOfRange},
		{"root past the stored size", errOnly(RootAt(s, 6)), ErrNodeNotFound},
		{"inclusion past the stored size", errOnly(InclusionProof(s, 1, 9)), ErrNodeNotFound},
		{"consistency past the stored size", errOnly(ConsistencyProof(s, 3, 9)), ErrNodeNotFound},
		{"open past the stored size", errOnly(OpenLog(s, 8)), ErrNodeNotFound},
		{"a stored hash of the wrong size", errOnly(RootAt(badSizeStore{s}, 5)), ErrHashSize},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if l.Size() != 5 {
		t.Errorf("a refused append changed the size to %d", l.Size())
	}
}

func errOnly[T any](_ T, err error) error { return err }

func TestVerifyRefusals(t *testing.T) {
	leaves := testLeaves(9)
	_, s := mustBuildLog(t, leaves)
	root, _ := RootAt(s, 9)
	root5, _ := RootAt(s, 5)
	incl, _ := InclusionProof(s, 3, 9)
	cons, _ := ConsistencyProof(s, 5, 9)
	flip := func(p [][]byte, i int) [][]byte {
		q := make([][]byte, len(p))
		for j := range p {
			q[j] = bytes.Clone(p[j])
		}
		q[i][0] ^= 1
		return q
	}
	long := make([][]byte, MaxProofHashes+1)
	for i := range long {
		long[i] = make([]byte, HashSize)
	}
	inclusion := []struct {
		name  string
		index uint64
		leaf  []byte
		proof [][]byte
		root  []byte
	}{
		{"other leaf", 3, LeafHash(leaves[4]), incl, root},
		{"other index", 2, LeafHash(leaves[3]), incl, root},
		{"altered proof", 3, LeafHash(leaves[3]), flip(incl, 1), root},
		{"short proof", 3, LeafHash(leaves[3]), incl[1:], root},
		{"other root", 3, LeafHash(leaves[3]), incl, root5},
		{"too many hashes", 3, LeafHash(leaves[3]), long, root},
	}
	for _, tc := range inclusion {
		if err := VerifyInclusion(tc.index, 9, tc.leaf, tc.proof, tc.root); !errors.Is(err, ErrInclusionProof) {
			t.Errorf("inclusion, %s: err = %v, want ErrInclusionProof", tc.name, err)
		}
	}
	consistency := []struct {
		name         string
		size1        uint64
		proof        [][]byte
		root1, root2 []byte
	}{
		{"altered proof", 5, flip(cons, 0), root5, root},
		{"other old root", 5, cons, root, root},
		{"other size", 6, cons, root5, root},
		{"from the empty tree", 0, nil, EmptyRoot(), root},
		{"too many hashes", 5, long, root5, root},
	}
	for _, tc := range consistency {
		if err := VerifyConsistency(tc.size1, 9, tc.proof, tc.root1, tc.root2); !errors.Is(err, ErrConsistencyProof) {
			t.Errorf("consistency, %s: err = %v, want ErrConsistencyProof", tc.name, err)
		}
	}
}
