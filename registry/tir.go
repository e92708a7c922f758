package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// Issuer types of EBSI's Trusted Issuers Registry, which the gateway's
// TIR binding serves from this state.
const (
	TIRRootTAO = "RootTAO" // a root accreditor of a framework
	TIRTAO     = "TAO"     // holds an accreditation to accredit
	TIRTI      = "TI"      // holds an accreditation to issue
	TIRRevoked = "Revoked" // the role is not in force now
)

// TIRAttribute is one of an issuer's roles as EBSI's Trusted Issuers
// Registry shows it: a root accreditor's place in a framework, or an
// accreditation the issuer received. Its revisions are the signed
// operations that created and changed it, oldest first (one a status
// event of the role); TIRIssuerView.Revisions reads them.
type TIRAttribute struct {
	// ID is the hex SHA-256 of the operation that created the role: for
	// an accreditation, the digest its CID carries.
	ID         string
	IssuerType string // RootTAO, TAO or TI while the role is in force now, else Revoked
	TAO        string // who granted it (a root accreditor: itself)
	RootTAO    string // the root accreditor at the top of its chain
	Framework  string
	// Accreditation is the accreditation's id; empty for a root role.
	Accreditation string
	// Status is trustreg's status of the role now: active, suspended,
	// revoked, expired or not_yet_valid.
	Status string
	// Body is what EBSI's attribute body holds: the operation that created
	// the role, as a JWT (compact JWS). For an accreditation in its
	// credential form that is the accreditor-signed Verifiable
	// Accreditation, byte for byte; an older operation signed once is its
	// compact serialization (the same signature); one with several
	// signatures (a governance operation that made a root) cannot be a JWT
	// and is its JSON serialization as stored. A root added with a
	// credential (addRootAccreditor's VerifiableAuthorisationForTrustChain)
	// shows that credential.
	Body []byte
	// Revisions is how many revisions the attribute has.
	Revisions int
	// Operation and Index are the latest revision's: the CID of the
	// operation that recorded the role's last status event, and its index.
	Operation string
	Index     uint64

	base   string               // the type while in force: RootTAO, TAO or TI
	events []record.StatusEvent // the role's status events, oldest first: one a revision
}

// TIRRevision is one signed operation in an attribute's life.
type TIRRevision struct {
	ID         string // hex SHA-256 of the signed operation
	IssuerType string // the attribute's type after this operation
	Status     string // the status this operation recorded
	Index      uint64
	Operation  string // the operation's CID
	JWS        []byte // the signed operation, byte for byte
	// Number is the revision's place among the attribute's, from 0 (the
	// operation that created the role).
	Number int
}

// IsLatest reports whether rev is a's newest revision, which shows the
// attribute's type and status now rather than those it recorded.
func (a *TIRAttribute) IsLatest(rev *TIRRevision) bool { return rev.Number == a.Revisions-1 }

// TIRIssuers lists the issuers the TIR binding knows, in DID order: every
// root accreditor and every subject of an accreditation, whatever its
// status. It returns up to limit DIDs after the first offset, and how many
// there are in all. Counting walks every subject once (a seek per subject
// that holds several accreditations), so the count and a mark every
// issuerMarkEvery places are kept (issuerMarks) and follow the writes:
// a listing reads at most some 2 × issuerMarkEvery + limit issuers from
// the mark before its offset, after bringing the marks up to its state
// (issuerMarksCache.marksAt: only the subjects written since, a seek and
// a record or more each). A listing walks them all when no marks are kept
// (the first, after a restore, or after a root's change), when bringing
// them up to date would read more than advanceBudget (a 64th of the
// issuers), or in a view that may not use the caches. (The gateway's
// listings take turns, which bounds the walks at once.)
func (v *View) TIRIssuers(offset, limit int) (dids []string, total int, err error) {
	dids = []string{}
	offset = max(offset, 0)
	c := v.issuerMarksCache()
	if c == nil {
		// A view that may not use the caches (taken while a batch
		// commits, or kept for an older index) walks them all.
		_, err := v.walkTIRIssuers(offset, limit, &dids, &total, issuerMarkEvery)
		return dids, total, err
	}
	m, err := c.marksAt(v)
	if err != nil {
		return nil, 0, err
	}
	if m == nil {
		c.unkept.Add(1)
		_, err := v.walkTIRIssuers(offset, limit, &dids, &total, c.markEvery())
		return dids, total, err
	}
	if offset < 0 || offset >= m.total || limit <= 0 {
		return dids, m.total, nil
	}
	i, _ := slices.BinarySearchFunc(m.marks, offset+1, func(k issuerMark, at int) int { return k.at - at })
	mk := m.marks[i-1] // the last mark at or before offset (the first is at 0)
	skip := offset - mk.at
	err = v.eachTIRIssuerFrom(mk.did, func(did string) bool {
		if skip > 0 {
			skip--
			return true
		}
		dids = append(dids, did)
		return len(dids) < limit
	})
	return dids, m.total, err
}

// walkTIRIssuers walks every issuer, counting them into total and adding
// the page of limit DIDs after offset to dids; it returns the marks of the
// walk, one every every places.
func (v *View) walkTIRIssuers(offset, limit int, dids *[]string, total *int, every int) (*issuerMarks, error) {
	m := &issuerMarks{index: v.index, marks: []issuerMark{{}}}
	err := v.eachTIRIssuerFrom("", func(did string) bool {
		if *total > 0 && *total%every == 0 {
			m.marks = append(m.marks, issuerMark{did: did, at: *total})
		}
		if *total >= offset && len(*dids) < limit {
			*dids = append(*dids, did)
		}
		*total++
		return true
	})
	m.total = *total
	return m, err
}

// issuerMarkEvery is how many issuers a walk puts between two marks; the
// marks that follow the writes keep at most twice as many between two.
const issuerMarkEvery = 1024

// maxIssuerPending bounds the subjects written since the marks' state
// that issuerMarksCache keeps; past it the marks are dropped and the next
// listing walks.
const maxIssuerPending = 1 << 16

// issuerAdvanceShare: marks are brought up to date only while the pending
// subjects and the records read for them stay under this share of the
// issuers (plus a few); else the listing walks, which is cheaper.
const issuerAdvanceShare = 64

// errAdvanceTooDear ends an advance that read more than its budget.
var errAdvanceTooDear = errors.New("registry: bringing the issuer marks up to date costs more than a walk")

// advanceBudget is how many pending subjects, and records read for them,
// a listing brings m up to date from: a pending subject costs some 7–9.5
// µs (a seek and an accreditation read and decoded), a walk some 0.11 µs
// an issuer, so past a 64th of the issuers (and a few) a walk is cheaper.
func (m *issuerMarks) advanceBudget() int {
	if m == nil {
		return 0
	}
	return m.total/issuerAdvanceShare + 32
}

// issuerMark is an issuer's DID and its place in the listing (the first
// mark is no issuer: "" at 0, the listing's start).
type issuerMark struct {
	did string
	at  int
}

// issuerMarks is what the TIR binding's issuers were known to be at the
// state of applied index index: how many there are, and marks at most
// 2 × every places apart (about 50 KB at 1M issuers).
type issuerMarks struct {
	index uint64
	total int
	marks []issuerMark
}

// issuerMarksCache keeps the issuers' marks of a committed state and the
// subjects whose received index the commits since then wrote (pending),
// from which a listing at a later state brings the marks up to it
// (advance) instead of walking every issuer again.
//
// A subject is an issuer at a state when it is a root accreditor there or
// holds an accreditation created at or before it. The received index is
// only ever added to, so an issuer stays one; a subject in pending that
// was none at the marks' state (no accreditation created by then, no
// root) is new, and goes into the count and between the marks. A root's
// change (a RootKey among a commit's dirty keys) drops the marks, as a
// restore does (clear).
//
// Invariant: while following, marks (when not nil) describe the state of
// some sequence E, and pending holds every subject whose received index a
// commit after E wrote. committed runs, under mu, while the store's
// sequence is odd, before the sequence is even again; a listing takes the
// marks (and swaps pending for a fresh set) only under mu with the
// sequence equal to its view's, so the commits up to its view are in the
// pending set it took and those after it in the fresh one; it puts back
// what it made for its view's state only if no drop came between (gen).
// TestTIRIssuersFollowWrites breaks without the pending subjects.
type issuerMarksCache struct {
	seq *atomic.Uint64
	// every, when set (by tests), replaces issuerMarkEvery.
	every int
	mu    sync.Mutex
	// following: pending holds the subjects written since the marks'
	// state (or since a listing took them to bring up to date).
	following bool
	busy      bool          // a listing took the marks and has not put them back
	done      chan struct{} // closed when that listing is through
	gen       uint64
	marks     *issuerMarks
	epoch     uint64 // the sequence of the state marks describe
	pending   map[string]struct{}
	// walks and advances count how listings made their marks, unkept the
	// listings that walked without them, and making, when set, is called
	// as a listing begins to make them: for tests.
	walks, advances, unkept atomic.Int64
	making                  func()
}

func newIssuerMarksCache(seq *atomic.Uint64) *issuerMarksCache {
	return &issuerMarksCache{seq: seq}
}

func (c *issuerMarksCache) markEvery() int {
	if c.every > 0 {
		return c.every
	}
	return issuerMarkEvery
}

// dropLocked forgets the marks and stops following the writes; c.mu is
// held.
func (c *issuerMarksCache) dropLocked() {
	c.marks, c.pending, c.following, c.busy = nil, nil, false, false
	c.gen++
}

func (c *issuerMarksCache) clear() {
	c.mu.Lock()
	c.dropLocked()
	c.mu.Unlock()
}

// committed follows a committed batch's dirty keys (caches.committed).
func (c *issuerMarksCache) committed(dirty []decide.RecordKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.following {
		return
	}
	for _, k := range dirty {
		switch k.Kind {
		case decide.KindRoot:
			c.dropLocked()
			return
		case decide.KindReceived:
			c.pending[k.A] = struct{}{}
		}
	}
	// More pending subjects than a listing would bring the marks up to
	// date from (advanceBudget): the next listing walks whatever comes,
	// so stop following until then.
	if len(c.pending) > maxIssuerPending || (c.marks != nil && len(c.pending) > c.marks.advanceBudget()) {
		c.dropLocked()
	}
}

// issuerMarksWait bounds how long a listing waits for another that is
// bringing the marks up to date (at most a walk of every issuer) before
// it walks them itself.
const issuerMarksWait = 2 * time.Second

// marksAt returns the marks of v's state, brought up to it or walked for
// it and kept, or nil when v must walk without them (its state is not the
// latest committed, or another listing has been bringing them up to date
// for issuerMarksWait). A listing that finds another at it waits for it
// and then uses what it made, rather than walking every issuer too.
func (c *issuerMarksCache) marksAt(v *View) (*issuerMarks, error) {
	var waited <-chan time.Time
	c.mu.Lock()
	for c.busy && v.rd.epoch%2 == 0 && c.seq.Load() == v.rd.epoch {
		done := c.done
		c.mu.Unlock()
		if waited == nil {
			waited = time.After(issuerMarksWait)
		}
		select {
		case <-done:
		case <-waited:
			return nil, nil
		}
		c.mu.Lock()
	}
	if v.rd.epoch%2 == 1 || c.seq.Load() != v.rd.epoch {
		c.mu.Unlock()
		return nil, nil
	}
	if c.marks != nil && c.epoch == v.rd.epoch {
		m := c.marks
		c.mu.Unlock()
		return m, nil
	}
	// Take the marks and the subjects written since them (every commit up
	// to v's state has run committed: the sequence is v's); the commits
	// after v's state go to a fresh set.
	old, pending, gen, done := c.marks, c.pending, c.gen, make(chan struct{})
	c.marks, c.pending, c.following, c.busy, c.done = nil, map[string]struct{}{}, true, true, done
	c.mu.Unlock()
	if c.making != nil {
		c.making()
	}
	var m *issuerMarks
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		defer close(done)
		switch {
		case c.gen != gen:
			// Dropped meanwhile: m is still v's, but not kept.
		case m == nil: // an error, or a panic on the way
			c.dropLocked()
		default:
			c.marks, c.epoch, c.busy = m, v.rd.epoch, false
		}
	}()
	every := c.markEvery()
	var err error
	// Bringing the marks up to date costs some 60-90 walk steps a pending
	// subject or record read (issuerAt): past advanceBudget a walk is
	// cheaper.
	budget := old.advanceBudget()
	if old != nil && len(pending) <= budget {
		m, err = v.advanceIssuerMarks(old, pending, every, budget)
		if err == nil {
			c.advances.Add(1)
		} else if errors.Is(err, errAdvanceTooDear) {
			m, err = nil, nil
		}
	}
	if m == nil && err == nil {
		c.walks.Add(1)
		var dids []string
		total := 0
		m, err = v.walkTIRIssuers(0, 0, &dids, &total, every)
	}
	if err != nil {
		m = nil
		return nil, err
	}
	return m, nil
}

// advanceIssuerMarks brings old, the marks of an earlier state, up to v's
// state: the subjects of pending that were no issuers at old's state go
// into the count and shift the marks after them; a stretch between two
// marks that grew past twice every is walked to put marks in it again.
func (v *View) advanceIssuerMarks(old *issuerMarks, pending map[string]struct{}, every, budget int) (*issuerMarks, error) {
	roots, err := v.rootDIDs()
	if err != nil {
		return nil, err
	}
	// One iterator and one evaluator for every pending subject, in order:
	// opening an iterator costs more than the seek.
	subjects := make([]string, 0, len(pending))
	for s := range pending {
		if _, root := slices.BinarySearch(roots, s); !root {
			subjects = append(subjects, s)
		}
	}
	slices.Sort(subjects)
	var fresh []string
	if len(subjects) > 0 {
		p := []byte{tableReceived}
		it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
		if err != nil {
			return nil, err
		}
		e := v.plain()
		for _, s := range subjects {
			was, err := issuerAt(it, e, s, old.index, &budget)
			if err != nil {
				return nil, errors.Join(err, it.Close())
			}
			if !was {
				fresh = append(fresh, s)
			}
		}
		if err := it.Close(); err != nil {
			return nil, err
		}
	}
	slices.Sort(fresh)
	m := &issuerMarks{index: v.index, total: old.total + len(fresh), marks: make([]issuerMark, 0, len(old.marks)+len(fresh)/every+1)}
	j := 0
	for i, k := range old.marks {
		for j < len(fresh) && fresh[j] < k.did {
			j++
		}
		k.at += j
		end := m.total // where the stretch from k ends
		if i+1 < len(old.marks) {
			next := old.marks[i+1].did
			n, _ := slices.BinarySearch(fresh, next)
			end = old.marks[i+1].at + n
		}
		m.marks = append(m.marks, k)
		if end-k.at <= 2*every {
			continue
		}
		// The stretch grew: mark it again, every places.
		n := 0
		if err := v.eachTIRIssuerFrom(k.did, func(did string) bool {
			if n > 0 && n%every == 0 && end-(k.at+n) > every/2 {
				m.marks = append(m.marks, issuerMark{did: did, at: k.at + n})
			}
			n++
			return k.at+n < end
		}); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// issuerAt reports whether subject, no root accreditor, was an issuer at
// applied index index: whether it holds an accreditation created at or
// before it. The accreditations are read in the received index's order,
// most subjects holding one.
func issuerAt(it *pebble.Iterator, e *decide.Evaluator, subject string, index uint64, budget *int) (was bool, err error) {
	p := prefix(tableReceived, subject)
	for it.SeekGE(p); it.Valid() && bytes.HasPrefix(it.Key(), p); it.Next() {
		if *budget--; *budget < 0 {
			return false, errAdvanceTooDear
		}
		_, id, _ := bytes.Cut(it.Key()[len(p):], []byte{0})
		a, err := e.Accreditation(string(id))
		if err != nil {
			return false, err
		}
		if a != nil && a.CreatedIndex <= index {
			return true, nil
		}
	}
	return false, it.Error()
}

// issuerMarksCache returns the read model's marks, when the view may use
// the caches.
func (v *View) issuerMarksCache() *issuerMarksCache {
	if v.rd.cache == nil {
		return nil
	}
	return v.m.caches.issuers
}

// eachTIRIssuerFrom visits the union of root accreditors and accreditation
// subjects in DID order, each once, from the first DID not before start,
// until visit returns false.
func (v *View) eachTIRIssuerFrom(start string, visit func(did string) bool) (err error) {
	roots, err := v.rootDIDs()
	if err != nil {
		return err
	}
	p := []byte{tableReceived}
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return err
	}
	defer closeJoin(it, &err)
	i, _ := slices.BinarySearch(roots, start)
	if start == "" {
		it.First()
	} else {
		it.SeekGE(prefix(tableReceived, start))
	}
	for it.Valid() {
		subject, _, _ := bytes.Cut(it.Key()[1:], []byte{0})
		did := string(subject)
		for ; i < len(roots) && roots[i] < did; i++ {
			if !visit(roots[i]) {
				return nil
			}
		}
		if i < len(roots) && roots[i] == did {
			i++
		}
		if !visit(did) {
			return nil
		}
		// Most subjects hold one accreditation: try the next key before
		// seeking past the subject's others.
		sp := prefix(tableReceived, did)
		if it.Next() && bytes.HasPrefix(it.Key(), sp) {
			it.SeekGE(upperBound(sp))
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	for ; i < len(roots); i++ {
		if !visit(roots[i]) {
			return nil
		}
	}
	return nil
}

// rootDIDs returns every DID that is or was a root accreditor of some
// framework, sorted and without repeats.
func (v *View) rootDIDs() ([]string, error) {
	out, err := v.secondParts([]byte{tableRoots})
	slices.Sort(out)
	return slices.Compact(out), err
}

// secondParts returns, for every key under prefix p, the part after the
// first separator that follows p: under a table byte, the second part of
// each key (a root's DID); under a subject's prefix of the received
// index, the accreditation id.
func (v *View) secondParts(p []byte) (_ []string, err error) {
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return nil, err
	}
	defer closeJoin(it, &err)
	var out []string
	for it.First(); it.Valid(); it.Next() {
		_, part, _ := bytes.Cut(it.Key()[len(p):], []byte{0})
		out = append(out, string(part))
	}
	return out, it.Error()
}

// TIRIssuerView is one issuer as the TIR binding reads it, a page at a
// time, at now. Its attributes are its root roles by framework, then the
// accreditations it received by framework and id (the received index's
// order). What each read costs:
//
//   - opening it reads the issuer's root roles: roots are keyed framework
//     0x00 DID, so no key order finds one DID's roles without visiting
//     every framework; it seeks to the DID's key in each framework that has
//     roots, two seeks a framework (frameworks are made by governance
//     alone), whatever the number of roots. An issuer with no root role
//     then seeks to its first received key;
//   - a page of attributes counts the issuer's received index keys (for
//     the total; keys only, no record read), or takes the count and the
//     key to start from from the marks a page of the same issuer kept
//     (received: an issuer of more than receivedMarkEvery keys, while no
//     commit writes its index), and reads the accreditation, its chain up
//     to the root and the first operation of each attribute on the page
//     only;
//   - an attribute named by its id is found without a scan: the id is the
//     digest its first operation's CID carries (record.CIDOf, the SHA-256
//     of the operation's bytes, which its record holds), so the
//     accreditation is read by that CID, as the apply finds a termsOfUse
//     attribute; a revision likewise among the attribute's status events;
//   - an operation record is read only for what is returned: an
//     attribute's first (its id and body), and the revisions asked for.
//
// A View's TIRIssuerView is for one goroutine at a time, as the View.
type TIRIssuerView struct {
	v     *View
	e     *decide.Evaluator
	did   string
	now   time.Time
	roots []record.RootAccreditor // the issuer's root roles with events, by framework
}

// TIRIssuerView opens did as an issuer of the TIR binding at now. A DID
// that is no framework's root accreditor and holds no accreditation is not
// found.
func (v *View) TIRIssuerView(did string, now time.Time) (*TIRIssuerView, error) {
	roots, err := v.rootRolesOf(did)
	if err != nil {
		return nil, err
	}
	x := &TIRIssuerView{v: v, e: v.plain(), did: did, now: now, roots: roots}
	if len(roots) == 0 {
		held, err := x.holdsReceived()
		if err != nil {
			return nil, err
		}
		if !held {
			return nil, record.Errorf(record.ErrNotFound, "%s is no framework's root accreditor and holds no accreditation", did)
		}
	}
	return x, nil
}

// TIRIssuer returns every attribute of an issuer at now, as v4's issuer
// answer shows them inline: TIRIssuerView's Attributes, all of them.
func (v *View) TIRIssuer(did string, now time.Time) ([]TIRAttribute, error) {
	x, err := v.TIRIssuerView(did, now)
	if err != nil {
		return nil, err
	}
	attrs, _, err := x.Attributes(0, math.MaxInt)
	return attrs, err
}

// DID is the issuer's DID.
func (x *TIRIssuerView) DID() string { return x.did }

// Attributes returns up to limit of the issuer's attributes after the
// first offset, and how many it has in all.
func (x *TIRIssuerView) Attributes(offset, limit int) (_ []TIRAttribute, total int, err error) {
	offset, limit = max(offset, 0), max(limit, 0)
	out := []TIRAttribute{}
	for i := offset; i < len(x.roots) && len(out) < limit; i++ {
		a, err := x.rootAttribute(&x.roots[i])
		if err != nil {
			return nil, 0, err
		}
		out = append(out, a)
	}
	ids, n, err := x.received(max(offset-len(x.roots), 0), limit-len(out))
	if err != nil {
		return nil, 0, err
	}
	for _, id := range ids {
		acc, err := x.e.Accreditation(id)
		if err != nil {
			return nil, 0, err
		}
		if acc == nil {
			return nil, 0, fmt.Errorf("registry: accreditation %s of %s's received index is missing", id, x.did)
		}
		a, err := x.accreditationAttribute(acc)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, a)
	}
	return out, len(x.roots) + n, nil
}

// Attribute returns the issuer's attribute whose id is id (64 lowercase
// hex digits), or nil when it has none.
func (x *TIRIssuerView) Attribute(id string) (*TIRAttribute, error) {
	cid, ok := cidOfTIRID(id)
	if !ok {
		return nil, nil
	}
	a, found, err := x.attributeOf(cid)
	if err != nil || !found {
		return nil, err
	}
	if a.ID != id {
		return nil, fmt.Errorf("registry: the operation %s that made %s's attribute %s has another SHA-256, %s", cid, x.did, id, a.ID)
	}
	return &a, nil
}

// attributeOf returns the issuer's attribute whose first operation is
// cid: a root role, else an accreditation it received (its received index
// names it).
func (x *TIRIssuerView) attributeOf(cid string) (TIRAttribute, bool, error) {
	if i := slices.IndexFunc(x.roots, func(r record.RootAccreditor) bool { return r.Events[0].Operation == cid }); i >= 0 {
		a, err := x.rootAttribute(&x.roots[i])
		return a, err == nil, err
	}
	acc, err := x.e.Accreditation(cid)
	if err != nil || acc == nil {
		return TIRAttribute{}, false, err
	}
	held, err := x.v.has(key(tableReceived, x.did, acc.Framework, acc.ID))
	if err != nil || !held {
		return TIRAttribute{}, false, err
	}
	a, err := x.accreditationAttribute(acc)
	return a, err == nil, err
}

// Revisions returns up to limit of a's revisions after the first offset,
// oldest first; a.Revisions counts them all.
func (x *TIRIssuerView) Revisions(a *TIRAttribute, offset, limit int) ([]TIRRevision, error) {
	out := []TIRRevision{}
	for i := max(offset, 0); i < len(a.events) && len(out) < limit; i++ {
		rev, err := x.revision(a, i)
		if err != nil {
			return nil, err
		}
		out = append(out, rev)
	}
	return out, nil
}

// Revision returns a's revision whose id is id (64 lowercase hex digits),
// or nil when it has none.
func (x *TIRIssuerView) Revision(a *TIRAttribute, id string) (*TIRRevision, error) {
	cid, ok := cidOfTIRID(id)
	if !ok {
		return nil, nil
	}
	i := slices.IndexFunc(a.events, func(ev record.StatusEvent) bool { return ev.Operation == cid })
	if i < 0 {
		return nil, nil
	}
	rev, err := x.revision(a, i)
	if err != nil {
		return nil, err
	}
	if rev.ID != id {
		return nil, fmt.Errorf("registry: the operation %s of a status event has another SHA-256, %s", cid, rev.ID)
	}
	return &rev, nil
}

// cidOfTIRID returns the CID whose digest an attribute or revision id is:
// the id must be 64 lowercase hex digits, as ids are shown.
func cidOfTIRID(id string) (string, bool) {
	var d [sha256.Size]byte
	if len(id) != hex.EncodedLen(len(d)) {
		return "", false
	}
	if _, err := hex.Decode(d[:], []byte(id)); err != nil || hex.EncodeToString(d[:]) != id {
		return "", false
	}
	return record.CIDOfDigest(d), true
}

// received returns the ids of up to limit accreditations of the issuer's
// received index after the first offset, by framework and id, and how many
// it holds. Counting walks the whole index of the issuer (keys only); one
// of more than receivedMarkEvery keys keeps what the walk learned
// (receivedMarks) while no commit writes the issuer's index, so the next
// pages read at most receivedMarkEvery + limit keys.
func (x *TIRIssuerView) received(offset, limit int) (ids []string, n int, err error) {
	take := func(part []byte) {
		_, id, _ := bytes.Cut(part, []byte{0})
		ids = append(ids, string(id))
	}
	c := x.v.receivedMarksCache()
	if m := c.get(x.did, x.v.rd.epoch); m != nil {
		if offset >= m.n || limit <= 0 {
			return nil, m.n, nil
		}
		mark := offset / m.every
		skip := offset - mark*m.every
		err := x.scanReceived(m.parts[mark], func(part []byte) bool {
			if skip > 0 {
				skip--
				return true
			}
			take(part)
			return len(ids) < limit
		})
		return ids, m.n, err
	}
	m := &receivedMarks{every: c.markEvery()}
	err = x.scanReceived(nil, func(part []byte) bool {
		if n%m.every == 0 {
			m.parts = append(m.parts, bytes.Clone(part))
		}
		if n >= offset && len(ids) < limit {
			take(part)
		}
		n++
		return true
	})
	if err != nil {
		return nil, 0, err
	}
	m.n = n
	if n > m.every {
		c.put(x.did, m, x.v.rd.epoch)
	}
	return ids, n, nil
}

// holdsReceived reports whether the issuer's received index holds a key.
func (x *TIRIssuerView) holdsReceived() (held bool, err error) {
	err = x.scanReceived(nil, func([]byte) bool {
		held = true
		return false
	})
	return held, err
}

// scanReceived visits the keys of the issuer's received index in order,
// from the first whose part after the issuer's prefix (framework 0x00 id)
// is not before start (nil: the first), until visit returns false. The
// part is the iterator's: valid only during the call.
func (x *TIRIssuerView) scanReceived(start []byte, visit func(part []byte) bool) (err error) {
	p := prefix(tableReceived, x.did)
	it, err := x.v.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return err
	}
	defer closeJoin(it, &err)
	var ok bool
	if start == nil {
		ok = it.First()
	} else {
		ok = it.SeekGE(append(slices.Clip(p), start...))
	}
	for ; ok; ok = it.Next() {
		if !visit(it.Key()[len(p):]) {
			break
		}
	}
	return it.Error()
}

// receivedMarksCache returns the read model's marks of received indexes,
// when the view may use the caches.
func (v *View) receivedMarksCache() *receivedMarksCache {
	if v.rd.cache == nil {
		return nil
	}
	return v.m.caches.received
}

// rootRolesOf returns did's root roles that have status events, by
// framework (TIRIssuerView says what it reads).
func (v *View) rootRolesOf(did string) (_ []record.RootAccreditor, err error) {
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: []byte{tableRoots}, UpperBound: []byte{tableRoots + 1}})
	if err != nil {
		return nil, err
	}
	defer closeJoin(it, &err)
	var out []record.RootAccreditor
	// Each turn ends past the framework it began in, so it visits each
	// framework with roots once.
	for ok := it.First(); ok; {
		// A string, not the iterator's key, which the seeks overwrite.
		fw, _, _ := bytes.Cut(it.Key()[1:], []byte{0})
		framework := string(fw)
		k := key(tableRoots, framework, did)
		if it.SeekGE(k) && bytes.Equal(it.Key(), k) {
			var r record.RootAccreditor
			if err := decodeRecord(it.Value(), &r); err != nil {
				return nil, err
			}
			if r.Accreditor == did && len(r.Events) > 0 {
				out = append(out, r)
			}
		}
		ok = it.SeekGE(upperBound(prefix(tableRoots, framework)))
	}
	return out, it.Error()
}

// has reports whether the view holds key k.
func (v *View) has(k []byte) (bool, error) {
	_, closer, err := v.snap.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %x: %w", k[:1], err)
	}
	_ = closer.Close() // releases the read value; nothing to report
	return true, nil
}

// rootAttribute is the attribute of the issuer's root role r.
func (x *TIRIssuerView) rootAttribute(r *record.RootAccreditor) (TIRAttribute, error) {
	status := record.StatusRevoked
	if ev, ok := decide.LastRecordedAt(r.Events, x.now, x.v.index); ok && ev.Status == record.StatusActive {
		status = record.StatusActive
	}
	a := TIRAttribute{TAO: x.did, RootTAO: x.did, Framework: r.Framework, Status: status,
		IssuerType: tirType(TIRRootTAO, status), base: TIRRootTAO, events: r.Events}
	return a, x.fill(&a)
}

// accreditationAttribute is the attribute of accreditation acc, which the
// issuer received.
func (x *TIRIssuerView) accreditationAttribute(acc *record.Accreditation) (TIRAttribute, error) {
	root, err := x.e.RootOf(acc)
	if err != nil {
		return TIRAttribute{}, err
	}
	base := TIRTI
	if acc.Action == record.ActionAccredit {
		base = TIRTAO
	}
	status := x.e.LinkStatus(acc, x.now)
	a := TIRAttribute{TAO: acc.Accreditor, RootTAO: root, Framework: acc.Framework, Accreditation: acc.ID,
		Status: status, IssuerType: tirType(base, status), base: base, events: acc.Events}
	return a, x.fill(&a)
}

// fill sets a's id and body from its first revision, and its latest
// revision's operation and index from its events.
func (x *TIRIssuerView) fill(a *TIRAttribute) error {
	if len(a.events) == 0 {
		return fmt.Errorf("registry: %s's attribute in %s has no status event", x.did, a.Framework)
	}
	first, err := x.revision(a, 0)
	if err != nil {
		return err
	}
	a.ID = first.ID
	a.Body = record.CompactJWS(first.JWS)
	if a.base == TIRRootTAO {
		// A root added with its VerifiableAuthorisationForTrustChain
		// shows that credential.
		if op, err := record.ParseStoredOperation(first.JWS); err == nil {
			if rc, ok := op.Body.(*record.RootChange); ok && rc.Credential != "" {
				a.Body = []byte(rc.Credential)
			}
		}
	}
	last := a.events[len(a.events)-1]
	a.Revisions, a.Operation, a.Index = len(a.events), last.Operation, last.Index
	return nil
}

// tirType is the issuer type a role of type base shows in status.
func tirType(base, status string) string {
	if status == record.StatusActive {
		return base
	}
	return TIRRevoked
}

// revision is a's revision i, read from the operation that recorded its
// status event.
func (x *TIRIssuerView) revision(a *TIRAttribute, i int) (TIRRevision, error) {
	ev := a.events[i]
	var rec opRecord
	ok, err := getJSON(x.v.snap, key(tableOps, ev.Operation), &rec)
	if err != nil {
		return TIRRevision{}, err
	}
	if !ok {
		return TIRRevision{}, fmt.Errorf("registry: operation %s of a status event is missing", ev.Operation)
	}
	sum := sha256.Sum256(rec.JWS)
	return TIRRevision{
		ID: hex.EncodeToString(sum[:]), IssuerType: tirType(a.base, ev.Status), Status: ev.Status,
		Index: ev.Index, Operation: ev.Operation, JWS: rec.JWS, Number: i,
	}, nil
}
