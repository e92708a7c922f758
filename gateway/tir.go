package gateway

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

// The EBSI Trusted Issuers Registry binding: EBSI's read API, versions 4
// and 5, served from the same state as /v1. Verifier software written for
// EBSI takes https://node/trusted-issuers-registry as the registry's base.
//
// An issuer is a root accreditor or the subject of an accreditation; its
// attributes are those roles. An attribute's body is the signed operation
// that last changed the role (standard base64 of its exact bytes) and its
// hash is that operation's SHA-256, so a verifier can check the body
// against the registry's CIDs. issuerType is RootTAO, TAO or TI while the
// role is in force now and Revoked otherwise (suspended, revoked, expired
// or not yet valid: the extension field "trustreg" says which). Paging is
// EBSI's: page[size] 1 to 50 (default 10) and page[after], the page
// number counted from 1 (0 is read as 1, as some clients send it).
const tirBase = "/trusted-issuers-registry"

const (
	tirDefaultPageSize = 10
	tirMaxPageSize     = 50
	tirMaxPage         = 1 << 31
)

// tirPage is EBSI's paginated list.
type tirPage[T any] struct {
	Self     string   `json:"self"`
	Items    []T      `json:"items"`
	Total    int      `json:"total"`
	PageSize int      `json:"pageSize"`
	Links    tirLinks `json:"links"`
}

type tirLinks struct {
	First string `json:"first"`
	Prev  string `json:"prev"`
	Next  string `json:"next"`
	Last  string `json:"last"`
}

type tirIssuerRef struct {
	DID  string `json:"did"`
	Href string `json:"href"`
}

type tirRef struct {
	ID   string `json:"id"`
	Href string `json:"href"`
}

// tirAttribute is EBSI's attribute with trustreg's extension.
type tirAttribute struct {
	Hash       string   `json:"hash"`
	Body       string   `json:"body"`
	IssuerType string   `json:"issuerType"`
	TAO        string   `json:"tao"`
	RootTAO    string   `json:"rootTao"`
	Trustreg   tirExtra `json:"trustreg"`
}

// tirExtra says what EBSI's fields cannot: the framework, the
// accreditation, trustreg's status and the operation shown.
type tirExtra struct {
	Framework     string `json:"framework"`
	Accreditation string `json:"accreditation,omitempty"`
	Status        string `json:"status"`
	Operation     string `json:"operation"`
	Index         uint64 `json:"index"`
}

type tirAttributeAnswer struct {
	DID       string       `json:"did"`
	Attribute tirAttribute `json:"attribute"`
}

type tirInlineIssuer struct {
	DID        string         `json:"did"`
	Attributes []tirAttribute `json:"attributes"`
}

type tirLinkedIssuer struct {
	DID           string `json:"did"`
	Attributes    string `json:"attributes"`
	HasAttributes bool   `json:"hasAttributes"`
}

// tirRequest checks a TIR request's version and query parameters and
// applies the read's consistency; it returns the versioned base URL.
func (s *Server) tirRequest(w http.ResponseWriter, r *http.Request, params ...string) (string, bool) {
	v := r.PathValue("version")
	if v != "v4" && v != "v5" {
		writeProblem(w, r, api.Problem{Type: problemTypeBase + "not_found", Title: "Not Found", Status: http.StatusNotFound,
			Detail: fmt.Sprintf("the Trusted Issuers Registry API is served as v4 and v5, not %q", v)})
		return "", false
	}
	if err := checkParams(r, params...); err != nil {
		writeError(w, r, err)
		return "", false
	}
	if !s.consistent(w, r) {
		return "", false
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host + tirBase + "/" + v, true
}

// tirPagedRequest is tirRequest for a list, with its page and size.
func (s *Server) tirPagedRequest(w http.ResponseWriter, r *http.Request) (base string, page, size int, ok bool) {
	if base, ok = s.tirRequest(w, r, "page[after]", "page[size]"); !ok {
		return "", 0, 0, false
	}
	page, size, err := tirPaging(r)
	if err != nil {
		writeError(w, r, err)
		return "", 0, 0, false
	}
	return base, page, size, true
}

// tirPaging reads page[after] and page[size].
func tirPaging(r *http.Request) (page, size int, err error) {
	page, size = 1, tirDefaultPageSize
	q := query(r)
	if v := q.Get("page[size]"); v != "" {
		size, err = strconv.Atoi(v)
		if err != nil || size < 1 || size > tirMaxPageSize {
			return 0, 0, record.Errorf(ErrBadRequest, "page[size] %q must be 1 to %d", v, tirMaxPageSize)
		}
	}
	if v := q.Get("page[after]"); v != "" {
		// Bounded so that the page's first item, (page-1)*size, cannot
		// overflow into a negative offset (which read as the first page).
		page, err = strconv.Atoi(v)
		if err != nil || page < 0 || page > tirMaxPage {
			return 0, 0, record.Errorf(ErrBadRequest, "page[after] %q must be a page number from 1 (the first) to %d", v, tirMaxPage)
		}
		page = max(page, 1)
	}
	return page, size, nil
}

// tirList answers one page of total items, from the page's items.
func tirList[T any](s *Server, w http.ResponseWriter, r *http.Request, url string, page, size, total int, items []T) {
	last := max(1, (total+size-1)/size)
	at := func(n int) string { return fmt.Sprintf("%s?page[after]=%d&page[size]=%d", url, n, size) }
	s.writeJSON(w, r, http.StatusOK, tirPage[T]{
		Self: at(page), Items: items, Total: total, PageSize: size,
		Links: tirLinks{First: at(1), Prev: at(min(max(page-1, 1), last)), Next: at(min(page+1, last)), Last: at(last)},
	}, cacheShort)
}

// pageOfSlice returns the items of page (counted from 1) of size.
func pageOfSlice[T any](all []T, page, size int) []T {
	from := min((page-1)*size, len(all))
	return all[from:min(from+size, len(all))]
}

func (s *Server) tirIssuers(w http.ResponseWriter, r *http.Request) {
	base, page, size, ok := s.tirPagedRequest(w, r)
	if !ok {
		return
	}
	dids, total, err := s.cfg.Registry.TIRIssuers((page-1)*size, size)
	if err != nil {
		writeError(w, r, err)
		return
	}
	items := make([]tirIssuerRef, len(dids))
	for i, did := range dids {
		items[i] = tirIssuerRef{DID: did, Href: base + "/issuers/" + url.PathEscape(did)}
	}
	tirList(s, w, r, base+"/issuers", page, size, total, items)
}

// tirIssuerAttrs reads the issuer named in the path.
func (s *Server) tirIssuerAttrs(w http.ResponseWriter, r *http.Request) (string, []registry.TIRAttribute, bool) {
	dec, raw := pathID(r, "did", 4)
	var did string
	attrs, err := lookup(dec, raw, func(d string) ([]registry.TIRAttribute, error) {
		did = d
		return s.cfg.Registry.TIRIssuer(d, s.cfg.Now())
	})
	if err != nil {
		writeError(w, r, err)
		return "", nil, false
	}
	return did, attrs, true
}

func (s *Server) tirIssuer(w http.ResponseWriter, r *http.Request) {
	base, ok := s.tirRequest(w, r, "version")
	if !ok {
		return
	}
	inline := r.PathValue("version") == "v4"
	switch v := query(r).Get("version"); {
	case v == "" || v == "latest":
	case v == "deprecated":
		inline = true
	default:
		writeError(w, r, record.Errorf(ErrBadRequest, "version %q must be latest or deprecated", v))
		return
	}
	did, attrs, ok := s.tirIssuerAttrs(w, r)
	if !ok {
		return
	}
	if !inline {
		s.writeJSON(w, r, http.StatusOK, tirLinkedIssuer{DID: did, Attributes: issuerURL(base, did) + "/attributes", HasAttributes: len(attrs) > 0}, cacheShort)
		return
	}
	out := tirInlineIssuer{DID: did, Attributes: make([]tirAttribute, len(attrs))}
	for i := range attrs {
		out.Attributes[i] = tirAttributeOf(&attrs[i], attrs[i].Latest())
	}
	s.writeJSON(w, r, http.StatusOK, out, cacheShort)
}

func issuerURL(base, did string) string { return base + "/issuers/" + url.PathEscape(did) }

func (s *Server) tirAttributes(w http.ResponseWriter, r *http.Request) {
	base, page, size, ok := s.tirPagedRequest(w, r)
	if !ok {
		return
	}
	did, attrs, ok := s.tirIssuerAttrs(w, r)
	if !ok {
		return
	}
	list := issuerURL(base, did) + "/attributes"
	items := []tirRef{}
	for _, a := range pageOfSlice(attrs, page, size) {
		items = append(items, tirRef{ID: a.ID, Href: list + "/" + a.ID})
	}
	tirList(s, w, r, list, page, size, len(attrs), items)
}

// tirAttributeNamed reads the attribute named in the path.
func (s *Server) tirAttributeNamed(w http.ResponseWriter, r *http.Request) (string, *registry.TIRAttribute, bool) {
	did, attrs, ok := s.tirIssuerAttrs(w, r)
	if !ok {
		return "", nil, false
	}
	id := strings.ToLower(r.PathValue("attribute"))
	for i := range attrs {
		if attrs[i].ID == id {
			return did, &attrs[i], true
		}
	}
	writeError(w, r, record.Errorf(record.ErrNotFound, "%s has no attribute %q", did, r.PathValue("attribute")))
	return "", nil, false
}

func (s *Server) tirAttribute(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.tirRequest(w, r); !ok {
		return
	}
	did, a, ok := s.tirAttributeNamed(w, r)
	if !ok {
		return
	}
	s.writeJSON(w, r, http.StatusOK, tirAttributeAnswer{DID: did, Attribute: tirAttributeOf(a, a.Latest())}, cacheShort)
}

func (s *Server) tirRevisions(w http.ResponseWriter, r *http.Request) {
	base, page, size, ok := s.tirPagedRequest(w, r)
	if !ok {
		return
	}
	did, a, ok := s.tirAttributeNamed(w, r)
	if !ok {
		return
	}
	list := issuerURL(base, did) + "/attributes/" + a.ID + "/revisions"
	items := []tirRef{}
	for _, rev := range pageOfSlice(a.Revisions, page, size) {
		items = append(items, tirRef{ID: rev.ID, Href: list + "/" + rev.ID})
	}
	tirList(s, w, r, list, page, size, len(a.Revisions), items)
}

func (s *Server) tirRevision(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.tirRequest(w, r); !ok {
		return
	}
	did, a, ok := s.tirAttributeNamed(w, r)
	if !ok {
		return
	}
	rev, found := a.Revision(strings.ToLower(r.PathValue("revision")))
	if !found {
		writeError(w, r, record.Errorf(record.ErrNotFound, "attribute %s of %s has no revision %q", a.ID, did, r.PathValue("revision")))
		return
	}
	s.writeJSON(w, r, http.StatusOK, tirAttributeAnswer{DID: did, Attribute: tirAttributeOf(a, rev)}, cacheShort)
}

// tirAttributeOf shows attribute a as of revision rev: the latest revision
// carries the type and status now, an earlier one those it recorded.
func tirAttributeOf(a *registry.TIRAttribute, rev *registry.TIRRevision) tirAttribute {
	typ, status := rev.IssuerType, rev.Status
	if rev == a.Latest() {
		typ, status = a.IssuerType, a.Status
	}
	return tirAttribute{
		Hash: rev.ID, Body: base64.StdEncoding.EncodeToString(rev.JWS), IssuerType: typ, TAO: a.TAO, RootTAO: a.RootTAO,
		Trustreg: tirExtra{Framework: a.Framework, Accreditation: a.Accreditation, Status: status, Operation: rev.Operation, Index: rev.Index},
	}
}
