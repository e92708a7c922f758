package registry

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// mapRecords is a Records over records held in memory: another source of
// the same records than the store, as a set of proven records will be.
type mapRecords struct {
	records  map[decide.RecordKey][]byte
	received map[decide.RecordKey][]string // by ReceivedKey
}

func (m *mapRecords) Record(k decide.RecordKey) ([]byte, error) { return m.records[k], nil }

func (m *mapRecords) Received(subject, framework string) ([]string, error) {
	return m.received[decide.ReceivedKey(subject, framework)], nil
}

// recordsOf copies, from one snapshot of s's store, every record a decision
// may read, under its typed key, and the received index: the exact stored
// bytes, as a proof would carry them. It returns them with the index they
// were applied up to.
func recordsOf(t *testing.T, s *State) (*mapRecords, uint64) {
	t.Helper()
	snap := s.db.NewSnapshot()
	defer snap.Close()
	m := &mapRecords{records: map[decide.RecordKey][]byte{}, received: map[decide.RecordKey][]string{}}
	tables := []struct {
		table byte
		kind  decide.RecordKind
	}{
		{tableFrameworks, decide.KindFramework}, {tableAccreditation, decide.KindAccreditation}, {tableRoots, decide.KindRoot},
		{tableRecognitions, decide.KindRecognition}, {tableEntities, decide.KindEntity}, {tableReceived, decide.KindReceived},
	}
	for _, tb := range tables {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{tb.table}, UpperBound: []byte{tb.table + 1}})
		if err != nil {
			t.Fatal(err)
		}
		for it.First(); it.Valid(); it.Next() {
			parts := bytes.Split(it.Key()[1:], []byte{0})
			switch {
			case tb.kind == decide.KindReceived:
				k := decide.ReceivedKey(string(parts[0]), string(parts[1]))
				m.received[k] = append(m.received[k], string(parts[2]))
			case len(parts) == 1:
				m.records[decide.RecordKey{Kind: tb.kind, A: string(parts[0])}] = bytes.Clone(it.Value())
			default:
				m.records[decide.RecordKey{Kind: tb.kind, A: string(parts[0]), B: string(parts[1])}] = bytes.Clone(it.Value())
			}
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return m, readU64(snap, metaApplied)
}

// TestDecisionsOverAnyRecords: the decision code reads only through
// Records, so over a plain map filled with the store's exact records it
// decides exactly as over the store (its snapshot, record cache and kept
// iterators): authorized, expired, revoked, suspended, unknown entity,
// unknown framework, a root's own question, and as of an older index.
func TestDecisionsOverAnyRecords(t *testing.T) {
	f := mustChain(t)
	f.now = date(2026, 4, 1)
	grant := func(subject *record.Signer, until string) string {
		return f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": f.qa.DID, "subject": subject.DID,
			"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
			"validFrom": "2024-06-01T00:00:00Z", "validUntil": until})).ID
	}
	expired, revoked, suspended := mustKey(t, record.KeyEd25519), mustKey(t, record.KeyEd25519), mustKey(t, record.KeyEd25519)
	grant(expired, "2025-06-01T00:00:00Z")
	revokedAcc := grant(revoked, "2029-01-01T00:00:00Z")
	suspendedAcc := grant(suspended, "2029-01-01T00:00:00Z")
	before := f.mustAccept(f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": revokedAcc})).Index - 1
	f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": suspendedAcc}))

	at := date(2026, 6, 1)
	q := func(entity string) decide.Question {
		return decide.Question{Entity: entity, Framework: fwID, Action: record.ActionIssue, Resource: nursing, At: at}
	}
	cases := []struct {
		name   string
		q      decide.Question
		reason string
	}{
		{"authorized", q(f.college.DID), record.ReasonActive},
		{"expired", q(expired.DID), record.ReasonExpired},
		{"revoked", q(revoked.DID), record.ReasonRevoked},
		{"suspended", q(suspended.DID), record.ReasonSuspended},
		{"unknown entity", q("did:web:nobody.example"), record.ReasonNeverAuthorized},
		{"unknown framework", decide.Question{Entity: f.college.DID, Framework: "https://example.org/none", Action: record.ActionIssue, At: at}, record.ReasonUnknownFramework},
		{"a root's own question", decide.Question{Entity: f.root.DID, Framework: fwID, Action: record.ActionAccredit, At: at}, record.ReasonActive},
		{"as of an older index", func() decide.Question { x := q(revoked.DID); x.AsOf = before; return x }(), record.ReasonActive},
		{"now, no time asked", decide.Question{Entity: f.college.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing}, record.ReasonActive},
	}
	m, applied := recordsOf(t, f.s)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Twice over the store: the second answer comes from the
			// record cache.
			for range 2 {
				view := f.s.View()
				stored, err := view.Decide(tc.q, f.now)
				view.Close()
				if err != nil {
					t.Fatal(err)
				}
				mapped, err := decide.Decide(m, nil, applied, tc.q, f.now)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(stored, mapped) {
					t.Fatalf("over the store: %+v\nover the map:   %+v", stored, mapped)
				}
				if stored.Reason != tc.reason {
					t.Fatalf("reason %s, want %s: the question does not test what it says", stored.Reason, tc.reason)
				}
			}
		})
	}
	if len(m.records) == 0 {
		t.Fatal("no records were copied")
	}
}
