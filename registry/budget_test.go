package registry

import (
	"errors"
	"reflect"
	"testing"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// TestBudgetedDecisionsCountListedAccreditations: a BudgetedView counts each
// accreditation of the received listing a decision reads, the same from
// the store (the record cache cold) and from the record cache (warm),
// answers as Decide does within its budget, and refuses with
// ErrReadBudget past it, cold or warm.
func TestBudgetedDecisionsCountListedAccreditations(t *testing.T) {
	const k = 40
	f := mustChain(t)
	big := loadBigSubject(t, f, k)
	q := decide.Question{Entity: big, Framework: fwID, Action: record.ActionIssue, Resource: "https://example.org/credentials/Program-000007"}
	college := decide.Question{Entity: f.college.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing}
	for _, pass := range []string{"cold", "warm"} {
		if pass == "cold" {
			f.s.caches.records.clear()
		}
		v := f.s.View()
		b := ReadBudget{Max: k} // at the bound: within it
		got, err := v.Within(&b).Decide(q, f.now)
		if err != nil || b.Read != k {
			t.Fatalf("%s: read %d listed, %v; want %d", pass, b.Read, err, k)
		}
		want, err := v.Decide(q, f.now)
		if err != nil || !want.Authorized || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Within %+v, Decide %+v %v", pass, got, want, err)
		}
		// The college's listing (one accreditation) takes it past.
		if d, err := v.Within(&b).Decide(college, f.now); !errors.Is(err, ErrReadBudget) || d != nil || b.Read != k+1 {
			t.Fatalf("%s: past the budget: %+v %v, read %d", pass, d, err, b.Read)
		}
		v.Close()
	}
}
