package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

// The TRQP v2 binding (Trust Over IP's Trust Registry Query Protocol):
// POST /authorization and POST /recognition, answered from the same state
// as /v1/trust. TRQP's authority is a framework here. Its fields are
// snake_case; trustreg's reason code, chain and index ride along as extra
// fields, which TRQP clients ignore.

// trqpQuery is the body of both TRQP queries.
type trqpQuery struct {
	EntityID    string `json:"entity_id"`
	AuthorityID string `json:"authority_id"`
	Action      string `json:"action"`
	Resource    string `json:"resource"`
	// Context is echoed as given; its "time" asks about that instant.
	Context json.RawMessage `json:"context,omitempty"`
	// Ext carries extensions of other registries; none is understood here.
	Ext json.RawMessage `json:"ext,omitempty"`
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
}

// trqpRecognition answers POST /recognition.
type trqpRecognition struct {
	trqpAnswer
	Recognized  bool                `json:"recognized"`
	Reason      string              `json:"reason"`
	Recognition *record.Recognition `json:"recognition,omitempty"`
	Index       uint64              `json:"index"`
}

// readTRQP reads and checks a TRQP query and applies the read's
// consistency level. It returns the query and the time it asks about
// (zero: now), or answers r with the error and returns false.
func (s *Server) readTRQP(w http.ResponseWriter, r *http.Request) (trqpQuery, time.Time, bool) {
	q, at, err := parseTRQP(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		writeError(w, r, err)
		return q, at, false
	}
	return q, at, s.consistent(w, r)
}

// parseTRQP reads and checks a TRQP query body.
func parseTRQP(w http.ResponseWriter, r *http.Request, maxBody int64) (trqpQuery, time.Time, error) {
	var q trqpQuery
	if err := checkParams(r); err != nil {
		return q, time.Time{}, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return q, time.Time{}, fmt.Errorf("%w: body over %d bytes", record.ErrTooLarge, maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return q, time.Time{}, fmt.Errorf("%w: body must be a TRQP query object {entity_id, authority_id, action, resource, context}: %v", ErrBadRequest, err)
	}
	if dec.More() {
		return q, time.Time{}, fmt.Errorf("%w: body holds more than one JSON value", ErrBadRequest)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"entity_id", q.EntityID}, {"authority_id", q.AuthorityID}, {"action", q.Action}, {"resource", q.Resource}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return q, time.Time{}, fmt.Errorf("%w: %s required", ErrBadRequest, strings.Join(missing, ", "))
	}
	var at time.Time
	if len(q.Context) > 0 && !bytes.Equal(q.Context, []byte("null")) {
		var ctx map[string]json.RawMessage
		if err := json.Unmarshal(q.Context, &ctx); err != nil {
			return q, time.Time{}, fmt.Errorf("%w: context must be a JSON object", ErrBadRequest)
		}
		if raw, ok := ctx["time"]; ok {
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return q, time.Time{}, fmt.Errorf("%w: context.time must be an RFC 3339 string", ErrBadRequest)
			}
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return q, time.Time{}, fmt.Errorf("%w: context.time %q must be RFC 3339 (2025-06-01T00:00:00Z)", ErrBadRequest, v)
			}
			at = t.UTC()
		}
	}
	return q, at, nil
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
	q, at, ok := s.readTRQP(w, r)
	if !ok {
		return
	}
	now := s.cfg.Now()
	d, err := s.cfg.Registry.Decide(registry.Question{Entity: q.EntityID, Framework: q.AuthorityID, Action: q.Action, Resource: q.Resource, At: at}, now)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, trqpAuthorization{
		trqpAnswer: q.answer(at, now, authorizationMessage(d)),
		Authorized: d.Authorized, Reason: d.Reason, Chain: d.Chain, Root: d.Root, Index: d.Index,
	}, cacheNone)
}

// trqpRecognize answers whether the framework authority_id recognizes
// entity_id (another framework or ecosystem) for resource. A recognition
// here is not per action: action is echoed.
func (s *Server) trqpRecognize(w http.ResponseWriter, r *http.Request) {
	q, at, ok := s.readTRQP(w, r)
	if !ok {
		return
	}
	now := s.cfg.Now()
	d, err := s.cfg.Registry.DecideRecognition(registry.RecognitionQuestion{Framework: q.AuthorityID, Recognized: q.EntityID, Resource: q.Resource, At: at}, now)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, trqpRecognition{
		trqpAnswer: q.answer(at, now, recognitionMessage(d)),
		Recognized: d.Recognizes, Reason: d.Reason, Recognition: d.Recognition, Index: d.Index,
	}, cacheNone)
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
func recognitionMessage(d *registry.RecognitionDecision) string {
	at := d.At.Format(time.RFC3339)
	switch d.Reason {
	case record.ReasonActive:
		return fmt.Sprintf("%s recognizes %s for %s at %s", d.Framework, d.Recognized, d.Resource, at)
	case registry.ReasonNeverRecognized:
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
