package registry

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trustreg/trustreg/registry/smt"
)

// The received listings the apply keeps in memory are the committed
// state's after every batch; past their bounds they are dropped for good
// (until a restart or a restore, which starts again from the database),
// and the apply goes on reading listings from Pebble with the same roots.
// (Every test of the package also checks each listing the apply takes from
// memory against the batch: TestMain's verifyListings.)
func TestListingsInMemory(t *testing.T) {
	defer func(n, ids int) { listingsMax, listingIDsMax = n, ids }(listingsMax, listingIDsMax)
	f := mustCommitScenario(t)
	same := func(at string) {
		t.Helper()
		l := f.s.apply.listings
		if l == nil {
			t.Fatalf("%s: no listings in memory", at)
		}
		want, err := loadListings(f.s.db)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.EqualFunc(l.all(), want.all(), slices.Equal) || l.ids != want.ids {
			t.Fatalf("%s: %d listings of %d ids in memory, the database holds %d of %d", at, l.m.len(), l.ids, want.m.len(), want.ids)
		}
	}
	addColleges(t, f, "a", 7)
	same("after 7 colleges")
	n := f.s.apply.listings.m.len()

	// Two more listings fit, three do not.
	listingsMax = n + 2
	addColleges(t, f, "b", 2)
	same("at the bound")
	addColleges(t, f, "c", 1)
	if f.s.apply.listings != nil || !f.s.apply.listingsOff {
		t.Fatalf("past the bound of %d listings the apply still keeps them (kept: %v, off: %v)", listingsMax, f.s.apply.listings != nil, f.s.apply.listingsOff)
	}
	addColleges(t, f, "d", 6)
	checkRebuild(t, f.s, "listings read from the database")
	checkLogLeaves(t, f.s, "listings read from the database")

	// A reopened state past the bound does not load them; within it, it does.
	f.s.Close()
	f.open()
	addColleges(t, f, "e", 1)
	if f.s.apply.listings != nil || !f.s.apply.listingsOff {
		t.Fatal("a reopened state past the bound loaded the listings")
	}
	listingsMax = 1 << 17
	f.s.Close()
	f.open()
	addColleges(t, f, "f", 3)
	same("reopened within the bound")
	checkRebuild(t, f.s, "reopened within the bound")

	// The bound on ids counts too.
	listingIDsMax = f.s.apply.listings.ids + 1
	addColleges(t, f, "g", 2)
	if f.s.apply.listings != nil || !f.s.apply.listingsOff {
		t.Fatal("past the bound on ids the apply still keeps the listings")
	}
	checkRebuild(t, f.s, "past the bound on ids")
}

// all returns every listing held, decoded.
func (l *listings) all() map[smt.Key][]string {
	out := map[smt.Key][]string{}
	l.m.each(func(k smt.Key, v []byte) { out[k] = decodeIDs(v) })
	return out
}

// A listing's ids survive their encoding for the arena map, none, one or
// many, empty ids and long ones included, and countIDs counts them.
func TestListingIDsEncoding(t *testing.T) {
	long := strings.Repeat("x", 300)
	many := make([]string, 300) // a count past one uvarint byte
	for i := range many {
		many[i] = fmt.Sprintf("bafy%03d", i)
	}
	for _, ids := range [][]string{{}, {"a"}, {"", "b"}, {"bafy1", "bafy2", long}, many} {
		b := encodeIDs(ids)
		if got := decodeIDs(b); !slices.Equal(got, ids) || countIDs(b) != len(ids) {
			t.Fatalf("%q came back as %q (%d counted)", ids, got, countIDs(b))
		}
	}
}

// A check takes a listing from memory only when no commit was published
// since its reader's epoch, and never while one is being published.
func TestKnownListingWaitsForThePublishedState(t *testing.T) {
	l := &listings{m: newArenaMap[smt.Key]()}
	p := prefix(tableReceived, "did:web:college.example", fwID)
	l.commit(map[smt.Key][]string{smt.KeyOf(p): {"a", "b"}})
	var pub atomic.Uint64
	for _, c := range []struct {
		epoch, now uint64
		ok         bool
	}{{4, 4, true}, {4, 5, false}, {4, 6, false}, {5, 5, false}} {
		pub.Store(c.now)
		r := &storeReader{known: l, knownPub: &pub, epoch: c.epoch}
		ids, ok := r.knownListing(p)
		if ok != c.ok || ok && !slices.Equal(ids, []string{"a", "b"}) {
			t.Errorf("epoch %d, published %d: %q, %v; want taken %v", c.epoch, c.now, ids, ok, c.ok)
		}
	}
	r := &storeReader{known: l}
	if ids, ok := r.knownListing(p); !ok || !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("the apply's own read: %q, %v", ids, ok)
	}
}
