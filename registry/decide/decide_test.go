package decide

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// mapRecords holds records in memory, as a verifier holds proven ones.
type mapRecords struct {
	records  map[RecordKey][]byte
	received map[RecordKey][]string
}

func (m *mapRecords) Record(k RecordKey) ([]byte, error) { return m.records[k], nil }

func (m *mapRecords) Received(subject, framework string) ([]string, error) {
	return m.received[ReceivedKey(subject, framework)], nil
}

func (m *mapRecords) put(t *testing.T, k RecordKey, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	m.records[k] = b
}

// TestDecideWithoutAStore decides over records held in a map, with no
// store anywhere: a root's grant to a college, asked about inside and
// outside its window, before it was recorded, and for an unknown
// framework.
func TestDecideWithoutAStore(t *testing.T) {
	const fw, root, college, nursing = "https://example.org/fw", "did:web:root.example", "did:web:college.example", "https://example.org/Nursing"
	from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	until := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &mapRecords{records: map[RecordKey][]byte{}, received: map[RecordKey][]string{}}
	m.put(t, FrameworkKey(fw), record.Framework{ID: fw, Name: "Nursing", CreatedIndex: 1})
	m.put(t, RootKey(fw, root), record.RootAccreditor{Framework: fw, Accreditor: root,
		Events: []record.StatusEvent{{Status: record.StatusActive, EffectiveAt: time.Time{}, Index: 1}}})
	m.put(t, AccreditationKey("a1"), record.Accreditation{ID: "a1", Framework: fw, Accreditor: root, Subject: college,
		Action: record.ActionIssue, Resources: []string{nursing}, ValidFrom: from, ValidUntil: &until, CreatedIndex: 2})
	m.received[ReceivedKey(college, fw)] = []string{"a1"}

	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		q      Question
		reason string
	}{
		{"authorized", Question{Entity: college, Framework: fw, Action: record.ActionIssue, Resource: nursing, At: at}, record.ReasonActive},
		{"expired", Question{Entity: college, Framework: fw, Action: record.ActionIssue, Resource: nursing, At: until}, record.ReasonExpired},
		{"before it was recorded", Question{Entity: college, Framework: fw, Action: record.ActionIssue, Resource: nursing, At: at, AsOf: 1}, record.ReasonNeverAuthorized},
		{"unknown framework", Question{Entity: college, Framework: fw + "/none", Action: record.ActionIssue, At: at}, record.ReasonUnknownFramework},
		{"a root's own question", Question{Entity: root, Framework: fw, Action: record.ActionAccredit, At: at}, record.ReasonActive},
	} {
		d, err := Decide(m, nil, 2, tc.q, at)
		if err != nil || d.Reason != tc.reason {
			t.Fatalf("%s: %+v %v, want %s", tc.name, d, err, tc.reason)
		}
	}
	if _, err := Decide(m, nil, 2, Question{Entity: college, Framework: fw, Action: record.ActionIssue, AsOf: 3}, at); !errors.Is(err, record.ErrBadQuery) {
		t.Fatalf("as_of beyond the records: %v, want ErrBadQuery", err)
	}
}

// TestAccreditationStatusAtNamedLifts: a reinstatement that names
// suspensions lifts those only; one that names none (recorded below
// FeatureLevelStanding) lifts every suspension recorded before it; a name
// of a suspension recorded after the reinstatement lifts nothing; a
// revocation stays final; asOf counts only events recorded by then.
func TestAccreditationStatusAtNamedLifts(t *testing.T) {
	at := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	grant := record.StatusEvent{Status: record.StatusActive, EffectiveAt: at(1), Index: 1}
	s2 := record.StatusEvent{Status: record.StatusSuspended, EffectiveAt: at(2), Index: 2}
	s3 := record.StatusEvent{Status: record.StatusSuspended, EffectiveAt: at(3), Index: 3}
	names := func(idx uint64, eff time.Time, lifts ...uint64) record.StatusEvent {
		return record.StatusEvent{Status: record.StatusActive, EffectiveAt: eff, Index: idx, Lifts: lifts}
	}
	cases := []struct {
		name   string
		events []record.StatusEvent
		t      time.Time
		asOf   uint64
		want   string
		index  uint64
	}{
		{"the lower suspension lifted, the higher holds", []record.StatusEvent{grant, s2, s3, names(4, at(4), 2)}, at(5), 10, record.StatusSuspended, 3},
		{"the higher lifted, the lower holds", []record.StatusEvent{grant, s2, s3, names(4, at(4), 3)}, at(5), 10, record.StatusSuspended, 2},
		{"both lifted by names", []record.StatusEvent{grant, s2, s3, names(4, at(4), 2), names(5, at(5), 3)}, at(6), 10, record.StatusActive, 5},
		{"both lifted by one name list", []record.StatusEvent{grant, s2, s3, names(4, at(4), 2, 3)}, at(5), 10, record.StatusActive, 4},
		{"a reinstatement naming none lifts every earlier one", []record.StatusEvent{grant, s2, s3, names(4, at(4))}, at(5), 10, record.StatusActive, 4},
		{"a name before the lift takes effect lifts nothing yet", []record.StatusEvent{grant, s2, names(4, at(9), 2)}, at(5), 10, record.StatusSuspended, 2},
		{"a name not yet recorded as of asOf", []record.StatusEvent{grant, s2, s3, names(4, at(4), 2, 3)}, at(5), 3, record.StatusSuspended, 3},
		{"a name of a suspension recorded after it lifts nothing", []record.StatusEvent{grant, names(2, at(2), 3), s3}, at(5), 10, record.StatusSuspended, 3},
		{"a revocation stays final", []record.StatusEvent{grant, s2, {Status: record.StatusRevoked, EffectiveAt: at(3), Index: 3}, names(4, at(4), 2)}, at(5), 10, record.StatusRevoked, 3},
	}
	for _, tc := range cases {
		ev, ok := AccreditationStatusAt(tc.events, tc.t, tc.asOf)
		if !ok || ev.Status != tc.want || ev.Index != tc.index {
			t.Errorf("%s: %+v (ok %t), want %s at index %d", tc.name, ev, ok, tc.want, tc.index)
		}
	}
}
