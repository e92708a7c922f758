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
// stored record, its current version's (whose bytes hold the
// issuer-signed credential), and the issuer's authorization to issue under
// the question's framework at the version's time, recomputed like an
// authorization question, all against one map proof.
const TypeStatusList = "statusList"

// ErrCredentialMismatch: the credential served is not the one the proven
// version record holds, or the proven records are not of the list and
// version the question names (or claim them absent).
var ErrCredentialMismatch = errors.New("proof: the status-list credential is not the proven one")

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
// issue authorization q (q.At the version's time) over the state at index
// applied.
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
	case len(b.Records)+2 > MaxRecords:
		return fmt.Errorf("%w: %d records and a list's two, at most %d", ErrMalformed, len(b.Records), MaxRecords)
	case b.StatusList.List != nil && len(b.StatusList.List) == 0, b.StatusList.Version != nil && len(b.StatusList.Version) == 0:
		return fmt.Errorf("%w: a status-list record with empty bytes (absent is null)", ErrMalformed)
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
	return []smt.Claim{
		claim(StatusListStoreKey(q.Entity, q.List), s.List),
		claim(ListVersionStoreKey(q.Entity, q.List, s.VersionIndex), s.Version),
	}
}

// provenStatusList reads the proven list and version records (their map
// claims already verified) and checks that they are the question's list
// and its current version, published at the question's time.
func (b *Bundle) provenStatusList() (*record.StatusList, *record.StatusListVersion, error) {
	q, s := b.Question, b.StatusList
	if s.List == nil || s.Version == nil {
		return nil, nil, fmt.Errorf("%w: the bundle proves list %q of %s or its version %d absent, so it proves no credential",
			ErrCredentialMismatch, q.List, q.Entity, s.VersionIndex)
	}
	var l record.StatusList
	if err := decide.DecodeRecord(s.List, &l); err != nil {
		return nil, nil, fmt.Errorf("%w: list record: %w", ErrMalformed, err)
	}
	var v record.StatusListVersion
	if err := decide.DecodeRecord(s.Version, &v); err != nil {
		return nil, nil, fmt.Errorf("%w: version record: %w", ErrMalformed, err)
	}
	switch {
	case l.Issuer != q.Entity || l.ID != q.List:
		return nil, nil, fmt.Errorf("%w: the proven list is %q of %s, the question's %q of %s", ErrCredentialMismatch, l.ID, l.Issuer, q.List, q.Entity)
	case l.CurrentIndex != s.VersionIndex || v.Index != s.VersionIndex || l.Current != v.CID:
		return nil, nil, fmt.Errorf("%w: the proven version (index %d, %s) is not the list's current one (index %d, %s)",
			ErrCredentialMismatch, v.Index, v.CID, l.CurrentIndex, l.Current)
	case v.Credential == "" || record.CIDOf([]byte(v.Credential)) != v.CID:
		return nil, nil, fmt.Errorf("%w: the proven version's credential is not the one its CID %s names", ErrCredentialMismatch, v.CID)
	case !v.Time.Equal(q.At):
		return nil, nil, fmt.Errorf("%w: the question's time %s is not the version's %s", ErrDecisionMismatch,
			q.At.UTC().Format(time.RFC3339Nano), v.Time.UTC().Format(time.RFC3339Nano))
	}
	return &l, &v, nil
}
