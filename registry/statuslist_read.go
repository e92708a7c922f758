package registry

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/trustreg/trustreg/registry/record"
)

// listCache keeps decoded bitstrings by version CID, within a byte budget,
// so a large list is not decompressed again on every read.
type listCache struct {
	mu     sync.Mutex
	lru    *lru.Cache[string, []byte]
	bytes  int
	budget int
}

func newListCache(budget int) *listCache {
	c := &listCache{budget: budget}
	c.lru, _ = lru.NewWithEvict[string, []byte](1<<16, func(_ string, v []byte) { c.bytes -= len(v) })
	return c
}

func (c *listCache) get(cid string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Get(cid)
}

func (c *listCache) add(cid string, bits []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Contains(cid) {
		return
	}
	c.lru.Add(cid, bits)
	c.bytes += len(bits)
	for c.bytes > c.budget && c.lru.Len() > 1 {
		c.lru.RemoveOldest()
	}
}

// decodedVersion returns the bitstring of a list version, from the cache
// or decoded from the stored credential (verified when it was published).
func (s *State) decodedVersion(r pebble.Reader, issuer, list, cid string, index uint64) ([]byte, error) {
	if bits, ok := s.lists.get(cid); ok {
		return bits, nil
	}
	var v record.StatusListVersion
	ok, err := getJSON(r, binary.BigEndian.AppendUint64(prefix(tableListVersions, issuer, list), index), &v)
	if err != nil {
		return nil, err
	}
	if !ok || v.CID != cid {
		return nil, record.Errorf(record.ErrNotFound, "version %s of list %s", cid, list)
	}
	payload, err := record.StatusListPayload(v.Credential)
	if err != nil {
		return nil, fmt.Errorf("stored credential %s: %w", cid, err)
	}
	p, err := record.ParseStoredStatusList(payload)
	if err != nil {
		return nil, fmt.Errorf("stored credential %s: %w", cid, err)
	}
	s.lists.add(cid, p.Bits)
	return p.Bits, nil
}

func (s *State) statusList(issuer, id string) (*record.StatusList, error) {
	var l record.StatusList
	ok, err := getJSON(s.db, key(tableStatusLists, issuer, id), &l)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, record.Errorf(record.ErrNotFound, "%w: no status list %q of %s", record.ErrStatusRetrieval, id, issuer)
	}
	return &l, nil
}

// StatusList returns a list and its current version.
func (s *State) StatusList(issuer, id string) (*record.StatusListView, error) {
	l, err := s.statusList(issuer, id)
	if err != nil {
		return nil, err
	}
	var v record.StatusListVersion
	if _, err := getJSON(s.db, binary.BigEndian.AppendUint64(prefix(tableListVersions, issuer, id), l.CurrentIndex), &v); err != nil {
		return nil, err
	}
	return &record.StatusListView{StatusList: *l, Version: v}, nil
}

// StatusListAt returns the version of a list that was current at t: the
// last one published (by commit time) at or before t.
func (s *State) StatusListAt(issuer, id string, t time.Time) (*record.StatusListView, error) {
	l, err := s.statusList(issuer, id)
	if err != nil {
		return nil, err
	}
	p := prefix(tableListVersions, issuer, id)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var found *record.StatusListVersion
	for it.Last(); it.Valid(); it.Prev() {
		var v record.StatusListVersion
		if err := decodeRecord(it.Value(), &v); err != nil {
			return nil, err
		}
		if !v.Time.After(t) {
			found = &v
			break
		}
	}
	if found == nil {
		return nil, record.Errorf(record.ErrStatusRetrieval, "list %q of %s had no version at %s", id, issuer, t.Format(time.RFC3339))
	}
	return &record.StatusListView{StatusList: *l, Version: *found}, nil
}

// StatusLists lists an issuer's lists (every issuer's with an empty issuer).
func (s *State) StatusLists(issuer string, page Page) ([]record.StatusList, string, error) {
	p := []byte{tableStatusLists}
	if issuer != "" {
		p = prefix(tableStatusLists, issuer)
	}
	out := []record.StatusList{}
	next, err := s.scan(p, page, func(_, v []byte) (bool, error) {
		var l record.StatusList
		if err := decodeRecord(v, &l); err != nil {
			return false, err
		}
		out = append(out, l)
		return true, nil
	})
	return out, next, err
}

// StatusListHistory lists a list's versions, oldest first, without their
// credentials.
func (s *State) StatusListHistory(issuer, id string, page Page) ([]record.StatusListVersion, string, error) {
	if _, err := s.statusList(issuer, id); err != nil {
		return nil, "", err
	}
	out := []record.StatusListVersion{}
	next, err := s.scan(prefix(tableListVersions, issuer, id), page, func(_, v []byte) (bool, error) {
		var ver record.StatusListVersion
		if err := decodeRecord(v, &ver); err != nil {
			return false, err
		}
		ver.Credential = ""
		out = append(out, ver)
		return true, nil
	})
	return out, next, err
}

// entryPrivacyNote is returned with every per-entry answer.
const entryPrivacyNote = "checking one entry tells this registry which credential is being verified; fetch the whole list to keep that private"

// CheckStatus reads one entry of a list's current version (or of the
// version current at t, when t is not zero).
func (s *State) CheckStatus(issuer, id string, index int, t time.Time) (*record.EntryStatus, error) {
	var view *record.StatusListView
	var err error
	if t.IsZero() {
		view, err = s.StatusList(issuer, id)
	} else {
		view, err = s.StatusListAt(issuer, id, t)
	}
	if err != nil {
		return nil, err
	}
	bits, err := s.decodedVersion(s.db, issuer, id, view.Version.CID, view.Version.Index)
	if err != nil {
		return nil, err
	}
	v, err := record.GetStatus(bits, index, view.StatusSize)
	if err != nil {
		return nil, err
	}
	e := &record.EntryStatus{Issuer: issuer, List: id, Index: index, Status: v, Purposes: view.Purposes, Version: view.Version.CID, Checked: entryPrivacyNote}
	// REC §3.2 (Validate Algorithm): valid is true when the status is 0,
	// whatever the purpose; purpose is the one purpose checked, which a
	// list of several purposes leaves to the caller (the gateway's
	// statusPurpose parameter).
	e.Valid = v == 0
	if len(view.Purposes) == 1 {
		e.Purpose = view.Purposes[0]
	}
	want := "0x" + strconv.FormatInt(int64(v), 16)
	if i := slices.IndexFunc(view.Messages, func(m record.StatusMessage) bool { return strings.EqualFold(m.Status, want) }); i >= 0 {
		e.Message = view.Messages[i].Message
	}
	return e, nil
}
