package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/trustreg/trustreg/registry/decide"
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

// State is the registry's replicated state machine and its read side,
// composed of parts with one job each (DESIGN.md):
//
//   - the store (store.go, snapshot.go): the Pebble database, its layout,
//     commits, snapshots for readers, and the snapshot stream;
//   - the applier (applier.go, apply*.go, check.go): the pure apply of log
//     entries, and the leader's check of the same rules;
//   - the verifier (verifier.go): parsing and signature checks before the
//     apply, with the key and parse caches;
//   - the read model (view.go and the read files): decisions, listings and
//     the bindings' views, each from one View;
//   - the caches (cache.go), which the store's commits invalidate.
//
// The consensus layer drives ApplyBatch, Snapshot and Restore; the gateway
// reads through View.
type State struct {
	*store
	rules     *consortium
	caches    *caches
	verify    *verifier
	apply     *applier
	read      *readModel
	kept      *keptViews // views of recent states by log size (kept.go)
	closeKeep sync.Once
	// closeFlush writes the map overlay at Close, unless keepJournal (a
	// test's stand-in for a crash) is set.
	closeFlush  sync.Once
	keepJournal bool
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
	// OnStateCorrupt, if set, is called when a proof read (View's
	// ProveRecords, ProveStoreKeys) finds the stored state disagreeing
	// with its commitment (ErrStateCorrupt), with that error, on the
	// reading goroutine. It must not block.
	OnStateCorrupt func(error)

	// fs is the file system the database lives on (nil: the OS's). Tests
	// give a crashable in-memory one to lose what was not synced, as a
	// power loss does (randomlog_test.go).
	fs vfs.FS
}

// Open opens (creating if needed) the state database in dir for the
// consortium the genesis document defines. A database created for another
// genesis is refused with ErrGenesis.
func Open(dir string, genesisRaw []byte, opts Options) (*State, error) {
	if err := environmentGODEBUG(); err != nil {
		return nil, err
	}
	g, err := record.ParseGenesis(genesisRaw)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reserve := opts.DiskReserveBytes
	if reserve == 0 {
		reserve = DefaultDiskReserveBytes
	}
	st, err := openStore(dir, genesisRaw, record.CIDOf(genesisRaw), logger, reserve, opts.fs)
	if err != nil {
		return nil, err
	}
	s := &State{store: st, rules: newConsortium(g), caches: newCaches(&st.seq)}
	s.read = &readModel{store: st, caches: s.caches, onCorrupt: opts.OnStateCorrupt}
	s.verify = newVerifier(s.rules, s.read, s.caches.keys)
	s.apply = &applier{store: st, consortium: s.rules, verify: s.verify, caches: s.caches,
		dirtySet: map[decide.RecordKey]struct{}{}, onApply: opts.OnApply,
		flushEntries: journalFlushEntries, flushBytes: journalFlushBytes}
	if err := s.load(); err != nil {
		return nil, errors.Join(err, st.db.Close())
	}
	s.startKeeping()
	return s, nil
}

// load reads into memory what the stored state says: the signature filter,
// the feature level, the applied index and commit time, the state map's
// overlay (replaying the map journal, journal.go); it empties the state
// map's top cache and forgets the transparency log's head and the
// received listings. After opening and after a restore.
func (s *State) load() error {
	if err := s.apply.loadSigs(); err != nil {
		return err
	}
	s.apply.mapTop.Store(newMapTop())
	s.apply.logHead.Store(nil)
	s.apply.listings, s.apply.listingsOff = nil, false
	s.apply.checkListings.Store(nil)
	ov, err := replayJournal(s.db)
	if err != nil {
		return fmt.Errorf("open state: replay the map journal: %w", err)
	}
	s.mapOverlay.Store(ov)
	// The level first: a state this build refuses leaves nothing loaded.
	if err := s.rules.loadLevel(s.db); err != nil {
		return err
	}
	s.loadMeta()
	return nil
}

// Close closes the database, after writing the state map's overlay into
// it (journal.go), so the next Open has no journal to replay. Closing
// twice is harmless. No batch may be applied while it runs.
func (s *State) Close() error {
	s.closeKeep.Do(s.stopKeeping)
	var err error
	s.closeFlush.Do(func() {
		if !s.keepJournal {
			if err = s.flushMapOverlay(); err != nil {
				err = fmt.Errorf("close state: %w", err)
			}
		}
	})
	return errors.Join(err, s.close(s.caches.close))
}

// GenesisCID returns the CID of the genesis document; it identifies the
// consortium.
func (s *State) GenesisCID() string { return s.genesisCID }

// Genesis returns the consortium's genesis.
func (s *State) Genesis() record.Genesis { return s.rules.genesis }

// View returns a view of the latest applied state, for one read: see View.
func (s *State) View() *View { return s.read.View() }

// ApplyBatch applies committed entries: see applier.ApplyBatch.
func (s *State) ApplyBatch(entries []Entry) []*record.Result { return s.apply.ApplyBatch(entries) }

// Check decides an operation as the next entry would be: see applier.Check.
func (s *State) Check(raw []byte, now time.Time) *record.Result { return s.apply.Check(raw, now) }

// CheckCommand is Check for a log command: see applier.CheckCommand.
func (s *State) CheckCommand(cmd []byte, now time.Time) *record.Result {
	return s.apply.CheckCommand(cmd, now)
}

// PreVerify parses an operation and checks its signatures ahead of the
// apply: see verifier.PreVerify.
func (s *State) PreVerify(raw []byte) error { return s.verify.PreVerify(raw) }

// PreVerifyLevel is PreVerify that also returns the feature level the
// operation needs.
func (s *State) PreVerifyLevel(raw []byte) (int, error) { return s.verify.PreVerifyLevel(raw) }

// SignatureChecks returns how many signatures this state has verified
// since it was opened: ahead of the apply (PreVerify, Prefetch and the
// leader's check remembering what they checked), and while judging (the
// check or the apply, for a signature that memory did not hold: a key
// rotated in between, an entry the node had not seen before it was
// applied, or one the memory's bound pushed out). On a node that keeps
// up, about one check ahead a signature and none while judging.
func (s *State) SignatureChecks() (ahead, judging uint64) {
	return s.verify.checkedAhead.Load(), s.verify.checkedJudging.Load()
}

// OperationsRead returns how many operation records views of this state
// have read and decoded since it was opened for the pages of operations
// they return (Changes, ChangesOf, History), whatever a caller then keeps
// of them: what those pages cost grows with it, so tests check with it
// that a read reads only what it should (the gateway's watch filtered by
// an entity reads the entity's operations only).
func (s *State) OperationsRead() uint64 { return s.read.opsRead.Load() }

// ClusterFeatureLevel returns the cluster's feature level (features.go).
func (s *State) ClusterFeatureLevel() int { return s.rules.ClusterFeatureLevel() }

// WaitFeatureLevel blocks until the cluster's feature level is at least
// level, or ctx ends.
func (s *State) WaitFeatureLevel(ctx context.Context, level int) error {
	if err := s.waitApply(ctx, func() bool { return s.ClusterFeatureLevel() >= level }); err != nil {
		return fmt.Errorf("wait for feature level %d (at %d): %w", level, s.ClusterFeatureLevel(), err)
	}
	return nil
}

// Restore replaces the whole state with a snapshot stream: see
// store.restore. The caches, the signature filter and the feature level
// are reloaded from the restored state before any reader sees it.
func (s *State) Restore(r io.Reader) error {
	s.kept.pause()
	defer s.kept.resume()
	return s.restore(r, func() error {
		s.caches.replaced()
		return s.load()
	})
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
