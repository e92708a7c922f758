package registry

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// readModel answers reads: decisions, listings and the bindings' views,
// each from one View. It reads the store only through views, and the caches
// only as a view of their state allows (cache.go).
type readModel struct {
	store  *store
	caches *caches
	// onCorrupt is Options.OnStateCorrupt (nil: none).
	onCorrupt func(error)
	// opsRead counts the operation records views have read for pages of
	// operations (State.OperationsRead).
	opsRead atomic.Uint64
}

// corrupt hands err to onCorrupt when it is ErrStateCorrupt, and returns it.
func (m *readModel) corrupt(err error) error {
	if m.onCorrupt != nil && errors.Is(err, ErrStateCorrupt) {
		m.onCorrupt(err)
	}
	return err
}

// View is the state as of one applied index, read from one Pebble
// snapshot: every read through it sees the same records, and Index is the
// index they were applied at. Views are cheap; take one per request and
// Close it when the answer is made (a restore waits for open views).
// A View is safe for use by one goroutine at a time.
type View struct {
	m          *readModel
	snap       *pebble.Snapshot
	ov         *mapOverlay // the map overlay that goes with snap (journal.go)
	index      uint64
	commitTime int64 // unix nanoseconds of the entry at index
	rd         storeReader
	closeOnce  sync.Once
	// release, when set, ends the view instead of closing its snapshot:
	// a view handed out from a kept one (kept.go) shares its snapshot.
	release func()
	// mem, on a kept view and the views handed out from it, remembers
	// what its proofs read (viewnodes.go).
	mem *viewMemory
	// scanBound and opPageBound, when set (by tests), replace MaxPageScan
	// (and MaxExportScan) and MaxOperationPageBytes.
	scanBound, opPageBound int
}

// maxScan is the most records one page of the view reads.
func (v *View) maxScan() int {
	if v.scanBound > 0 {
		return v.scanBound
	}
	return MaxPageScan
}

// maxExportScan is the most accreditations one export of the view reads.
func (v *View) maxExportScan() int {
	if v.scanBound > 0 {
		return v.scanBound
	}
	return MaxExportScan
}

// View returns a view of the latest applied state.
func (m *readModel) View() *View {
	m.store.readers.RLock()
	snap, ov, index, commitNs, seq, cached := m.store.snapshot()
	v := &View{m: m, snap: snap, ov: ov, index: index, commitTime: commitNs}
	v.rd = storeReader{r: snap, snap: snap, epoch: seq}
	if cached {
		v.rd.cache = m.caches.records
	}
	return v
}

// Index returns the applied index of the state the view reads: the index
// an answer made from it is reported at (X-Trustreg-Index, ETags).
func (v *View) Index() uint64 { return v.index }

// Close releases the view's snapshot. Closing twice is harmless.
func (v *View) Close() {
	v.closeOnce.Do(func() {
		if v.release != nil {
			v.release()
			return
		}
		_ = v.snap.Close() // Pebble's Close returns no error
		v.m.store.readers.RUnlock()
	})
}

// evaluator returns an evaluator as of asOf over the view, through the
// record cache when the view may use it.
func (v *View) evaluator(asOf uint64) *decide.Evaluator {
	return decide.NewEvaluator(&v.rd, v.memo(), asOf)
}

// plain returns an evaluator as of the view's index that reads records
// without the record cache: for listings and exports, which read many
// records once and would push out the ones trust questions keep there.
func (v *View) plain() *decide.Evaluator {
	return decide.NewEvaluator(&storeReader{r: v.snap}, nil, v.index)
}

// memo is the view's record cache, when it may use it.
func (v *View) memo() decide.Memo {
	if v.rd.cache != nil {
		return &v.rd
	}
	return nil
}

// Records returns the view's records as the decision code reads them,
// without the record cache: for a decision run through a proof.Recorder,
// which must see every read. A kept view's reads go through its memory
// (viewnodes.go), which returns each record's bytes as a read does. The
// bytes returned are never changed or reused (a read's own copy, or a
// kept view's shared memory): a proof.NewStableRecorder keeps them as is.
func (v *View) Records() decide.Records {
	r := &storeReader{r: v.snap, snap: v.snap}
	if v.mem != nil {
		return cachedRecords{m: v.mem, r: r}
	}
	return r
}

// CommitTime returns the commit time of the entry at the view's index.
func (v *View) CommitTime() time.Time { return time.Unix(0, v.commitTime).UTC() }

// Decide answers a trust question (see the package function Decide).
func (v *View) Decide(q decide.Question, now time.Time) (*record.Decision, error) {
	return decide.Decide(&v.rd, v.memo(), v.index, q, now)
}

// DecideSecond answers a trust question so that the answer can be reused
// (see the package function DecideSecond).
func (v *View) DecideSecond(q decide.Question, now time.Time) (*record.Decision, time.Time, error) {
	return decide.DecideSecond(&v.rd, v.memo(), v.index, q, now)
}

// DecideRecognition answers a recognition question (see decide.Recognize).
func (v *View) DecideRecognition(q decide.RecognitionQuestion, now time.Time) (*decide.RecognitionDecision, error) {
	return decide.Recognize(&v.rd, v.index, q, now)
}
