package registry

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
)

// TestCheckDecidesAsTheApplyDoes: what Check refuses, the apply refuses
// with the same code; what it lets through, the apply accepts; a
// resubmission gets its first result. Check itself changes nothing.
func TestCheckDecidesAsTheApplyDoes(t *testing.T) {
	f := mustChain(t)
	stranger := mustKey(t, record.KeyEd25519)
	forger := mustKey(t, record.KeyEd25519)
	forged, err := forger.WithKID(f.root.KID)
	if err != nil {
		t.Fatal(err)
	}
	accredit := func(s *record.Signer, subject string, fields map[string]any) []byte {
		m := map[string]any{"framework": fwID, "accreditor": s.DID, "subject": subject, "action": record.ActionIssue, "resources": []string{nursing}}
		for k, v := range fields {
			m[k] = v
		}
		return f.sign(s, record.OpAccredit, m)
	}
	first := f.apply(accredit(f.root, "did:web:first.example", nil))
	if !first.Accepted {
		t.Fatalf("setup: %s %s", first.Code, first.Reason)
	}
	stale := accredit(f.root, "did:web:stale.example", nil)
	f.now = f.now.Add(time.Hour) // stale's iat is now an hour old

	cases := []struct {
		name string
		jws  []byte
		code string // "" passes the check
	}{
		{"valid grant", accredit(f.root, "did:web:new.example", nil), ""},
		{"forged signature", accredit(forged, "did:web:a.example", nil), record.CodeBadSignature},
		{"unknown signer", accredit(stranger, "did:web:b.example", nil), record.CodeNotAuthorized},
		{"beyond the grantor's scope", accredit(f.qa, "did:web:c.example", map[string]any{"resources": []string{law}, "parent": f.qaAcc}), record.CodeScope},
		{"iat outside the window", stale, record.CodeIATWindow},
		{"governance by a non-member", f.sign(stranger, record.OpCreateFramework, map[string]any{"id": "https://example.org/x", "name": "X", "roots": []string{stranger.DID}}), record.CodeNotAuthorized},
		{"malformed", []byte("eyJ.not-a-jws"), record.CodeMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, applied := f.digest(), f.s.AppliedIndex()
			res := f.s.Check(tc.jws, f.now)
			if f.digest() != before || f.s.AppliedIndex() != applied {
				t.Fatal("Check changed the state")
			}
			switch {
			case tc.code == "" && res != nil:
				t.Fatalf("Check refused a valid operation: %s %s", res.Code, res.Reason)
			case tc.code != "" && (res == nil || res.Code != tc.code || res.Accepted || res.Index != 0):
				t.Fatalf("Check = %+v, want a refusal %s at index 0", res, tc.code)
			}
			got := f.apply(tc.jws)
			if tc.code == "" && !got.Accepted || tc.code != "" && got.Code != tc.code {
				t.Fatalf("the apply decided %v %s, the check %v", got.Accepted, got.Code, res)
			}
		})
	}

	// A resubmission, byte for byte: its first result, as a duplicate.
	dup := f.s.Check(accredit(f.root, "did:web:first.example", nil), f.now)
	if dup != nil {
		t.Fatalf("a new signing of a new operation (later iat) is not a duplicate: %+v", dup)
	}
	f.now = f.now.Add(-time.Hour)
	again := f.s.Check(accredit(f.root, "did:web:first.example", nil), f.now)
	if again == nil || !again.Duplicate || again.Index != first.Index || again.ID != first.ID {
		t.Fatalf("resubmission checked as %+v, want the result of index %d as a duplicate", again, first.Index)
	}
}

// TestCheckRunsBesideTheApply checks operations while the apply commits
// others: checks and apply share no state they change (run with -race),
// and a check never refuses an operation that every order of the two
// streams accepts.
func TestCheckRunsBesideTheApply(t *testing.T) {
	f := mustChain(t)
	const n = 40
	grants := make([][]byte, n)
	for i := range grants {
		grants[i] = f.sign(f.root, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": f.root.DID,
			"subject": fmt.Sprintf("did:web:college-%d.example", i), "action": record.ActionIssue, "resources": []string{nursing}})
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range grants {
		wg.Go(func() {
			// Checked while the apply below may be committing it: either
			// it passes, or it is already applied (a duplicate).
			if res := f.s.Check(grants[i], f.now); res != nil && !res.Duplicate {
				errs <- fmt.Errorf("grant %d refused by the check: %s %s", i, res.Code, res.Reason)
			}
		})
	}
	for _, g := range grants {
		f.mustAccept(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The leader's check reads a committed listing from the listings in memory
// as the apply published them: it refuses a re-grant into the past of a
// revocation the grantor recorded, as the apply does.
func TestCheckReadsPublishedListings(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelStanding)
	f.tick()
	f.mustAccept(f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:00Z"}))
	if f.s.apply.checkListings.Load() == nil {
		t.Fatal("no listings published for the checks")
	}
	f.tick()
	again := f.regrant("2024-12-01T00:00:00Z")
	if r := f.s.Check(again, f.now); r == nil || r.Accepted || !strings.Contains(r.Reason, "is revoked from 2025-01-01T00:00:00Z by did:") {
		t.Fatalf("the check of a re-grant into the revoked past: %+v", r)
	}
	if r := f.apply(again); r.Accepted {
		t.Fatalf("the apply took what the check refused: %+v", r)
	}
}

// Checks run beside the apply while its batches change the listing they
// read (the college's: each batch grants it anew, from after the
// revocation) and others: a smoke test for the race detector over the
// listings' lock and the sequence checks beside it. A grant that breaks no
// rule passes every check; the re-grant into the revoked past is refused,
// or passed to the apply when the check could not decide, never accepted.
// TestKnownListingWaitsForThePublishedState holds the sequence rule itself.
func TestChecksBesideTheApply(t *testing.T) {
	const checks, batches, perBatch = 2000, 12, 5
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelStanding)
	f.tick()
	f.mustAccept(f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:00Z"}))
	f.tick()
	bad := f.regrant("2024-12-01T00:00:00Z")
	good := f.sign(f.qa, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.qa.DID, "subject": "did:web:newcomer.example", "action": record.ActionIssue,
		"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
		"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
	})
	now := f.now
	done := make(chan struct{})
	errs := make(chan string, 1)
	go func() {
		defer close(errs)
		for i := range checks {
			select {
			case <-done:
				return
			default:
			}
			if r := f.s.Check(good, now); r != nil {
				errs <- fmt.Sprintf("check %d refused a grant that breaks no rule: %+v", i, r)
				return
			}
			if r := f.s.Check(bad, now); r != nil && (r.Accepted || !strings.Contains(r.Reason, "is revoked from")) {
				errs <- fmt.Sprintf("check %d of the re-grant: %+v", i, r)
				return
			}
		}
	}()
	stopped := false
	stop := func() string {
		if !stopped {
			stopped = true
			close(done)
		}
		return <-errs // the checker's failure, or "" once it has returned
	}
	t.Cleanup(func() { stop() })
	for b := range batches {
		var batch []Entry
		add := func(op []byte) {
			f.index++
			batch = append(batch, Entry{Index: f.index, Time: f.now, Data: EncodeOperation(op)})
		}
		for i := range perBatch - 1 {
			add(f.sign(f.qa, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.qa.DID, "subject": fmt.Sprintf("did:web:college-%d-%d.example", b, i), "action": record.ActionIssue,
				"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
			}))
		}
		add(f.regrant(fmt.Sprintf("2027-01-%02dT00:00:00Z", b+1)))
		for _, r := range f.s.ApplyBatch(batch) {
			if !r.Accepted {
				t.Fatal(r.Reason)
			}
		}
		f.entries = append(f.entries, batch...)
	}
	if msg := stop(); msg != "" {
		t.Fatal(msg)
	}
	if r := f.apply(bad); r.Accepted {
		t.Fatalf("the apply took the re-grant: %+v", r)
	}
}

// The check takes a listing from the listings in memory, not from Pebble:
// given listings in which the college holds nothing (what no state holds:
// verifyListings, which would stop at the difference, is off), the check
// lets the re-grant into the revoked past through; given the published
// ones, it refuses it.
func TestCheckTakesListingsFromMemory(t *testing.T) {
	defer func(v bool) { verifyListings = v }(verifyListings)
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelStanding)
	f.tick()
	f.mustAccept(f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:00Z"}))
	published := f.s.apply.checkListings.Load()
	if published == nil {
		t.Fatal("no listings published for the checks")
	}
	without, err := loadListings(f.s.db)
	if err != nil || without == nil {
		t.Fatalf("load the listings: %v", err)
	}
	without.commit(map[smt.Key][]string{smt.KeyOf(prefix(tableReceived, f.college.DID, fwID)): nil})
	f.tick()
	again := f.regrant("2024-12-01T00:00:00Z")
	verifyListings = false
	f.s.caches.records.clear() // the decoded listings it remembers come from the reads below
	f.s.apply.checkListings.Store(without)
	if r := f.s.Check(again, f.now); r != nil {
		t.Fatalf("with the college's listing empty in memory the check still found its accreditation: %+v", r)
	}
	f.s.caches.records.clear()
	f.s.apply.checkListings.Store(published)
	if r := f.s.Check(again, f.now); r == nil || r.Accepted {
		t.Fatalf("with the published listings: %+v", r)
	}
}
