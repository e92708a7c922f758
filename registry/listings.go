package registry

import (
	"encoding/binary"
	"errors"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/smt"
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
// restore. In the arena map a listing of one id takes its 32-byte key and
// place in the index and the encoded id (some 60 bytes) in the arena, which
// may hold up to twice its live bytes: a few tens of MiB at the bounds.
// Variables for a test.
var (
	listingsMax   = 1 << 17
	listingIDsMax = 1 << 18
)

// verifyListings makes every reader that takes a listing from memory (the
// apply, a check) read it from Pebble too, and stop at a difference. The
// package's tests set it.
var verifyListings = false

// listings is every received listing of the committed state: the map key
// of the listing's prefix (tableReceived subject 0 framework 0, through
// smt.KeyOf: the map names the listing by it too) -> its ids in key order,
// encoded (encodeIDs) in an arena map, out of the collector's way. Only
// the apply writes it, on the apply's goroutine: a batch's changes go in
// as it commits, inside the commit's publishing (store.commit). The apply
// reads it without a lock; the leader's checks, beside the apply, through
// shared.
type listings struct {
	mu  sync.RWMutex // held by commit, and by shared's readers
	m   *arenaMap[smt.Key]
	ids int // ids in all the listings
}

// shared is get for a reader beside the apply.
func (l *listings) shared(k smt.Key) []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.get(k)
}

// get returns the ids of the listing with map key k, as a new slice (nil:
// none).
func (l *listings) get(k smt.Key) []string {
	v, ok := l.m.get(k)
	if !ok {
		return nil
	}
	return decodeIDs(v)
}

// encodeIDs encodes a listing's ids for the arena map: their count, then
// each one's length and bytes (uvarints).
func encodeIDs(ids []string) []byte {
	n := binary.MaxVarintLen32
	for _, id := range ids {
		n += binary.MaxVarintLen32 + len(id)
	}
	b := binary.AppendUvarint(make([]byte, 0, n), uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
	}
	return b
}

// decodeIDs is encodeIDs's inverse, over bytes encodeIDs made.
func decodeIDs(b []byte) []string {
	n, l := binary.Uvarint(b)
	b = b[l:]
	ids := make([]string, n)
	for i := range ids {
		m, l := binary.Uvarint(b)
		ids[i] = string(b[l : l+int(m)])
		b = b[l+int(m):]
	}
	return ids
}

// countIDs returns how many ids encodeIDs encoded in b.
func countIDs(b []byte) int {
	n, _ := binary.Uvarint(b)
	return int(n)
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
	l := &listings{m: newArenaMap[smt.Key]()}
	err = eachListing(it, func(p []byte, ids []string) error {
		l.m.set(smt.KeyOf(p), encodeIDs(ids))
		l.ids += len(ids)
		if l.m.len() > listingsMax || l.ids > listingIDsMax {
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

// commit takes a committed batch's listings (pend: map key -> ids, none
// for an emptied listing) and reports whether the listings are still
// within the bounds.
func (l *listings) commit(pend map[smt.Key][]string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, ids := range pend {
		if old, ok := l.m.get(k); ok {
			l.ids -= countIDs(old)
		}
		l.ids += len(ids)
		if len(ids) == 0 {
			l.m.delete(k)
		} else {
			l.m.set(k, encodeIDs(ids))
		}
	}
	return l.m.len() <= listingsMax && l.ids <= listingIDsMax
}

// listingWrite is one write of an entry to the received index: the id
// under a listing's prefix, set or deleted.
type listingWrite struct {
	id  string
	del bool
}

// applyWrites returns ids (in key order) after the writes, in their order.
// It takes ids, which it may change: the caller's own copy (a listing in
// memory is decoded afresh by listings.get; the batch's pending one is
// replaced by the result).
func applyWrites(ids []string, writes []listingWrite) []string {
	out := ids
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
