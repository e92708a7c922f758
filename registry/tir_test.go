package registry

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// TestTIRIssuersPagesFromMarks: the issuer listing's pages at a state
// already walked start from the walk's marks and give what a walk of the
// whole gives, at every offset around the marks, roots among the subjects
// included, and after a write that adds a subject
// (TestTIRIssuersFollowWrites follows many).
func TestTIRIssuersPagesFromMarks(t *testing.T) {
	f := mustChain(t)
	n := 2*issuerMarkEvery + 300
	loadColleges(t, f, n)
	// Roots that sort among the subjects: one that is a subject too, one
	// that is not, one past the last subject.
	f.mustAccept(f.govSign(record.OpCreateFramework, map[string]any{"id": "https://example.org/frameworks/other", "name": "Other",
		"roots": []string{"did:web:college-1500.example", "did:web:college-1500z.example", "did:web:zz.example"}}))

	all := func() []string {
		v := f.s.View()
		defer v.Close()
		var dids []string
		total := 0
		if _, err := v.walkTIRIssuers(0, 1<<30, &dids, &total, issuerMarkEvery); err != nil {
			t.Fatal(err)
		}
		if total != len(dids) {
			t.Fatalf("walk: %d DIDs, total %d", len(dids), total)
		}
		return dids
	}
	page := func(offset, limit int) ([]string, int) {
		v := f.s.View()
		defer v.Close()
		dids, total, err := v.TIRIssuers(offset, limit)
		if err != nil {
			t.Fatal(err)
		}
		return dids, total
	}
	check := func(want []string) {
		t.Helper()
		if !slices.IsSorted(want) || len(slices.Compact(slices.Clone(want))) != len(want) {
			t.Fatal("the walk is not in DID order without repeats")
		}
		page(0, 1) // the first listing walks and keeps the marks
		for _, offset := range []int{0, 1, issuerMarkEvery - 1, issuerMarkEvery, issuerMarkEvery + 1, 1500, 2*issuerMarkEvery - 1, len(want) - 1, len(want), len(want) + 7} {
			for _, limit := range []int{1, 50, 3000} {
				got, total := page(offset, limit)
				w := want[min(offset, len(want)):min(offset+limit, len(want))]
				if total != len(want) || !slices.Equal(got, w) {
					t.Fatalf("page(%d, %d) = %d DIDs from %q, total %d; want %d from %q, total %d",
						offset, limit, len(got), first(got), total, len(w), first(w), len(want))
				}
			}
		}
	}
	want := all()
	if len(want) != n+5 { // the colleges, root, qa, college, and the two roots that are no subject
		t.Fatalf("%d issuers, want %d", len(want), n+5)
	}
	check(want)

	f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.qa.DID, "subject": "did:web:college-1000a.example",
		"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
		"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
	}))
	if again := all(); len(again) != len(want)+1 {
		t.Fatalf("after a new subject: %d issuers, want %d", len(again), len(want)+1)
	} else {
		check(again)
	}
}

// TestTIRIssuersFollowWrites: the issuer listing's marks follow the
// writes instead of being walked again: after each round of writes (new
// subjects before every issuer, among them and after them, new
// accreditations of subjects already listed, status changes), the next
// listing brings the marks up to date without a walk and every page is
// what a walk of the whole gives. A view of the state before a round
// lists that state; a root's change and a restore make the next listing
// walk. (The marks are made every 4 issuers here, not every 1,024.)
func TestTIRIssuersFollowWrites(t *testing.T) {
	f := mustChain(t)
	c := f.s.caches.issuers
	c.every = 4
	loadColleges(t, f, 40)
	rng := rand.New(rand.NewPCG(3, 4))
	grants := 0
	grant := func(subject string) string {
		t.Helper()
		grants++
		r := f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{
			"framework": fwID, "accreditor": f.qa.DID, "subject": subject, "action": record.ActionIssue,
			"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
			"validFrom": "2024-06-01T00:00:00Z", "validUntil": time.Date(2028, 1, 1, 0, 0, grants, 0, time.UTC).Format(time.RFC3339),
		}))
		return r.ID
	}
	walk := func(v *View) []string {
		t.Helper()
		var dids []string
		total := 0
		if _, err := v.walkTIRIssuers(0, 1<<30, &dids, &total, 4); err != nil {
			t.Fatal(err)
		}
		return dids
	}
	check := func(v *View) {
		t.Helper()
		want := walk(v)
		for offset := 0; offset <= len(want)+1; offset++ {
			for _, limit := range []int{1, 3, 9} {
				got, total, err := v.TIRIssuers(offset, limit)
				if err != nil {
					t.Fatal(err)
				}
				w := want[min(offset, len(want)):min(offset+limit, len(want))]
				if total != len(want) || !slices.Equal(got, w) {
					t.Fatalf("page(%d, %d) = %q, total %d; want %q, total %d", offset, limit, got, total, w, len(want))
				}
			}
		}
	}
	listing := func() {
		t.Helper()
		v := f.s.View()
		defer v.Close()
		check(v)
		// The marks kept are at most twice every apart.
		c.mu.Lock()
		m := c.marks
		c.mu.Unlock()
		if m == nil {
			t.Fatal("no marks kept after a listing")
		}
		for i, k := range m.marks {
			end := m.total
			if i+1 < len(m.marks) {
				end = m.marks[i+1].at
			}
			if end-k.at > 2*c.every {
				t.Fatalf("marks %d apart at %d (%q) of %d", end-k.at, k.at, k.did, m.total)
			}
		}
	}
	listing() // the first listing walks
	walks, advances := c.walks.Load(), c.advances.Load()
	if walks != 1 || advances != 0 {
		t.Fatalf("the first listing: %d walks, %d advances", walks, advances)
	}
	var ids []string
	for round := range 8 {
		before := f.s.View()
		beforeWant := walk(before)
		for i := range 3 + rng.IntN(10) {
			switch rng.IntN(5) {
			case 0: // a new subject before every issuer
				ids = append(ids, grant(fmt.Sprintf("did:web:aa-%d-%d.example", round, i)))
			case 1: // among them, between two colleges
				ids = append(ids, grant(fmt.Sprintf("did:web:college-%d%c.example", rng.IntN(40), 'a'+rng.IntN(26))))
			case 2: // after them
				ids = append(ids, grant(fmt.Sprintf("did:web:zz-%d-%d.example", round, i)))
			case 3: // a subject already listed
				grant(fmt.Sprintf("did:web:college-%d.example", rng.IntN(40)))
			default: // a status change
				if len(ids) > 0 {
					k := rng.IntN(len(ids))
					f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": ids[k], "reason": "review"}))
					ids = slices.Delete(ids, k, k+1)
				}
			}
		}
		// The view from before the round lists the state before it.
		got, total, err := before.TIRIssuers(0, 1<<20)
		before.Close()
		if err != nil || total != len(beforeWant) || !slices.Equal(got, beforeWant) {
			t.Fatalf("round %d: a view of the state before: %d of %d issuers (%v), want %d", round, len(got), total, err, len(beforeWant))
		}
		listing()
	}
	if w, a := c.walks.Load(), c.advances.Load(); w != walks || a != 8 {
		t.Fatalf("after 8 rounds of writes: %d walks and %d advances, want %d and 8", w, a, walks)
	}
	walks = c.walks.Load()

	// Bringing the marks up to date costs a record or more a pending
	// subject, a walk a fraction of that an issuer: more pending subjects
	// than advanceBudget, or more records to read for them, and the next
	// listing walks instead.
	for i := range c.marks.advanceBudget() + 1 {
		grant(fmt.Sprintf("did:web:many-%d.example", i))
	}
	listing()
	for range c.marks.advanceBudget() + 1 {
		grant("did:web:one-with-many.example")
	}
	listing()
	if w, a := c.walks.Load(), c.advances.Load(); w != walks+2 || a != 8 {
		t.Fatalf("after more pending subjects, then more records, than the budget: %d walks and %d advances, want %d and 8", w, a, walks+2)
	}
	walks = c.walks.Load()
	older := snapshotBytes(t, f.s)

	// A root's change drops the marks: the next listing walks.
	f.mustAccept(f.govSign(record.OpCreateFramework, map[string]any{"id": "https://example.org/frameworks/other", "name": "Other",
		"roots": []string{"did:web:college-7b.example", "did:web:ab.example"}}))
	listing()
	if w := c.walks.Load(); w != walks+1 {
		t.Fatalf("after a root's change: %d walks, want %d", w, walks+1)
	}
	// So does a restore.
	grant("did:web:after-the-snapshot.example")
	listing()
	if err := f.s.Restore(bytes.NewReader(older)); err != nil {
		t.Fatal(err)
	}
	listing()
	if w := c.walks.Load(); w != walks+2 {
		t.Fatalf("after a restore: %d walks, want %d", w, walks+2)
	}
}

// TestTIRIssuersListingsWaitForTheMarks: a listing that comes while
// another is making the marks of the same state waits for it and pages
// from what it made, instead of walking every issuer too.
func TestTIRIssuersListingsWaitForTheMarks(t *testing.T) {
	f := mustChain(t)
	c := f.s.caches.issuers
	c.every = 4
	loadColleges(t, f, 40)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	c.making = func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	totals := make(chan int, 2)
	list := func() {
		v := f.s.View()
		defer v.Close()
		_, total, err := v.TIRIssuers(3, 5)
		if err != nil {
			t.Error(err)
		}
		totals <- total
	}
	go list()
	<-entered // the first listing is making the marks
	go list()
	time.Sleep(100 * time.Millisecond) // the second finds it at it
	close(release)
	if a, b := <-totals, <-totals; a != 43 || b != 43 {
		t.Fatalf("totals %d and %d, want 43 (the 40 colleges, the root, the agency and the college)", a, b)
	}
	if w, u := c.walks.Load(), c.unkept.Load(); w != 1 || u != 0 {
		t.Fatalf("%d walks for the marks and %d without them, want 1 and 0", w, u)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// TestTIRAttributesTotalFollowsWrites: the pages of a large issuer's
// attributes take EBSI's total and their start from the marks of its
// received index kept for the state (receivedMarksCache), and give what a
// walk gives at every offset around the marks. The marks follow writes: a
// new attribute of the issuer drops them and the next page counts it, a
// write to another subject keeps them; a view of the state before a
// write is never served the marks of the state after it; a restore drops
// them all. (The marks are made every 8 keys here, not every 1,024, to
// keep the issuer small.)
func TestTIRAttributesTotalFollowsWrites(t *testing.T) {
	f := mustChain(t)
	const every = 8
	f.s.caches.received.every = every
	big := "did:web:big.example"
	grants := 0
	grant := func(subject string) {
		t.Helper()
		grants++
		f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{
			"framework": fwID, "accreditor": f.qa.DID, "subject": subject, "action": record.ActionIssue,
			"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
			"validFrom": "2024-06-01T00:00:00Z", "validUntil": time.Date(2028, 1, 1, 0, 0, grants, 0, time.UTC).Format(time.RFC3339),
		}))
	}
	for range 2*every + 4 {
		grant(big)
	}
	// A page of v's, and every attribute id by a walk that uses no marks.
	page := func(v *View, offset, limit int) ([]string, int) {
		t.Helper()
		x, err := v.TIRIssuerView(big, f.now)
		if err != nil {
			t.Fatal(err)
		}
		attrs, total, err := x.Attributes(offset, limit)
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, a := range attrs {
			ids = append(ids, a.ID)
		}
		return ids, total
	}
	walk := func(v *View) []string {
		t.Helper()
		cache := v.rd.cache
		v.rd.cache = nil // a view that may not use the caches
		ids, total := page(v, 0, 1<<30)
		v.rd.cache = cache
		if total != len(ids) {
			t.Fatalf("walk: %d attributes, total %d", len(ids), total)
		}
		return ids
	}
	// marks is the count of the issuer's marks kept, -1 for none.
	marks := func() int {
		f.s.caches.received.mu.Lock()
		defer f.s.caches.received.mu.Unlock()
		if m, ok := f.s.caches.received.lru.Peek(big); ok {
			return m.n
		}
		return -1
	}
	// check reads pages of v at every offset around the marks against a
	// walk, after a first page, which walks and keeps the marks.
	check := func(v *View, n int) {
		t.Helper()
		want := walk(v)
		if len(want) != n {
			t.Fatalf("%d attributes, want %d", len(want), n)
		}
		page(v, 0, 1)
		if m := marks(); m != n {
			t.Fatalf("after a page at %d attributes: marks of %d kept, want %d", n, m, n)
		}
		for _, offset := range []int{0, 1, every - 1, every, every + 1, 2*every - 1, 2 * every, n - 1, n, n + 3} {
			for _, limit := range []int{1, 3, every + 2, 100} {
				got, total := page(v, offset, limit)
				w := want[min(offset, n):min(offset+limit, n)]
				if total != n || !slices.Equal(got, w) {
					t.Fatalf("page(%d, %d) = %d ids from %q, total %d; want %d from %q, total %d", offset, limit, len(got), first(got), total, len(w), first(w), n)
				}
			}
		}
	}
	n := 2*every + 4
	v := f.s.View()
	check(v, n)
	v.Close()
	older := snapshotBytes(t, f.s)
	olderN := n

	// A write to another subject leaves the marks; one to the issuer drops
	// them, and the next page counts its new attribute.
	grant("did:web:other.example")
	if m := marks(); m != n {
		t.Fatalf("after a write to another subject: marks of %d kept, want those of %d", m, n)
	}
	before := f.s.View() // the state before the new attribute, kept open
	defer before.Close()
	grant(big)
	n++
	if m := marks(); m != -1 {
		t.Fatalf("after a new attribute: marks of %d kept, want none", m)
	}
	v = f.s.View()
	check(v, n)
	v.Close()
	// The view of the state before is never served the marks of after.
	if _, total := page(before, 0, 1); total != n-1 {
		t.Fatalf("a view of the state before the new attribute: total %d, want %d", total, n-1)
	}
	if m := marks(); m != n {
		t.Fatalf("after a page of an older view: marks of %d kept, want the current state's %d", m, n)
	}
	before.Close()

	// A restore of the state before the writes drops the marks.
	if err := f.s.Restore(bytes.NewReader(older)); err != nil {
		t.Fatal(err)
	}
	v = f.s.View()
	defer v.Close()
	if _, total := page(v, 0, 1); total != olderN {
		t.Fatalf("after restoring a state with %d attributes: total %d", olderN, total)
	}
	check(v, olderN)
}
