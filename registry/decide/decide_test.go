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
