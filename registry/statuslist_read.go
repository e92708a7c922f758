package registry

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	jose "github.com/go-jose/go-jose/v4"
)

// decodedVersion returns the bitstring of a list version, from the cache
// or decoded from the stored credential (verified when it was published).
func (c *listCache) decodedVersion(r pebble.Reader, issuer, list, cid string, index uint64) ([]byte, error) {
	if bits, ok := c.get(cid); ok {
		return bits, nil
	}
	var ver StatusListVersion
	ok, err := getJSON(r, binary.BigEndian.AppendUint64(prefix(tableListVersions, issuer, list), index), &ver)
	if err != nil {
		return nil, err
	}
	if !ok || ver.CID != cid {
		return nil, fmt.Errorf("%w: version %s of list %s", ErrNotFound, cid, list)
	}
	jwt, err := jose.ParseSignedCompact(ver.Credential, acceptedAlgs)
	if err != nil {
		return nil, fmt.Errorf("stored credential %s: %w", cid, err)
	}
	p, err := parseStatusListCredential(jwt.UnsafePayloadWithoutVerification())
	if err != nil {
		return nil, fmt.Errorf("stored credential %s: %w", cid, err)
	}
	c.add(cid, p.Bits)
	return p.Bits, nil
}

// StatusListView is a list with its current version.
type StatusListView struct {
	StatusList
	Version StatusListVersion `json:"version"`
}

func (v *View) statusList(issuer, id string) (*StatusList, error) {
	var l StatusList
	ok, err := getJSON(v.snap, key(tableStatusLists, issuer, id), &l)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %w: no status list %q of %s", ErrNotFound, ErrStatusRetrieval, id, issuer)
	}
	return &l, nil
}

// StatusList returns a list and its current version.
func (v *View) StatusList(issuer, id string) (*StatusListView, error) {
	l, err := v.statusList(issuer, id)
	if err != nil {
		return nil, err
	}
	var ver StatusListVersion
	if _, err := getJSON(v.snap, binary.BigEndian.AppendUint64(prefix(tableListVersions, issuer, id), l.CurrentIndex), &ver); err != nil {
		return nil, err
	}
	return &StatusListView{StatusList: *l, Version: ver}, nil
}

// StatusListAt returns the version of a list that was current at t: the
// last one published (by commit time) at or before t.
func (v *View) StatusListAt(issuer, id string, t time.Time) (*StatusListView, error) {
	l, err := v.statusList(issuer, id)
	if err != nil {
		return nil, err
	}
	p := prefix(tableListVersions, issuer, id)
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var found *StatusListVersion
	for it.Last(); it.Valid(); it.Prev() {
		var v StatusListVersion
		if err := decodeRecord(it.Value(), &v); err != nil {
			return nil, err
		}
		if !v.Time.After(t) {
			found = &v
			break
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: list %q of %s had no version at %s", ErrStatusRetrieval, id, issuer, t.Format(time.RFC3339))
	}
	return &StatusListView{StatusList: *l, Version: *found}, nil
}

// StatusLists lists an issuer's lists (every issuer's with an empty issuer).
func (v *View) StatusLists(issuer string, page Page) ([]StatusList, string, error) {
	p := []byte{tableStatusLists}
	if issuer != "" {
		p = prefix(tableStatusLists, issuer)
	}
	out := []StatusList{}
	next, err := v.scan(p, page, func(_, v []byte) (bool, error) {
		var l StatusList
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
func (v *View) StatusListHistory(issuer, id string, page Page) ([]StatusListVersion, string, error) {
	if _, err := v.statusList(issuer, id); err != nil {
		return nil, "", err
	}
	out := []StatusListVersion{}
	next, err := v.scan(prefix(tableListVersions, issuer, id), page, func(_, v []byte) (bool, error) {
		var ver StatusListVersion
		if err := decodeRecord(v, &ver); err != nil {
			return false, err
		}
		ver.Credential = ""
		out = append(out, ver)
		return true, nil
	})
	return out, next, err
}

// EntryStatus is one entry of a list.
type EntryStatus struct {
	Issuer   string   `json:"issuer"`
	List     string   `json:"list"`
	Index    int      `json:"index"`
	Status   int      `json:"status"`
	Purposes []string `json:"purpose"`
	// Valid is false when a revocation or suspension entry is set.
	Valid   bool   `json:"valid"`
	Message string `json:"message,omitempty"`
	Version string `json:"version"`
	Checked string `json:"privacy"`
}

// entryPrivacyNote is returned with every per-entry answer.
const entryPrivacyNote = "checking one entry tells this registry which credential is being verified; fetch the whole list to keep that private"

// CheckStatus reads one entry of a list's current version (or of the
// version current at t, when t is not zero).
func (v *View) CheckStatus(issuer, id string, index int, t time.Time) (*EntryStatus, error) {
	var view *StatusListView
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
	st, err := GetStatus(bits, index, view.StatusSize)
	if err != nil {
		return nil, err
	}
	e := &EntryStatus{Issuer: issuer, List: id, Index: index, Status: st, Purposes: view.Purposes, Version: view.Version.CID, Checked: entryPrivacyNote}
	e.Valid = st == 0 || (len(view.Purposes) == 1 && view.Purposes[0] == PurposeMessage)
	want := "0x" + strconv.FormatInt(int64(st), 16)
	if i := slices.IndexFunc(view.Messages, func(m StatusMessage) bool { return strings.EqualFold(m.Status, want) }); i >= 0 {
		e.Message = view.Messages[i].Message
	}
	return e, nil
}
