package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// The Ayra TRQP Profile's extension endpoints (trqp_ayra_profile_swagger.yaml
// in github.com/ayraforum/ayra-trust-registry-resources), served from the
// same state as TRQP's core queries: an ecosystem is a framework, an entity
// is a root accreditor or the subject of an accreditation, an
// authorization is an (action, resource) pair an accreditation grants.
// What trustreg has no notion of (assurance levels, a list of supported
// DID methods) answers 501, as the profile has unimplemented extensions
// answer. docs/API.md lists each endpoint and deviation.

// ayraMaxScan bounds the accreditations one Ayra answer reads: a listing
// that would read more is refused with what to ask instead.
const ayraMaxScan = 10000

// ayraMaxDecisions bounds the decisions one answer makes (an entity's
// authorizations, one per framework, action and resource its
// accreditations name): each reads the entity's accreditations, so an
// entity with K of them, each naming another resource, cost K² reads (1.7 s
// at K = 10,000 by a review's benchmark).
const ayraMaxDecisions = 512

// Ayra's /entities paging: limit from 1 to ayraMaxLimit, default
// ayraDefaultLimit.
const (
	ayraDefaultLimit = 100
	ayraMaxLimit     = 1000
)

// ayraDescriptionMax is the longest description the profile's metadata
// schema allows, in characters.
const ayraDescriptionMax = 4096

// ayraRecognizeAction is the action a recognition is listed under: a
// recognition here is not per action.
const ayraRecognizeAction = "recognize"

// ayraMetadata is the profile's TrustRegistryMetadata (additionalProperties
// false: it carries no trustreg extras).
type ayraMetadata struct {
	ID                    string   `json:"id"`
	AuthorityID           string   `json:"authority_id,omitempty"`
	GovernanceFrameworkID string   `json:"governance_framework_id,omitempty"`
	Name                  string   `json:"name"`
	Description           string   `json:"description"`
	Controllers           []string `json:"controllers,omitempty"`
}

// ayraEntitySummary is one item of GET /entities.
type ayraEntitySummary struct {
	EntityID    string `json:"entity_id"`
	Name        string `json:"name,omitempty"`
	AuthorityID string `json:"authority_id,omitempty"`
}

// ayraPagination is the profile's offset paging of GET /entities.
type ayraPagination struct {
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
	Total  int `json:"total"`
}

type ayraEntityList struct {
	Items      []ayraEntitySummary `json:"items"`
	Pagination ayraPagination      `json:"pagination"`
}

// ayraEntity answers GET /entities/{entity_id}; the profile leaves its
// members to the registry.
type ayraEntity struct {
	EntityID   string                 `json:"entity_id"`
	Name       string                 `json:"name,omitempty"`
	Registered bool                   `json:"registered"`
	Metadata   *record.EntityMetadata `json:"metadata,omitempty"`
	Keys       []json.RawMessage      `json:"keys"`
	// AuthorityIDs are the frameworks it holds accreditations in.
	AuthorityIDs []string `json:"authority_ids"`
}

// ayraEcosystem answers GET /ecosystems/{ecosystem_id}; the profile
// leaves its members to the registry.
type ayraEcosystem struct {
	EcosystemID           string   `json:"ecosystem_id"`
	Name                  string   `json:"name"`
	Description           string   `json:"description,omitempty"`
	GovernanceFrameworkID string   `json:"governance_framework_id,omitempty"`
	RootAccreditors       []string `json:"root_accreditors"`
	Recognized            []string `json:"recognized_ecosystems"`
	MaxChainLength        int      `json:"max_chain_length"`
}

// ayraAuthorization is the profile's Authorization: an action+resource
// pair usable in a TRQP authorization query.
type ayraAuthorization struct {
	Action      string `json:"action"`
	Resource    string `json:"resource"`
	Description string `json:"description,omitempty"`
}

// ayraParams checks the query parameters and applies the read's
// consistency level; it answers r and returns false when they fail.
func (s *Server) ayraParams(w http.ResponseWriter, r *http.Request, known ...string) bool {
	if err := checkParams(r, known...); err != nil {
		writeError(w, r, err)
		return false
	}
	return s.consistent(w, r)
}

// ayraTime reads the optional time parameter (RFC 3339, the profile's
// date-time); zero means now.
func ayraTime(r *http.Request) (time.Time, error) {
	v := query(r).Get("time")
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, record.Errorf(ErrBadRequest, "time %q must be RFC 3339 (2025-06-01T00:00:00Z)", v)
	}
	return t.UTC(), checkTime(ErrBadRequest, "time", v, t)
}

// ayraFramework returns the framework an authority_id or ecosystem_id
// names; one this registry does not hold is not found.
func (s *Server) ayraFramework(view *registry.View, id string) (*record.FrameworkView, error) {
	f, err := view.Framework(id)
	if errors.Is(err, record.ErrNotFound) {
		return nil, unknownAuthority(id)
	}
	return f, err
}

// eachAccreditation visits the accreditations f selects, and refuses an
// answer that would read more than ayraMaxScan records of the index f is
// read through.
func (s *Server) eachAccreditation(view *registry.View, f registry.AccreditationFilter, now time.Time, visit func(*record.AccreditationView) error) error {
	all, err := view.EachAccreditation(f, now, ayraMaxScan, visit)
	if err == nil && !all {
		err = record.Errorf(ErrBadRequest, "this answer would read more than %d accreditations: narrow it (authority_id, action and resource), or page through /v1/accreditations", ayraMaxScan)
	}
	return err
}

// ayraMetadata answers GET /metadata: the consortium's registry, or, with
// authority_id, that framework as this registry serves it.
func (s *Server) ayraMetadata(w http.ResponseWriter, r *http.Request) {
	if !s.ayraParams(w, r, "authority_id") {
		return
	}
	g := s.cfg.Registry.Genesis()
	m := ayraMetadata{
		// trustreg has no DID of its own: the genesis CID names the
		// consortium's registry (docs/API.md, deviations).
		ID:   "urn:trustreg:genesis:" + s.cfg.Registry.GenesisCID(),
		Name: g.Consortium,
		Description: fmt.Sprintf("trustreg trust registry of the consortium %s: accredited issuers and their status lists, "+
			"replicated by its governance members (%d of %d sign governance changes). TRQP authorities are its frameworks (GET /v1/frameworks).",
			g.Consortium, g.Threshold, len(g.Members)),
	}
	m.Description = truncateRunes(m.Description, ayraDescriptionMax)
	view := s.cfg.Registry.View()
	defer view.Close()
	for _, mem := range g.Members {
		m.Controllers = append(m.Controllers, mem.ID)
	}
	if id := query(r).Get("authority_id"); id != "" {
		f, err := s.ayraFramework(view, id)
		if err != nil {
			writeError(w, r, err)
			return
		}
		m.AuthorityID, m.GovernanceFrameworkID = f.ID, f.ID
		if f.URL != "" {
			m.GovernanceFrameworkID = f.URL
		}
		m.Description = fmt.Sprintf("%s, as served by the trustreg registry of the consortium %s.", f.Name, g.Consortium)
		if f.Description != "" {
			m.Description = f.Description
		}
		m.Description = truncateRunes(m.Description, ayraDescriptionMax)
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, m, cacheShort)
}

// truncateRunes cuts s to at most n characters.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// ayraPaging reads /entities' limit and offset.
func ayraPaging(r *http.Request) (limit, offset int, err error) {
	limit = ayraDefaultLimit
	if v := query(r).Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > ayraMaxLimit {
			return 0, 0, record.Errorf(ErrBadRequest, "limit %q must be 1 to %d", v, ayraMaxLimit)
		}
	}
	if v := query(r).Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, record.Errorf(ErrBadRequest, "offset %q must be a whole number from 0", v)
		}
	}
	return limit, offset, nil
}

// ayraEntities answers GET /entities: the entities this registry knows
// (root accreditors and subjects of accreditations, in DID order), or
// those in one framework, or those authorized for an action on a resource
// at a time.
func (s *Server) ayraEntities(w http.ResponseWriter, r *http.Request) {
	if !s.ayraParams(w, r, "authority_id", "action", "resource", "time", "limit", "offset") {
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	list, err := s.listAyraEntities(r, view)
	if err != nil {
		writeError(w, r, err)
		return
	}
	for i := range list.Items {
		if e, err := view.Entity(list.Items[i].EntityID); err == nil {
			list.Items[i].Name = e.Name
		}
	}
	cache := cacheShort
	if query(r).Get("action") != "" && query(r).Get("time") == "" {
		cache = cacheNone // authorized now
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, list, cache)
}

func (s *Server) listAyraEntities(r *http.Request, view *registry.View) (*ayraEntityList, error) {
	q := query(r)
	limit, offset, err := ayraPaging(r)
	if err != nil {
		return nil, err
	}
	authority, action, resource := q.Get("authority_id"), q.Get("action"), q.Get("resource")
	if (action == "") != (resource == "") {
		return nil, record.Errorf(ErrBadRequest, "action and resource go together: give both or neither")
	}
	if action != "" && action != record.ActionIssue && action != record.ActionAccredit {
		return nil, record.Errorf(ErrBadRequest, "action %q must be %q or %q (GET /lookups/authorizations)", action, record.ActionIssue, record.ActionAccredit)
	}
	at, err := ayraTime(r)
	if err != nil {
		return nil, err
	}
	out := &ayraEntityList{Items: []ayraEntitySummary{}, Pagination: ayraPagination{Limit: limit, Offset: offset}}
	if authority == "" && action == "" {
		dids, total, err := view.TIRIssuers(offset, limit)
		if err != nil {
			return nil, err
		}
		for _, d := range dids {
			out.Items = append(out.Items, ayraEntitySummary{EntityID: d})
		}
		out.Pagination.Total = total
		return out, nil
	}
	found := map[string]bool{}
	if authority != "" {
		f, err := s.ayraFramework(view, authority)
		if err != nil {
			return nil, err
		}
		if action == "" {
			for _, root := range f.Roots {
				found[root.Accreditor] = true
			}
		}
	}
	now := s.cfg.Now()
	decided := map[[2]string]bool{}
	err = s.eachAccreditation(view, registry.AccreditationFilter{Framework: authority, Action: action, Resource: resource}, now, func(a *record.AccreditationView) error {
		if action == "" {
			found[a.Subject] = true
			return nil
		}
		k := [2]string{a.Subject, a.Framework}
		if found[a.Subject] || decided[k] {
			return nil
		}
		decided[k] = true
		d, err := view.Decide(decide.Question{Entity: a.Subject, Framework: a.Framework, Action: action, Resource: resource, At: at}, now)
		if err != nil {
			return err
		}
		found[a.Subject] = d.Authorized
		return nil
	})
	if err != nil {
		return nil, err
	}
	var dids []string
	for d, ok := range found {
		if ok {
			dids = append(dids, d)
		}
	}
	slices.Sort(dids)
	out.Pagination.Total = len(dids)
	for _, d := range dids[min(offset, len(dids)):min(offset+limit, len(dids))] {
		out.Items = append(out.Items, ayraEntitySummary{EntityID: d, AuthorityID: authority})
	}
	return out, nil
}

// ayraEntityRecord returns an entity the registry knows, and the frameworks
// it holds accreditations in: a registered entity, a did:key, or the
// subject of an accreditation.
func (s *Server) ayraEntityRecord(r *http.Request, view *registry.View) (*record.Entity, []string, error) {
	dec, raw := pathID(r, "entity_id", 2)
	e, err := lookup(dec, raw, view.Entity)
	id := dec
	if err == nil {
		id = e.ID
	} else if !errors.Is(err, record.ErrNotFound) {
		return nil, nil, err
	}
	frameworks := []string{}
	err = s.eachAccreditation(view, registry.AccreditationFilter{Subject: id}, s.cfg.Now(), func(a *record.AccreditationView) error {
		if !slices.Contains(frameworks, a.Framework) {
			frameworks = append(frameworks, a.Framework)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if e == nil {
		if len(frameworks) == 0 {
			return nil, nil, record.Errorf(record.ErrNotFound, "entity %q is neither registered nor accredited here", id)
		}
		e = &record.Entity{ID: id}
	}
	slices.Sort(frameworks)
	return e, frameworks, nil
}

// ayraEntity answers GET /entities/{entity_id}.
func (s *Server) ayraEntity(w http.ResponseWriter, r *http.Request) {
	if !s.ayraParams(w, r) {
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	e, frameworks, err := s.ayraEntityRecord(r, view)
	if err != nil {
		writeError(w, r, err)
		return
	}
	keys := e.Keys
	if keys == nil {
		keys = []json.RawMessage{}
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, ayraEntity{EntityID: e.ID, Name: e.Name, Registered: e.Registered, Metadata: e.Metadata,
		Keys: keys, AuthorityIDs: frameworks}, cacheShort)
}

// ayraEntityAuthorizations answers GET /entities/{entity_id}/authorizations:
// a TRQP authorization answer, at time (default now), for each (framework,
// action, resource) an accreditation of the entity names.
func (s *Server) ayraEntityAuthorizations(w http.ResponseWriter, r *http.Request) {
	if !s.ayraParams(w, r, "time") {
		return
	}
	at, err := ayraTime(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	e, _, err := s.ayraEntityRecord(r, view)
	if err != nil {
		writeError(w, r, err)
		return
	}
	now := s.cfg.Now()
	// The (framework, action, resource) triples first: each is a decision,
	// which reads the entity's accreditations again, so an answer makes at
	// most ayraMaxDecisions of them and refuses before making any.
	var asked [][3]string
	seen := map[[3]string]bool{}
	err = s.eachAccreditation(view, registry.AccreditationFilter{Subject: e.ID}, now, func(a *record.AccreditationView) error {
		for _, res := range a.Resources {
			k := [3]string{a.Framework, a.Action, res}
			if !seen[k] {
				seen[k] = true
				asked = append(asked, k)
			}
		}
		if len(asked) > ayraMaxDecisions {
			return record.Errorf(ErrBadRequest, "%s's accreditations name more than %d authorizations, more than one answer decides: ask /authorization for each, or page through /v1/entities/{did}/accreditations", e.ID, ayraMaxDecisions)
		}
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := []trqpAuthorization{}
	for _, k := range asked {
		d, err := view.Decide(decide.Question{Entity: e.ID, Framework: k[0], Action: k[1], Resource: k[2], At: at}, now)
		if err != nil {
			writeError(w, r, err)
			return
		}
		q := trqpQuery{EntityID: e.ID, AuthorityID: k[0], Action: k[1], Resource: k[2]}
		out = append(out, trqpAuthorization{trqpAnswer: q.answer(at, now, authorizationMessage(d)),
			Authorized: d.Authorized, Reason: d.Reason, Chain: d.Chain, Root: d.Root, Index: d.Index})
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, out, ayraCache(at))
}

// ayraCache is Cache-Control for decisions at a time: those about now
// are not stored.
func ayraCache(at time.Time) string {
	if at.IsZero() {
		return cacheNone
	}
	return cacheShort
}

// ayraEcosystemOf reads the framework named by the path.
func (s *Server) ayraEcosystemOf(r *http.Request, view *registry.View) (*record.FrameworkView, error) {
	dec, raw := pathID(r, "ecosystem_id", 2)
	return lookup(dec, raw, func(id string) (*record.FrameworkView, error) { return s.ayraFramework(view, id) })
}

// ayraEcosystem answers GET /ecosystems/{ecosystem_id}.
func (s *Server) ayraEcosystem(w http.ResponseWriter, r *http.Request) {
	if !s.ayraParams(w, r) {
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	f, err := s.ayraEcosystemOf(r, view)
	if err != nil {
		writeError(w, r, err)
		return
	}
	eco := ayraEcosystem{EcosystemID: f.ID, Name: f.Name, Description: f.Description, GovernanceFrameworkID: f.URL,
		RootAccreditors: []string{}, Recognized: []string{}, MaxChainLength: f.MaxChainLength}
	for _, root := range f.Roots {
		eco.RootAccreditors = append(eco.RootAccreditors, root.Accreditor)
	}
	for _, rec := range f.Recognitions {
		eco.Recognized = append(eco.Recognized, rec.Recognized)
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, eco, cacheShort)
}

// ayraEcosystemRecognitions answers GET /ecosystems/{ecosystem_id}/recognitions:
// a TRQP recognition answer, at time (default now), for each ecosystem
// the framework has recorded a recognition of, per resource it names ("*"
// for a recognition of every resource).
func (s *Server) ayraEcosystemRecognitions(w http.ResponseWriter, r *http.Request) {
	if !s.ayraParams(w, r, "time") {
		return
	}
	at, err := ayraTime(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	f, err := s.ayraEcosystemOf(r, view)
	if err != nil {
		writeError(w, r, err)
		return
	}
	now := s.cfg.Now()
	out := []trqpRecognition{}
	t := at
	if t.IsZero() {
		t = now
	}
	for _, rec := range f.Recognitions {
		// The resources recognized at the time asked (feature level 14
		// keeps each recognize's; before it, the latest).
		ev, inForce := decide.LastRecordedAt(rec.Events, t, view.Index())
		resources := decide.RecognitionResources(&rec, ev, inForce, view.Index())
		if len(resources) == 0 {
			resources = []string{record.Wildcard}
		}
		for _, res := range resources {
			asked := res
			if res == record.Wildcard {
				asked = "" // any resource
			}
			d, err := view.DecideRecognition(decide.RecognitionQuestion{Framework: f.ID, Recognized: rec.Recognized, Resource: asked, At: at}, now)
			if err != nil {
				writeError(w, r, err)
				return
			}
			q := trqpQuery{EntityID: rec.Recognized, AuthorityID: f.ID, Action: ayraRecognizeAction, Resource: res}
			out = append(out, trqpRecognition{trqpAnswer: q.answer(at, now, recognitionMessage(d)),
				Recognized: d.Recognizes, Reason: d.Reason, Recognition: d.Recognition, Index: d.Index})
		}
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, out, ayraCache(at))
}

// ayraLookupAuthorizations answers GET /lookups/authorizations: the
// (action, resource) pairs the accreditations of a framework (or of all)
// grant, in order.
func (s *Server) ayraLookupAuthorizations(w http.ResponseWriter, r *http.Request) {
	if !s.ayraParams(w, r, "authority_id") {
		return
	}
	authority := query(r).Get("authority_id")
	view := s.cfg.Registry.View()
	defer view.Close()
	if authority != "" {
		if _, err := s.ayraFramework(view, authority); err != nil {
			writeError(w, r, err)
			return
		}
	}
	pairs := map[ayraAuthorization]bool{}
	err := s.eachAccreditation(view, registry.AccreditationFilter{Framework: authority}, s.cfg.Now(), func(a *record.AccreditationView) error {
		for _, res := range a.Resources {
			pairs[ayraAuthorization{Action: a.Action, Resource: res}] = true
		}
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := make([]ayraAuthorization, 0, len(pairs))
	for p := range pairs {
		p.Description = authorizationDescription(p.Action, p.Resource)
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b ayraAuthorization) int {
		if c := strings.Compare(a.Action, b.Action); c != 0 {
			return c
		}
		return strings.Compare(a.Resource, b.Resource)
	})
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, out, cacheShort)
}

// authorizationDescription says what an action on a resource allows.
func authorizationDescription(action, resource string) string {
	what := resource
	if resource == record.Wildcard {
		what = "any credential type"
	}
	switch action {
	case record.ActionIssue:
		return "issue credentials of type " + what
	case record.ActionAccredit:
		return "accredit others, within its own scope, for " + what
	}
	return ""
}

// ayraNotImplemented answers an extension endpoint trustreg has nothing
// for with 501, as the profile has registries answer them.
func ayraNotImplemented(detail string) func(*Server, http.ResponseWriter, *http.Request) {
	return func(_ *Server, w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, api.Problem{Type: problemTypeBase + "not_implemented", Title: http.StatusText(http.StatusNotImplemented),
			Status: http.StatusNotImplemented, Detail: detail})
	}
}

// Details of the extension endpoints answered 501.
const (
	ayraNoAssuranceLevels = "trustreg has no assurance levels: an accreditation authorizes or does not (POST /authorization)"
	ayraNoDIDMethods      = "trustreg supports no fixed list of DID methods: any DID (or HTTPS URL) is an identifier, its keys bound by registration in the registry (a did:key by the identifier itself)"
)
