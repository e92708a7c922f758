package registry

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
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
