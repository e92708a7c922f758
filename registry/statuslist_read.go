package registry

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/record"
)

// decodedVersion returns the bitstring of a list's current version, from
// the cache or decoded from the stored credential (verified when it was
// published), and keeps it in the cache (listCache). A past version's
// entry is read by View.pastStatus instead, without decoding its
// bitstring whole.
func (c *listCache) decodedVersion(r pebble.Reader, issuer, list, cid string, index uint64) ([]byte, error) {
	if bits, ok := c.get(cid, true); ok {
		return bits, nil
	}
	cred, err := storedCredential(r, issuer, list, cid, index)
	if err != nil {
		return nil, err
	}
	payload, err := record.StatusListPayload(cred)
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

// storedCredential returns the credential of the version of a list stored
// at registry index index, which must be version cid.
func storedCredential(r pebble.Reader, issuer, list, cid string, index uint64) (string, error) {
	var ver record.StatusListVersion
	ok, err := getJSON(r, versionKey(prefix(tableListVersions, issuer, list), index), &ver)
	if err != nil {
		return "", err
	}
	if !ok || ver.CID != cid {
		return "", record.Errorf(record.ErrNotFound, "version %s of list %s", cid, list)
	}
	return ver.Credential, nil
}

// storedEncodedList is the part of a stored status-list credential that
// an entry's read needs, under the names record.ParseStatusListRules
// reads it by.
type storedEncodedList struct {
	CredentialSubject struct {
		EncodedList string `json:"encodedList"`
	} `json:"credentialSubject"`
}

// pastStatus reads entry index, of size bits, of version at of a list when
// at is not the list's current version: from the list cache when it still
// holds the version (it was current when cached), or else from the stored
// credential, its bitstring decompressed only up to the entry
// (record.EncodedStatus) and kept nowhere: one question about one entry
// of a past version costs the read of its credential and of the bitstring
// up to that entry, whatever the list's length (up to 16 MiB decoded), and
// pushes no current list out of the cache (listCache).
func (v *View) pastStatus(issuer, id string, at record.StatusListVersion, index, size int) (int, error) {
	if bits, ok := v.m.caches.lists.get(at.CID, false); ok {
		return record.GetStatus(bits, index, size)
	}
	cred, err := storedCredential(v.snap, issuer, id, at.CID, at.Index)
	if err != nil {
		return 0, err
	}
	payload, err := record.StatusListPayload(cred)
	if err != nil {
		return 0, fmt.Errorf("stored credential %s: %w", at.CID, err)
	}
	var vc storedEncodedList
	if err := json.Unmarshal(payload, &vc); err != nil {
		return 0, fmt.Errorf("stored credential %s: %w", at.CID, err)
	}
	st, err := record.EncodedStatus(vc.CredentialSubject.EncodedList, index, size)
	if err != nil && !errors.Is(err, record.ErrRange) {
		return 0, fmt.Errorf("stored credential %s: %w", at.CID, err)
	}
	return st, err
}

// versionKey is the store key of a list's version at registry index index,
// after the list's version prefix p.
func versionKey(p []byte, index uint64) []byte {
	return binary.BigEndian.AppendUint64(p[:len(p):len(p)], index)
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
	if _, err := getJSON(v.snap, versionKey(prefix(tableListVersions, issuer, id), l.CurrentIndex), &ver); err != nil {
		return nil, err
	}
	return &record.StatusListView{StatusList: *l, Version: ver}, nil
}

// StatusListAt returns the version of a list that was current at t: the
// last one published (by commit time) at or before t.
func (v *View) StatusListAt(issuer, id string, t time.Time) (*record.StatusListView, error) {
	l, err := v.statusList(issuer, id)
	if err != nil {
		return nil, err
	}
	at, err := v.versionAt(issuer, id, t)
	if err != nil {
		return nil, err
	}
	var ver record.StatusListVersion
	ok, err := getJSON(v.snap, versionKey(prefix(tableListVersions, issuer, id), at.Index), &ver)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("registry: version %d of list %q of %s is missing from the snapshot it was found in", at.Index, id, issuer)
	}
	return &record.StatusListView{StatusList: *l, Version: ver}, nil
}

// maxVersionSeeks bounds the seeks of versionAt: each halves a range of
// registry indexes, which are 64-bit.
const maxVersionSeeks = 64

// versionAt returns the version of issuer's list id, without its
// credential, that was current at t: the last one by registry index
// published at or before t, or ErrStatusRetrieval when none was.
//
// A list's versions are stored under their registry index, and their
// commit times never decrease with it (the apply clamps a commit time
// that would run backwards: State.ApplyBatch), so the versions published
// at or before t are those below some index. versionAt finds the last of
// them by bisecting the registry indexes between the list's first and
// last versions, one seek per halving: at most maxVersionSeeks reads
// whatever the number of versions, none of them of a credential
// (decodeVersionMeta). Its answer is the version a walk back from the
// last one finds (TestStatusListAtMatchesTheWalk): published at or before
// t, and the next one, if any, after t, which is what a status-list proof
// shows (proof.Bundle's provenStatusList). A version it reads whose time
// is out of order with the ones around it is an error, not an answer.
func (v *View) versionAt(issuer, id string, t time.Time) (_ record.StatusListVersion, err error) {
	p := prefix(tableListVersions, issuer, id)
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return record.StatusListVersion{}, err
	}
	defer closeJoin(it, &err)
	read := func() (record.StatusListVersion, error) {
		k := it.Key()
		if len(k) != len(p)+8 {
			return record.StatusListVersion{}, fmt.Errorf("registry: key %x under the versions of list %q of %s is not the list's prefix and an index", k, id, issuer)
		}
		index := binary.BigEndian.Uint64(k[len(p):])
		val, err := it.ValueAndErr()
		if err != nil {
			return record.StatusListVersion{}, err
		}
		ver, err := decodeVersionMeta(val)
		if err == nil && ver.Index != index {
			err = fmt.Errorf("stored under index %d, it says %d", index, ver.Index)
		}
		if err != nil {
			return record.StatusListVersion{}, fmt.Errorf("version %d of list %q of %s: %w", index, id, issuer, err)
		}
		return ver, nil
	}
	none := record.Errorf(record.ErrStatusRetrieval, "list %q of %s had no version at %s", id, issuer, t.Format(time.RFC3339))
	if !it.Last() {
		return record.StatusListVersion{}, errors.Join(none, it.Error())
	}
	last, err := read()
	if err != nil || !last.Time.After(t) {
		return last, err
	}
	if !it.First() {
		return record.StatusListVersion{}, errors.Join(fmt.Errorf("registry: list %q of %s has a last version and no first", id, issuer), it.Error())
	}
	lo, err := read()
	if err != nil {
		return record.StatusListVersion{}, err
	}
	if lo.Time.After(t) {
		return record.StatusListVersion{}, none
	}
	// lo was published at or before t; the first version at or after
	// index hi, at hiTime, after t.
	hi, hiTime := last.Index, last.Time
	for seeks := 0; hi-lo.Index > 1; seeks++ {
		if seeks == maxVersionSeeks {
			return record.StatusListVersion{}, fmt.Errorf("registry: list %q of %s: %d seeks left versions %d to %d apart", id, issuer, seeks, lo.Index, hi)
		}
		mid := lo.Index + (hi-lo.Index)/2
		if !it.SeekGE(versionKey(p, mid)) {
			return record.StatusListVersion{}, errors.Join(fmt.Errorf("registry: list %q of %s stores no version from index %d, yet one at %d", id, issuer, mid, hi), it.Error())
		}
		if k := it.Key(); len(k) == len(p)+8 && binary.BigEndian.Uint64(k[len(p):]) >= hi {
			hi = mid // no version in [mid, hi)
			continue
		}
		ver, err := read()
		switch {
		case err != nil:
			return record.StatusListVersion{}, err
		case ver.Time.Before(lo.Time) || ver.Time.After(hiTime):
			return record.StatusListVersion{}, fmt.Errorf("registry: list %q of %s: version %d, published at %s, is out of order: version %d was published at %s, the first at or after index %d at %s",
				id, issuer, ver.Index, ver.Time.Format(time.RFC3339Nano), lo.Index, lo.Time.Format(time.RFC3339Nano), hi, hiTime.Format(time.RFC3339Nano))
		case ver.Time.After(t):
			hi, hiTime = mid, ver.Time
		default:
			lo = ver
		}
	}
	return lo, nil
}

// StatusListNext returns the version of a list published next after the
// one at registry index index (the first by index after it), without its
// credential, which it does not decode (decodeVersionMeta), or nil when
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
	next, err := decodeVersionMeta(it.Value())
	if err != nil {
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
// credentials, which it does not decode (decodeVersionMeta). A version is
// stored as one record with its credential (up to an operation's size), so
// reading its metadata reads the record whole: a page ends early, with a
// next page, once the records it read hold MaxOperationPageBytes, as a
// page of operations does.
func (v *View) StatusListHistory(issuer, id string, page Page) ([]record.StatusListVersion, string, error) {
	if _, err := v.statusList(issuer, id); err != nil {
		return nil, "", err
	}
	out := []record.StatusListVersion{}
	size, bound := 0, v.maxOpPageBytes()
	next, err := v.scan(prefix(tableListVersions, issuer, id), page, func(_, val []byte) (bool, error) {
		ver, err := decodeVersionMeta(val)
		if err != nil {
			return false, err
		}
		out = append(out, ver)
		if size += len(val); size >= bound {
			return true, errPageFull
		}
		return true, nil
	})
	return out, next, err
}

// versionMeta is a stored record.StatusListVersion without its credential:
// decoding into it skips the credential's bytes, which may run to
// megabytes, instead of copying them. It has every other field of
// record.StatusListVersion, under the same names
// (TestVersionMetaIsTheVersionWithoutItsCredential).
type versionMeta struct {
	CID        string     `json:"cid"`
	Index      uint64     `json:"index"`
	Time       time.Time  `json:"time"`
	Previous   string     `json:"previous,omitempty"`
	ValidFrom  *time.Time `json:"validFrom,omitempty"`
	ValidUntil *time.Time `json:"validUntil,omitempty"`
	Operation  string     `json:"operation"`
}

// decodeVersionMeta decodes a stored version without its credential.
// json.Marshal stores the credential last (record.StatusListVersion's
// order, which the commitment's golden test pins) and compactly, so when
// the record ends in `,"credential":"…"}` with no other quote unescaped
// inside the string, the record without it is the bytes before that
// member, closed: found by a byte search, without reading the credential
// as JSON. Any other record is decoded whole, skipping the credential.
func decodeVersionMeta(val []byte) (record.StatusListVersion, error) {
	if i := lastCredential(val); i >= 0 {
		val = append(val[:i:i], '}') // a copy: val is the store's
	}
	var m versionMeta
	if err := decodeRecord(val, &m); err != nil {
		return record.StatusListVersion{}, err
	}
	return record.StatusListVersion{CID: m.CID, Index: m.Index, Time: m.Time, Previous: m.Previous,
		ValidFrom: m.ValidFrom, ValidUntil: m.ValidUntil, Operation: m.Operation}, nil
}

// lastCredential returns where a stored version's credential member
// begins when it is the record's last member, its string ending just
// before the record's closing brace; -1 otherwise.
func lastCredential(val []byte) int {
	const member = `,"credential":"`
	i := bytes.Index(val, []byte(member))
	if i < 0 {
		return -1
	}
	s := val[i+len(member):]
	// The first quote not escaped by an odd run of backslashes ends the
	// string. j only grows: the loop ends within len(s) quotes.
	for j := 0; ; {
		q := bytes.IndexByte(s[j:], '"')
		if q < 0 {
			return -1
		}
		q += j
		escapes := 0
		for k := q - 1; k >= 0 && s[k] == '\\'; k-- {
			escapes++
		}
		if escapes%2 == 0 {
			if q == len(s)-2 && s[q+1] == '}' {
				return i
			}
			return -1
		}
		j = q + 1
	}
}

// entryPrivacyNote is returned with every per-entry answer.
const entryPrivacyNote = "checking one entry tells this registry which credential is being verified; fetch the whole list to keep that private"

// CheckStatus reads one entry of a list's current version (or of the
// version current at t, when t is not zero).
func (v *View) CheckStatus(issuer, id string, index int, t time.Time) (*record.EntryStatus, error) {
	l, err := v.statusList(issuer, id)
	if err != nil {
		return nil, err
	}
	// The list names its current version; one at t is looked up by time.
	// Neither's record is decoded here, only, when the cache does not hold
	// it, a current version's bitstring, or a past one's up to the entry.
	at := record.StatusListVersion{Index: l.CurrentIndex, CID: l.Current}
	if !t.IsZero() {
		if at, err = v.versionAt(issuer, id, t); err != nil {
			return nil, err
		}
	}
	var st int
	if at.Index == l.CurrentIndex {
		bits, err := v.m.caches.lists.decodedVersion(v.snap, issuer, id, at.CID, at.Index)
		if err != nil {
			return nil, err
		}
		st, err = record.GetStatus(bits, index, l.StatusSize)
		if err != nil {
			return nil, err
		}
	} else if st, err = v.pastStatus(issuer, id, at, index, l.StatusSize); err != nil {
		return nil, err
	}
	e := &record.EntryStatus{Issuer: issuer, List: id, Index: index, Status: st, Purposes: l.Purposes, Version: at.CID, Checked: entryPrivacyNote}
	// REC §3.2 (Validate Algorithm): valid is true when the status is 0,
	// whatever the purpose; purpose is the one purpose checked, which a
	// list of several purposes leaves to the caller (the gateway's
	// statusPurpose parameter).
	e.Valid = st == 0
	if len(l.Purposes) == 1 {
		e.Purpose = l.Purposes[0]
	}
	want := "0x" + strconv.FormatInt(int64(st), 16)
	if i := slices.IndexFunc(l.Messages, func(m record.StatusMessage) bool { return strings.EqualFold(m.Status, want) }); i >= 0 {
		e.Message = l.Messages[i].Message
	}
	return e, nil
}
