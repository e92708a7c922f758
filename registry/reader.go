package registry

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/smt"
)

// storeKey is the store key of a record (decide.StoreKey).
func storeKey(k decide.RecordKey) []byte { return decide.StoreKey(k) }

// storeReader is the Records (and Memo) of the node's store: over a
// view's Pebble snapshot, or over the batch being applied, through the
// record cache when there is one (cache.go).
type storeReader struct {
	r pebble.Reader
	// snap, on the read side, is r as a snapshot: Received then takes the
	// record cache's kept iterators.
	snap *pebble.Snapshot
	// cache, when not nil, remembers decoded records of the state whose
	// publishing sequence is epoch (store).
	cache *recordCache
	epoch uint64
	// dirty holds the records the batch has written (the apply's batch,
	// or a check's own): those are read from the batch, never from or
	// into the cache.
	dirty map[decide.RecordKey]struct{}
	// known is every received listing of the committed state
	// (listings.go), or nil: Received answers a listing the batch has not
	// written from it, without an iterator (a seek through every level of
	// Pebble, most of all for a new subject's empty listing).
	known *listings
	// knownPub, for a check beside the apply, is the store's publishing
	// sequence: known is taken only when no commit was published since
	// epoch (a commit changes the listings and the database within one odd
	// stretch of the sequence); else Received reads Pebble.
	knownPub *atomic.Uint64
}

// knownListing returns listing p from known, and whether it may be taken.
func (s *storeReader) knownListing(p []byte) ([]string, bool) {
	k := smt.KeyOf(p)
	if s.knownPub == nil {
		return s.known.get(k), true // the apply's own goroutine
	}
	if s.epoch%2 == 1 {
		return nil, false // a commit was being published
	}
	ids := s.known.shared(k)
	return ids, s.knownPub.Load() == s.epoch
}

var (
	_ decide.Records = (*storeReader)(nil)
	_ decide.Memo    = (*storeReader)(nil)
)

// Record implements Records.
func (s *storeReader) Record(k decide.RecordKey) ([]byte, error) {
	val, closer, err := s.r.Get(storeKey(k))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k, err)
	}
	out := bytes.Clone(val)
	if out == nil {
		out = []byte{}
	}
	return out, closer.Close()
}

// Received implements Records: a scan of the received index.
func (s *storeReader) Received(subject, framework string) ([]string, error) {
	p := prefix(tableReceived, subject, framework)
	if s.known != nil {
		if _, written := s.dirty[decide.ReceivedKey(subject, framework)]; !written {
			if ids, ok := s.knownListing(p); ok {
				if verifyListings {
					read, err := listingIDs(s.r, p)
					if err != nil {
						return nil, err
					}
					if still := s.knownPub == nil || s.knownPub.Load() == s.epoch; still && !slices.Equal(read, ids) {
						panic(fmt.Sprintf("registry: received listing %q: %q in memory, %q in the store", p, ids, read))
					}
				}
				return ids, nil
			}
		}
	}
	var ids []string
	list := func(it *pebble.Iterator) {
		for it.First(); it.Valid(); it.Next() {
			ids = append(ids, string(bytes.TrimPrefix(it.Key(), p)))
		}
	}
	if s.snap != nil && s.cache != nil {
		k, err := s.cache.iter(s.snap, s.epoch, p, upperBound(p))
		if err != nil {
			return nil, err
		}
		list(k.it)
		return ids, s.cache.release(k)
	}
	it, err := s.r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return nil, err
	}
	list(it)
	return ids, errors.Join(it.Error(), it.Close())
}

// Recall implements Memo.
func (s *storeReader) Recall(k decide.RecordKey) (any, bool) {
	if s.cache == nil {
		return nil, false
	}
	if _, written := s.dirty[k]; written {
		return nil, false
	}
	return s.cache.get(k, s.epoch)
}

// Remember implements Memo.
func (s *storeReader) Remember(k decide.RecordKey, v any) {
	if s.cache == nil {
		return
	}
	if _, written := s.dirty[k]; written {
		return
	}
	s.cache.put(k, v, s.epoch)
}
