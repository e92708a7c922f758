package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/record"
)

// statusListTypeBase prefixes the W3C Bitstring Status List error types.
const statusListTypeBase = "https://www.w3.org/ns/credentials/status-list#"

// listVersion loads the current version, or the one current at ?timestamp.
func (s *Server) listVersion(w http.ResponseWriter, r *http.Request, sv *registry.View) (*record.StatusListView, bool) {
	issuer, list := r.PathValue("issuer"), r.PathValue("list")
	var view *record.StatusListView
	t, err := listTimestamp(r)
	switch {
	case err != nil:
	case !t.IsZero():
		view, err = sv.StatusListAt(issuer, list, t)
	default:
		view, err = sv.StatusList(issuer, list)
	}
	if err != nil {
		writeError(w, r, err)
		return nil, false
	}
	return view, true
}

// listTimestamp reads ?timestamp=: zero when absent, never zero when given
// (checkTime).
func listTimestamp(r *http.Request) (time.Time, error) {
	ts := query(r).Get("timestamp")
	if ts == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, record.Errorf(record.ErrMalformedValue, "timestamp %q must be an XML Schema dateTimeStamp (2025-06-01T00:00:00Z)", ts)
	}
	// A RANGE_ERROR (400): a dateTimeStamp, outside the times answered.
	return t, checkTime(record.ErrRange, "timestamp", ts, t)
}

// provenListVersion is the version of issuer's list a proof answers for,
// read from the proven view v, and the question's time: with a zero ts,
// the current version and its own time; else the version in force at ts
// (StatusListAt, as the answer without proof), the version published next
// (nil when it is the current one: StatusListAt takes the last version
// published at or before ts, so the next was published after ts), and ts.
func provenListVersion(v *registry.View, issuer, list string, ts time.Time) (*record.StatusListView, *record.StatusListVersion, time.Time, error) {
	if ts.IsZero() {
		lv, err := v.StatusList(issuer, list)
		if err != nil {
			return nil, nil, time.Time{}, err
		}
		return lv, nil, lv.Version.Time, nil
	}
	lv, err := v.StatusListAt(issuer, list, ts)
	if err != nil || lv.Version.Index == lv.CurrentIndex {
		return lv, nil, ts, err
	}
	next, err := v.StatusListNext(issuer, list, lv.Version.Index)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	if next == nil {
		return nil, nil, time.Time{}, fmt.Errorf("gateway: list %s of %s stores no version after index %d, yet its current one is at index %d", list, issuer, lv.Version.Index, lv.CurrentIndex)
	}
	return lv, next, ts, nil
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

// Media types of a status-list credential (REC §4; VC Data Model 2.0
// §6.2 application/vc; VC-JOSE-COSE §6.1.1 application/vc+jwt).
const (
	mediaVCJWT  = "application/vc+jwt"
	mediaVC     = "application/vc"
	mediaLDJSON = "application/ld+json"
	mediaJSON   = "application/json"
)

// listRepresentations are the media types a version is served as, the
// server's preference first: a VC-JWT as issued, or else (for a client
// that takes only JSON) enveloped in JSON (VC Data Model 2.0 §4.13); a
// Data Integrity credential as issued, in any JSON type, and never as a
// VC-JWT (only the issuer's key could make one).
func listRepresentations(di bool) []string {
	if di {
		return []string{mediaVC, mediaLDJSON, mediaJSON}
	}
	return []string{mediaVCJWT, mediaVC, mediaLDJSON, mediaJSON}
}

// negotiate picks the representation the Accept field prefers (RFC 9110
// §12.5.1): the highest q of the most specific range that matches each
// offer, ties to the server's order; no Accept is */*. It returns "" when
// the client accepts none of them.
func negotiate(accept string, offers []string) string {
	if strings.TrimSpace(accept) == "" {
		return offers[0]
	}
	type rng struct {
		typ, sub string
		q        float64
	}
	var ranges []rng
	for _, part := range strings.Split(accept, ",") {
		fields := strings.Split(part, ";")
		mt := strings.ToLower(strings.TrimSpace(fields[0]))
		typ, sub, ok := strings.Cut(mt, "/")
		if !ok {
			continue
		}
		q := 1.0
		for _, p := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= 1 {
					q = f
				}
			}
		}
		ranges = append(ranges, rng{typ, sub, q})
	}
	best, bestQ := "", 0.0
	for _, offer := range offers {
		typ, sub, _ := strings.Cut(offer, "/")
		q, spec := 0.0, -1
		for _, r := range ranges {
			s := -1
			switch {
			case r.typ == typ && r.sub == sub:
				s = 2
			case r.typ == typ && r.sub == "*":
				s = 1
			case r.typ == "*" && r.sub == "*":
				s = 0
			}
			if s > spec {
				spec, q = s, r.q
			}
		}
		if q > bestQ {
			best, bestQ = offer, q
		}
	}
	return best
}

// envelopedCredential is a VC-JWT in JSON: an EnvelopedVerifiableCredential
// whose id is a data: URL of the JWT (VC Data Model 2.0 §4.13), so the
// issuer's signature travels with it.
func envelopedCredential(jwt string) []byte {
	b, _ := json.Marshal(map[string]any{
		"@context": []string{record.ContextCredentialsV2},
		"id":       "data:" + mediaVCJWT + "," + jwt,
		"type":     "EnvelopedVerifiableCredential",
	})
	return b
}

// statusList dereferences a status-list URL: the credential itself, in the
// media type the client asks for (REC §4), current or at ?timestamp (REC
// §3.2). The registry's record of the version is at .../record.
func (s *Server) statusList(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "timestamp"); err != nil {
		writeError(w, r, err)
		return
	}
	if !s.consistent(w, r) {
		return
	}
	sv := s.cfg.Registry.View()
	defer sv.Close()
	view, ok := s.listVersion(w, r, sv)
	if !ok {
		return
	}
	cred := view.Version.Credential
	di := record.IsDataIntegrity(cred)
	offers := listRepresentations(di)
	media := negotiate(r.Header.Get("Accept"), offers)
	h := w.Header()
	h.Add("Vary", "Accept")
	if media == "" {
		writeError(w, r, record.Errorf(ErrNotAcceptable, "this list is served as %s; the request accepts none of them", strings.Join(offers, ", ")))
		return
	}
	body := []byte(cred)
	if !di && media != mediaVCJWT {
		body = envelopedCredential(cred)
	}
	// The version's CID names it; each representation has a tag of its own.
	etag := `"` + view.Version.CID + "." + strings.TrimPrefix(media, "application/") + `"`
	h.Set("ETag", etag)
	h.Set("Cache-Control", s.listCache(r, view))
	h.Set(IndexHeader, strconv.FormatUint(sv.Index(), 10))
	h.Add("Vary", "Accept")
	if noneMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", media)
	_, _ = w.Write(body)
}

// statusListRecord is the registry's record of a list version: its CID,
// registry index, time, previous version, and the credential decoded.
// With proof=true it answers for the current version, or the one in force
// at ?timestamp=, from the state at the latest cosigned checkpoint, with a
// status-list bundle (proof.go): ?framework= and ?resource= name the
// issuer's authorization it proves, at the version's time or timestamp.
func (s *Server) statusListRecord(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "timestamp", "proof", "framework", "resource"); err != nil {
		writeError(w, r, err)
		return
	}
	withP, err := wantProof(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	q := query(r)
	if !withP && (q.Get("framework") != "" || q.Get("resource") != "") {
		writeError(w, r, record.Errorf(ErrBadRequest, "framework and resource name the authorization a proof proves: use them with proof=true"))
		return
	}
	minIndex, ok := s.consistentIndex(w, r)
	if !ok {
		return
	}
	var view *record.StatusListView
	var bundle *proof.Bundle
	var index uint64
	if withP {
		ts, err := listTimestamp(r)
		if err == nil {
			view, bundle, index, err = s.proveStatusList(r.Context(), r.PathValue("issuer"), r.PathValue("list"), q.Get("framework"), q.Get("resource"), ts, minIndex)
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
	} else {
		sv := s.cfg.Registry.View()
		defer sv.Close()
		if view, ok = s.listVersion(w, r, sv); !ok {
			return
		}
		index = sv.Index()
	}
	payload, err := record.StatusListPayload(view.Version.Credential)
	if err != nil {
		writeError(w, r, err)
		return
	}
	doc := api.StatusListDocument{
		Issuer: view.Issuer, List: view.ID, CID: view.Version.CID, Index: view.Version.Index, Time: view.Version.Time,
		Previous: view.Version.Previous, Purposes: view.Purposes, StatusSize: view.StatusSize, Entries: view.Entries,
		Credential: payload, MediaType: mediaVC,
	}
	if !record.IsDataIntegrity(view.Version.Credential) {
		doc.JWT, doc.MediaType = view.Version.Credential, mediaVCJWT
	}
	if bundle != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			writeError(w, r, err)
			return
		}
		s.writeProven(w, r, index, buf.Bytes(), bundle)
		return
	}
	etag := `"` + view.Version.CID + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", s.listCache(r, view))
	h.Set(IndexHeader, strconv.FormatUint(index, 10))
	if noneMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(doc)
}

func (s *Server) statusEntry(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "timestamp", "statusPurpose"); err != nil {
		writeError(w, r, err)
		return
	}
	if !s.consistent(w, r) {
		return
	}
	// REC §2.1: statusListIndex is an integer ≥ 0 written in base 10; a
	// value that is not one is malformed (REC §3), one past the list's end
	// out of range (REC §3.2).
	raw := r.PathValue("index")
	if raw == "" || strings.Trim(raw, "0123456789") != "" {
		writeError(w, r, record.Errorf(record.ErrMalformedValue, "entry index %q is not a base-10 integer ≥ 0", raw))
		return
	}
	index, err := strconv.Atoi(raw)
	if err != nil {
		writeError(w, r, record.Errorf(record.ErrRange, "entry index %s is past every list's end", raw))
		return
	}
	t, err := listTimestamp(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	sv := s.cfg.Registry.View()
	defer sv.Close()
	e, err := sv.CheckStatus(r.PathValue("issuer"), r.PathValue("list"), index, t)
	if err != nil {
		writeError(w, r, err)
		return
	}
	// REC §3.2: the purpose checked must be one of the list's; a list of
	// several purposes needs the caller's (its credentialStatus's).
	switch p := query(r).Get("statusPurpose"); {
	case p != "" && !slices.Contains(e.Purposes, p):
		writeError(w, r, record.Errorf(record.ErrStatusVerification, "statusPurpose %q is not a purpose of this list (%s)", p, strings.Join(e.Purposes, ", ")))
		return
	case p != "":
		e.Purpose = p
	case e.Purpose == "":
		writeError(w, r, record.Errorf(record.ErrMalformedValue, "this list has the purposes %s: name the one to check with ?statusPurpose=", strings.Join(e.Purposes, ", ")))
		return
	}
	s.writeJSONAt(w, r, sv.Index(), http.StatusOK, e, cacheShort)
}

func (s *Server) statusLists(w http.ResponseWriter, r *http.Request) {
	page, ok := s.listRequest(w, r, "issuer")
	if !ok {
		return
	}
	sv := s.cfg.Registry.View()
	defer sv.Close()
	items, next, err := sv.StatusLists(query(r).Get("issuer"), page)
	writeListing(s, w, r, sv, items, next, err)
}

func (s *Server) statusListVersions(w http.ResponseWriter, r *http.Request) {
	page, ok := s.listRequest(w, r)
	if !ok {
		return
	}
	sv := s.cfg.Registry.View()
	defer sv.Close()
	items, next, err := sv.StatusListHistory(r.PathValue("issuer"), r.PathValue("list"), page)
	writeListing(s, w, r, sv, items, next, err)
}
