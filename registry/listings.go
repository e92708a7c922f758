package registry

import (
	"errors"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// The received listings in memory (commitment.go, "Changed keys come from
// the batch itself"). Every entry that accredits a subject changes the
// subject's (subject, framework) listing, and the map's value for it is the
// digest of the whole listing, so the apply must know the listing's ids
// after the entry. Read from Pebble, that is a seek of an iterator through
// every level for a prefix that, for a new subject, holds nothing below the
// memtable: the largest piece of a lone write's commitment in the
// cluster's profiles. The listings below are every listing of the
// committed state, exact, while there are at most listingsMax of them
// with at most listingIDsMax ids in all; so an absent prefix is an empty
// listing, with no read.

// listingsMax and listingIDsMax bound the listings kept in memory: past
// either the apply reads them from Pebble again until a restart or a
// restore. About 200 bytes a listing of one id (its key, some 100 bytes
// for a did:web subject and a framework URL, the id and the map's own), so
// some 25 MiB at the bound. Variables for a test.
var (
	listingsMax   = 1 << 17
	listingIDsMax = 1 << 18
)

// verifyListings makes the apply read every listing it takes from memory
// from the batch too, and stop at a difference. The package's tests set it.
var verifyListings = false

// listings is every received listing of the committed state: listing
// prefix (tableReceived subject 0 framework 0) -> its ids in key order.
// Only the apply reads and writes it, on the apply's goroutine; a batch's
// changes go in once it commits.
type listings struct {
	m   map[string][]string
	ids int // ids in all the listings
}

// errPastBounds stops loadListings's walk at the bounds.
var errPastBounds = errors.New("registry: the received listings are past their bounds in memory")

// loadListings reads every received listing r holds, or returns nil when
// they are past the bounds.
func loadListings(r pebble.Reader) (_ *listings, err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{tableReceived}, UpperBound: []byte{tableReceived + 1}})
	if err != nil {
		return nil, err
	}
	defer closeJoin(it, &err)
	l := &listings{m: map[string][]string{}}
	err = eachListing(it, func(p []byte, ids []string) error {
		l.m[string(p)] = slices.Clone(ids)
		l.ids += len(ids)
		if len(l.m) > listingsMax || l.ids > listingIDsMax {
			return errPastBounds
		}
		return nil
	})
	switch {
	case errors.Is(err, errPastBounds):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return l, nil
}

// commit takes a committed batch's listings (pend: prefix -> ids, none for
// an emptied listing) and reports whether the listings are still within
// the bounds.
func (l *listings) commit(pend map[string][]string) bool {
	for p, ids := range pend {
		l.ids += len(ids) - len(l.m[p])
		if len(ids) == 0 {
			delete(l.m, p)
		} else {
			l.m[p] = ids
		}
	}
	return len(l.m) <= listingsMax && l.ids <= listingIDsMax
}

// listingWrite is one write of an entry to the received index: the id
// under a listing's prefix, set or deleted.
type listingWrite struct {
	id  string
	del bool
}

// applyWrites returns ids (in key order) after the writes, in their order,
// as a new slice: ids may be the committed listing, which stays as it is.
func applyWrites(ids []string, writes []listingWrite) []string {
	out := slices.Clone(ids)
	for _, w := range writes {
		i, found := slices.BinarySearch(out, w.id) // strings compare by their bytes, as the keys do
		switch {
		case w.del && found:
			out = slices.Delete(out, i, i+1)
		case !w.del && !found:
			out = slices.Insert(out, i, w.id)
		}
	}
	return out
}
