package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// Issuer types of EBSI's Trusted Issuers Registry, which the gateway's
// TIR binding serves from this state.
const (
	TIRRootTAO = "RootTAO" // a root accreditor of a framework
	TIRTAO     = "TAO"     // holds an accreditation to accredit
	TIRTI      = "TI"      // holds an accreditation to issue
	TIRRevoked = "Revoked" // the role is not in force now
)

// TIRAttribute is one of an issuer's roles as EBSI's Trusted Issuers
// Registry shows it: a root accreditor's place in a framework, or an
// accreditation the issuer received. Its revisions are the signed
// operations that created and changed it, oldest first; the latest is the
// attribute's body.
type TIRAttribute struct {
	// ID is the hex SHA-256 of the operation that created the role: for
	// an accreditation, the digest its CID carries.
	ID         string
	IssuerType string // RootTAO, TAO or TI while the role is in force now, else Revoked
	TAO        string // who granted it (a root accreditor: itself)
	RootTAO    string // the root accreditor at the top of its chain
	Framework  string
	// Accreditation is the accreditation's id; empty for a root role.
	Accreditation string
	// Status is trustreg's status of the role now: active, suspended,
	// revoked, expired or not_yet_valid.
	Status string
	// Body is what EBSI's attribute body holds: the operation that created
	// the role, as a JWT (compact JWS). For an accreditation in its
	// credential form that is the accreditor-signed Verifiable
	// Accreditation, byte for byte; an older operation signed once is its
	// compact serialization (the same signature); one with several
	// signatures (a governance operation that made a root) cannot be a JWT
	// and is its JSON serialization as stored. A root added with a
	// credential (addRootAccreditor's VerifiableAuthorisationForTrustChain)
	// shows that credential.
	Body      []byte
	Revisions []TIRRevision
}

// TIRRevision is one signed operation in an attribute's life.
type TIRRevision struct {
	ID         string // hex SHA-256 of the signed operation
	IssuerType string // the attribute's type after this operation
	Status     string // the status this operation recorded
	Index      uint64
	Operation  string // the operation's CID
	JWS        []byte // the signed operation, byte for byte
}

// Latest is the attribute's newest revision.
func (a *TIRAttribute) Latest() *TIRRevision { return &a.Revisions[len(a.Revisions)-1] }

// Revision finds a revision by id.
func (a *TIRAttribute) Revision(id string) (*TIRRevision, bool) {
	for i := range a.Revisions {
		if a.Revisions[i].ID == id {
			return &a.Revisions[i], true
		}
	}
	return nil, false
}

// TIRIssuers lists the issuers the TIR binding knows, in DID order: every
// root accreditor and every subject of an accreditation, whatever its
// status. It returns up to limit DIDs after the first offset, and how many
// there are in all. Counting walks every subject once (a seek per subject
// that holds several accreditations): the first listing at a state walks
// them all and keeps the count and every issuerMarkEvery-th DID for the
// state (issuerMarks), so the next listings at it walk from the mark
// before their offset, at most issuerMarkEvery + limit issuers. (The
// gateway's listings take turns, which bounds the walks at once.)
func (v *View) TIRIssuers(offset, limit int) (dids []string, total int, err error) {
	dids = []string{}
	c := v.issuerMarksCache()
	if c == nil {
		// A view that may not use the caches (taken while a batch
		// commits, or kept for an older index) walks them all.
		_, err := v.walkTIRIssuers(offset, limit, &dids, &total)
		return dids, total, err
	}
	c.mu.Lock()
	m := c.marks
	c.mu.Unlock()
	if m == nil || m.index != v.index || m.epoch != v.rd.epoch {
		m, err := v.walkTIRIssuers(offset, limit, &dids, &total)
		if err != nil {
			return nil, 0, err
		}
		c.mu.Lock()
		c.marks = m
		c.mu.Unlock()
		return dids, total, nil
	}
	if offset < 0 || offset >= m.total || limit <= 0 {
		return dids, m.total, nil
	}
	mark := offset / issuerMarkEvery
	skip := offset - mark*issuerMarkEvery
	err = v.eachTIRIssuerFrom(m.dids[mark], func(did string) bool {
		if skip > 0 {
			skip--
			return true
		}
		dids = append(dids, did)
		return len(dids) < limit
	})
	return dids, m.total, err
}

// walkTIRIssuers walks every issuer, counting them into total and adding
// the page of limit DIDs after offset to dids; it returns the marks of the
// walk.
func (v *View) walkTIRIssuers(offset, limit int, dids *[]string, total *int) (*issuerMarks, error) {
	m := &issuerMarks{index: v.index, epoch: v.rd.epoch}
	err := v.eachTIRIssuerFrom("", func(did string) bool {
		if *total%issuerMarkEvery == 0 {
			m.dids = append(m.dids, did)
		}
		if *total >= offset && len(*dids) < limit {
			*dids = append(*dids, did)
		}
		*total++
		return true
	})
	m.total = *total
	return m, err
}

// issuerMarkEvery is how many issuers lie between two marks: a listing
// page at a state already walked reads at most this many issuers more
// than it lists.
const issuerMarkEvery = 1024

// issuerMarks is what a walk of the TIR binding's issuers learned of one
// state: how many there are, and the DID at every issuerMarkEvery-th
// place (about 50 KB at 1M issuers).
type issuerMarks struct {
	index uint64 // the view's applied index
	epoch uint64 // the store's sequence the view was taken at
	total int
	dids  []string
}

// issuerMarksCache keeps the marks of the last state walked.
type issuerMarksCache struct {
	mu    sync.Mutex
	marks *issuerMarks
}

func (c *issuerMarksCache) clear() {
	c.mu.Lock()
	c.marks = nil
	c.mu.Unlock()
}

// issuerMarksCache returns the read model's marks, when the view may use
// the caches.
func (v *View) issuerMarksCache() *issuerMarksCache {
	if v.rd.cache == nil {
		return nil
	}
	return v.m.caches.issuers
}

// eachTIRIssuerFrom visits the union of root accreditors and accreditation
// subjects in DID order, each once, from the first DID not before start,
// until visit returns false.
func (v *View) eachTIRIssuerFrom(start string, visit func(did string) bool) (err error) {
	roots, err := v.rootDIDs()
	if err != nil {
		return err
	}
	p := []byte{tableReceived}
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return err
	}
	defer closeJoin(it, &err)
	i, _ := slices.BinarySearch(roots, start)
	if start == "" {
		it.First()
	} else {
		it.SeekGE(prefix(tableReceived, start))
	}
	for it.Valid() {
		subject, _, _ := bytes.Cut(it.Key()[1:], []byte{0})
		did := string(subject)
		for ; i < len(roots) && roots[i] < did; i++ {
			if !visit(roots[i]) {
				return nil
			}
		}
		if i < len(roots) && roots[i] == did {
			i++
		}
		if !visit(did) {
			return nil
		}
		// Most subjects hold one accreditation: try the next key before
		// seeking past the subject's others.
		sp := prefix(tableReceived, did)
		if it.Next() && bytes.HasPrefix(it.Key(), sp) {
			it.SeekGE(upperBound(sp))
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	for ; i < len(roots); i++ {
		if !visit(roots[i]) {
			return nil
		}
	}
	return nil
}

// rootDIDs returns every DID that is or was a root accreditor of some
// framework, sorted and without repeats.
func (v *View) rootDIDs() ([]string, error) {
	out, err := v.secondParts([]byte{tableRoots})
	slices.Sort(out)
	return slices.Compact(out), err
}

// secondParts returns, for every key under prefix p, the part after the
// first separator that follows p: under a table byte, the second part of
// each key (a root's DID); under a subject's prefix of the received
// index, the accreditation id.
func (v *View) secondParts(p []byte) (_ []string, err error) {
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return nil, err
	}
	defer closeJoin(it, &err)
	var out []string
	for it.First(); it.Valid(); it.Next() {
		_, part, _ := bytes.Cut(it.Key()[len(p):], []byte{0})
		out = append(out, string(part))
	}
	return out, it.Error()
}

// TIRIssuer returns an issuer's attributes as the TIR binding shows them
// at now: its root roles by framework, then the accreditations it
// received by framework and id. A DID with neither is not found.
func (v *View) TIRIssuer(did string, now time.Time) ([]TIRAttribute, error) {
	e := v.plain()
	out := []TIRAttribute{}
	var roots []record.RootAccreditor
	if err := collectInto(v, []byte{tableRoots}, &roots); err != nil {
		return nil, err
	}
	for _, root := range roots {
		if root.Accreditor != did || len(root.Events) == 0 {
			continue
		}
		status := record.StatusRevoked
		if ev, ok := decide.LastRecordedAt(root.Events, now, v.index); ok && ev.Status == record.StatusActive {
			status = record.StatusActive
		}
		attr := TIRAttribute{TAO: did, RootTAO: did, Framework: root.Framework, Status: status, IssuerType: tirType(TIRRootTAO, status)}
		if err := v.tirRevisions(&attr, TIRRootTAO, root.Events); err != nil {
			return nil, err
		}
		out = append(out, attr)
	}
	p := prefix(tableReceived, did)
	ids, err := v.secondParts(p)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		a, err := e.Accreditation(id)
		if err != nil {
			return nil, err
		}
		if a == nil {
			continue
		}
		root, err := e.RootOf(a)
		if err != nil {
			return nil, err
		}
		base := TIRTI
		if a.Action == record.ActionAccredit {
			base = TIRTAO
		}
		status := e.LinkStatus(a, now)
		attr := TIRAttribute{TAO: a.Accreditor, RootTAO: root, Framework: a.Framework, Accreditation: a.ID,
			Status: status, IssuerType: tirType(base, status)}
		if err := v.tirRevisions(&attr, base, a.Events); err != nil {
			return nil, err
		}
		out = append(out, attr)
	}
	if len(out) == 0 {
		return nil, record.Errorf(record.ErrNotFound, "%s is no framework's root accreditor and holds no accreditation", did)
	}
	return out, nil
}

// tirType is the issuer type a role of type base shows in status.
func tirType(base, status string) string {
	if status == record.StatusActive {
		return base
	}
	return TIRRevoked
}

// tirRevisions fills attr's revisions from the role's status events, each
// with the operation that recorded it, and its id from the first.
func (v *View) tirRevisions(attr *TIRAttribute, base string, events []record.StatusEvent) error {
	for _, ev := range events {
		var rec opRecord
		ok, err := getJSON(v.snap, key(tableOps, ev.Operation), &rec)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("registry: operation %s of a status event is missing", ev.Operation)
		}
		sum := sha256.Sum256(rec.JWS)
		attr.Revisions = append(attr.Revisions, TIRRevision{
			ID: hex.EncodeToString(sum[:]), IssuerType: tirType(base, ev.Status), Status: ev.Status,
			Index: ev.Index, Operation: ev.Operation, JWS: rec.JWS,
		})
	}
	attr.ID = attr.Revisions[0].ID
	attr.Body = record.CompactJWS(attr.Revisions[0].JWS)
	if base == TIRRootTAO {
		// A root added with its VerifiableAuthorisationForTrustChain
		// shows that credential.
		if op, err := record.ParseStoredOperation(attr.Revisions[0].JWS); err == nil {
			if rc, ok := op.Body.(*record.RootChange); ok && rc.Credential != "" {
				attr.Body = []byte(rc.Credential)
			}
		}
	}
	return nil
}
