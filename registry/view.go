package registry

import (
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// readModel answers reads: decisions, listings and the bindings' views,
// each from one View. It reads the store only through views, and the caches
// only as a view of their state allows (cache.go).
type readModel struct {
	store  *store
	caches *caches
}

// View is the state as of one applied index, read from one Pebble
// snapshot: every read through it sees the same records, and Index is the
// index they were applied at. Views are cheap; take one per request and
// Close it when the answer is made (a restore waits for open views).
// A View is safe for use by one goroutine at a time.
type View struct {
	m          *readModel
	snap       *pebble.Snapshot
	index      uint64
	commitTime int64 // unix nanoseconds of the entry at index
	rd         storeReader
	closeOnce  sync.Once
}

// View returns a view of the latest applied state.
func (m *readModel) View() *View {
	m.store.readers.RLock()
	snap, index, commitNs, seq, cached := m.store.snapshot()
	v := &View{m: m, snap: snap, index: index, commitTime: commitNs}
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
		_ = v.snap.Close() // Pebble's Close returns no error
		v.m.store.readers.RUnlock()
	})
}

// evaluator returns an evaluator as of asOf over the view, through the
// record cache when the view may use it.
func (v *View) evaluator(asOf uint64) *evaluator {
	e := &evaluator{src: &v.rd, asOf: asOf}
	if v.rd.cache != nil {
		e.memo = &v.rd
	}
	return e
}

// plain returns an evaluator as of the view's index that reads records
// without the record cache: for listings and exports, which read many
// records once and would push out the ones trust questions keep there.
func (v *View) plain() *evaluator {
	return &evaluator{src: &storeReader{r: v.snap}, asOf: v.index}
}

// Decide answers a trust question. now is the reader's clock, used when the
// question names no time. Unknown entities get the same shape as known but
// unauthorized ones.
func (v *View) Decide(q Question, now time.Time) (*Decision, error) {
	var memo Memo
	if v.rd.cache != nil {
		memo = &v.rd
	}
	return decideOver(&v.rd, memo, v.index, q, now)
}

// Forever is the "until" of an answer that does not depend on the clock.
var Forever = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// DecideSecond answers a trust question so that the answer can be reused.
// A question without "at" is evaluated at the start of now's second, and
// until reports how long that answer holds: it is the same for every
// instant of [d.At, until), until being the first record time after d.At
// that the decision compared with (Forever when there is none). When such
// a time falls inside now's own second, the question is answered at now
// itself and until is zero: that answer is for that instant only. A
// question with "at" does not depend on now: until is Forever.
func (v *View) DecideSecond(q Question, now time.Time) (d *Decision, until time.Time, err error) {
	asOf, err := v.checkQuestion(q)
	if err != nil {
		return nil, time.Time{}, err
	}
	if !q.At.IsZero() {
		d, err := v.evaluator(asOf).decide(q, q.At.UTC())
		return d, Forever, err
	}
	lo := now.UTC().Truncate(time.Second)
	e := v.evaluator(asOf)
	e.span = &secondSpan{lo: lo, hi: lo.Add(time.Second)}
	d, err = e.decide(q, lo)
	if err != nil {
		return nil, time.Time{}, err
	}
	if !e.span.split() {
		if e.span.next.IsZero() {
			return d, Forever, nil
		}
		return d, e.span.next, nil
	}
	d, err = v.evaluator(asOf).decide(q, now.UTC())
	return d, time.Time{}, err
}

// checkQuestion validates q and returns the index it is answered as of.
func (v *View) checkQuestion(q Question) (uint64, error) {
	if err := q.validate(); err != nil {
		return 0, err
	}
	return asOf(q.AsOf, v.index)
}
