package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

// StatusLists is the read side of issuers' status lists.
type StatusLists interface {
	StatusList(issuer, id string) (*record.StatusListView, error)
	StatusListAt(issuer, id string, t time.Time) (*record.StatusListView, error)
	StatusLists(issuer string, page registry.Page) ([]record.StatusList, string, error)
	StatusListHistory(issuer, id string, page registry.Page) ([]record.StatusListVersion, string, error)
	CheckStatus(issuer, id string, index int, t time.Time) (*record.EntryStatus, error)
}

// statusListTypeBase prefixes the W3C Bitstring Status List error types.
const statusListTypeBase = "https://www.w3.org/ns/credentials/status-list#"

// listVersion loads the current version, or the one current at ?timestamp.
func (s *Server) listVersion(w http.ResponseWriter, r *http.Request) (*record.StatusListView, bool) {
	issuer, list := r.PathValue("issuer"), r.PathValue("list")
	var view *record.StatusListView
	var err error
	if ts := query(r).Get("timestamp"); ts != "" {
		t, perr := time.Parse(time.RFC3339Nano, ts)
		if perr != nil {
			writeError(w, r, record.Errorf(record.ErrMalformedValue, "timestamp %q must be an XML Schema dateTimeStamp (2025-06-01T00:00:00Z)", ts))
			return nil, false
		}
		view, err = s.cfg.Lists.StatusListAt(issuer, list, t)
	} else {
		view, err = s.cfg.Lists.StatusList(issuer, list)
	}
	if err != nil {
		writeError(w, r, err)
		return nil, false
	}
	return view, true
}

// listCache derives Cache-Control from the list's ttl (milliseconds); a
// version fetched for a past timestamp never changes.
func (s *Server) listCache(r *http.Request, view *record.StatusListView) string {
	if ts := query(r).Get("timestamp"); ts != "" {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil && t.Before(s.cfg.Now()) {
			return cacheImmutable
		}
	}
	secs := int64(300)
	if view.TTL > 0 {
		secs = max(1, view.TTL/1000)
	}
	return "public, max-age=" + strconv.FormatInt(secs, 10)
}

func (s *Server) statusList(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "timestamp"); err != nil {
		writeError(w, r, err)
		return
	}
	if !s.consistent(w, r) {
		return
	}
	view, ok := s.listVersion(w, r)
	if !ok {
		return
	}
	// The version's CID names it; the two representations (the JSON
	// credential and the issuer's VC-JWT) get tags of their own.
	jwtWanted := strings.Contains(r.Header.Get("Accept"), "application/vc+jwt")
	etag := `"` + view.Version.CID + `"`
	if jwtWanted {
		etag = `"` + view.Version.CID + `.jwt"`
	}
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", s.listCache(r, view))
	h.Set(IndexHeader, strconv.FormatUint(s.cfg.Registry.AppliedIndex(), 10))
	h.Add("Vary", "Accept")
	if noneMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if jwtWanted {
		h.Set("Content-Type", "application/vc+jwt")
		_, _ = w.Write([]byte(view.Version.Credential))
		return
	}
	jwt, err := jose.ParseSignedCompact(view.Version.Credential, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
	if err != nil {
		writeError(w, r, err)
		return
	}
	doc := api.StatusListDocument{
		Issuer: view.Issuer, List: view.ID, CID: view.Version.CID, Index: view.Version.Index, Time: view.Version.Time,
		Previous: view.Version.Previous, Purposes: view.Purposes, StatusSize: view.StatusSize, Entries: view.Entries,
		Credential: jwt.UnsafePayloadWithoutVerification(), JWT: view.Version.Credential,
	}
	h.Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(doc)
}

func (s *Server) statusEntry(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "timestamp"); err != nil {
		writeError(w, r, err)
		return
	}
	if !s.consistent(w, r) {
		return
	}
	index, err := strconv.Atoi(r.PathValue("index"))
	if err != nil {
		writeError(w, r, record.Errorf(record.ErrRange, "entry index %q is not a number", r.PathValue("index")))
		return
	}
	var t time.Time
	if ts := query(r).Get("timestamp"); ts != "" {
		if t, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			writeError(w, r, record.Errorf(record.ErrMalformedValue, "timestamp %q must be an XML Schema dateTimeStamp", ts))
			return
		}
	}
	e, err := s.cfg.Lists.CheckStatus(r.PathValue("issuer"), r.PathValue("list"), index, t)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, e, cacheShort)
}

func (s *Server) statusLists(w http.ResponseWriter, r *http.Request) {
	page, ok := s.listRequest(w, r, "issuer")
	if !ok {
		return
	}
	items, next, err := s.cfg.Lists.StatusLists(query(r).Get("issuer"), page)
	writeListing(s, w, r, items, next, err)
}

func (s *Server) statusListVersions(w http.ResponseWriter, r *http.Request) {
	page, ok := s.listRequest(w, r)
	if !ok {
		return
	}
	items, next, err := s.cfg.Lists.StatusListHistory(r.PathValue("issuer"), r.PathValue("list"), page)
	writeListing(s, w, r, items, next, err)
}
