package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// Page asks for one page of a listing.
type Page struct {
	Cursor string // opaque, from the previous page's Next
	Limit  int
}

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return record.DefaultPageLimit
	case p.Limit > record.MaxPageLimit:
		return record.MaxPageLimit
	}
	return p.Limit
}

func (p Page) start(lower []byte) ([]byte, error) {
	if p.Cursor == "" {
		return lower, nil
	}
	after, err := base64.RawURLEncoding.DecodeString(p.Cursor)
	if err != nil || !bytes.HasPrefix(after, lower) {
		return nil, record.Errorf(record.ErrBadQuery, "cursor %q is not one this listing returned", p.Cursor)
	}
	return append(after, 0), nil // the smallest key after the cursor
}

func cursorOf(k []byte) string { return base64.RawURLEncoding.EncodeToString(k) }

// scan visits the records under prefix p from the page's cursor until
// visit has accepted the page's limit of them or MaxPageScan records were
// read; it returns the cursor of the next page ("" at the end). A listing
// whose visit passes over records (a search, a filter the scanned index
// does not hold) may so return fewer than its limit, even none, and still
// name a next page, where the scan goes on: no page reads a whole table.
func (v *View) scan(p []byte, page Page, visit func(k, v []byte) (bool, error)) (string, error) {
	return v.scanUpTo(p, page, page.limit(), v.maxScan(), visit)
}

// errPageFull, from a scan's visit, ends the page after the record it was
// returned for, as its limit does: the page holds all it should.
var errPageFull = errors.New("registry: the page is full")

// scanUpTo is scan with its bounds given: limit records accepted, maxScan
// records read.
func (v *View) scanUpTo(p []byte, page Page, limit, maxScan int, visit func(k, v []byte) (bool, error)) (_ string, err error) {
	lower, err := page.start(p)
	if err != nil {
		return "", err
	}
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upperBound(p)})
	if err != nil {
		return "", err
	}
	defer closeJoin(it, &err)
	kept, read := 0, 0
	for it.First(); it.Valid(); it.Next() {
		ok, err := visit(it.Key(), it.Value())
		full := err == errPageFull
		if err != nil && !full {
			return "", err
		}
		read++
		if ok {
			kept++
		}
		if kept == limit || read == maxScan || full {
			k := append([]byte(nil), it.Key()...)
			if it.Next() {
				return cursorOf(k), nil
			}
			return "", it.Error()
		}
	}
	return "", it.Error()
}

// Frameworks lists frameworks in id order.
func (v *View) Frameworks(page Page) ([]record.Framework, string, error) {
	out := []record.Framework{}
	next, err := v.scan([]byte{tableFrameworks}, page, func(_, v []byte) (bool, error) {
		var f record.Framework
		if err := decodeRecord(v, &f); err != nil {
			return false, err
		}
		out = append(out, f)
		return true, nil
	})
	return out, next, err
}

// Framework returns one framework with its roots and recognitions.
func (v *View) Framework(id string) (*record.FrameworkView, error) {
	var f record.Framework
	ok, err := getJSON(v.snap, key(tableFrameworks, id), &f)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, record.Errorf(record.ErrNotFound, "framework %q", id)
	}
	fv := &record.FrameworkView{Framework: f, Roots: []record.RootAccreditor{}, Recognitions: []record.Recognition{}}
	if err := collectInto(v, prefix(tableRoots, id), &fv.Roots); err != nil {
		return nil, err
	}
	if err := collectInto(v, prefix(tableRecognitions, id), &fv.Recognitions); err != nil {
		return nil, err
	}
	return fv, nil
}

func collectInto[T any](v *View, p []byte, out *[]T) (err error) {
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return err
	}
	defer closeJoin(it, &err)
	for it.First(); it.Valid(); it.Next() {
		var v T
		if err := decodeRecord(it.Value(), &v); err != nil {
			return err
		}
		*out = append(*out, v)
	}
	return it.Error()
}

// Entity returns a registered entity. An unregistered did:key is answered
// with the key it carries and Registered false.
func (v *View) Entity(did string) (*record.Entity, error) {
	var ent record.Entity
	ok, err := getJSON(v.snap, key(tableEntities, did), &ent)
	if err != nil {
		return nil, err
	}
	if ok {
		return &ent, nil
	}
	if strings.HasPrefix(did, "did:key:") {
		pub, err := record.ParseDIDKey(did)
		if err == nil {
			jwk, err := record.PublicJWK(pub, did)
			if err != nil {
				return nil, err
			}
			return &record.Entity{ID: did, Keys: []json.RawMessage{jwk}}, nil
		}
	}
	return nil, record.Errorf(record.ErrNotFound, "entity %q", did)
}

// Accreditation returns one accreditation by id.
func (v *View) Accreditation(id string, now time.Time) (*record.AccreditationView, error) {
	e := v.plain()
	a, err := e.Accreditation(id)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, record.Errorf(record.ErrNotFound, "accreditation %q", id)
	}
	return v.viewOf(e, a, now, true)
}

func (v *View) viewOf(e *decide.Evaluator, a *record.Accreditation, now time.Time, withOp bool) (*record.AccreditationView, error) {
	av := &record.AccreditationView{Accreditation: *a, Status: e.LinkStatus(a, now)}
	if withOp {
		var rec opRecord
		if _, err := getJSON(v.snap, key(tableOps, a.ID), &rec); err != nil {
			return nil, err
		}
		av.Operation = string(rec.JWS)
	}
	return av, nil
}

// AccreditationFilter selects accreditations in a listing. Empty fields
// match everything; Status compares the status at the time of the query.
type AccreditationFilter struct {
	Framework  string
	Accreditor string
	Subject    string
	Resource   string
	Action     string
	Status     string
}

// Accreditations lists accreditations matching f. The index scanned is
// chosen from the filter: by subject, by accreditor, by framework, or all.
func (v *View) Accreditations(f AccreditationFilter, page Page, now time.Time) ([]record.AccreditationView, string, error) {
	out := []record.AccreditationView{}
	p, visit, err := v.accreditationScan(f, now, func(av *record.AccreditationView) error {
		out = append(out, *av)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	next, err := v.scan(p, page, visit)
	return out, next, err
}

// EachAccreditation visits every accreditation f selects, in the order
// Accreditations lists them, reading at most maxRead records of the index
// it scans; it reports whether it visited them all (false: it stopped at
// maxRead with more to read).
func (v *View) EachAccreditation(f AccreditationFilter, now time.Time, maxRead int, visit func(*record.AccreditationView) error) (bool, error) {
	p, scanned, err := v.accreditationScan(f, now, visit)
	if err != nil {
		return false, err
	}
	// The limit is past maxRead: only the bound of records read ends it.
	next, err := v.scanUpTo(p, Page{}, maxRead+1, maxRead, scanned)
	return next == "", err
}

// accreditationScan checks f and returns the index prefix to scan for it
// and the scan's visit, which hands keep each accreditation f selects,
// with its status at now.
func (v *View) accreditationScan(f AccreditationFilter, now time.Time, keep func(*record.AccreditationView) error) ([]byte, func(k, _ []byte) (bool, error), error) {
	if f.Status != "" && !slices.Contains([]string{record.ReasonActive, record.ReasonSuspended, record.ReasonRevoked, record.ReasonExpired, record.ReasonNotYetValid}, f.Status) {
		return nil, nil, record.Errorf(record.ErrBadQuery, "status %q must be active, suspended, revoked, expired or not_yet_valid", f.Status)
	}
	if f.Action != "" && f.Action != record.ActionIssue && f.Action != record.ActionAccredit {
		return nil, nil, record.Errorf(record.ErrBadQuery, "action %q must be issue or accredit", f.Action)
	}
	var p []byte
	idFromKey := func(k []byte) string { return string(k[len(p):]) }
	switch {
	case f.Subject != "":
		p = prefix(tableReceived, f.Subject)
		if f.Framework != "" {
			p = prefix(tableReceived, f.Subject, f.Framework)
		}
	case f.Accreditor != "":
		p = prefix(tableGranted, f.Accreditor)
		if f.Framework != "" {
			p = prefix(tableGranted, f.Accreditor, f.Framework)
		}
	case f.Framework != "":
		p = prefix(tableByFramework, f.Framework)
	default:
		p = []byte{tableAccreditation}
	}
	if f.Framework == "" && (f.Subject != "" || f.Accreditor != "") {
		idFromKey = func(k []byte) string {
			_, id, _ := bytes.Cut(k[len(p):], []byte{0})
			return string(id)
		}
	}
	e := v.plain()
	return p, func(k, _ []byte) (bool, error) {
		a, err := e.Accreditation(idFromKey(k))
		if err != nil || a == nil {
			return false, err
		}
		if (f.Framework != "" && a.Framework != f.Framework) || (f.Accreditor != "" && a.Accreditor != f.Accreditor) ||
			(f.Subject != "" && a.Subject != f.Subject) || (f.Action != "" && a.Action != f.Action) ||
			(f.Resource != "" && !decide.Covers(a, f.Resource, "")) {
			return false, nil
		}
		av, err := v.viewOf(e, a, now, false)
		if err != nil {
			return false, err
		}
		if f.Status != "" && av.Status != f.Status {
			return false, nil
		}
		return true, keep(av)
	}, nil
}

// Operation returns an entry by registry index, or an accepted operation
// by CID.
func (v *View) Operation(ref string) (*record.OperationView, error) {
	if n, err := strconv.ParseUint(ref, 10, 64); err == nil {
		var res record.Result
		ok, err := getJSON(v.snap, indexKey(tableResults, n), &res)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, record.Errorf(record.ErrNotFound, "no operation at index %d", n)
		}
		if !res.Accepted || res.Duplicate {
			return &record.OperationView{CID: res.CID, Index: n, Time: res.Time, Op: res.Op, Signers: res.Signers, Result: &res}, nil
		}
		ref = res.CID
	}
	var rec opRecord
	ok, err := getJSON(v.snap, key(tableOps, ref), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, record.Errorf(record.ErrNotFound, "operation %q", ref)
	}
	return v.opView(&rec)
}

func (v *View) opView(rec *opRecord) (*record.OperationView, error) {
	var res record.Result
	if _, err := getJSON(v.snap, indexKey(tableResults, rec.Index), &res); err != nil {
		return nil, err
	}
	ov := &record.OperationView{CID: rec.CID, Index: rec.Index, Time: rec.Time, Op: rec.Op, Signers: rec.Signers, JWS: string(rec.JWS), Result: &res}
	// Read as it was accepted: an operation applied before
	// FeatureLevelSignedContent may break what ParseOperation refuses now.
	if op, err := record.ParseOperationDigest(rec.JWS, sha256.Sum256(rec.JWS)); err == nil {
		ov.Payload = op.Payload
	}
	return ov, nil
}

// History lists the accepted operations that an entity signed or that
// concern it, oldest first. A page ends early, with a next page, once its
// operations hold MaxOperationPageBytes.
func (v *View) History(did string, page Page) ([]record.OperationView, string, error) {
	out := []record.OperationView{}
	size := 0
	next, err := v.scan(prefix(tableHistory, did), page, func(_, cid []byte) (bool, error) {
		return true, v.appendOpView(&out, &size, cid)
	})
	return out, next, err
}

// MaxOperationPageBytes bounds a page of operations (History, Changes):
// once the signed bytes and payloads of a page's operations reach it, the
// page ends. An operation may hold 256 KiB signed and as much again
// decoded, so a page of 1,000 could otherwise be built of half a GiB. It
// bounds a page of a status list's versions (StatusListHistory) too, by
// the stored records read, each holding a credential an operation carried.
const MaxOperationPageBytes = 4 << 20

// maxOpPageBytes is the view's MaxOperationPageBytes.
func (v *View) maxOpPageBytes() int {
	if v.opPageBound > 0 {
		return v.opPageBound
	}
	return MaxOperationPageBytes
}

// appendOpView appends the view of the operation whose CID is cid, and
// adds its signed bytes and payload to *size; past MaxOperationPageBytes
// it returns errPageFull.
func (v *View) appendOpView(out *[]record.OperationView, size *int, cid []byte) error {
	v.m.opsRead.Add(1)
	var rec opRecord
	if _, err := getJSON(v.snap, key(tableOps, string(cid)), &rec); err != nil {
		return err
	}
	view, err := v.opView(&rec)
	if err != nil {
		return err
	}
	*out = append(*out, *view)
	if *size += len(view.JWS) + len(view.Payload); *size >= v.maxOpPageBytes() {
		return errPageFull
	}
	return nil
}

// Changes lists the accepted operations after index since, in log order:
// the change feed. more says whether operations after the last listed
// were applied: a page ends at limit operations, or early once it holds
// MaxOperationPageBytes.
func (v *View) Changes(since uint64, limit int) (_ []record.OperationView, more bool, _ error) {
	out := []record.OperationView{}
	page := Page{Limit: limit}
	if since > 0 {
		page.Cursor = cursorOf(indexKey(tableOpsByIndex, since))
	}
	size := 0
	next, err := v.scan([]byte{tableOpsByIndex}, page, func(_, cid []byte) (bool, error) {
		return true, v.appendOpView(&out, &size, cid)
	})
	return out, next != "", err
}

// ChangesOf is Changes for the operations an entity signed or that concern
// it (Concerns with the entity alone), read through its history index: a
// watch stream filtered by an entity reads only its operations, however
// long the log.
func (v *View) ChangesOf(entity string, since uint64, limit int) (_ []record.OperationView, more bool, _ error) {
	out := []record.OperationView{}
	page := Page{Limit: limit}
	if since > 0 {
		page.Cursor = cursorOf(historyKey(entity, since))
	}
	size := 0
	next, err := v.scan(prefix(tableHistory, entity), page, func(_, cid []byte) (bool, error) {
		return true, v.appendOpView(&out, &size, cid)
	})
	return out, next != "", err
}

// Concerns reports whether an accepted operation concerns the framework
// and the entity given (an empty one matches every operation): the entity
// signed it or is named by it, as its history lists it; the framework is
// the one it changes, or the one of the accreditation or recognition it
// changes. Watchers of the change feed filter with it.
func (v *View) Concerns(op *record.OperationView, framework, entity string) (bool, error) {
	if entity != "" {
		if in, err := v.has(historyKey(entity, op.Index)); err != nil || !in {
			return false, err
		}
	}
	if framework == "" {
		return true, nil
	}
	f, err := v.operationFramework(op)
	return f == framework, err
}

// operationFramework returns the framework an accepted operation changes,
// or "" for one outside every framework (an entity's keys, a status list).
func (v *View) operationFramework(op *record.OperationView) (string, error) {
	var p struct {
		ID            string `json:"id"`
		Framework     string `json:"framework"`
		Accreditation string `json:"accreditation"`
	}
	if err := json.Unmarshal(op.Payload, &p); err != nil {
		return "", fmt.Errorf("operation %d payload: %w", op.Index, err)
	}
	switch {
	case op.Op == record.OpCreateFramework || op.Op == record.OpUpdateFramework:
		return p.ID, nil
	case p.Framework != "":
		return p.Framework, nil
	case p.Accreditation != "":
		a, err := v.plain().Accreditation(p.Accreditation)
		if err != nil || a == nil {
			return "", err
		}
		return a.Framework, nil
	}
	return "", nil
}
