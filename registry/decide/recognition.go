package decide

import (
	"fmt"
	"slices"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// RecognitionQuestion asks whether Framework recognizes Recognized (a
// framework of this registry or an ecosystem governed elsewhere) for
// Resource at valid time At, as recorded at registry index AsOf.
type RecognitionQuestion struct {
	Framework  string
	Recognized string
	Resource   string    // empty: any resource
	At         time.Time // zero: the time of the query
	AsOf       uint64    // zero: the latest applied index
}

// RecognitionDecision answers a RecognitionQuestion. Recognition is the
// record consulted, when there is one.
type RecognitionDecision struct {
	Framework   string              `json:"framework"`
	Recognized  string              `json:"recognized"`
	Resource    string              `json:"resource,omitempty"`
	Recognizes  bool                `json:"recognizes"`
	Reason      string              `json:"reason"`
	Recognition *record.Recognition `json:"recognition,omitempty"`
	At          time.Time           `json:"at"`
	Index       uint64              `json:"index"`
}

// Reasons of a recognition decision besides active, not_yet_valid, revoked
// and unknown_framework.
const (
	// ReasonNeverRecognized: no recognition was recorded by the index asked
	// about, or the one recorded covers other resources.
	ReasonNeverRecognized = "never_recognized"
)

// Recognize answers a recognition question over records that hold the
// state at index applied.
//
// A recognition's resources are those of the recognize in force at the
// time asked, as recorded by the index asked about
// (RecognitionResources); for a recognize recorded before feature level 14,
// whose resources the record does not keep, those the recognition held
// at that index as far as the record knows, else the latest. now is the
// reader's clock, used when the question names no time.
func Recognize(src Records, applied uint64, q RecognitionQuestion, now time.Time) (*RecognitionDecision, error) {
	if q.Framework == "" || q.Recognized == "" {
		return nil, record.Errorf(record.ErrBadQuery, "the recognizing framework and the recognized one are required")
	}
	for _, v := range []string{q.Framework, q.Recognized, q.Resource} {
		if len(v) > record.MaxIDLength {
			return nil, record.Errorf(record.ErrBadQuery, "a parameter is longer than %d bytes", record.MaxIDLength)
		}
	}
	at, err := asOf(q.AsOf, applied)
	if err != nil {
		return nil, err
	}
	t := q.At
	if t.IsZero() {
		t = now
	}
	return NewEvaluator(src, nil, at).Recognize(q, t.UTC())
}

// Recognize answers a recognition question at valid time t.
func (e *Evaluator) Recognize(q RecognitionQuestion, t time.Time) (*RecognitionDecision, error) {
	asOf := e.asOf
	d := &RecognitionDecision{Framework: q.Framework, Recognized: q.Recognized, Resource: q.Resource, At: t, Index: asOf}
	f, err := e.Framework(q.Framework)
	if err != nil {
		return nil, err
	}
	if f == nil {
		d.Reason = record.ReasonUnknownFramework
		return d, nil
	}
	// Not remembered: recognitions are asked about rarely, and their
	// writes do not mark cached records stale.
	raw, err := e.src.Record(RecognitionKey(q.Framework, q.Recognized))
	if err != nil {
		return nil, err
	}
	var rec record.Recognition
	if raw != nil {
		if err := DecodeRecord(raw, &rec); err != nil {
			return nil, fmt.Errorf("decode record %s: %w", RecognitionKey(q.Framework, q.Recognized), err)
		}
	}
	if raw == nil || !slices.ContainsFunc(rec.Events, func(e record.StatusEvent) bool { return e.Index <= asOf }) {
		d.Reason = ReasonNeverRecognized
		return d, nil
	}
	d.Recognition = &rec
	ev, ok := LastRecordedAt(rec.Events, d.At, asOf)
	if rs := RecognitionResources(&rec, ev, ok, asOf); q.Resource != "" && len(rs) > 0 && !slices.Contains(rs, record.Wildcard) && !slices.Contains(rs, q.Resource) {
		d.Reason = ReasonNeverRecognized
		return d, nil
	}
	switch {
	case !ok:
		d.Reason = record.ReasonNotYetValid
	case ev.Status == record.StatusActive:
		d.Recognizes, d.Reason = true, record.ReasonActive
	default:
		d.Reason = ev.Status
	}
	return d, nil
}

// RecognitionResources returns the resources a recognition covers for a
// question answered by its event ev (inForce: an event is in force at the
// time asked; LastRecordedAt) as of index asOf: those of the recognize
// that recorded ev, when ev is one and the record keeps its resources
// (rec.ResourceChanges, from feature level 14); else, when the question
// finds no recognize in force (an unrecognize, or nothing yet), those the
// recognition held at asOf: of the last change recorded by then; else the
// latest (rec.Resources), as before the level. Empty: every resource.
func RecognitionResources(rec *record.Recognition, ev record.StatusEvent, inForce bool, asOf uint64) []string {
	if inForce && ev.Status == record.StatusActive {
		for _, c := range rec.ResourceChanges {
			if c.Index == ev.Index {
				return c.Resources
			}
		}
	}
	for i := len(rec.ResourceChanges) - 1; i >= 0; i-- {
		if c := rec.ResourceChanges[i]; c.Index <= asOf {
			return c.Resources
		}
	}
	return rec.Resources
}
