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

// mapMemo remembers in a map.
type mapMemo map[RecordKey]any

func (m mapMemo) Recall(k RecordKey) (any, bool) { v, ok := m[k]; return v, ok }
func (m mapMemo) Remember(k RecordKey, v any)    { m[k] = v }

// TestKeepListedRecords: Received remembers the listing; with
// KeepListedRecords also each accreditation in it, under its own key, so
// reading the listing again once it is dropped decodes none again; the
// records read are the same either way.
func TestKeepListedRecords(t *testing.T) {
	const fw, college = "https://example.org/fw", "did:web:college.example"
	m := &mapRecords{records: map[RecordKey][]byte{}, received: map[RecordKey][]string{}}
	for _, id := range []string{"a1", "a2"} {
		m.put(t, AccreditationKey(id), record.Accreditation{ID: id, Framework: fw, Subject: college, Action: record.ActionIssue, CreatedIndex: 1})
	}
	m.received[ReceivedKey(college, fw)] = []string{"a1", "a2"}
	for _, keep := range []bool{false, true} {
		memo := mapMemo{}
		e := NewEvaluator(m, memo, 1)
		if keep {
			e.KeepListedRecords()
		}
		recs, err := e.Received(college, fw)
		if err != nil || len(recs) != 2 || recs[0].ID != "a1" || recs[1].ID != "a2" {
			t.Fatalf("keep %t: %+v %v", keep, recs, err)
		}
		if _, ok := memo[ReceivedKey(college, fw)]; !ok {
			t.Fatalf("keep %t: the listing is not remembered", keep)
		}
		for i, id := range []string{"a1", "a2"} {
			v, ok := memo[AccreditationKey(id)]
			if ok != keep {
				t.Fatalf("keep %t: accreditation %s remembered on its own: %t", keep, id, ok)
			}
			if ok && v.(*record.Accreditation) != recs[i] {
				t.Fatalf("keep %t: %s remembered as another value than the listing's", keep, id)
			}
		}
		// The listing dropped (its subject written), the records stay:
		// read again, nothing is decoded from the store.
		delete(memo, ReceivedKey(college, fw))
		if keep {
			m.records[AccreditationKey("a1")] = []byte("not json")
			again, err := e.Received(college, fw)
			if err != nil || len(again) != 2 || again[0] != recs[0] {
				t.Fatalf("read again: %+v %v", again, err)
			}
			m.put(t, AccreditationKey("a1"), record.Accreditation{ID: "a1", Framework: fw, Subject: college, Action: record.ActionIssue, CreatedIndex: 1})
		}
	}
}
