package registry

import (
	"bytes"
	"errors"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/record"
)

// Question asks whether Entity is authorized for Action on Resource under
// Framework at valid time At, as the registry knew it at index AsOf.
type Question struct {
	Entity       string    `json:"entity"`
	Framework    string    `json:"framework"`
	Action       string    `json:"action"`
	Resource     string    `json:"resource,omitempty"`
	Jurisdiction string    `json:"jurisdiction,omitempty"`
	At           time.Time `json:"at,omitzero"`     // zero: the time of the query
	AsOf         uint64    `json:"as_of,omitempty"` // zero: the latest applied index
}

// evaluator reads state as of one index. On the read side it reads
// through the record cache; the apply path leaves cache nil.
type evaluator struct {
	r     pebble.Reader
	asOf  uint64
	cache *recordCache
	epoch uint64
	// dirty, during apply, holds the keys the batch has written: those are
	// read from the batch, never from or into the cache.
	dirty map[string]struct{}
	// span, on the read side, is the second a decision is made for; every
	// record time the decision compares with is checked against it.
	span *secondSpan
}

// secondSpan is one second [lo, lo+1s). A decision evaluated at lo holds
// until the first record time after lo that it compared with (validFrom,
// validUntil, a status event's effectiveAt): every comparison flips only
// at such a time. next is that time (zero: none).
type secondSpan struct {
	lo, hi time.Time
	next   time.Time
}

func (sp *secondSpan) touch(x time.Time) {
	if sp != nil && x.After(sp.lo) && (sp.next.IsZero() || x.Before(sp.next)) {
		sp.next = x
	}
}

// split reports whether a record time falls inside the second.
func (sp *secondSpan) split() bool { return !sp.next.IsZero() && sp.next.Before(sp.hi) }

func (sp *secondSpan) touchEvents(events []record.StatusEvent) {
	if sp == nil {
		return
	}
	for i := range events {
		sp.touch(events[i].EffectiveAt)
	}
}

// cached reports whether key k may be read through the cache.
func (e *evaluator) cached(k string) bool {
	if e.cache == nil {
		return false
	}
	_, written := e.dirty[k]
	return !written
}

// readRecord decodes the record at k into a new T, through the cache when
// there is one. Cached values are shared: callers must not modify them.
func readRecord[T any](e *evaluator, k []byte) (*T, error) { return loadRecord[T](e, k, true) }

// loadRecord is readRecord; with keep false it uses a cached copy but does
// not cache one it decodes (the caller keeps it in an entry of its own).
func loadRecord[T any](e *evaluator, k []byte, keep bool) (*T, error) {
	useCache := e.cached(string(k))
	if useCache {
		if v, ok := e.cache.get(string(k)); ok {
			return v.(*T), nil
		}
	}
	v := new(T)
	ok, err := getJSON(e.r, k, v)
	if err != nil {
		return nil, err
	}
	if !ok {
		v = nil
	}
	if useCache && keep {
		e.cache.put(string(k), v, e.epoch)
	}
	return v, nil
}

func (e *evaluator) accreditation(id string) (*record.Accreditation, error) {
	a, err := readRecord[record.Accreditation](e, key(tableAccreditation, id))
	if err != nil || a == nil || a.CreatedIndex > e.asOf {
		return nil, err
	}
	return a, nil
}

func (e *evaluator) framework(id string) (*record.Framework, error) {
	f, err := readRecord[record.Framework](e, key(tableFrameworks, id))
	if err != nil || f == nil || f.CreatedIndex > e.asOf {
		return nil, err
	}
	return f, nil
}

// isRoot reports whether did is a root accreditor of framework at t.
func (e *evaluator) isRoot(framework, did string, t time.Time) (bool, error) {
	root, err := readRecord[record.RootAccreditor](e, key(tableRoots, framework, did))
	if err != nil || root == nil {
		return false, err
	}
	e.span.touchEvents(root.Events)
	ev, ok := statusAt(root.Events, t, e.asOf)
	return ok && ev.Status == record.StatusActive, nil
}

// received returns every accreditation subject received in framework,
// those created after the evaluator's index included (the caller skips
// them). They are cached together, as one entry under the listing's
// prefix: a question about a college costs the record cache one entry,
// not one for the listing and one for each accreditation, so the cache
// holds the answers' inputs for twice as many colleges. A change to one of
// the accreditations drops the entry (the apply marks the prefix dirty).
func (e *evaluator) received(subject, framework string) ([]*record.Accreditation, error) {
	p := prefix(tableReceived, subject, framework)
	useCache := e.cached(string(p))
	if useCache {
		if v, ok := e.cache.get(string(p)); ok {
			return v.([]*record.Accreditation), nil
		}
	}
	var ids []string
	list := func(it *pebble.Iterator) {
		for it.First(); it.Valid(); it.Next() {
			ids = append(ids, string(bytes.TrimPrefix(it.Key(), p)))
		}
	}
	// On the read side (r is the database itself, not a batch) the cache
	// keeps iterators between questions.
	if db, ok := e.r.(*pebble.DB); ok && e.cache != nil {
		k, err := e.cache.iter(db, p, upperBound(p))
		if err != nil {
			return nil, err
		}
		list(k.it)
		if err := e.cache.release(k); err != nil {
			return nil, err
		}
	} else {
		it, err := e.r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
		if err != nil {
			return nil, err
		}
		list(it)
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return nil, err
		}
	}
	recs := make([]*record.Accreditation, 0, len(ids))
	for _, id := range ids {
		a, err := loadRecord[record.Accreditation](e, key(tableAccreditation, id), false)
		if err != nil {
			return nil, err
		}
		if a != nil {
			recs = append(recs, a)
		}
	}
	if useCache {
		e.cache.put(string(p), recs, e.epoch)
	}
	return recs, nil
}

// linkStatus is an accreditation's own status at t: its window and its
// status events.
func (e *evaluator) linkStatus(a *record.Accreditation, t time.Time) string {
	if e.span != nil {
		e.span.touch(a.ValidFrom)
		if a.ValidUntil != nil {
			e.span.touch(*a.ValidUntil)
		}
		e.span.touchEvents(a.Events)
	}
	if t.Before(a.ValidFrom) {
		return record.ReasonNotYetValid
	}
	if a.ValidUntil != nil && !t.Before(*a.ValidUntil) {
		return record.ReasonExpired
	}
	if ev, ok := statusAt(a.Events, t, e.asOf); ok {
		switch ev.Status {
		case record.StatusSuspended:
			return record.ReasonSuspended
		case record.StatusRevoked:
			return record.ReasonRevoked
		}
	}
	return record.ReasonActive
}

// maxWalk bounds a chain walk whatever the stored data says.
const maxWalk = 64

// chain walks from a up to its root and returns the links, the reason (the
// entity's own link's status, or chain_broken when a link above it or the
// root fails) and the root accreditor.
func (e *evaluator) chain(a *record.Accreditation, t time.Time) ([]record.Link, string, string, error) {
	var links []record.Link
	reason := record.ReasonActive
	cur := a
	for depth := 0; ; depth++ {
		st := e.linkStatus(cur, t)
		links = append(links, record.Link{
			Accreditation: cur.ID, Accreditor: cur.Accreditor, Subject: cur.Subject, Action: cur.Action,
			Resources: cur.Resources, Jurisdictions: cur.Jurisdictions, ValidFrom: cur.ValidFrom, ValidUntil: cur.ValidUntil, Status: st,
		})
		if st != record.ReasonActive && reason == record.ReasonActive {
			reason = st
			if depth > 0 {
				reason = record.ReasonChainBroken
			}
		}
		if cur.Parent == "" {
			ok, err := e.isRoot(cur.Framework, cur.Accreditor, t)
			if err != nil {
				return nil, "", "", err
			}
			if !ok && reason == record.ReasonActive {
				reason = record.ReasonChainBroken
			}
			return links, reason, cur.Accreditor, nil
		}
		if depth >= maxWalk {
			return links, record.ReasonChainBroken, "", nil
		}
		parent, err := e.accreditation(cur.Parent)
		if err != nil {
			return nil, "", "", err
		}
		if parent == nil {
			return links, record.ReasonChainBroken, "", nil
		}
		cur = parent
	}
}

// covers reports whether an accreditation's scope includes the resource and
// jurisdiction asked about. An empty resource asks about any resource.
func covers(a *record.Accreditation, resource, jurisdiction string) bool {
	if resource != "" && !slices.Contains(a.Resources, record.Wildcard) && !slices.Contains(a.Resources, resource) {
		return false
	}
	if jurisdiction != "" && len(a.Jurisdictions) > 0 && !slices.Contains(a.Jurisdictions, jurisdiction) {
		return false
	}
	return true
}

// reasonRank orders failure reasons for choosing which candidate to report
// when none authorizes: the entity's own status first, then a broken chain.
var reasonRank = map[string]int{
	record.ReasonActive: 0, record.ReasonSuspended: 1, record.ReasonRevoked: 2, record.ReasonExpired: 3, record.ReasonNotYetValid: 4, record.ReasonChainBroken: 5,
}

func (e *evaluator) decide(q Question, t time.Time) (*record.Decision, error) {
	d := &record.Decision{Entity: q.Entity, Framework: q.Framework, Action: q.Action, Resource: q.Resource, At: t, Index: e.asOf, Chain: []record.Link{}}
	f, err := e.framework(q.Framework)
	if err != nil {
		return nil, err
	}
	if f == nil {
		d.Reason = record.ReasonUnknownFramework
		return d, nil
	}
	if q.Action == record.ActionAccredit {
		ok, err := e.isRoot(q.Framework, q.Entity, t)
		if err != nil {
			return nil, err
		}
		if ok {
			d.Authorized, d.Reason, d.Root = true, record.ReasonActive, q.Entity
			return d, nil
		}
	}
	received, err := e.received(q.Entity, q.Framework)
	if err != nil {
		return nil, err
	}
	type candidate struct {
		links  []record.Link
		reason string
		root   string
		index  uint64
	}
	var best *candidate
	for _, a := range received {
		if a.CreatedIndex > e.asOf || a.Action != q.Action || !covers(a, q.Resource, q.Jurisdiction) {
			continue
		}
		links, reason, root, err := e.chain(a, t)
		if err != nil {
			return nil, err
		}
		c := &candidate{links: links, reason: reason, root: root, index: a.CreatedIndex}
		if best == nil || reasonRank[c.reason] < reasonRank[best.reason] ||
			(reasonRank[c.reason] == reasonRank[best.reason] && c.index > best.index) {
			best = c
		}
	}
	if best == nil {
		d.Reason = record.ReasonNeverAuthorized
		return d, nil
	}
	d.Chain, d.Reason, d.Root = best.links, best.reason, best.root
	d.Authorized = best.reason == record.ReasonActive
	return d, nil
}

// Decide answers a trust question. now is the reader's clock, used when the
// question names no time. Unknown entities get the same shape as known but
// unauthorized ones.
func (s *State) Decide(q Question, now time.Time) (*record.Decision, error) {
	asOf, err := s.checkQuestion(q)
	if err != nil {
		return nil, err
	}
	t := q.At
	if t.IsZero() {
		t = now
	}
	return s.reader(asOf).decide(q, t.UTC())
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
func (s *State) DecideSecond(q Question, now time.Time) (d *record.Decision, until time.Time, err error) {
	asOf, err := s.checkQuestion(q)
	if err != nil {
		return nil, time.Time{}, err
	}
	if !q.At.IsZero() {
		d, err := s.reader(asOf).decide(q, q.At.UTC())
		return d, Forever, err
	}
	lo := now.UTC().Truncate(time.Second)
	e := s.reader(asOf)
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
	d, err = s.reader(asOf).decide(q, now.UTC())
	return d, time.Time{}, err
}

// checkQuestion validates q and returns the index it is answered as of.
func (s *State) checkQuestion(q Question) (uint64, error) {
	if err := q.validate(); err != nil {
		return 0, err
	}
	return s.asOf(q.AsOf)
}

// asOf returns the index a question asking about index n (0: the latest)
// is answered as of, or an error if n is beyond the applied index.
func (s *State) asOf(n uint64) (uint64, error) {
	applied := s.AppliedIndex()
	if n > applied {
		return 0, record.Errorf(record.ErrBadQuery, "as_of %d is beyond the applied index %d: ask again later or read with min_index", n, applied)
	}
	if n != 0 {
		return n, nil
	}
	return applied, nil
}

// reader returns a read-side evaluator as of asOf. The epoch is taken
// before anything is read, so nothing read across a commit gets cached.
func (s *State) reader(asOf uint64) *evaluator {
	return &evaluator{r: s.db, asOf: asOf, cache: s.records, epoch: s.records.begin()}
}

func (q Question) validate() error {
	if q.Entity == "" || q.Framework == "" {
		return record.Errorf(record.ErrBadQuery, "entity and framework are required")
	}
	if q.Action != record.ActionIssue && q.Action != record.ActionAccredit {
		return record.Errorf(record.ErrBadQuery, "action %q must be %q or %q", q.Action, record.ActionIssue, record.ActionAccredit)
	}
	for _, v := range []string{q.Entity, q.Framework, q.Resource, q.Jurisdiction} {
		if len(v) > record.MaxIDLength {
			return record.Errorf(record.ErrBadQuery, "a parameter is longer than %d bytes", record.MaxIDLength)
		}
	}
	return nil
}
