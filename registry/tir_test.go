package registry

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// TestTIRIssuersPagesFromMarks: the issuer listing's pages at a state
// already walked start from the walk's marks and give what a walk of the
// whole gives, at every offset around the marks, roots among the subjects
// included; a write makes the next listing walk again.
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
		if _, err := v.walkTIRIssuers(0, 1<<30, &dids, &total); err != nil {
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
