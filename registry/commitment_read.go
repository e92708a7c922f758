package registry

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/smt"
	"github.com/trustreg/trustreg/registry/tlog"
)

var (
	// ErrNoCommitment is returned by the commitment's reads while the
	// cluster is below FeatureLevelCommitment: there is no map or log yet.
	ErrNoCommitment = errors.New("registry: the state has no commitment below feature level 7 (the cluster's level rises once every member runs a build that knows it)")
	// ErrStateCorrupt is returned when the stored state disagrees with its
	// own commitment: a record, a listing or a node of the map or the log
	// was changed behind the apply's back (SelfAudit).
	ErrStateCorrupt = errors.New("registry: the state does not match its commitment")
	// ErrNotCommitted is returned for a store key the map does not hold
	// records under.
	ErrNotCommitted = errors.New("registry: the key names no committed record")
)

// Commitment is the state's commitment as of a view's index.
type Commitment struct {
	// Index is the applied raft index the view reads.
	Index uint64
	// LogSize is the number of leaves in the transparency log: one per
	// entry applied from the level's raise on.
	LogSize uint64
	// LogRoot is the log's RFC 6962 root at LogSize.
	LogRoot []byte
	// MapRoot is the state map's root after the entry at Index.
	MapRoot smt.Hash
}

// ProvenRecord is one record a map proof covers: its key and its exact
// stored bytes (nil when it is absent).
type ProvenRecord struct {
	Key   decide.RecordKey
	Bytes []byte
}

// logHead reads the log's size and root and the map root from r; ok false
// below FeatureLevelCommitment.
func logHead(r pebble.Reader) (size uint64, logRoot []byte, mapRoot smt.Hash, err error) {
	v, closer, err := r.Get(metaLogSize)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil, mapRoot, ErrNoCommitment
	}
	if err != nil {
		return 0, nil, mapRoot, fmt.Errorf("read the log size: %w", err)
	}
	if len(v) != 8 {
		_ = closer.Close() // releases the read value; nothing to report
		return 0, nil, mapRoot, fmt.Errorf("%w: log size of %d bytes", ErrStateCorrupt, len(v))
	}
	size = binary.BigEndian.Uint64(v)
	_ = closer.Close() // releases the read value; nothing to report
	logRoot, err = getHash(r, metaLogRoot)
	if err != nil {
		return 0, nil, mapRoot, err
	}
	m, err := getHash(r, metaMapRoot)
	if err != nil {
		return 0, nil, mapRoot, err
	}
	return size, logRoot, smt.Hash(m), nil
}

func getHash(r pebble.Reader, k []byte) ([]byte, error) {
	v, closer, err := r.Get(k)
	if err != nil {
		return nil, fmt.Errorf("%w: read %q: %w", ErrStateCorrupt, k, err)
	}
	defer func() { _ = closer.Close() }() // releases the read value; nothing to report
	if len(v) != smt.Size {
		return nil, fmt.Errorf("%w: %q holds %d bytes, not a hash", ErrStateCorrupt, k, len(v))
	}
	return bytes.Clone(v), nil
}

// Commitment returns the commitment of the state the view reads: the map
// root and the log's head after the entry at the view's index. Below
// FeatureLevelCommitment it returns ErrNoCommitment (and LogSize 0).
func (v *View) Commitment() (Commitment, error) {
	size, logRoot, mapRoot, err := v.head()
	if err != nil {
		return Commitment{Index: v.index}, err
	}
	return Commitment{Index: v.index, LogSize: size, LogRoot: logRoot, MapRoot: mapRoot}, nil
}

// ProveRecords returns the records keys name, as the view holds them, and
// one smt batch proof (smt.VerifyBatch) of all of them against the view's
// Commitment().MapRoot: each present record under smt.KeyOf of its store
// key (decide.StoreKey) with the SHA-256 of its bytes, each absent one
// absent. A KindReceived key's Bytes are decide.EncodeReceived of the
// listing, nil when it is empty. Keys must be distinct, at most
// smt.MaxBatchKeys.
func (v *View) ProveRecords(keys []decide.RecordKey) ([]ProvenRecord, []byte, error) {
	out, _, proof, err := v.ProveRecordsAndStoreKeys(keys, nil)
	return out, proof, err
}

// ProveStoreKeys is ProveRecords for records named by their store keys
// (status lists and their versions, which have no RecordKey): their bytes
// (nil when absent) and one batch proof of them, each under smt.KeyOf of
// its store key. A key outside the committed tables is refused with
// ErrNotCommitted.
func (v *View) ProveStoreKeys(keys [][]byte) ([][]byte, []byte, error) {
	_, vals, proof, err := v.ProveRecordsAndStoreKeys(nil, keys)
	return vals, proof, err
}

// prove makes the batch proof of the records under storeKeys, checking that
// the map agrees with the bytes read (bytesOf(i), nil when absent).
func (v *View) prove(storeKeys [][]byte, bytesOf func(int) []byte) ([]byte, error) {
	mk := make([]smt.Key, len(storeKeys))
	want := make(map[smt.Key][]byte, len(storeKeys))
	for i, sk := range storeKeys {
		mk[i] = smt.KeyOf(sk)
		want[mk[i]] = bytesOf(i)
	}
	claims, proof, err := smt.New(v.mapStore()).ProveBatch(mk)
	if errors.Is(err, smt.ErrCorruptNode) {
		return nil, fmt.Errorf("%w: %w", ErrStateCorrupt, err)
	}
	if err != nil {
		return nil, fmt.Errorf("prove records: %w", err)
	}
	for _, c := range claims {
		b := want[c.Key]
		if c.Present != (b != nil) || (b != nil && c.Value != v.valueOf(c.Key, b)) {
			return nil, fmt.Errorf("%w: the map's entry for %x differs from the record", ErrStateCorrupt, c.Key)
		}
	}
	return proof, nil
}

// logSize is the view's log size, or ErrNoCommitment.
func (v *View) logSize() (uint64, error) {
	size, _, _, err := v.head()
	return size, err
}

// checkSize refuses a tree size past the view's log.
func (v *View) checkSize(sizes ...uint64) error {
	have, err := v.logSize()
	if err != nil {
		return err
	}
	for _, s := range sizes {
		if s > have {
			return fmt.Errorf("%w: size %d, the log at index %d has %d leaves", tlog.ErrOutOfRange, s, v.index, have)
		}
	}
	return nil
}

// Leaf returns the encoded tlog.Leaf at leafIndex.
func (v *View) Leaf(leafIndex uint64) ([]byte, error) {
	size, err := v.logSize()
	if err != nil {
		return nil, err
	}
	if leafIndex >= size {
		return nil, fmt.Errorf("%w: leaf %d, the log has %d", tlog.ErrOutOfRange, leafIndex, size)
	}
	return v.leaf(leafIndex)
}

func (v *View) leaf(i uint64) ([]byte, error) {
	val, closer, err := v.snap.Get(indexKey(tableLogLeaves, i))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: leaf %d is missing", ErrStateCorrupt, i)
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(val)
	return out, closer.Close()
}

// leafRaftIndex reads the raft index a leaf encoding commits to.
func leafRaftIndex(enc []byte) (uint64, error) {
	if len(enc) < 9 || enc[0] != tlog.LeafVersion1 {
		return 0, fmt.Errorf("%w: leaf of %d bytes", ErrStateCorrupt, len(enc))
	}
	return binary.BigEndian.Uint64(enc[1:9]), nil
}

// LeafOfIndex returns the last leaf that commits to an entry at or below
// raftIndex (the state an answer as of raftIndex was read from), with its
// leaf index. It is tlog.ErrOutOfRange when raftIndex is below the first
// leaf.
func (v *View) LeafOfIndex(raftIndex uint64) (uint64, []byte, error) {
	size, err := v.logSize()
	if err != nil {
		return 0, nil, err
	}
	// Leaves are in raft index order: find the first leaf past raftIndex.
	lo, hi := uint64(0), size
	for lo < hi {
		mid := lo + (hi-lo)/2
		enc, err := v.leaf(mid)
		if err != nil {
			return 0, nil, err
		}
		idx, err := leafRaftIndex(enc)
		if err != nil {
			return 0, nil, err
		}
		if idx <= raftIndex {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return 0, nil, fmt.Errorf("%w: no leaf at or below index %d", tlog.ErrOutOfRange, raftIndex)
	}
	enc, err := v.leaf(lo - 1)
	return lo - 1, enc, err
}

// InclusionProof returns the inclusion proof of leaf leafIndex in the log of
// the given size (at most the view's), for tlog.VerifyInclusion.
func (v *View) InclusionProof(leafIndex, size uint64) ([][]byte, error) {
	if err := v.checkSize(size); err != nil {
		return nil, err
	}
	return tlog.InclusionProof(logNodes{r: v.snap}, leafIndex, size)
}

// ConsistencyProof returns the consistency proof between the log's sizes
// size1 <= size2 (at most the view's), for tlog.VerifyConsistency.
func (v *View) ConsistencyProof(size1, size2 uint64) ([][]byte, error) {
	if err := v.checkSize(size1, size2); err != nil {
		return nil, err
	}
	return tlog.ConsistencyProof(logNodes{r: v.snap}, size1, size2)
}

// LogRootAt returns the log's root at size (at most the view's).
func (v *View) LogRootAt(size uint64) ([]byte, error) {
	if err := v.checkSize(size); err != nil {
		return nil, err
	}
	return tlog.RootAt(logNodes{r: v.snap}, size)
}

// Tile returns a C2SP tlog-tiles resource of the log of the given size (at
// most the view's): a hash tile, or for tlog.EntriesLevel the entry bundle
// of the encoded leaves.
func (v *View) Tile(t tlog.TileID, size uint64) ([]byte, error) {
	if err := v.checkSize(size); err != nil {
		return nil, err
	}
	if t.Level != tlog.EntriesLevel {
		return tlog.ReadTile(logNodes{r: v.snap}, t, size)
	}
	first := t.Index * tlog.TileWidth
	if t.Width < 1 || t.Width > tlog.TileWidth || first+uint64(t.Width) > size {
		return nil, fmt.Errorf("%w: entry bundle %s in a log of size %d", tlog.ErrOutOfRange, t.Path(), size)
	}
	entries := make([][]byte, t.Width)
	for j := range entries {
		enc, err := v.leaf(first + uint64(j))
		if err != nil {
			return nil, err
		}
		entries[j] = enc
	}
	return tlog.EncodeBundle(entries)
}

// LogHead returns the size and root of the transparency log as of the last
// applied entry (ErrNoCommitment below FeatureLevelCommitment): what this
// node's own state machine produced, for its cosigner.
func (s *State) LogHead() (size uint64, root []byte, err error) {
	v := s.View()
	// Kept, when new, for answers proven at this size (kept.go): the
	// leader's collector cosigns the size it reads here.
	defer s.kept.offer(v)
	c, err := v.Commitment()
	return c.LogSize, c.LogRoot, err
}

// LogRootAt returns the root this node's log had at size (at most its
// current size).
func (s *State) LogRootAt(size uint64) ([]byte, error) {
	v := s.View()
	defer v.Close()
	return v.LogRootAt(size)
}

// LogConsistency returns the consistency proof of this node's log between
// sizes size1 <= size2 (at most its current size).
func (s *State) LogConsistency(size1, size2 uint64) ([][]byte, error) {
	v := s.View()
	defer v.Close()
	return v.ConsistencyProof(size1, size2)
}

// SelfAudit checks the stored state against its own commitment, from one
// view: every committed record's and listing's digest is its value in the
// map, proven against the map root stored after the last entry (so every
// node hash on its path is checked); the map holds no key besides them
// (its leaves are counted from its node records); the map's own root and
// the last leaf's equal the stored map root; and the log's nodes give its
// stored root. A mismatch is an error wrapping ErrStateCorrupt; below
// FeatureLevelCommitment it is ErrNoCommitment. It reads every record, so
// it runs for seconds on a large state, holding a view (a restore waits
// for it).
func (s *State) SelfAudit(ctx context.Context) error {
	v := s.View()
	defer v.Close()
	c, err := v.Commitment()
	if err != nil {
		return err
	}
	m := smt.New(v.mapNodes())
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrStateCorrupt, fmt.Sprintf(format, args...))
	}
	if root, err := m.Root(); err != nil || root != c.MapRoot {
		return corrupt("the map's nodes give the root %x, the stored root is %x (%v)", root, c.MapRoot, err)
	}
	var n uint64
	err = eachCommitted(v.snap, func(k []byte, val smt.Value) error {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		p, err := m.Prove(smt.KeyOf(k))
		if err != nil {
			return corrupt("prove %q: %v", k, err)
		}
		if err := p.Verify(c.MapRoot, smt.KeyOf(k), &val); err != nil {
			return corrupt("record %q: its digest %x is not its value under the map root: %v", k, val, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	leaves, err := countMapLeaves(v.snap, v.ov)
	if err != nil {
		return err
	}
	if leaves != n {
		return corrupt("the map holds %d keys, the state %d records and listings", leaves, n)
	}
	if c.LogSize == 0 {
		return corrupt("the log is empty at feature level %d", FeatureLevelCommitment)
	}
	root, err := tlog.RootAt(logNodes{r: v.snap}, c.LogSize)
	if err != nil || !bytes.Equal(root, c.LogRoot) {
		return corrupt("the log's nodes give the root %x at size %d, the stored root is %x (%v)", root, c.LogSize, c.LogRoot, err)
	}
	enc, err := v.leaf(c.LogSize - 1)
	if err != nil {
		return err
	}
	last, err := tlog.DecodeLeaf(enc)
	if err != nil || smt.Hash(last.MapRoot) != c.MapRoot {
		return corrupt("the last leaf does not commit to the stored map root (%v)", err)
	}
	return nil
}

// countMapLeaves counts the leaves the map's node records hold (smt's
// record format, see smt.encodeInner: an inner record 0x01 with a byte of
// two child-kind nibbles, 1 for a leaf; a root leaf record 0x02): the
// records of the overlay ov over r's (journal.go).
func countMapLeaves(r pebble.Reader, ov *mapOverlay) (n uint64, err error) {
	err = eachMapNode(r, ov, func(k, rec []byte) error {
		switch {
		case len(rec) >= 2 && rec[0] == 0x01:
			for _, kind := range []byte{rec[1] >> 4, rec[1] & 0x0f} {
				if kind == 1 {
					n++
				}
			}
		case len(rec) > 0 && rec[0] == 0x02:
			n++
		default:
			return fmt.Errorf("%w: map node record %x is malformed", ErrStateCorrupt, k)
		}
		return nil
	})
	return n, err
}
