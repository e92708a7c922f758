package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
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
// attributes are those roles. An attribute's body is the JWT that made the
// role (registry.TIRAttribute.Body): for an accreditation in its credential
// form the accreditor-signed Verifiable Accreditation, byte for byte, which
// EBSI's clients decode; its hash is the hex SHA-256 of the body string, as
// EBSI computes it. issuerType is RootTAO, TAO or TI while the role is in
// force now and Revoked otherwise (suspended, revoked, expired or not yet
// valid). trustreg's own fields (framework, status, operation) are shown
// only with ?trustreg=true, so clients that compare EBSI's shapes strictly
// never see them. Paging is EBSI's: page[size] 1 to 50 (default 10) and
// page[after], the page number counted from 1 (0 is read as 1, as some
// clients send it).
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

// tirAttribute is EBSI's attribute, with trustreg's extension when asked
// for (tirExtension).
type tirAttribute struct {
	Hash       string    `json:"hash"`
	Body       string    `json:"body"`
	IssuerType string    `json:"issuerType"`
	TAO        string    `json:"tao"`
	RootTAO    string    `json:"rootTao"`
	Trustreg   *tirExtra `json:"trustreg,omitempty"`
}

// tirExtension is the query parameter that adds trustreg's own fields to
// each attribute ("trustreg": {...}); without it the answers hold only
// EBSI's members.
const tirExtension = "trustreg"

// tirRevision is a revision in a v5 list: its id and link.
type tirRevisionRef = tirRef

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

// tirRequest checks a TIR request's version, query parameters and issuer
// DID and applies the read's consistency; it returns the versioned base
// URL.
func (s *Server) tirRequest(w http.ResponseWriter, r *http.Request, params ...string) (string, bool) {
	if !tirVersionServed(w, r, "v4", "v5") {
		return "", false
	}
	v := r.PathValue("version")
	if err := checkParams(r, append(params, tirExtension)...); err != nil {
		writeError(w, r, err)
		return "", false
	}
	if _, err := tirShowExtension(r); err != nil {
		writeError(w, r, err)
		return "", false
	}
	if err := tirIssuerDID(r); err != nil {
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

// tirVersionServed answers 404 unless the path's version is one of
// versions (the versions whose OpenAPI document has the endpoint).
func tirVersionServed(w http.ResponseWriter, r *http.Request, versions ...string) bool {
	v := r.PathValue("version")
	if slices.Contains(versions, v) {
		return true
	}
	writeProblem(w, r, api.Problem{Type: problemTypeBase + "not_found", Title: "Not Found", Status: http.StatusNotFound,
		Detail: fmt.Sprintf("this endpoint of the Trusted Issuers Registry API is served as %s, not %q", strings.Join(versions, " and "), v)})
	return false
}

// tirVersionParam is the query parameter version where the path's
// version has it: v5's GET /issuers/{did} and /revisions take
// ?version=latest|deprecated; v4's document has no such parameter, so a
// v4 request that sends one is refused as any unknown parameter is.
func tirVersionParam(r *http.Request) []string {
	if r.PathValue("version") == "v5" {
		return []string{"version"}
	}
	return nil
}

// tirPagedRequest is tirRequest for a list, with its page and size.
func (s *Server) tirPagedRequest(w http.ResponseWriter, r *http.Request, params ...string) (base string, page, size int, ok bool) {
	if base, ok = s.tirRequest(w, r, append(params, "page[after]", "page[size]")...); !ok {
		return "", 0, 0, false
	}
	page, size, err := tirPaging(r)
	if err != nil {
		writeError(w, r, err)
		return "", 0, 0, false
	}
	return base, page, size, true
}

// tirShowExtension reads ?trustreg=: true shows trustreg's fields.
func tirShowExtension(r *http.Request) (bool, error) {
	switch v := query(r).Get(tirExtension); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, record.Errorf(ErrBadRequest, "%s %q must be true or false", tirExtension, v)
	}
}

// tirDeprecated reads v5's ?version= (latest or deprecated; v4 has only
// the deprecated shapes): whether to answer v4's shape.
func tirDeprecated(r *http.Request) (bool, error) {
	if r.PathValue("version") == "v4" {
		return true, nil
	}
	switch v := query(r).Get("version"); v {
	case "", "latest":
		return false, nil
	case "deprecated":
		return true, nil
	default:
		return false, record.Errorf(ErrBadRequest, "version %q must be latest or deprecated", v)
	}
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

// tirList answers one page of total items, from the page's items. Its
// self and links name the same list: they keep the request's version
// (v5's deprecated items are attributes) and trustreg parameters, after
// EBSI's page[after] and page[size].
func tirList[T any](s *Server, w http.ResponseWriter, r *http.Request, view *registry.View, list string, page, size, total int, items []T) {
	last := max(1, (total+size-1)/size)
	var keep string
	for _, p := range []string{"version", tirExtension} {
		if v := query(r).Get(p); v != "" {
			keep += "&" + p + "=" + url.QueryEscape(v)
		}
	}
	at := func(n int) string { return fmt.Sprintf("%s?page[after]=%d&page[size]=%d%s", list, n, size, keep) }
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, tirPage[T]{
		Self: at(page), Items: items, Total: total, PageSize: size,
		Links: tirLinks{First: at(1), Prev: at(min(max(page-1, 1), last)), Next: at(min(page+1, last)), Last: at(last)},
	}, cacheShort)
}

func (s *Server) tirIssuers(w http.ResponseWriter, r *http.Request) {
	base, page, size, ok := s.tirPagedRequest(w, r)
	if !ok {
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	dids, total, err := view.TIRIssuers((page-1)*size, size)
	if err != nil {
		writeError(w, r, err)
		return
	}
	items := make([]tirIssuerRef, len(dids))
	for i, did := range dids {
		items[i] = tirIssuerRef{DID: did, Href: base + "/issuers/" + url.PathEscape(did)}
	}
	tirList(s, w, r, view, base+"/issuers", page, size, total, items)
}

// tirIssuerNamed opens the issuer named in the path. It reads only the
// issuer's root roles: each answer reads the attributes and revisions it
// shows (registry.TIRIssuerView).
func (s *Server) tirIssuerNamed(w http.ResponseWriter, r *http.Request, view *registry.View) (*registry.TIRIssuerView, bool) {
	dec, raw := pathID(r, "did", 4)
	x, err := lookup(dec, raw, func(d string) (*registry.TIRIssuerView, error) {
		return view.TIRIssuerView(d, s.cfg.Now())
	})
	if err != nil {
		writeError(w, r, err)
		return nil, false
	}
	return x, true
}

func (s *Server) tirIssuer(w http.ResponseWriter, r *http.Request) {
	base, ok := s.tirRequest(w, r, tirVersionParam(r)...)
	if !ok {
		return
	}
	inline, err := tirDeprecated(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	x, ok := s.tirIssuerNamed(w, r, view)
	if !ok {
		return
	}
	did := x.DID()
	if !inline {
		// An issuer is found only when it holds an attribute.
		s.writeJSONAt(w, r, view.Index(), http.StatusOK, tirLinkedIssuer{DID: did, Attributes: issuerURL(base, did) + "/attributes", HasAttributes: true}, cacheShort)
		return
	}
	// v4's shape holds every attribute inline.
	attrs, _, err := x.Attributes(0, math.MaxInt)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := tirInlineIssuer{DID: did, Attributes: make([]tirAttribute, len(attrs))}
	for i := range attrs {
		out.Attributes[i] = tirAttributeOf(r, &attrs[i], nil)
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, out, cacheShort)
}

func issuerURL(base, did string) string { return base + "/issuers/" + url.PathEscape(did) }

func (s *Server) tirAttributes(w http.ResponseWriter, r *http.Request) {
	base, page, size, ok := s.tirPagedRequest(w, r)
	if !ok {
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	x, ok := s.tirIssuerNamed(w, r, view)
	if !ok {
		return
	}
	attrs, total, err := x.Attributes((page-1)*size, size)
	if err != nil {
		writeError(w, r, err)
		return
	}
	list := issuerURL(base, x.DID()) + "/attributes"
	items := []tirRef{}
	for _, a := range attrs {
		items = append(items, tirRef{ID: a.ID, Href: list + "/" + a.ID})
	}
	tirList(s, w, r, view, list, page, size, total, items)
}

// tirAttributeNamed reads the attribute named in the path, of the issuer
// named in it.
func (s *Server) tirAttributeNamed(w http.ResponseWriter, r *http.Request, view *registry.View) (*registry.TIRIssuerView, *registry.TIRAttribute, bool) {
	x, ok := s.tirIssuerNamed(w, r, view)
	if !ok {
		return nil, nil, false
	}
	a, err := x.Attribute(strings.ToLower(r.PathValue("attribute")))
	if err == nil && a == nil {
		err = record.Errorf(record.ErrNotFound, "%s has no attribute %q", x.DID(), r.PathValue("attribute"))
	}
	if err != nil {
		writeError(w, r, err)
		return nil, nil, false
	}
	return x, a, true
}

func (s *Server) tirAttribute(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.tirRequest(w, r); !ok {
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	x, a, ok := s.tirAttributeNamed(w, r, view)
	if !ok {
		return
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, tirAttributeAnswer{DID: x.DID(), Attribute: tirAttributeOf(r, a, nil)}, cacheShort)
}

// tirRevisions lists an attribute's revisions: in v4 (and v5 with
// ?version=deprecated) each one the attribute as it left it, as v4's
// revisions list holds them; in v5 its id and link.
func (s *Server) tirRevisions(w http.ResponseWriter, r *http.Request) {
	base, page, size, ok := s.tirPagedRequest(w, r, tirVersionParam(r)...)
	if !ok {
		return
	}
	full, err := tirDeprecated(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	x, a, ok := s.tirAttributeNamed(w, r, view)
	if !ok {
		return
	}
	revs, err := x.Revisions(a, (page-1)*size, size)
	if err != nil {
		writeError(w, r, err)
		return
	}
	list := issuerURL(base, x.DID()) + "/attributes/" + a.ID + "/revisions"
	if full {
		items := make([]tirAttribute, len(revs))
		for i := range revs {
			items[i] = tirAttributeOf(r, a, &revs[i])
		}
		tirList(s, w, r, view, list, page, size, a.Revisions, items)
		return
	}
	items := make([]tirRevisionRef, len(revs))
	for i, rev := range revs {
		items[i] = tirRevisionRef{ID: rev.ID, Href: list + "/" + rev.ID}
	}
	tirList(s, w, r, view, list, page, size, a.Revisions, items)
}

func (s *Server) tirRevision(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.tirRequest(w, r); !ok {
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	x, a, ok := s.tirAttributeNamed(w, r, view)
	if !ok {
		return
	}
	rev, err := x.Revision(a, strings.ToLower(r.PathValue("revision")))
	if err == nil && rev == nil {
		err = record.Errorf(record.ErrNotFound, "attribute %s of %s has no revision %q", a.ID, x.DID(), r.PathValue("revision"))
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, tirAttributeAnswer{DID: x.DID(), Attribute: tirAttributeOf(r, a, rev)}, cacheShort)
}

// tirAttributeOf shows attribute a as of revision rev, nil for the
// latest: the latest revision carries the type and status now, an
// earlier one those it recorded. The body is the same in every revision
// (the JWT that made the role; status changes do not change it), and its
// hash is the hex SHA-256 of the body string, as EBSI computes an
// attribute's hash.
func tirAttributeOf(r *http.Request, a *registry.TIRAttribute, rev *registry.TIRRevision) tirAttribute {
	typ, status, op, index := a.IssuerType, a.Status, a.Operation, a.Index
	if rev != nil && !a.IsLatest(rev) {
		typ, status, op, index = rev.IssuerType, rev.Status, rev.Operation, rev.Index
	}
	sum := sha256.Sum256(a.Body)
	out := tirAttribute{Hash: hex.EncodeToString(sum[:]), Body: string(a.Body), IssuerType: typ, TAO: a.TAO, RootTAO: a.RootTAO}
	if show, _ := tirShowExtension(r); show {
		out.Trustreg = &tirExtra{Framework: a.Framework, Accreditation: a.Accreditation, Status: status, Operation: op, Index: index}
	}
	return out
}

// tirNotImplemented answers an endpoint of EBSI's TIR API that trustreg
// has nothing for with 501: the issuer proxies of v4 and v5 and the status
// lists relayed through them (trustreg hosts status lists itself,
// /v1/status-lists), v5's smart-contract ABI and the JSON-RPC write
// endpoint (trustreg's writes are signed operations, POST /v1/operations).
// An unknown version, or one whose document has no such endpoint, is 404
// as for the endpoints served.
func tirNotImplemented(detail string, versions ...string) func(*Server, http.ResponseWriter, *http.Request) {
	if len(versions) == 0 {
		versions = []string{"v4", "v5"}
	}
	return func(s *Server, w http.ResponseWriter, r *http.Request) {
		if !tirVersionServed(w, r, versions...) {
			return
		}
		if err := tirIssuerDID(r); err != nil {
			writeError(w, r, err)
			return
		}
		writeProblem(w, r, api.Problem{Type: problemTypeBase + "not_implemented", Title: http.StatusText(http.StatusNotImplemented),
			Status: http.StatusNotImplemented, Detail: detail})
	}
}

// tirIssuerDID refuses a path's issuer that is no DID: EBSI answers 400
// for one, on every endpoint (the 501 ones included), before looking it up.
func tirIssuerDID(r *http.Request) error {
	did := r.PathValue("did")
	if did == "" {
		return nil
	}
	if err := record.ValidateID("issuer", did); err != nil || !strings.HasPrefix(did, "did:") {
		return record.Errorf(ErrBadRequest, "issuer %q is not a DID (did:method:identifier)", did)
	}
	return nil
}

// Details of the TIR endpoints answered 501.
const (
	tirNoProxies = "trustreg keeps no issuer proxies: an issuer's status lists are hosted by the registry itself, under /v1/status-lists"
	tirNoJSONRPC = "the Trusted Issuers Registry is written through signed operations (POST /v1/operations, trustctl), not EBSI's JSON-RPC"
	tirNoABI     = "trustreg has no smart contract and so no ABI: the registry is read through this API and /v1, and written through signed operations (POST /v1/operations)"
)
