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
// whose resources the record does not keep, those it held at the level,
// or the latest where it recorded no recognize since. now is the
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
// time asked; LastRecordedAt) as of index asOf. A record that keeps no
// resource changes (nothing recognized from feature level 14 on) answers
// with its latest resources, as before the level. One that does answers:
//   - for a recognize in force, with the resources it recorded;
//   - for an unrecognize in force, with those it withdrew: of the last
//     change recorded before it;
//   - when nothing is in force yet, with those recorded by asOf;
//
// and where the change wanted was recorded before the level (its
// resources not kept), with the resources held at the level (the first
// change): never with those of a recognize recorded later. Empty: every
// resource.
func RecognitionResources(rec *record.Recognition, ev record.StatusEvent, inForce bool, asOf uint64) []string {
	changes := rec.ResourceChanges
	if len(changes) == 0 {
		return rec.Resources
	}
	last := func(before uint64) []string { // of the last change recorded before index before
		for i := len(changes) - 1; i >= 0; i-- {
			if changes[i].Index < before {
				return changes[i].Resources
			}
		}
		return changes[0].Resources
	}
	switch {
	case inForce && ev.Status == record.StatusActive:
		for _, c := range changes {
			if c.Index == ev.Index {
				return c.Resources
			}
		}
		return changes[0].Resources
	case inForce:
		return last(ev.Index)
	default:
		return last(asOf + 1)
	}
}
