package registry

import (
	"slices"
	"testing"

	"github.com/trustreg/trustreg/registry/record"
)

// TestTIRIssuersPagesFromMarks: the issuer listing's pages at a state
// already walked start from the walk's marks and give what a walk of the
// whole gives, at every offset around the marks, roots among the subjects
// included; a write makes the next listing walk again.
func TestTIRIssuersPagesFromMarks(t *testing.T) {
	f := mustChain(t)
	n := 2*issuerMarkEvery + 300
	loadColleges(t, f, n)
	// Roots that sort among the subjects: one that is a subject too, one
	// that is not, one past the last subject.
	f.mustAccept(f.govSign(record.OpCreateFramework, map[string]any{"id": "https://example.org/frameworks/other", "name": "Other",
		"roots": []string{"did:web:college-1500.example", "did:web:college-1500z.example", "did:web:zz.example"}}))

	all := func() []string {
		v := f.s.View()
		defer v.Close()
		var dids []string
		total := 0
		if _, err := v.walkTIRIssuers(0, 1<<30, &dids, &total); err != nil {
			t.Fatal(err)
		}
		if total != len(dids) {
			t.Fatalf("walk: %d DIDs, total %d", len(dids), total)
		}
		return dids
	}
	page := func(offset, limit int) ([]string, int) {
		v := f.s.View()
		defer v.Close()
		dids, total, err := v.TIRIssuers(offset, limit)
		if err != nil {
			t.Fatal(err)
		}
		return dids, total
	}
	check := func(want []string) {
		t.Helper()
		if !slices.IsSorted(want) || len(slices.Compact(slices.Clone(want))) != len(want) {
			t.Fatal("the walk is not in DID order without repeats")
		}
		page(0, 1) // the first listing walks and keeps the marks
		for _, offset := range []int{0, 1, issuerMarkEvery - 1, issuerMarkEvery, issuerMarkEvery + 1, 1500, 2*issuerMarkEvery - 1, len(want) - 1, len(want), len(want) + 7} {
			for _, limit := range []int{1, 50, 3000} {
				got, total := page(offset, limit)
				w := want[min(offset, len(want)):min(offset+limit, len(want))]
				if total != len(want) || !slices.Equal(got, w) {
					t.Fatalf("page(%d, %d) = %d DIDs from %q, total %d; want %d from %q, total %d",
						offset, limit, len(got), first(got), total, len(w), first(w), len(want))
				}
			}
		}
	}
	want := all()
	if len(want) != n+5 { // the colleges, root, qa, college, and the two roots that are no subject
		t.Fatalf("%d issuers, want %d", len(want), n+5)
	}
	check(want)

	f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.qa.DID, "subject": "did:web:college-1000a.example",
		"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
		"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
	}))
	if again := all(); len(again) != len(want)+1 {
		t.Fatalf("after a new subject: %d issuers, want %d", len(again), len(want)+1)
	} else {
		check(again)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
