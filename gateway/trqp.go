package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/record"
)

// The TRQP v2 binding (Trust Over IP's Trust Registry Query Protocol):
// POST /authorization and POST /recognition, answered from the same state
// as /v1/trust. TRQP's authority is a framework here. Its fields are
// snake_case; trustreg's reason code, chain and index ride along as extra
// fields, which TRQP clients ignore. Status codes follow the binding's
// HTTPS section: an authority or (for authorization) an action this
// registry does not know is 404; an unknown entity is not (authorized:
// false, as on /v1/trust, so the answers are no enumeration oracle). The
// Ayra profile's extension endpoints are in ayra.go.

// trqpQuery is the body of both TRQP queries. Members TRQP does not
// define are ignored, as its request schemas allow (they close no object
// but context's values).
type trqpQuery struct {
	EntityID    string `json:"entity_id"`
	AuthorityID string `json:"authority_id"`
	Action      string `json:"action"`
	Resource    string `json:"resource"`
	// Context is TRQP's object of strings; its "time" asks about that
	// instant. It is echoed as parsed, without a blank time.
	Context json.RawMessage `json:"context,omitempty"`
	// Proof asks for the answer's proof bundle (trustreg's extension):
	// the answer then carries it as "proof" (proof.go).
	Proof bool `json:"proof,omitempty"`
}

// trqpAnswer holds the fields both answers share.
type trqpAnswer struct {
	EntityID      string          `json:"entity_id"`
	AuthorityID   string          `json:"authority_id"`
	Action        string          `json:"action"`
	Resource      string          `json:"resource"`
	TimeRequested string          `json:"time_requested,omitempty"`
	TimeEvaluated string          `json:"time_evaluated"`
	Message       string          `json:"message"`
	Context       json.RawMessage `json:"context,omitempty"`
}

// trqpAuthorization answers POST /authorization.
type trqpAuthorization struct {
	trqpAnswer
	Authorized bool          `json:"authorized"`
	Reason     string        `json:"reason"`
	Chain      []record.Link `json:"chain"`
	Root       string        `json:"root,omitempty"`
	Index      uint64        `json:"index"`
	Proof      *proof.Bundle `json:"proof,omitempty"`
}

// trqpRecognition answers POST /recognition.
type trqpRecognition struct {
	trqpAnswer
	Recognized  bool                `json:"recognized"`
	Reason      string              `json:"reason"`
	Recognition *record.Recognition `json:"recognition,omitempty"`
	Index       uint64              `json:"index"`
	Proof       *proof.Bundle       `json:"proof,omitempty"`
}

// readTRQP reads and checks a TRQP query and applies the read's
// consistency level. It returns the query, the time it asks about (zero:
// now) and the index the read waited for, or answers r with the error and
// returns false.
func (s *Server) readTRQP(w http.ResponseWriter, r *http.Request) (trqpQuery, time.Time, uint64, bool) {
	q, at, err := parseTRQP(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		writeError(w, r, err)
		return q, at, 0, false
	}
	minIndex, ok := s.consistentIndex(w, r)
	return q, at, minIndex, ok
}

// parseTRQP reads and checks a TRQP query body.
func parseTRQP(w http.ResponseWriter, r *http.Request, maxBody int64) (trqpQuery, time.Time, error) {
	var q trqpQuery
	if err := checkParams(r); err != nil {
		return q, time.Time{}, err
	}
	body, err := readBody(w, r, maxBody)
	if err != nil {
		return q, time.Time{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&q); err != nil {
		return q, time.Time{}, record.Errorf(ErrBadRequest, "body must be a TRQP query object {entity_id, authority_id, action, resource, context}: %v", err)
	}
	if dec.More() {
		return q, time.Time{}, record.Errorf(ErrBadRequest, "body holds more than one JSON value")
	}
	// encoding/json keeps the last of two equal members and matches names
	// whatever their case: the body must mean one thing.
	if err := checkBody(body, reflect.TypeFor[trqpQuery]()); err != nil {
		return q, time.Time{}, err
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"entity_id", q.EntityID}, {"authority_id", q.AuthorityID}, {"action", q.Action}, {"resource", q.Resource}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return q, time.Time{}, record.Errorf(ErrBadRequest, "%s required", strings.Join(missing, ", "))
	}
	ctx, at, err := parseContext(q.Context)
	if err != nil {
		return q, time.Time{}, err
	}
	q.Context = ctx
	return q, at, nil
}

// parseContext checks a TRQP context as the ToIP v2 request schemas
// define it: an object whose members are all strings, "time" an RFC 3339
// date-time, where a blank time means now. A null context is taken as
// none. It returns the context to echo (canonical JSON, without a blank
// time; nil when there is nothing to echo) and the time it asks about
// (zero: now).
func parseContext(raw json.RawMessage) (json.RawMessage, time.Time, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, time.Time{}, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return nil, time.Time{}, record.Errorf(ErrBadRequest, "context must be a JSON object of strings, e.g. {\"time\": \"2025-06-01T00:00:00Z\"}")
	}
	ctx := make(map[string]string, len(members))
	for _, name := range slices.Sorted(maps.Keys(members)) {
		var v string
		if err := json.Unmarshal(members[name], &v); err != nil || bytes.Equal(members[name], []byte("null")) {
			return nil, time.Time{}, record.Errorf(ErrBadRequest, "context.%s must be a string (TRQP's context holds strings only)", name)
		}
		ctx[name] = v
	}
	var at time.Time
	if v, ok := ctx["time"]; ok {
		if strings.TrimSpace(v) == "" {
			delete(ctx, "time") // blank: now, as the schema says
		} else {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, time.Time{}, record.Errorf(ErrBadRequest, "context.time %q must be RFC 3339 (2025-06-01T00:00:00Z)", v)
			}
			if err := checkTime(ErrBadRequest, "context.time", v, t); err != nil {
				return nil, time.Time{}, err
			}
			at = t.UTC()
		}
	}
	if len(ctx) == 0 {
		return nil, at, nil
	}
	out, err := json.Marshal(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	return out, at, nil
}

// answer returns the fields every answer to q holds; message says the
// decision in words.
func (q trqpQuery) answer(at, evaluated time.Time, message string) trqpAnswer {
	a := trqpAnswer{
		EntityID: q.EntityID, AuthorityID: q.AuthorityID, Action: q.Action, Resource: q.Resource,
		TimeEvaluated: evaluated.UTC().Format(time.RFC3339Nano), Message: message, Context: q.Context,
	}
	if !at.IsZero() {
		a.TimeRequested = at.Format(time.RFC3339Nano)
	}
	return a
}

// trqpAuthorize answers whether entity_id is authorized, in the framework
// authority_id, for action on resource.
func (s *Server) trqpAuthorize(w http.ResponseWriter, r *http.Request) {
	q, at, minIndex, ok := s.readTRQP(w, r)
	if !ok {
		return
	}
	if q.Action != record.ActionIssue && q.Action != record.ActionAccredit {
		writeError(w, r, record.Errorf(record.ErrNotFound, "action %q is not defined for authority %s: use %q or %q", q.Action, q.AuthorityID, record.ActionIssue, record.ActionAccredit))
		return
	}
	now := s.cfg.Now()
	dq := decide.Question{Entity: q.EntityID, Framework: q.AuthorityID, Action: q.Action, Resource: q.Resource, At: at}
	var (
		d     *record.Decision
		b     *proof.Bundle
		err   error
		index uint64
	)
	if q.Proof {
		d, b, err = s.proveDecision(r.Context(), dq, minIndex, now)
		if b != nil {
			index = b.Question.Applied
		}
	} else {
		view := s.cfg.Registry.View()
		d, err = view.Decide(dq, now)
		index = view.Index()
		view.Close()
	}
	if err == nil && d.Reason == record.ReasonUnknownFramework {
		err = unknownAuthority(q.AuthorityID)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if b != nil && wantsCBOR(r) {
		writeBundleCBOR(w, r, b)
		return
	}
	s.writeJSONAt(w, r, index, http.StatusOK, trqpAuthorization{
		trqpAnswer: q.answer(at, now, authorizationMessage(d)),
		Authorized: d.Authorized, Reason: d.Reason, Chain: d.Chain, Root: d.Root, Index: d.Index, Proof: b,
	}, cacheNone)
}

// trqpRecognize answers whether the framework authority_id recognizes
// entity_id (another framework or ecosystem) for resource. A recognition
// here is not per action: action is echoed.
func (s *Server) trqpRecognize(w http.ResponseWriter, r *http.Request) {
	q, at, minIndex, ok := s.readTRQP(w, r)
	if !ok {
		return
	}
	now := s.cfg.Now()
	rq := decide.RecognitionQuestion{Framework: q.AuthorityID, Recognized: q.EntityID, Resource: q.Resource, At: at}
	var (
		d     *decide.RecognitionDecision
		b     *proof.Bundle
		err   error
		index uint64
	)
	if q.Proof {
		d, b, err = s.proveRecognition(r.Context(), rq, minIndex, now)
		if b != nil {
			index = b.Question.Applied
		}
	} else {
		view := s.cfg.Registry.View()
		d, err = view.DecideRecognition(rq, now)
		index = view.Index()
		view.Close()
	}
	if err == nil && d.Reason == record.ReasonUnknownFramework {
		err = unknownAuthority(q.AuthorityID)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if b != nil && wantsCBOR(r) {
		writeBundleCBOR(w, r, b)
		return
	}
	s.writeJSONAt(w, r, index, http.StatusOK, trqpRecognition{
		trqpAnswer: q.answer(at, now, recognitionMessage(d)),
		Recognized: d.Recognizes, Reason: d.Reason, Recognition: d.Recognition, Index: d.Index, Proof: b,
	}, cacheNone)
}

// unknownAuthority is the error for an authority_id that names no
// framework: TRQP's HTTPS binding answers an authority it does not
// recognize with 404.
func unknownAuthority(id string) error {
	return record.Errorf(record.ErrNotFound, "authority_id %q is not a framework of this registry (GET /v1/frameworks lists them)", id)
}

// authorizationMessage says a decision's reason in words.
func authorizationMessage(d *record.Decision) string {
	at := d.At.Format(time.RFC3339)
	switch d.Reason {
	case record.ReasonActive:
		return fmt.Sprintf("%s is authorized in %s to %s %s at %s", d.Entity, d.Framework, d.Action, d.Resource, at)
	case record.ReasonNeverAuthorized:
		return fmt.Sprintf("no accreditation of %s in %s covers %s %s", d.Entity, d.Framework, d.Action, d.Resource)
	case record.ReasonNotYetValid:
		return fmt.Sprintf("the accreditation of %s was not yet valid at %s", d.Entity, at)
	case record.ReasonExpired:
		return fmt.Sprintf("the accreditation of %s had expired by %s", d.Entity, at)
	case record.ReasonSuspended, record.ReasonRevoked:
		return fmt.Sprintf("the accreditation of %s was %s at %s", d.Entity, d.Reason, at)
	case record.ReasonChainBroken:
		return fmt.Sprintf("an accreditation above %s, or its root accreditor, was not in force at %s", d.Entity, at)
	case record.ReasonUnknownFramework:
		return fmt.Sprintf("%s is not a framework of this registry", d.Framework)
	}
	return d.Reason
}

// recognitionMessage says a recognition decision's reason in words.
func recognitionMessage(d *decide.RecognitionDecision) string {
	at := d.At.Format(time.RFC3339)
	switch d.Reason {
	case record.ReasonActive:
		return fmt.Sprintf("%s recognizes %s for %s at %s", d.Framework, d.Recognized, d.Resource, at)
	case decide.ReasonNeverRecognized:
		if d.Recognition != nil {
			return fmt.Sprintf("%s recognizes %s for other resources than %s", d.Framework, d.Recognized, d.Resource)
		}
		return fmt.Sprintf("%s has no recognition of %s", d.Framework, d.Recognized)
	case record.ReasonNotYetValid:
		return fmt.Sprintf("the recognition of %s by %s was not yet in force at %s", d.Recognized, d.Framework, at)
	case record.ReasonRevoked:
		return fmt.Sprintf("%s had withdrawn its recognition of %s by %s", d.Framework, d.Recognized, at)
	case record.ReasonUnknownFramework:
		return fmt.Sprintf("%s is not a framework of this registry", d.Framework)
	}
	return d.Reason
}
