package registry

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// Checkpoints: a snapshot kept as a copy of the database instead of a
// stream. A raft snapshot streamed when it is taken costs CPU in
// proportion to the whole state (BenchmarkSnapshotCapture: 0.56–0.60 s
// for 20,000 accreditations); a Pebble checkpoint hard-links the
// database's sstables and blob files and copies its WAL and manifest
// (9–13 ms for the same state). The stream, in the format of
// snapshot.go and byte for byte the one Snapshot().WriteTo gives at the
// same index, is made from the checkpoint only when it is read
// (OpenCheckpoint), which raft does to send a snapshot to a follower.

// checkpointCacheBytes is the block cache of a checkpoint opened to be
// streamed: each block is read once.
const checkpointCacheBytes = 8 << 20

// errOverlayUnflushed is Checkpoint's refusal when the map overlay could
// not be written into the database first (too little disk space): the
// checkpoint would lack the overlay's records.
var errOverlayUnflushed = errors.New("registry: the map overlay could not be flushed before a checkpoint")

// Checkpoint writes the state as of the last applied entry into dir, which
// must not exist, as a Pebble checkpoint that OpenCheckpoint reads. It
// first writes the map overlay into the database (a flush, as at Close),
// so the checkpoint holds the logical map without a journal to replay.
// It must not run concurrently with ApplyBatch or Restore (raft calls it
// on the goroutine that applies).
func (s *State) Checkpoint(dir string) error {
	if err := s.writeMapOverlay(pebble.Sync); err != nil {
		return err
	}
	if ov := s.mapOverlay.Load(); ov != nil && !ov.empty() {
		return errOverlayUnflushed
	}
	// WithFlushedWAL: the checkpoint's WAL holds every committed batch,
	// the apply's unsynced ones too.
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("registry: checkpoint the state into %s: %w", dir, err)
	}
	return nil
}

// OpenCheckpoint opens the checkpoint Checkpoint wrote into dir, read-only,
// as a Snapshot whose Release closes it.
func OpenCheckpoint(dir string, logger *slog.Logger) (*Snapshot, error) {
	opts := stateOptions(pebbleLogger{log: logger.With("component", "pebble"), dir: dir})
	opts.ReadOnly = true
	// Streamed once, in key order: a small cache, not the live state's.
	opts.Cache.Unref()
	opts.Cache = pebble.NewCache(checkpointCacheBytes)
	db, err := pebble.Open(dir, opts)
	opts.Cache.Unref() // the database holds its own reference
	if err != nil {
		return nil, fmt.Errorf("registry: open checkpoint %s: %w", dir, err)
	}
	snap := db.NewSnapshot()
	// The journal must be empty: Checkpoint flushed the overlay.
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{tableMapJournal}, UpperBound: []byte{tableMapJournal + 1}})
	if err == nil {
		if it.First() {
			err = fmt.Errorf("%w: checkpoint %s holds map journal records", ErrSnapshot, dir)
		}
		err = errors.Join(err, it.Close())
	}
	if err != nil {
		return nil, errors.Join(err, snap.Close(), db.Close())
	}
	return &Snapshot{snap: snap, ov: emptyOverlay, db: db}, nil
}

// AppliedIndex is the index of the last entry applied to the state the
// snapshot holds.
func (sn *Snapshot) AppliedIndex() uint64 { return readU64(sn.snap, metaApplied) }
