package proof

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
)

// TypeStatusList is the question type of a status-list answer: the list's
// stored record, the record of its version in force at the question's time
// at (whose bytes hold the issuer-signed credential), the next version's
// record when that one is not the current one, and the issuer's
// authorization to issue under the question's framework at at, recomputed
// like an authorization question, all against one map proof.
const TypeStatusList = "statusList"

// ErrCredentialMismatch: the credential served is not the one the proven
// version record holds, or the proven records are not of the list and
// version the question names (or claim them absent).
var ErrCredentialMismatch = errors.New("proof: the status-list credential is not the proven one")

// Refusals of a status-list version that was not the one in force at the
// question's time (DESIGN.md, Status-list bundles).
var (
	// ErrVersionNotInForce: the proven version was published after the
	// question's time, or its proven successor at or before it.
	ErrVersionNotInForce = errors.New("proof: the status-list version was not in force at the question's time")
	// ErrSuccessorHidden: the bundle proves no successor of the version,
	// yet the proven list record names another version current.
	ErrSuccessorHidden = errors.New("proof: the status-list version is not the current one and its successor is not proven")
	// ErrSuccessorNotLinked: the proven successor does not name the
	// version as its previous one, or was not published after it.
	ErrSuccessorNotLinked = errors.New("proof: the proven successor does not follow the status-list version")
)

// Store tables of status lists (registry/schema.go): they are committed to
// the state map under the SHA-256 of these store keys, like decide's.
const (
	tableStatusLists  byte = 0x0f // issuer 0 list
	tableListVersions byte = 0x10 // issuer 0 list 0 index (uint64 big-endian)
)

// StatusListRecords are a status-list bundle's list records, as stored.
type StatusListRecords struct {
	// List is the stored bytes of the list's record (record.StatusList);
	// null claims the list absent.
	List []byte `json:"list"`
	// VersionIndex is the registry index of the version served: the
	// list's currentIndex.
	VersionIndex uint64 `json:"versionIndex"`
	// Version is the stored bytes of that version
	// (record.StatusListVersion), whose credential is the issuer-signed
	// credential byte for byte; null claims it absent.
	Version []byte `json:"version"`
	// NextIndex and Next, when the version is not the list's current one
	// (a question about a past time), are the registry index and stored
	// bytes of the version published next: its previous is the version,
	// its time after the question's. Both absent (0, null): the version
	// is the current one, which the list record must name.
	NextIndex uint64 `json:"nextIndex,omitempty"`
	Next      []byte `json:"next,omitempty"`
}

// StatusListStoreKey is the store key of issuer's list list.
func StatusListStoreKey(issuer, list string) []byte {
	k := make([]byte, 0, 2+len(issuer)+len(list))
	k = append(k, tableStatusLists)
	k = append(k, issuer...)
	k = append(k, 0)
	return append(k, list...)
}

// ListVersionStoreKey is the store key of the version of issuer's list
// list published at registry index index.
func ListVersionStoreKey(issuer, list string, index uint64) []byte {
	k := make([]byte, 0, 11+len(issuer)+len(list))
	k = append(k, tableListVersions)
	k = append(k, issuer...)
	k = append(k, 0)
	k = append(k, list...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, index)
}

// NewStatusList returns the question and answer of a status-list bundle:
// issuer's list list, and the decision d the node made for the issuer's
// issue authorization q over the state at index applied. q.At is the
// question's time: the version's own time for the current version, else
// the time the version in force is asked for (?timestamp=).
func NewStatusList(list string, q decide.Question, d *record.Decision, applied uint64) (Question, Answer) {
	pq, pa := NewAuthorization(q, d, applied)
	pq.Type, pq.List = TypeStatusList, list
	return pq, pa
}

// checkStatusList checks a status-list bundle's fields.
func (b *Bundle) checkStatusList() error {
	q := b.Question
	switch {
	case b.StatusList == nil:
		return fmt.Errorf("%w: a statusList bundle carries the list's records (statusList)", ErrMalformed)
	case q.Entity == "" || q.List == "" || q.Action != record.ActionIssue || q.Recognized != "" || q.AsOf != 0:
		return fmt.Errorf("%w: a statusList question names the issuer (entity), the list, action %q, and no recognized framework or asOf", ErrMalformed, record.ActionIssue)
	case b.Answer.Authorized == nil || b.Answer.Recognized != nil:
		return fmt.Errorf("%w: a statusList bundle answers with authorized", ErrMalformed)
	case len(b.Records)+3 > MaxRecords:
		return fmt.Errorf("%w: %d records and a list's three, at most %d", ErrMalformed, len(b.Records), MaxRecords)
	case b.StatusList.List != nil && len(b.StatusList.List) == 0, b.StatusList.Version != nil && len(b.StatusList.Version) == 0:
		return fmt.Errorf("%w: a status-list record with empty bytes (absent is null)", ErrMalformed)
	case (b.StatusList.NextIndex == 0) != (len(b.StatusList.Next) == 0):
		return fmt.Errorf("%w: a successor version has both its index (nextIndex) and its bytes (next), or neither", ErrMalformed)
	}
	return nil
}

// statusListClaims are the map claims of a status-list bundle's records.
func (b *Bundle) statusListClaims() []smt.Claim {
	q, s := b.Question, b.StatusList
	claim := func(k, v []byte) smt.Claim {
		c := smt.Claim{Key: smt.KeyOf(k)}
		if v != nil {
			c.Value, c.Present = MapValue(v), true
		}
		return c
	}
	claims := []smt.Claim{
		claim(StatusListStoreKey(q.Entity, q.List), s.List),
		claim(ListVersionStoreKey(q.Entity, q.List, s.VersionIndex), s.Version),
	}
	if s.Next != nil {
		claims = append(claims, claim(ListVersionStoreKey(q.Entity, q.List, s.NextIndex), s.Next))
	}
	return claims
}

// provenStatusList reads the proven list, version and successor records
// (their map claims already verified) and checks that they are the
// question's list and its version in force at the question's time: the
// version published at or before it, and either the list's current one or
// followed by the proven successor, published after it. It returns the
// successor, nil for the current version.
func (b *Bundle) provenStatusList() (*record.StatusList, *record.StatusListVersion, *record.StatusListVersion, error) {
	q, s := b.Question, b.StatusList
	if s.List == nil || s.Version == nil {
		return nil, nil, nil, fmt.Errorf("%w: the bundle proves list %q of %s or its version %d absent, so it proves no credential",
			ErrCredentialMismatch, q.List, q.Entity, s.VersionIndex)
	}
	var l record.StatusList
	if err := decide.DecodeRecord(s.List, &l); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: list record: %w", ErrMalformed, err)
	}
	var v record.StatusListVersion
	if err := decide.DecodeRecord(s.Version, &v); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: version record: %w", ErrMalformed, err)
	}
	switch {
	case l.Issuer != q.Entity || l.ID != q.List:
		return nil, nil, nil, fmt.Errorf("%w: the proven list is %q of %s, the question's %q of %s", ErrCredentialMismatch, l.ID, l.Issuer, q.List, q.Entity)
	case v.Index != s.VersionIndex:
		return nil, nil, nil, fmt.Errorf("%w: the version record stored at index %d says index %d", ErrCredentialMismatch, s.VersionIndex, v.Index)
	case v.Credential == "" || record.CIDOf([]byte(v.Credential)) != v.CID:
		return nil, nil, nil, fmt.Errorf("%w: the proven version's credential is not the one its CID %s names", ErrCredentialMismatch, v.CID)
	case v.Time.After(q.At):
		return nil, nil, nil, fmt.Errorf("%w: version %d (%s) was published at %s, after the question's time %s", ErrVersionNotInForce,
			v.Index, v.CID, stamp(v.Time), stamp(q.At))
	}
	if s.Next == nil {
		if l.CurrentIndex != v.Index || l.Current != v.CID {
			return nil, nil, nil, fmt.Errorf("%w: the proven version (index %d, %s) is not the list's current one (index %d, %s), and no successor is proven",
				ErrSuccessorHidden, v.Index, v.CID, l.CurrentIndex, l.Current)
		}
		return &l, &v, nil, nil
	}
	var n record.StatusListVersion
	if err := decide.DecodeRecord(s.Next, &n); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: successor version record: %w", ErrMalformed, err)
	}
	switch {
	case n.Index != s.NextIndex || n.Index <= v.Index || n.Previous != v.CID:
		return nil, nil, nil, fmt.Errorf("%w: the successor stored at index %d (index %d, previous %q) does not follow version %d (%s)",
			ErrSuccessorNotLinked, s.NextIndex, n.Index, n.Previous, v.Index, v.CID)
	case !n.Time.After(q.At):
		return nil, nil, nil, fmt.Errorf("%w: version %d (%s) was superseded at %s by version %d, at or before the question's time %s", ErrVersionNotInForce,
			v.Index, v.CID, stamp(n.Time), n.Index, stamp(q.At))
	}
	return &l, &v, &n, nil
}

// stamp formats a time for messages.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
