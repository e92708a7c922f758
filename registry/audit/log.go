package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// Errors of an audit; a divergence is a *Divergence, which matches
// ErrDivergence.
var (
	// ErrDivergence is a log that is not what its checkpoint, its
	// previous checkpoint or its replay says it must be.
	ErrDivergence = errors.New("audit: divergence")
	// ErrCheckpoint is a checkpoint that does not verify against the
	// genesis.
	ErrCheckpoint = errors.New("audit: the checkpoint does not verify against the genesis")
)

// Divergence is the first place a log differs from what it must be.
type Divergence struct {
	// Leaf is the index of the first leaf concerned (the first leaf of a
	// tile; the size for a root).
	Leaf uint64
	// What names what differs; Want and Got are what it must be and what
	// it is.
	What      string
	Want, Got string
}

func (d *Divergence) Error() string {
	return fmt.Sprintf("divergence at leaf %d: %s: want %s, got %s", d.Leaf, d.What, d.Want, d.Got)
}

// Is makes a *Divergence match ErrDivergence.
func (d *Divergence) Is(target error) bool { return target == ErrDivergence }

// First returns the divergence with the lower leaf index of a and b
// (either may be nil).
func First(a, b *Divergence) *Divergence {
	switch {
	case a == nil:
		return b
	case b == nil || a.Leaf <= b.Leaf:
		return a
	}
	return b
}

// Log is the log as a source served it for one checkpoint.
type Log struct {
	// Checkpoint is the verified checkpoint and its cosigners; Note the
	// signed note it was read from.
	Checkpoint *tlog.Verified
	Note       []byte
	// Leaves are the encoded leaves, Decoded the same decoded; both are
	// the checkpoint's size long.
	Leaves  [][]byte
	Decoded []tlog.Leaf
	// Nodes holds every node hash of the tree the leaves make.
	Nodes *tlog.MemStore
}

// NewVerifier returns the checkpoint verifier of a genesis document: its
// cosigner keys and quorum, for the origin its CID names.
func NewVerifier(genesis []byte) (*tlog.Verifier, error) {
	g, err := record.ParseGenesis(genesis)
	if err != nil {
		return nil, err
	}
	if len(g.Cosigners) == 0 {
		return nil, fmt.Errorf("%w: the genesis of %q lists no cosigners, so its registry keeps no cosigned log", ErrCheckpoint, g.Consortium)
	}
	origin, err := tlog.Origin(record.CIDOf(genesis))
	if err != nil {
		return nil, err
	}
	v, err := SetVerifier(origin, g.Cosigners, g.CosignerQuorumOf())
	if err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	return v, nil
}

// ReadLog reads and checks the log src serves: the checkpoint verifies
// with v (else ErrCheckpoint); the entry bundles give the checkpoint's
// size of leaves, each of which decodes, with raft indices increasing and
// commit times never going back; every hash tile of the checkpoint's tree
// is the tree those leaves make, and its root the checkpoint's; and when
// since (a signed note saved earlier) is given, it verifies with v and the
// log extends it.
//
// A log that breaks one of these rules is returned with a *Divergence
// naming the first leaf concerned, so a replay can still run over its
// leaves; any other error returns no log.
func ReadLog(src Source, v *tlog.Verifier, since []byte) (*Log, error) {
	// The checkpoint is verified before any tile is read, as ReadLogAt
	// does again once they are: a size no quorum signed costs no reads.
	note, err := src.Checkpoint()
	if err != nil {
		return nil, fmt.Errorf("read the checkpoint: %w", err)
	}
	if _, err := v.Verify(note); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	return ReadLogAt(fixedCheckpoint{src, note}, func(*Log, uint64) (*tlog.Verifier, error) { return v, nil }, since, Bound{Known: v})
}

// fixedCheckpoint is a source whose checkpoint was read already.
type fixedCheckpoint struct {
	Source
	note []byte
}

func (f fixedCheckpoint) Checkpoint() ([]byte, error) { return f.note, nil }

// VerifierAt returns the checkpoint verifier of the cosigner set in force
// at a log size, given the log read so far (its leaves, checked against
// nothing yet): a replay of the leaves follows the cosigner changes they
// apply (issue #32 item 3).
type VerifierAt func(l *Log, size uint64) (*tlog.Verifier, error)

// DefaultMaxUnverifiedSize is the log size, in leaves, ReadLogAt reads at
// most for a checkpoint whose signatures cannot be checked before its
// leaves are read (Bound.MaxUnverifiedSize when zero): 2^20 leaves, 4,096
// entry bundles.
const DefaultMaxUnverifiedSize = 1 << 20

// Bound limits what ReadLogAt reads before a checkpoint's signatures are
// checked.
type Bound struct {
	// Known is the verifier of the cosigner set known before any leaf is
	// read (the genesis's, NewVerifier). A note it verifies was signed by a
	// quorum of that set, which vouches for its size: its leaves are read
	// whatever their number. A note it does not verify (too few lines by
	// that set, or a bad one by a key of it) may be signed by a set a
	// change in the log named, known only once the leaves are read; one of
	// another origin, or of no form, is refused before any tile is read.
	Known *tlog.Verifier
	// MaxUnverifiedSize bounds the size, in leaves, of a checkpoint Known
	// does not verify: a larger one is refused (ErrCheckpoint) before any
	// tile is read, so a source cannot make the reader fetch and hold the
	// leaves of a size no quorum signed. Zero: DefaultMaxUnverifiedSize.
	MaxUnverifiedSize uint64
}

// ReadLogAt is ReadLog whose checkpoints (the one src serves and since)
// are verified, once the leaves are read, with the verifier verifierAt
// gives for each one's size. Before any tile is read, the note must
// verify with bound.Known, or fall short of its quorum only (its set may
// be one the log names) and claim at most bound.MaxUnverifiedSize leaves
// (ErrCheckpoint): what a source that signs nothing can make the reader
// fetch is bounded.
func ReadLogAt(src Source, verifierAt VerifierAt, since []byte, bound Bound) (*Log, error) {
	note, err := src.Checkpoint()
	if err != nil {
		return nil, fmt.Errorf("read the checkpoint: %w", err)
	}
	cp, err := noteCheckpoint(note)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	if err := bound.check(note, cp); err != nil {
		return nil, err
	}
	l, div, err := readLeaves(src, cp, note)
	if err != nil {
		return nil, err
	}
	v, err := verifierAt(l, cp.Size)
	if err != nil {
		return nil, err
	}
	ver, err := v.Verify(note)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	l.Checkpoint = ver
	if since != nil {
		sc, err := noteCheckpoint(since)
		if err != nil {
			return nil, fmt.Errorf("%w: the saved checkpoint: %w", ErrCheckpoint, err)
		}
		sv := v
		if sc.Size != cp.Size {
			if sv, err = verifierAt(l, sc.Size); err != nil {
				return nil, err
			}
		}
		prev, err := sv.Verify(since)
		if err != nil {
			return nil, fmt.Errorf("%w: the saved checkpoint: %w", ErrCheckpoint, err)
		}
		p := prev.Checkpoint
		size := cp.Size
		if p.Size > size {
			div = First(div, &Divergence{Leaf: size, What: "log size (the saved checkpoint is larger: the log was rolled back)", Want: fmt.Sprintf("at least %d", p.Size), Got: fmt.Sprint(size)})
		} else if root, err := tlog.RootAt(l.Nodes, p.Size); err != nil || !bytes.Equal(root, p.Hash[:]) {
			div = First(div, &Divergence{Leaf: p.Size, What: "consistency with the saved checkpoint: the log's root at its size", Want: fmt.Sprintf("%x", p.Hash), Got: fmt.Sprintf("%x", root)})
		}
	}
	if div != nil {
		return l, div
	}
	return l, nil
}

// check refuses, before any tile is read, a note that bound.Known refuses
// for another reason than a quorum of lines by other keys, and one it does
// not verify that claims more than MaxUnverifiedSize leaves.
func (bound Bound) check(note []byte, cp tlog.Checkpoint) error {
	if bound.Known == nil {
		return fmt.Errorf("%w: no cosigner set to check the checkpoint against before reading its leaves", ErrCheckpoint)
	}
	_, err := bound.Known.Verify(note)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, tlog.ErrTooFewCosignatures) && !errors.Is(err, tlog.ErrBadSignature):
		// Another origin, or no note: no set signs it.
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	// Too few lines by the known set, or a bad one by a key of it that a
	// change may have removed (the set in force ignores its lines): the
	// note may be signed by a set only the leaves show.
	limit := bound.MaxUnverifiedSize
	if limit == 0 {
		limit = DefaultMaxUnverifiedSize
	}
	if cp.Size > limit {
		return fmt.Errorf("%w: %w; the note claims %d leaves, and a checkpoint the genesis cosigners do not verify is read only up to %d leaves before its signatures can be checked (raise the limit for a larger log whose cosigners a change named)",
			ErrCheckpoint, err, cp.Size, limit)
	}
	return nil
}

// noteCheckpoint parses the checkpoint text of a signed note, unverified.
func noteCheckpoint(note []byte) (tlog.Checkpoint, error) {
	i := bytes.LastIndex(note, []byte("\n\n"))
	if i < 0 {
		return tlog.Checkpoint{}, fmt.Errorf("%w: no blank line before the signatures", tlog.ErrMalformedNote)
	}
	return tlog.ParseCheckpoint(note[:i+1])
}

// readLeaves reads the leaves and hash tiles of the tree of cp and checks
// them against each other and cp's root, not yet against any signature.
func readLeaves(src Source, cp tlog.Checkpoint, note []byte) (*Log, *Divergence, error) {
	size := cp.Size
	l := &Log{Note: note, Nodes: tlog.NewMemStore()}
	var div *Divergence
	tree := tlog.NewLog()
	for _, b := range tlog.Bundles(size) {
		data, err := src.Tile(b)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", b.Path(), err)
		}
		first := b.Index * tlog.TileWidth
		entries, err := tlog.ParseBundle(data, b.Width)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.Path(), err)
		}
		for j, enc := range entries {
			i := first + uint64(j)
			leaf, err := tlog.DecodeLeaf(enc)
			if err != nil {
				div = First(div, &Divergence{Leaf: i, What: "leaf encoding", Want: "a leaf that decodes", Got: err.Error()})
			} else if n := len(l.Decoded); n > 0 {
				last := l.Decoded[n-1]
				if leaf.Index <= last.Index {
					div = First(div, &Divergence{Leaf: i, What: "raft index", Want: fmt.Sprintf("above %d (the previous leaf's)", last.Index), Got: fmt.Sprint(leaf.Index)})
				}
				if leaf.CommitTime.Before(last.CommitTime) {
					div = First(div, &Divergence{Leaf: i, What: "commit time", Want: "not before " + last.CommitTime.String(), Got: leaf.CommitTime.String()})
				}
			}
			if err := tree.Append(l.Nodes, tlog.LeafHash(enc)); err != nil {
				return nil, nil, err
			}
			l.Leaves = append(l.Leaves, enc)
			l.Decoded = append(l.Decoded, leaf)
		}
	}
	// Hash tiles: level 0 names the leaf whose hash differs.
	for _, t := range tlog.Tiles(size) {
		data, err := src.Tile(t)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", t.Path(), err)
		}
		want, err := tlog.ReadTile(l.Nodes, t, size)
		if err != nil {
			return nil, nil, err
		}
		if bytes.Equal(data, want) {
			continue
		}
		span := uint64(1) << (uint(t.Level) * tlog.TileHeight)
		at := t.Index * tlog.TileWidth * span
		for j := 0; j+tlog.HashSize <= min(len(data), len(want)); j += tlog.HashSize {
			if !bytes.Equal(data[j:j+tlog.HashSize], want[j:j+tlog.HashSize]) {
				break
			}
			at += span
		}
		div = First(div, &Divergence{Leaf: at, What: "hash tile " + t.Path(), Want: fmt.Sprintf("%x", want), Got: fmt.Sprintf("%x", data)})
	}
	if root := tree.Root(); !bytes.Equal(root, cp.Hash[:]) {
		div = First(div, &Divergence{Leaf: size, What: "log root at the checkpoint's size", Want: fmt.Sprintf("%x", cp.Hash), Got: fmt.Sprintf("%x (from the entry bundles)", root)})
	}
	return l, div, nil
}

// WriteMirror writes the log, checked, into dir in the tlog-tiles layout
// that Dir reads: every hash tile and entry bundle of the checkpoint's
// tree, and the checkpoint last, so a mirror never names a tree its files
// do not hold. A full tile already there is kept (it never changes);
// every file is written to a temporary name and renamed into place.
func (l *Log) WriteMirror(dir string) error {
	size := l.Checkpoint.Checkpoint.Size
	for _, t := range tlog.Tiles(size) {
		b, err := tlog.ReadTile(l.Nodes, t, size)
		if err != nil {
			return err
		}
		if err := writeMirrorFile(dir, t, b); err != nil {
			return err
		}
	}
	for _, t := range tlog.Bundles(size) {
		first := t.Index * tlog.TileWidth
		b, err := tlog.EncodeBundle(l.Leaves[first : first+uint64(t.Width)])
		if err != nil {
			return err
		}
		if err := writeMirrorFile(dir, t, b); err != nil {
			return err
		}
	}
	return writeFileAtomic(filepath.Join(dir, "checkpoint"), l.Note)
}

func writeMirrorFile(dir string, t tlog.TileID, b []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(t.Path()))
	if t.Width == tlog.TileWidth {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(p, b)
}

func writeFileAtomic(p string, b []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
