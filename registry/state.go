package registry

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/trustreg/trustreg/registry/record"
)

// DefaultIATWindow is how far an operation's iat may lie from the commit
// time when the genesis does not say otherwise.
const DefaultIATWindow = 10 * time.Minute

// Entry is one committed log entry as the consensus layer hands it over.
type Entry struct {
	Index uint64
	Time  time.Time // commit time stamped by the leader
	Data  []byte
}

// State is the registry's replicated state machine and its read side.
type State struct {
	sigs       atomic.Pointer[sigFilter] // every stored signature (sigfilter.go); replaced by the apply and restore only
	dir        string
	dbOpts     *pebble.Options // as opened, with defaults filled in
	db         *pebble.DB
	log        *slog.Logger
	genesis    record.Genesis
	genesisRaw []byte
	genesisCID string
	members    map[string]record.Member
	iatWindow  time.Duration

	applied    atomic.Uint64
	commitTime atomic.Int64 // unix nanoseconds of the last applied entry
	level      atomic.Int32 // the cluster's feature level (features.go)
	// levelSeq is odd while a batch that raised the feature level is
	// applied and not yet committed (levelRaised, the apply's own record
	// of it): the level in memory is ahead of the committed state then.
	levelSeq    atomic.Uint64
	levelRaised bool

	lists     *listCache
	records   *recordCache
	verified  *lru.Cache[[32]byte, struct{}] // signatures PreVerify checked
	parsed    *parsedCache                   // operations PreVerify parsed, by SHA-256 of their bytes
	keys      *keyCache                      // public keys parsed from did:keys and registered JWKs
	dirty     []string                       // keys written by the batch being applied
	dirtySet  map[string]struct{}            // the same keys, for lookups
	closeOnce sync.Once
	disk      *diskGuard    // free space under dir (disk.go)
	halt      chan struct{} // closed by Halt: a wait for disk space gives up
	haltOnce  sync.Once
	mu        sync.Mutex
	appliedCh chan struct{} // closed and replaced whenever applied advances

	onApply func([]*record.Result) // Options.OnApply
}

// Options configure Open.
type Options struct {
	Logger *slog.Logger
	// OnApply, if set, is called after each batch commit with the results,
	// on the goroutine that applies. It must not block. It is fixed at
	// Open, before the consensus layer can apply anything.
	OnApply func([]*record.Result)
	// DiskReserveBytes is the free space kept in reserve under the state's
	// directory (DefaultDiskReserveBytes if 0): with less, applying waits
	// and a restore is refused (disk.go).
	DiskReserveBytes uint64
}

// Open opens (creating if needed) the state database in dir for the
// consortium the genesis document defines. A database created for another
// genesis is refused with ErrGenesis.
func Open(dir string, genesisRaw []byte, opts Options) (*State, error) {
	g, err := ParseGenesis(genesisRaw)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	popts := stateOptions(pebbleLogger{log: logger.With("component", "pebble"), dir: dir})
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
	if err := os.RemoveAll(filepath.Join(dir, "restore")); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: %w", dir, err)
	}
	s := &State{
		dir:        dir,
		dbOpts:     popts,
		db:         db,
		log:        logger.With("component", "registry"),
		genesis:    *g,
		genesisRaw: append([]byte(nil), genesisRaw...),
		genesisCID: record.CIDOf(genesisRaw),
		members:    map[string]record.Member{},
		appliedCh:  make(chan struct{}),
		lists:      newListCache(256 << 20),
		records:    newRecordCache(recordCacheEntries),
		keys:       newKeyCache(),
		dirtySet:   map[string]struct{}{},
		onApply:    opts.OnApply,
		halt:       make(chan struct{}),
	}
	reserve := opts.DiskReserveBytes
	if reserve == 0 {
		reserve = DefaultDiskReserveBytes
	}
	s.disk = newDiskGuard(dir, reserve, s.log)
	for _, m := range g.Members {
		s.members[m.ID] = m
	}
	s.verified, _ = lru.New[[32]byte, struct{}](1 << 16)
	s.parsed = newParsedCache()
	s.iatWindow = DefaultIATWindow
	if g.IATWindow != "" {
		s.iatWindow, _ = time.ParseDuration(g.IATWindow) // validated by ParseGenesis
	}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
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
)

// recordCacheEntries bounds the record cache. Most entries are a
// college's accreditations with its received listing (about 550 bytes
// decoded); 120,000 of them take about the memory the 200,000 entries
// of before did when a college took two (BENCHMARKS.md, fourteenth pass).
const recordCacheEntries = 120_000

// stateOptions makes the options a state database is opened with (a test
// opens one as an older build did).
var stateOptions = pebbleOptions

func pebbleOptions(logger pebble.Logger) *pebble.Options {
	cache := pebble.NewCache(stateCacheBytes)
	opts := &pebble.Options{Logger: logger, Cache: cache, MemTableSize: stateMemTableBytes}
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

func (s *State) init() error {
	if _, closer, err := s.db.Get(metaRestoring); err == nil {
		closer.Close()
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
		b.Set(metaGenesis, s.genesisRaw, nil)
		b.Set(metaApplied, u64(0), nil)
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("initialize state: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read genesis: %w", err)
	default:
		storedCID := record.CIDOf(stored)
		closer.Close()
		if storedCID != s.genesisCID {
			return fmt.Errorf("%w: the data directory belongs to the consortium with genesis %s, not %s: use the genesis it was created with or a new data directory", record.ErrGenesis, storedCID, s.genesisCID)
		}
	}
	if err := s.loadSigs(); err != nil {
		return err
	}
	return s.loadMeta()
}

// loadSigs builds the signature filter from the stored signatures; after
// opening and after a restore replaced the state.
func (s *State) loadSigs() error {
	f, err := buildSigFilter(s.db)
	if err != nil {
		return err
	}
	s.sigs.Store(f)
	return nil
}

func (s *State) loadMeta() error {
	// The level first: a state this build refuses leaves nothing loaded.
	if err := s.loadLevel(); err != nil {
		return err
	}
	s.applied.Store(s.readU64(metaApplied))
	s.commitTime.Store(int64(s.readU64(metaCommitTime)))
	return nil
}

func (s *State) readU64(k []byte) uint64 {
	v, closer, err := s.db.Get(k)
	if err != nil {
		return 0
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// Close closes the database. Closing twice is harmless.
func (s *State) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.records.close()
		err = s.db.Close()
	})
	return err
}

// GenesisCID returns the CID of the genesis document; it identifies the
// consortium.
func (s *State) GenesisCID() string { return s.genesisCID }

// Genesis returns the consortium's genesis.
func (s *State) Genesis() record.Genesis { return s.genesis }

// AppliedIndex returns the index of the last applied entry.
func (s *State) AppliedIndex() uint64 { return s.applied.Load() }

// WaitApplied blocks until the applied index reaches index or ctx ends.
func (s *State) WaitApplied(ctx context.Context, index uint64) error {
	if err := s.waitApply(ctx, func() bool { return s.applied.Load() >= index }); err != nil {
		return fmt.Errorf("wait for index %d (applied %d): %w", index, s.applied.Load(), err)
	}
	return nil
}

// waitApply blocks until done holds, looking again after every applied
// batch, or until ctx ends (its error).
func (s *State) waitApply(ctx context.Context, done func() bool) error {
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

func (s *State) advance(index uint64, t time.Time) {
	s.applied.Store(index)
	s.commitTime.Store(t.UnixNano())
	s.mu.Lock()
	close(s.appliedCh)
	s.appliedCh = make(chan struct{})
	s.mu.Unlock()
}

// Command envelope: a version byte, a type byte, then the body. Type numbers
// are append-only; a removed number is reserved, never reused.
const (
	commandVersion1     byte = 1
	commandTypeSubmitOp byte = 1 // body: the exact bytes of a signed operation
)

// EncodeOperation wraps a signed operation into a log command.
func EncodeOperation(jws []byte) []byte {
	b := make([]byte, 0, len(jws)+2)
	b = append(b, commandVersion1, commandTypeSubmitOp)
	return append(b, jws...)
}

// ApplyBatch applies committed entries in order, in one Pebble batch, and
// returns one result per entry. Entries at or below the applied index were
// applied before (a replay after restart) and return their stored result.
// It panics on an entry it cannot decode or a storage failure: continuing
// would let this node diverge from its peers.
func (s *State) ApplyBatch(entries []Entry) []*record.Result {
	results := make([]*record.Result, len(entries))
	applied := s.applied.Load()
	s.preVerifyBatch(entries, applied)
	b := s.db.NewIndexedBatch()
	defer b.Close()
	last := time.Unix(0, s.commitTime.Load()).UTC()
	var fresh []*record.Result
	for i, e := range entries {
		if e.Index <= applied {
			results[i] = s.storedResult(e.Index)
			continue
		}
		// Commit time never runs backwards, whatever a new leader's clock says.
		t := e.Time.UTC()
		if t.Before(last) {
			t = last
		}
		res := s.applyEntry(b, e.Index, t, e.Data)
		mustSetJSON(b, indexKey(tableResults, e.Index), res)
		results[i] = res
		fresh = append(fresh, res)
		applied, last = e.Index, t
	}
	if len(fresh) == 0 {
		return results
	}
	// The batch commits whole, so the applied index and commit time are
	// written once, for its last entry (nothing in the apply reads them
	// back from the batch).
	b.Set(metaApplied, u64(applied), nil)
	b.Set(metaCommitTime, u64(uint64(last.UnixNano())), nil)
	// No fsync here: the raft log, synced on a majority, is what makes an
	// entry durable. A state that loses its unsynced tail in a crash is
	// behind the log, and raft replays the tail (entries at or below the
	// applied index are skipped). Snapshot syncs first, so the log is never
	// compacted past what the state holds durably.
	//
	// A full disk is found before the commit: Pebble cannot take back a
	// write that fails in its commit pipeline, and this entry cannot be
	// skipped, so the apply waits for space (waitForSpace).
	if err := s.disk.check(); err != nil {
		s.waitForSpace(applied, err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		panic(fmt.Sprintf("registry: commit applied entries up to %d: %v", applied, err))
	}
	if s.levelRaised {
		s.levelRaised = false
		s.levelSeq.Add(1)
	}
	s.records.committed(s.dirty)
	s.dirty = s.dirty[:0]
	clear(s.dirtySet)
	s.advance(applied, last)
	if s.onApply != nil {
		s.onApply(fresh)
	}
	return results
}

// preVerifyBatch checks the signatures of a batch's operations on every
// core before the single-threaded apply, against the keys committed so far.
// Apply still decides: it looks each check up by key and exact bytes, and
// verifies whatever is missing (a key an earlier entry of the batch
// rotated, say).
func (s *State) preVerifyBatch(entries []Entry, applied uint64) {
	var todo [][]byte
	for _, e := range entries {
		if e.Index > applied && len(e.Data) > 2 && e.Data[0] == commandVersion1 && e.Data[1] == commandTypeSubmitOp {
			todo = append(todo, e.Data[2:])
		}
	}
	if len(todo) < 2 {
		return
	}
	workers := min(runtime.GOMAXPROCS(0), len(todo))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(todo)); i = next.Add(1) - 1 {
				_ = s.PreVerify(todo[i]) // failures are the apply's to report
			}
		}()
	}
	wg.Wait()
}

func (s *State) storedResult(index uint64) *record.Result {
	var r record.Result
	if ok, err := getJSON(s.db, indexKey(tableResults, index), &r); err != nil || !ok {
		return &record.Result{Index: index, Accepted: false, Code: record.CodeInvalid, Reason: "entry applied before; its result is not stored"}
	}
	return &r
}

func (s *State) applyEntry(b *pebble.Batch, index uint64, t time.Time, data []byte) *record.Result {
	if len(data) < 2 || data[0] != commandVersion1 {
		panic(fmt.Sprintf("registry: entry %d: unknown command envelope %x: this node cannot apply it; upgrade trustd", index, data[:min(len(data), 2)]))
	}
	switch data[1] {
	case commandTypeSubmitOp:
		return s.applyOperation(b, index, t, data[2:])
	case commandTypeFeatureLevel:
		return s.applyFeatureLevel(b, index, t, data[2:])
	default:
		panic(fmt.Sprintf("registry: entry %d: unknown command type %d: this node cannot apply it; upgrade trustd", index, data[1]))
	}
}

// StateDigest returns a SHA-256 over every record of the domain state, in
// key order. Two nodes that applied the same entries have equal digests; a
// rejected operation leaves the digest unchanged.
func (s *State) StateDigest() (string, error) {
	_, d, err := s.DigestAt()
	return d, err
}

// DigestAt returns the applied index and the state digest, read from one
// consistent snapshot.
func (s *State) DigestAt() (uint64, string, error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	var applied uint64
	if v, closer, err := snap.Get(metaApplied); err == nil {
		applied = binary.BigEndian.Uint64(v)
		closer.Close()
	}
	d, err := digestOf(snap)
	return applied, d, err
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

// ParseGenesis decodes and validates a genesis document.
func ParseGenesis(raw []byte) (*record.Genesis, error) {
	var g record.Genesis
	if err := record.DecodeStrict(raw, &g); err != nil {
		return nil, record.Errorf(record.ErrInvalid, "genesis: %v", err)
	}
	if g.Consortium == "" {
		return nil, record.Errorf(record.ErrInvalid, "genesis names no consortium")
	}
	if len(g.Members) == 0 {
		return nil, record.Errorf(record.ErrInvalid, "genesis has no governance members")
	}
	if g.Threshold < 1 || g.Threshold > len(g.Members) {
		return nil, record.Errorf(record.ErrInvalid, "genesis threshold %d must be between 1 and the %d members", g.Threshold, len(g.Members))
	}
	if g.IATWindow != "" {
		if d, err := time.ParseDuration(g.IATWindow); err != nil || d <= 0 {
			return nil, record.Errorf(record.ErrInvalid, "genesis iatWindow %q is not a positive duration", g.IATWindow)
		}
	}
	seen := map[string]bool{}
	for _, m := range g.Members {
		if err := record.ValidateID("member id", m.ID); err != nil {
			return nil, record.Errorf(record.ErrInvalid, "genesis: %v", err)
		}
		if seen[m.ID] {
			return nil, record.Errorf(record.ErrInvalid, "genesis lists member %s twice", m.ID)
		}
		seen[m.ID] = true
		for _, k := range m.Keys {
			if _, err := record.ParsePublicJWK(k); err != nil {
				return nil, record.Errorf(record.ErrInvalid, "genesis member %s: %v", m.ID, err)
			}
		}
		if len(m.Keys) == 0 {
			if _, err := record.ParseDIDKey(m.ID); err != nil {
				return nil, record.Errorf(record.ErrInvalid, "genesis member %s has no keys and is not a did:key", m.ID)
			}
		}
	}
	return &g, nil
}

func u64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

func mustSetJSON(b *pebble.Batch, k []byte, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("registry: encode record: %v", err))
	}
	if err := b.Set(k, data, nil); err != nil {
		panic(fmt.Sprintf("registry: batch set: %v", err))
	}
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
