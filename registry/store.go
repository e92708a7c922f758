package registry

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/trustreg/trustreg/registry/record"
)

// store is the state's Pebble database: its layout (schema.go), the
// applied index and commit time written with every batch, consistent
// snapshots for readers, and the snapshot stream (snapshot.go). It knows
// nothing of the rules that decide what is written.
//
// Publishing a commit. seq is even while the committed state is stable and
// odd while a batch is being committed and published: commit makes it odd,
// commits the batch, lets the caches drop what the batch wrote, stores the
// applied index and commit time, and makes it even again. A reader that
// sees the same even seq before and after taking a Pebble snapshot and
// loading the index has a snapshot of exactly that index (snapshot), and
// may use the caches of that seq (cache.go).
type store struct {
	dir        string
	dbOpts     *pebble.Options // as opened, with defaults filled in
	db         *pebble.DB
	log        *slog.Logger
	genesisRaw []byte
	genesisCID string

	seq        atomic.Uint64
	applied    atomic.Uint64
	commitTime atomic.Int64 // unix nanoseconds of the last applied entry
	// applying is the last index of the batch being applied, from before
	// the apply takes its operations' parses until it is applied (then
	// at most applied): Prefetch skips entries up to it, whose parses the
	// apply has taken or is taking, instead of checking them again.
	applying atomic.Uint64

	// readers is held for reading by every open view and for writing by
	// a restore while it swaps the state: a Pebble snapshot does not
	// survive an excise (IngestAndExcise shows it the restored keys), so
	// no view may be open across one.
	readers sync.RWMutex

	// mapOverlay is the state map's records changed since they were last
	// written (journal.go), as of the last committed batch: replaced in
	// the same publishing step as the applied index (commit), so a reader
	// takes the one that matches its Pebble snapshot (snapshot). pubMu is
	// held across a batch's commit and its publishing, and a restore's
	// swap, and by a snapshot taken without the seq check (and Snapshot's),
	// so the two match there too.
	mapOverlay atomic.Pointer[mapOverlay]
	pubMu      sync.Mutex

	mu        sync.Mutex
	appliedCh chan struct{} // closed and replaced whenever applied advances

	// commits is the time the apply's batches spent in Pebble's Commit.
	commits commitTimes

	closeOnce sync.Once
	disk      *diskGuard    // free space under dir (disk.go)
	halt      chan struct{} // closed by Halt: a wait for disk space gives up
	haltOnce  sync.Once
}

// Block cache and memtable sizes of the state database. The cache holds
// the hot sstable blocks of records and indexes; with bloom filters on every
// level, the lookups apply makes for keys that do not exist (an operation's
// CID and signatures before it is first applied) touch the filter, not the
// data blocks. Measured in BENCHMARKS.md.
const (
	stateCacheBytes    = 128 << 20
	stateMemTableBytes = 32 << 20
	// separatedValueBytes: values at least this long are stored apart from
	// the keys (the signed operations); shorter ones inline.
	separatedValueBytes = 1024
	// stateL0Compaction is how many sublevels of L0 start a compaction
	// into the base level (Pebble's default 4). The map's node records land
	// under random keys across their table, so every L0 compaction rewrites
	// about the whole of the base level's share of it: more L0 files per
	// compaction, fewer of those rewrites. At 16 the apply with the
	// commitment compacted half the bytes a write that it did at 8 and
	// took about a tenth less CPU; below the commitment nothing changed.
	// Writes stall at three times it, as Pebble's defaults do (12 for 4).
	// Measured in DESIGN.md, "Storage".
	stateL0Compaction = 16
)

// stateOptions makes the options a state database is opened with (a test
// opens one as an older build did).
var stateOptions = pebbleOptions

func pebbleOptions(logger pebble.Logger) *pebble.Options {
	cache := pebble.NewCache(stateCacheBytes)
	opts := &pebble.Options{Logger: logger, Cache: cache, MemTableSize: stateMemTableBytes,
		L0CompactionThreshold: stateL0Compaction, L0StopWritesThreshold: 3 * stateL0Compaction}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// Stored operations (signed JWS, 1–2 KB, written once under random
	// CIDs, rarely read) go to blob files that compactions reference
	// instead of rewriting; the records a trust decision reads are smaller
	// and stay in the sstables. Opening an older data directory moves it
	// to this format.
	opts.FormatMajorVersion = pebble.FormatValueSeparation
	opts.Experimental.EnableColumnarBlocks = func() bool { return true }
	opts.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled: true, MinimumSize: separatedValueBytes, MaxBlobReferenceDepth: 10,
			RewriteMinimumAge: 5 * time.Minute, TargetGarbageRatio: 0.2,
		}
	}
	return opts
}

// openStore opens (creating if needed) the database in dir for the
// genesis genesisRaw, whose CID is genesisCID.
func openStore(dir string, genesisRaw []byte, genesisCID string, logger *slog.Logger, reserve uint64, fs vfs.FS) (*store, error) {
	popts := stateOptions(pebbleLogger{log: logger.With("component", "pebble"), dir: dir})
	popts.FS = fs // nil: EnsureDefaults gives the OS's
	popts.EnsureDefaults()
	if err := roomToOpen(dir); err != nil {
		popts.Cache.Unref()
		return nil, fmt.Errorf("open state %s: %w", dir, err)
	}
	db, err := pebble.Open(dir, popts)
	popts.Cache.Unref() // the database holds its own reference
	if errors.Is(err, syscall.EWOULDBLOCK) {
		// Pebble's lock on the directory is held by another process.
		return nil, fmt.Errorf("open state %s: the data directory is in use by another process (is a trustd already running on it?): %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", dir, err)
	}
	// A restore cut off by a crash may have left its sstables behind.
	// Only now, holding the directory's lock: a process refused above must
	// not touch the files of the one that holds it.
	if err := popts.FS.RemoveAll(popts.FS.PathJoin(dir, "restore")); err != nil {
		return nil, fmt.Errorf("open state %s: %w", dir, errors.Join(err, db.Close()))
	}
	log := logger.With("component", "registry")
	s := &store{
		dir: dir, dbOpts: popts, db: db, log: log,
		genesisRaw: append([]byte(nil), genesisRaw...), genesisCID: genesisCID,
		appliedCh: make(chan struct{}),
		halt:      make(chan struct{}),
		disk:      newDiskGuard(dir, reserve, log),
	}
	if err := s.init(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return s, nil
}

func (s *store) init() error {
	if _, closer, err := s.db.Get(metaRestoring); err == nil {
		_ = closer.Close() // releases the read value; nothing to report
		// A restore by an older build, which restored in place, was cut
		// off: the state is partial. Start empty so the consensus layer
		// restores the snapshot again.
		s.log.Warn("state holds an interrupted snapshot restore; clearing it")
		if err := s.clear(); err != nil {
			return err
		}
	}
	stored, closer, err := s.db.Get(metaGenesis)
	switch {
	case err == pebble.ErrNotFound:
		b := s.db.NewBatch()
		if err := errors.Join(b.Set(metaGenesis, s.genesisRaw, nil), b.Set(metaApplied, u64(0), nil)); err != nil {
			return fmt.Errorf("initialize state: %w", err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("initialize state: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read genesis: %w", err)
	default:
		storedCID := record.CIDOf(stored)
		_ = closer.Close() // releases the read value; nothing to report
		if storedCID != s.genesisCID {
			return fmt.Errorf("%w: the data directory belongs to the consortium with genesis %s, not %s: use the genesis it was created with or a new data directory", record.ErrGenesis, storedCID, s.genesisCID)
		}
	}
	return nil
}

// loadMeta reads the applied index and commit time from the database.
func (s *store) loadMeta() {
	s.applied.Store(readU64(s.db, metaApplied))
	s.applying.Store(s.applied.Load()) // a restore may move applied back
	s.commitTime.Store(int64(readU64(s.db, metaCommitTime)))
}

func readU64(r pebble.Reader, k []byte) uint64 {
	v, closer, err := r.Get(k)
	if err != nil {
		return 0
	}
	defer func() { _ = closer.Close() }() // releases the read value; nothing to report
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// close closes the database, after closeCaches has closed what holds it
// open. Closing twice is harmless.
func (s *store) close(closeCaches func()) error {
	var err error
	s.closeOnce.Do(func() {
		closeCaches()
		err = s.db.Close()
	})
	return err
}

// AppliedIndex returns the index of the last applied entry.
func (s *store) AppliedIndex() uint64 { return s.applied.Load() }

// WaitApplied blocks until the applied index reaches index or ctx ends.
func (s *store) WaitApplied(ctx context.Context, index uint64) error {
	if err := s.waitApply(ctx, func() bool { return s.applied.Load() >= index }); err != nil {
		return fmt.Errorf("wait for index %d (applied %d): %w", index, s.applied.Load(), err)
	}
	return nil
}

// waitApply blocks until done holds, looking again after every applied
// batch, or until ctx ends (its error).
func (s *store) waitApply(ctx context.Context, done func() bool) error {
	for {
		s.mu.Lock()
		ch := s.appliedCh
		s.mu.Unlock()
		// Asked after taking the channel: a batch applied in between
		// closes it.
		if done() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notify wakes the waiters of waitApply.
func (s *store) notify() {
	s.mu.Lock()
	close(s.appliedCh)
	s.appliedCh = make(chan struct{})
	s.mu.Unlock()
}

// commit commits b, which holds the entries up to index with the last one's
// commit time t, and publishes it (see store): committed is called with the
// batch committed and before any reader can see the new index.
//
// No fsync here: the raft log, synced on a majority, is what makes an entry
// durable. A state that loses its unsynced tail in a crash is behind the
// log, and raft replays the tail (entries at or below the applied index are
// skipped). Snapshot syncs first, so the log is never compacted past what
// the state holds durably.
//
// A full disk is found before the commit: Pebble cannot take back a write
// that fails in its commit pipeline, and this entry cannot be skipped, so
// the apply waits for space (waitForSpace).
func (s *store) commit(b *pebble.Batch, index uint64, t time.Time, committed func()) {
	// The batch commits whole, so the applied index and commit time are
	// written once, for its last entry (nothing in the apply reads them
	// back from the batch).
	mustSet(b, metaApplied, u64(index))
	mustSet(b, metaCommitTime, u64(uint64(t.UnixNano())))
	if err := s.disk.checkWrite(uint64(b.Len())); err != nil {
		s.waitForSpace(index, err)
	}
	s.seq.Add(1)
	func() {
		s.pubMu.Lock()
		defer s.pubMu.Unlock()
		if err := b.Commit(pebble.NoSync); err != nil {
			panic(fmt.Sprintf("registry: commit applied entries up to %d: %v", index, err))
		}
		s.commits.add(b.CommitStats())
		committed()
	}()
	s.applied.Store(index)
	s.commitTime.Store(t.UnixNano())
	s.seq.Add(1)
	s.notify()
}

// maxSnapshotTries bounds the attempts to take a snapshot between two
// commits before snapshot reads the index from the snapshot itself.
const maxSnapshotTries = 4

// snapshot returns a Pebble snapshot with the applied index and commit time
// it holds, the map overlay that goes with it, and the publishing sequence
// it was taken in (cached: the caches of that seq may serve it). The
// caller holds s.readers for reading.
func (s *store) snapshot() (snap *pebble.Snapshot, ov *mapOverlay, index uint64, commitNs int64, seq uint64, cached bool) {
	for range maxSnapshotTries {
		seq = s.seq.Load()
		if seq%2 == 1 {
			runtime.Gosched() // a commit is being published
			continue
		}
		snap = s.db.NewSnapshot()
		ov, index, commitNs = s.mapOverlay.Load(), s.applied.Load(), s.commitTime.Load()
		if s.seq.Load() == seq {
			return snap, ov, index, commitNs, seq, true
		}
		_ = snap.Close() // a snapshot holds no writes: its Close has nothing to report
	}
	// Commits keep coming: read the index the snapshot holds, and use no
	// cache; the overlay is taken with the snapshot between two commits.
	snap, ov = s.snapshotWithOverlay()
	return snap, ov, readU64(snap, metaApplied), int64(readU64(snap, metaCommitTime)), 0, false
}

// snapshotWithOverlay takes a Pebble snapshot and the map overlay that
// goes with it, between two commits.
func (s *store) snapshotWithOverlay() (*pebble.Snapshot, *mapOverlay) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	return s.db.NewSnapshot(), s.mapOverlay.Load()
}

// StateDigest returns a SHA-256 over every record of the domain state, in
// key order. Two nodes that applied the same entries have equal digests; a
// rejected operation leaves the digest unchanged.
func (s *store) StateDigest() (string, error) {
	_, d, err := s.DigestAt()
	return d, err
}

// DigestAt returns the applied index and the state digest, read from one
// consistent snapshot.
func (s *store) DigestAt() (uint64, string, error) {
	snap := s.db.NewSnapshot()
	defer func() { _ = snap.Close() }() // a snapshot holds no writes: its Close has nothing to report
	d, err := digestOf(snap)
	return readU64(snap, metaApplied), d, err
}

func digestOf(snap *pebble.Snapshot) (string, error) {
	h := sha256.New()
	var lenBuf [8]byte
	for _, t := range domainTables {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{t}, UpperBound: []byte{t + 1}})
		if err != nil {
			return "", err
		}
		for it.First(); it.Valid(); it.Next() {
			binary.BigEndian.PutUint64(lenBuf[:], uint64(len(it.Key())))
			h.Write(lenBuf[:])
			h.Write(it.Key())
			v := it.Value()
			binary.BigEndian.PutUint64(lenBuf[:], uint64(len(v)))
			h.Write(lenBuf[:])
			h.Write(v)
		}
		if err := it.Close(); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func u64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

// mustSet writes k in b; a batch that cannot take a write is a storage
// failure the apply cannot go on from.
func mustSet(b *pebble.Batch, k, v []byte) {
	if err := b.Set(k, v, nil); err != nil {
		panic(fmt.Sprintf("registry: batch set: %v", err))
	}
}

// closeJoin closes c when a read is done and, if the read succeeded,
// returns its error through err: a Pebble iterator reports a failed read
// at Close.
func closeJoin(c io.Closer, err *error) {
	if cerr := c.Close(); *err == nil {
		*err = cerr
	}
}

func mustSetJSON(b *pebble.Batch, k []byte, v any) {
	mustSet(b, k, mustMarshal(v))
}

// mustMarshal encodes a record as it is stored: as json.Marshal does,
// the records every write stores (an accreditation, the entry's result,
// the operation) without reflection.
func mustMarshal(v any) []byte {
	var data []byte
	ok := false
	switch r := v.(type) {
	case *record.Accreditation:
		data, ok = r.AppendJSON(make([]byte, 0, 1024))
	case *record.Result:
		data, ok = r.AppendJSON(make([]byte, 0, 256+len(r.Reason)))
	case opRecord:
		data, ok = r.appendJSON(make([]byte, 0, 256+len(r.JWS)*4/3))
	}
	if ok {
		return data
	}
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("registry: encode record: %v", err))
	}
	return data
}

// pebbleLogger keeps Pebble's informational chatter out of the node's log
// and passes its errors on. A fatal error that is a full disk ends the
// process with one clear line instead of a panic's stack trace; on
// restart the node finds the disk full before it writes (DiskFull) and
// says so while it serves reads, not ready.
type pebbleLogger struct {
	log *slog.Logger
	dir string
}

func (pebbleLogger) Infof(string, ...any) {}
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
}
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, a := range args {
		if err, ok := a.(error); ok && isNoSpace(err) {
			l.log.Error("disk full: the state database cannot go on writing; free space under the data directory and start trustd again", "dir", l.dir, "err", msg)
			fatalExit()
		}
	}
	panic(msg)
}

func getJSON(r pebble.Reader, k []byte, v any) (bool, error) {
	val, closer, err := r.Get(k)
	if err == pebble.ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %x: %w", k[:1], err)
	}
	defer func() { _ = closer.Close() }() // releases the read value; nothing to report
	if err := decodeRecord(val, v); err != nil {
		return false, fmt.Errorf("decode record %x: %w", k[:1], err)
	}
	return true, nil
}

// commitTimes adds up the Pebble commit statistics of the apply's batches
// (and of the map overlay's flushes, which the apply commits too): where
// the apply waits inside Pebble rather than computes. Read concurrently
// by metrics scrapes.
type commitTimes struct {
	count, total, memtableStall, l0Stall atomic.Int64 // commits; nanoseconds
}

func (c *commitTimes) add(st pebble.BatchCommitStats) {
	c.count.Add(1)
	c.total.Add(int64(st.TotalDuration))
	c.memtableStall.Add(int64(st.MemTableWriteStallDuration))
	c.l0Stall.Add(int64(st.L0ReadAmpWriteStallDuration))
}

// CommitTimes is the time the apply's batches spent in Pebble's Commit
// since the state was opened.
type CommitTimes struct {
	Commits uint64
	// Total is the commits' whole time: the write-ahead log's write (not
	// synced), the memtable's insertion of the batch, and the stalls.
	Total time.Duration
	// MemTableStall is the part of Total spent waiting for a memtable to
	// flush (too many memtables queued), L0Stall waiting for L0 to be
	// compacted (L0StopWritesThreshold sublevels).
	MemTableStall, L0Stall time.Duration
}

// CommitTimes returns the time the apply's batches have spent in Pebble's
// Commit since Open.
func (s *State) CommitTimes() CommitTimes {
	c := &s.commits
	return CommitTimes{Commits: uint64(c.count.Load()), Total: time.Duration(c.total.Load()),
		MemTableStall: time.Duration(c.memtableStall.Load()), L0Stall: time.Duration(c.l0Stall.Load())}
}
