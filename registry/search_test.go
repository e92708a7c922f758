package registry

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/registry/record"
)

// TestSearchFindsByNameOrDID registers entities under names and finds
// them by part of a name, a legal name or a DID, in any case, page by
// page; a search text that is too long is refused.
func TestSearchFindsByNameOrDID(t *testing.T) {
	f := mustChain(t)
	names := map[string]string{
		"did:web:amazing.example":  "Amazing Community College",
		"did:web:harbor.example":   "Harbor Nursing School",
		"did:web:northern.example": "Northern College of Nursing",
	}
	for did, name := range names {
		f.mustAccept(f.sign(f.qa, record.OpRegisterEntity, map[string]any{"id": did, "name": name,
			"metadata": map[string]any{"legalName": name + " Inc."}}))
	}
	f.mustAccept(f.govSign(record.OpCreateFramework, map[string]any{"id": "https://example.org/frameworks/law", "name": "Law schools", "roots": []string{f.root.DID}}))

	ids := func(es []record.Entity) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"college", []string{"did:web:amazing.example", "did:web:northern.example"}},
		{"  NURSING ", []string{"did:web:harbor.example", "did:web:northern.example"}},
		{"harbor.EXAMPLE", []string{"did:web:harbor.example"}},
		{"school inc.", []string{"did:web:harbor.example"}}, // the legal name
		{"no such name", nil},
		{"", []string{"did:web:amazing.example", "did:web:harbor.example", "did:web:northern.example"}},
	} {
		got, next, err := f.s.SearchEntities(tc.q, Page{})
		if err != nil || next != "" || !slices.Equal(ids(got), tc.want) {
			t.Errorf("SearchEntities(%q) = %v, next %q, %v; want %v", tc.q, ids(got), next, err, tc.want)
		}
	}

	// Paged: one match a page, then the rest from the cursor.
	first, next, err := f.s.SearchEntities("college", Page{Limit: 1})
	if err != nil || next == "" || !slices.Equal(ids(first), []string{"did:web:amazing.example"}) {
		t.Fatalf("first page = %v, next %q, %v", ids(first), next, err)
	}
	second, next, err := f.s.SearchEntities("college", Page{Limit: 1, Cursor: next})
	if err != nil || next != "" || !slices.Equal(ids(second), []string{"did:web:northern.example"}) {
		t.Fatalf("second page = %v, next %q, %v", ids(second), next, err)
	}

	fws, _, err := f.s.SearchFrameworks("LAW", Page{})
	if err != nil || len(fws) != 1 || fws[0].Name != "Law schools" {
		t.Fatalf("SearchFrameworks(LAW) = %+v, %v", fws, err)
	}
	fws, _, err = f.s.SearchFrameworks("example.org/frameworks/health", Page{})
	if err != nil || len(fws) != 1 || fws[0].ID != fwID {
		t.Fatalf("SearchFrameworks by id = %+v, %v", fws, err)
	}

	if _, _, err := f.s.SearchEntities(strings.Repeat("a", MaxSearchQuery+1), Page{}); !errors.Is(err, record.ErrBadQuery) {
		t.Fatalf("a too long search text: %v, want ErrBadQuery", err)
	}
	if _, _, err := f.s.SearchEntities("a", Page{Cursor: "not-a-cursor"}); !errors.Is(err, record.ErrBadQuery) {
		t.Fatalf("a foreign cursor: %v, want ErrBadQuery", err)
	}
}

// TestSearchStopsAfterItsScanBound: a page reads at most its scan bound of
// records, and names a next page even when it found nothing, so a search
// for a rare name never reads a whole table in one request.
func TestSearchStopsAfterItsScanBound(t *testing.T) {
	f := mustChain(t)
	for _, did := range []string{"did:web:a.example", "did:web:b.example", "did:web:c.example", "did:web:d.example"} {
		f.mustAccept(f.sign(f.qa, record.OpRegisterEntity, map[string]any{"id": did, "name": "Entity " + did}))
	}
	var pages [][]string
	cursor := ""
	for range 10 {
		var found []string
		v := f.s.View()
		next, err := v.scanUpTo([]byte{tableEntities}, Page{Cursor: cursor}, 100, 2, func(_, v []byte) (bool, error) {
			var e record.Entity
			if err := decodeRecord(v, &e); err != nil {
				return false, err
			}
			if e.ID != "did:web:d.example" {
				return false, nil
			}
			found = append(found, e.ID)
			return true, nil
		})
		v.Close()
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, found)
		if next == "" {
			break
		}
		cursor = next
	}
	// Four records, read two a page: an empty page with a next link, then
	// the match.
	if len(pages) != 2 || len(pages[0]) != 0 || !slices.Equal(pages[1], []string{"did:web:d.example"}) {
		t.Fatalf("pages = %q, want [[] [did:web:d.example]]", pages)
	}
}

// TestFilteredListingStopsAfterItsScanBound: a listing filtered by what
// its index does not hold (here the status, over a framework's
// accreditations) reads at most MaxPageScan records a page (here made
// small), and pages on
// with fewer matches than asked for, so a filter that matches nothing
// never reads a whole table in one request.
func TestFilteredListingStopsAfterItsScanBound(t *testing.T) {
	f := mustChain(t)
	const bound = 100 // MaxPageScan, made small
	loadColleges(t, f, bound+40)
	v := f.s.View()
	defer v.Close()
	v.scanBound = bound

	var counts []int
	cursor := ""
	for range 5 {
		items, next, err := v.Accreditations(AccreditationFilter{Framework: fwID, Status: record.ReasonRevoked}, Page{Cursor: cursor, Limit: 10}, f.now)
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, len(items))
		if next == "" {
			break
		}
		cursor = next
	}
	// Over bound+40 accreditations, none revoked: an empty page
	// that names the next, then an empty last page.
	if !slices.Equal(counts, []int{0, 0}) {
		t.Fatalf("pages of %v items, want [0 0]", counts)
	}

	// EachAccreditation reads as many records as it is allowed and says
	// whether that was all of them.
	visited := 0
	count := func(*record.AccreditationView) error { visited++; return nil }
	if all, err := v.EachAccreditation(AccreditationFilter{Framework: fwID, Status: record.ReasonRevoked}, f.now, bound, count); err != nil || all || visited != 0 {
		t.Fatalf("EachAccreditation up to %d records: all %v, %d visited, %v; want false, 0", bound, all, visited, err)
	}
	if all, err := v.EachAccreditation(AccreditationFilter{Framework: fwID, Action: record.ActionIssue}, f.now, 2*bound, count); err != nil || !all || visited != bound+41 {
		t.Fatalf("EachAccreditation up to %d records: all %v, %d visited, %v; want true, %d", 2*bound, all, visited, err, bound+41)
	}

	// The DCC export, one document, refuses to read that many.
	if _, err := v.DCCExport(fwID, f.now); !errors.Is(err, record.ErrBadQuery) || !strings.Contains(err.Error(), "framework=") {
		t.Fatalf("DCC export of %d accreditations: %v, want ErrBadQuery naming what to ask instead", bound+41, err)
	}

	// A page whose records match (the colleges' accreditations ended on
	// 2026-01-01) still fills up to its limit.
	items, next, err := v.Accreditations(AccreditationFilter{Framework: fwID, Status: record.ReasonExpired}, Page{Limit: bound / 2}, f.now)
	if err != nil || len(items) != bound/2 || next == "" {
		t.Fatalf("expired: %d items, next %q, %v; want %d and a next page", len(items), next, err, bound/2)
	}
}

// TestOperationPagesEndAtTheirByteBound: a page of operations (the change
// feed, an entity's history) ends once its operations hold
// MaxOperationPageBytes (here made small), with more to read, and the pages after it list
// the rest once each.
func TestOperationPagesEndAtTheirByteBound(t *testing.T) {
	f := &listFixture{mustChain(t)}
	f.now = date(2026, 4, 1)
	// Status lists of random bits, which do not compress: each list's
	// operation holds some 150 KB signed and 115 KB of payload.
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 8
	for i := range n {
		bits := make([]byte, 64<<10)
		for j := range bits {
			bits[j] = byte(rng.Uint32())
		}
		if res := f.publish(f.college, strconv.Itoa(i), "", []string{record.PurposeRevocation}, 1, nil, bits); !res.Accepted {
			t.Fatalf("list %d: %s %s", i, res.Code, res.Reason)
		}
	}
	v := f.s.View()
	defer v.Close()
	const bound = 1 << 20 // MaxOperationPageBytes, made small
	v.opPageBound = bound

	var feed []uint64
	pages := 0
	for since := uint64(0); pages < 10; pages++ {
		items, more, err := v.Changes(since, record.MaxPageLimit)
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, op := range items {
			feed = append(feed, op.Index)
			size += len(op.JWS) + len(op.Payload)
			since = op.Index
		}
		if size-len(items[len(items)-1].JWS)-len(items[len(items)-1].Payload) >= bound {
			t.Fatalf("page %d holds %d bytes before its last operation", pages, size)
		}
		if !more {
			break
		}
	}
	if pages < 1 || len(feed) != n+3 || !slices.IsSorted(feed) || len(slices.Compact(slices.Clone(feed))) != len(feed) {
		t.Fatalf("%d pages listed %d operations %v, want more than one page and each of the %d once", pages+1, len(feed), feed, n+3)
	}

	var hist []string
	cursor := ""
	for range 10 {
		items, next, err := v.History(f.college.DID, Page{Cursor: cursor, Limit: record.MaxPageLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range items {
			hist = append(hist, op.CID)
		}
		if next == "" {
			break
		}
		if len(hist) >= n {
			t.Fatal("the history's first page held every version")
		}
		cursor = next
	}
	if len(hist) < n || len(slices.Compact(slices.Clone(hist))) != len(hist) {
		t.Fatalf("history listed %d operations, want at least %d, each once", len(hist), n)
	}
}

// TestChangesOfIsTheFilteredFeed: an entity's changes, read through its
// history index, are the change feed's operations that concern it, page
// by page from any index, at every page size.
func TestChangesOfIsTheFilteredFeed(t *testing.T) {
	f := mustChain(t)
	loadColleges(t, f, 40)
	for i := range 5 {
		did := fmt.Sprintf("did:web:college-%d.example", 3*i)
		f.mustAccept(f.sign(f.qa, record.OpRegisterEntity, map[string]any{"id": did, "name": "College " + did}))
	}
	v := f.s.View()
	defer v.Close()
	all, more, err := v.Changes(0, record.MaxPageLimit)
	if err != nil || more {
		t.Fatalf("the feed: more %v, %v", more, err)
	}
	for _, entity := range []string{f.root.DID, f.qa.DID, f.college.DID, "did:web:college-3.example", "did:web:college-4.example", "did:web:nobody.example"} {
		var want []uint64
		for i := range all {
			if ok, err := v.Concerns(&all[i], "", entity); err != nil {
				t.Fatal(err)
			} else if ok {
				want = append(want, all[i].Index)
			}
		}
		for _, since := range []uint64{0, 1, 5, all[len(all)/2].Index, all[len(all)-1].Index} {
			for _, limit := range []int{1, 2, 7, record.MaxPageLimit} {
				var got []uint64
				for from, pages := since, 0; pages < 100; pages++ {
					items, more, err := v.ChangesOf(entity, from, limit)
					if err != nil {
						t.Fatal(err)
					}
					for _, op := range items {
						got = append(got, op.Index)
						from = op.Index
					}
					if !more {
						break
					}
				}
				var w []uint64
				for _, i := range want {
					if i > since {
						w = append(w, i)
					}
				}
				if !slices.Equal(got, w) {
					t.Fatalf("%s since %d by %d: %v, want %v", entity, since, limit, got, w)
				}
			}
		}
	}
}
