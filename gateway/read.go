package gateway

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// pathID returns a path parameter. Identifiers in paths are percent-encoded
// (url.PathEscape); a DID whose own text holds a percent sign
// (did:web:host%3A8443) is also found when a client sent it unescaped,
// through lookup's second try with the raw segment.
func pathID(r *http.Request, name string, segment int) (decoded, raw string) {
	decoded = r.PathValue(name)
	parts := strings.Split(r.URL.EscapedPath(), "/")
	if segment < len(parts) {
		raw = parts[segment]
	}
	return decoded, raw
}

// lookup tries the decoded identifier, then the raw path segment.
func lookup[T any](decoded, raw string, get func(string) (T, error)) (T, error) {
	v, err := get(decoded)
	if errors.Is(err, record.ErrNotFound) && raw != "" && raw != decoded {
		if v2, err2 := get(raw); err2 == nil {
			return v2, nil
		}
	}
	return v, err
}

func pageOf(r *http.Request) (registry.Page, error) {
	p := registry.Page{Cursor: query(r).Get("cursor")}
	if v := query(r).Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > record.MaxPageLimit {
			return p, record.Errorf(ErrBadRequest, "limit %q must be 1 to %d", v, record.MaxPageLimit)
		}
		p.Limit = n
	}
	return p, nil
}

// listRequest reads a listing's page and applies the read's consistency;
// params are the listing's own query parameters besides cursor and limit.
func (s *Server) listRequest(w http.ResponseWriter, r *http.Request, params ...string) (registry.Page, bool) {
	page, err := pageOf(r)
	if err == nil {
		err = checkParams(r, append(params, "cursor", "limit")...)
	}
	if err != nil {
		writeError(w, r, err)
		return page, false
	}
	return page, s.consistent(w, r)
}

// checkParams refuses query parameters a route does not know, so a typo
// is an error rather than a silently broader answer.
func checkParams(r *http.Request, known ...string) error {
	for k := range query(r) {
		ok := k == "consistency" || k == "min_index"
		for _, n := range known {
			ok = ok || k == n
		}
		if !ok {
			return record.Errorf(ErrBadRequest, "unknown query parameter %q (known: %s)", k, strings.Join(append(known, "consistency", "min_index"), ", "))
		}
	}
	return nil
}

// checkLogParams is checkParams for the transparency log's routes
// (/v1/checkpoint, /v1/log/...), which take no consistency or min_index:
// they serve the latest cosigned checkpoint's tree, whatever this node
// has applied, so those would be ignored, and are refused instead.
func checkLogParams(r *http.Request, known ...string) error {
	for k := range query(r) {
		if !slices.Contains(known, k) {
			if len(known) == 0 {
				return record.Errorf(ErrBadRequest, "unknown query parameter %q: the log's routes take none (consistency and min_index neither: they serve the latest cosigned checkpoint)", k)
			}
			return record.Errorf(ErrBadRequest, "unknown query parameter %q (known: %s; consistency and min_index are not: the log's routes serve the latest cosigned checkpoint)", k, strings.Join(known, ", "))
		}
	}
	return nil
}

// listing is the shape of every paginated answer.
type listing[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// writeListing answers one page of a listing read from view, or the error
// that stopped it.
func writeListing[T any](s *Server, w http.ResponseWriter, r *http.Request, view *registry.View, items []T, next string, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, listing[T]{Items: items, Next: nextLink(r, next)}, cacheShort)
}

func nextLink(r *http.Request, cursor string) string {
	if cursor == "" {
		return ""
	}
	q := query(r)
	q.Set("cursor", cursor)
	return r.URL.Path + "?" + q.Encode()
}

func (s *Server) frameworks(w http.ResponseWriter, r *http.Request) {
	page, ok := s.listRequest(w, r, "q")
	if !ok {
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	if query(r).Has("q") {
		s.searchFrameworks(w, r, view, page)
		return
	}
	items, next, err := view.Frameworks(page)
	writeListing(s, w, r, view, items, next, err)
}

func (s *Server) framework(w http.ResponseWriter, r *http.Request) {
	getByID(s, w, r, "id", decide.KindFramework, (*registry.View).Framework)
}

func (s *Server) entity(w http.ResponseWriter, r *http.Request) {
	getByID(s, w, r, "did", decide.KindEntity, (*registry.View).Entity)
}

// getByID answers a record named by the path parameter (the fourth path
// segment), percent-encoded or raw. With proof=true the answer carries a
// records bundle of the record of kind it shows (proof.go).
func getByID[T any](s *Server, w http.ResponseWriter, r *http.Request, param string, kind decide.RecordKind, get func(*registry.View, string) (T, error)) {
	if err := checkParams(r, "proof"); err != nil {
		writeError(w, r, err)
		return
	}
	withP, err := wantProof(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	minIndex, ok := s.consistentIndex(w, r)
	if !ok {
		return
	}
	dec, raw := pathID(r, param, 3)
	if withP {
		s.provenRead(w, r, minIndex, func(view *registry.View) (any, []decide.RecordKey, error) {
			found := dec
			v, err := lookup(dec, raw, func(id string) (T, error) { found = id; return get(view, id) })
			return v, []decide.RecordKey{{Kind: kind, A: found}}, err
		})
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	v, err := lookup(dec, raw, func(id string) (T, error) { return get(view, id) })
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, v, cacheShort)
}

func (s *Server) entityAccreditations(w http.ResponseWriter, r *http.Request) {
	page, ok := s.listRequest(w, r, "direction", "framework", "status")
	if !ok {
		return
	}
	did, _ := pathID(r, "did", 3)
	q := query(r)
	f := registry.AccreditationFilter{Framework: q.Get("framework"), Status: q.Get("status")}
	switch q.Get("direction") {
	case "", "received":
		f.Subject = did
	case "granted":
		f.Accreditor = did
	default:
		writeError(w, r, record.Errorf(ErrBadRequest, "direction %q must be received or granted", q.Get("direction")))
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	items, next, err := view.Accreditations(f, page, s.cfg.Now())
	writeListing(s, w, r, view, items, next, err)
}

func (s *Server) entityHistory(w http.ResponseWriter, r *http.Request) {
	page, ok := s.listRequest(w, r)
	if !ok {
		return
	}
	did, _ := pathID(r, "did", 3)
	view := s.cfg.Registry.View()
	defer view.Close()
	items, next, err := view.History(did, page)
	writeListing(s, w, r, view, items, next, err)
}

func (s *Server) accreditations(w http.ResponseWriter, r *http.Request) {
	page, ok := s.listRequest(w, r, "framework", "resource", "accreditor", "subject", "action", "status")
	if !ok {
		return
	}
	q := query(r)
	f := registry.AccreditationFilter{
		Framework: q.Get("framework"), Resource: q.Get("resource"), Accreditor: q.Get("accreditor"),
		Subject: q.Get("subject"), Action: q.Get("action"), Status: q.Get("status"),
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	items, next, err := view.Accreditations(f, page, s.cfg.Now())
	writeListing(s, w, r, view, items, next, err)
}

func (s *Server) accreditation(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "proof"); err != nil {
		writeError(w, r, err)
		return
	}
	withP, err := wantProof(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	minIndex, ok := s.consistentIndex(w, r)
	if !ok {
		return
	}
	id, _ := pathID(r, "id", 3)
	if withP {
		s.provenRead(w, r, minIndex, func(view *registry.View) (any, []decide.RecordKey, error) {
			v, err := view.Accreditation(id, s.cfg.Now())
			return v, []decide.RecordKey{{Kind: decide.KindAccreditation, A: id}}, err
		})
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	v, err := view.Accreditation(id, s.cfg.Now())
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, v, cacheShort)
}

func (s *Server) operation(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r); err != nil {
		writeError(w, r, err)
		return
	}
	if !s.consistent(w, r) {
		return
	}
	ref, _ := pathID(r, "ref", 3)
	view := s.cfg.Registry.View()
	defer view.Close()
	v, err := view.Operation(ref)
	if err != nil {
		writeError(w, r, err)
		return
	}
	// An applied entry never changes.
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, v, cacheImmutable)
}

// changes is the change feed: accepted operations after ?since=<index>.
func (s *Server) changes(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "since", "limit"); err != nil {
		writeError(w, r, err)
		return
	}
	if !s.consistent(w, r) {
		return
	}
	q := query(r)
	var since uint64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, r, record.Errorf(ErrBadRequest, "since %q is not a registry index", v))
			return
		}
		since = n
	}
	page, err := pageOf(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	items, more, err := view.Changes(since, page.Limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	next := ""
	if more {
		// The next page keeps the request's limit and consistency.
		nq := maps.Clone(q)
		nq.Set("since", strconv.FormatUint(items[len(items)-1].Index, 10))
		next = r.URL.Path + "?" + nq.Encode()
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, listing[record.OperationView]{Items: items, Next: next}, cacheShort)
}

// exportDCC answers the issuers authorized now in the DCC issuer registry
// format, for one framework or all.
func (s *Server) exportDCC(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "framework"); err != nil {
		writeError(w, r, err)
		return
	}
	if !s.consistent(w, r) {
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	reg, err := view.DCCExport(query(r).Get("framework"), s.cfg.Now())
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, reg, cacheShort)
}
