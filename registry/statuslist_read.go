package registry

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/record"
)

// decodedVersion returns the bitstring of a list version, from the cache
// or decoded from the stored credential (verified when it was published).
func (c *listCache) decodedVersion(r pebble.Reader, issuer, list, cid string, index uint64) ([]byte, error) {
	if bits, ok := c.get(cid); ok {
		return bits, nil
	}
	var ver record.StatusListVersion
	ok, err := getJSON(r, binary.BigEndian.AppendUint64(prefix(tableListVersions, issuer, list), index), &ver)
	if err != nil {
		return nil, err
	}
	if !ok || ver.CID != cid {
		return nil, record.Errorf(record.ErrNotFound, "version %s of list %s", cid, list)
	}
	payload, err := record.StatusListPayload(ver.Credential)
	if err != nil {
		return nil, fmt.Errorf("stored credential %s: %w", cid, err)
	}
	p, err := record.ParseStoredStatusList(payload)
	if err != nil {
		return nil, fmt.Errorf("stored credential %s: %w", cid, err)
	}
	c.add(cid, p.Bits)
	return p.Bits, nil
}

func (v *View) statusList(issuer, id string) (*record.StatusList, error) {
	var l record.StatusList
	ok, err := getJSON(v.snap, key(tableStatusLists, issuer, id), &l)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, record.Errorf(record.ErrStatusRetrieval, "no status list %q of %s", id, issuer)
	}
	return &l, nil
}

// StatusList returns a list and its current version.
func (v *View) StatusList(issuer, id string) (*record.StatusListView, error) {
	l, err := v.statusList(issuer, id)
	if err != nil {
		return nil, err
	}
	var ver record.StatusListVersion
	if _, err := getJSON(v.snap, binary.BigEndian.AppendUint64(prefix(tableListVersions, issuer, id), l.CurrentIndex), &ver); err != nil {
		return nil, err
	}
	return &record.StatusListView{StatusList: *l, Version: ver}, nil
}

// StatusListAt returns the version of a list that was current at t: the
// last one published (by commit time) at or before t.
func (v *View) StatusListAt(issuer, id string, t time.Time) (_ *record.StatusListView, err error) {
	l, err := v.statusList(issuer, id)
	if err != nil {
		return nil, err
	}
	p := prefix(tableListVersions, issuer, id)
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return nil, err
	}
	defer closeJoin(it, &err)
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

// StatusListNext returns the version of a list published next after the
// one at registry index index (the first by index after it), or nil when
// that one is the list's last.
func (v *View) StatusListNext(issuer, id string, index uint64) (_ *record.StatusListVersion, err error) {
	p := prefix(tableListVersions, issuer, id)
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: binary.BigEndian.AppendUint64(p, index+1), UpperBound: upperBound(p)})
	if err != nil {
		return nil, err
	}
	defer closeJoin(it, &err)
	if !it.First() {
		return nil, nil
	}
	var next record.StatusListVersion
	if err := decodeRecord(it.Value(), &next); err != nil {
		return nil, err
	}
	return &next, nil
}

// StatusLists lists an issuer's lists (every issuer's with an empty issuer).
func (v *View) StatusLists(issuer string, page Page) ([]record.StatusList, string, error) {
	p := []byte{tableStatusLists}
	if issuer != "" {
		p = prefix(tableStatusLists, issuer)
	}
	out := []record.StatusList{}
	next, err := v.scan(p, page, func(_, v []byte) (bool, error) {
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
func (v *View) StatusListHistory(issuer, id string, page Page) ([]record.StatusListVersion, string, error) {
	if _, err := v.statusList(issuer, id); err != nil {
		return nil, "", err
	}
	out := []record.StatusListVersion{}
	next, err := v.scan(prefix(tableListVersions, issuer, id), page, func(_, v []byte) (bool, error) {
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
func (v *View) CheckStatus(issuer, id string, index int, t time.Time) (*record.EntryStatus, error) {
	var view *record.StatusListView
	var err error
	if t.IsZero() {
		view, err = v.StatusList(issuer, id)
	} else {
		view, err = v.StatusListAt(issuer, id, t)
	}
	if err != nil {
		return nil, err
	}
	bits, err := v.m.caches.lists.decodedVersion(v.snap, issuer, id, view.Version.CID, view.Version.Index)
	if err != nil {
		return nil, err
	}
	st, err := record.GetStatus(bits, index, view.StatusSize)
	if err != nil {
		return nil, err
	}
	e := &record.EntryStatus{Issuer: issuer, List: id, Index: index, Status: st, Purposes: view.Purposes, Version: view.Version.CID, Checked: entryPrivacyNote}
	// REC §3.2 (Validate Algorithm): valid is true when the status is 0,
	// whatever the purpose; purpose is the one purpose checked, which a
	// list of several purposes leaves to the caller (the gateway's
	// statusPurpose parameter).
	e.Valid = st == 0
	if len(view.Purposes) == 1 {
		e.Purpose = view.Purposes[0]
	}
	want := "0x" + strconv.FormatInt(int64(st), 16)
	if i := slices.IndexFunc(view.Messages, func(m record.StatusMessage) bool { return strings.EqualFold(m.Status, want) }); i >= 0 {
		e.Message = view.Messages[i].Message
	}
	return e, nil
}
