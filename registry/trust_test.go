package registry

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestRevokedIntermediateBreaksChainFromThenOn(t *testing.T) {
	f := mustChain(t)
	f.now = date(2026, 9, 1)
	revoke := f.mustAccept(f.sign(f.root, record.OpRevoke, map[string]any{"accreditation": f.qaAcc, "reason": "audit failed"}))
	tests := []struct {
		name   string
		at     time.Time
		asOf   uint64
		want   bool
		reason string
	}{
		{"before the revocation", date(2025, 5, 1), 0, true, record.ReasonActive},
		{"after the revocation", date(2026, 10, 1), 0, false, record.ReasonChainBroken},
		{"before the college's window", date(2024, 3, 1), 0, false, record.ReasonNotYetValid},
		{"after the college's window", date(2029, 6, 1), 0, false, record.ReasonExpired},
		{"as the registry knew it before", date(2026, 10, 1), revoke.Index - 1, true, record.ReasonActive},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := f.ask(tc.at, tc.asOf)
			if d.Authorized != tc.want || d.Reason != tc.reason {
				t.Fatalf("decision = %v %s, want %v %s", d.Authorized, d.Reason, tc.want, tc.reason)
			}
			if len(d.Chain) != 2 {
				t.Fatalf("chain has %d links, want 2", len(d.Chain))
			}
		})
	}
	d := f.ask(date(2026, 10, 1), 0)
	if d.Chain[0].Status != record.ReasonActive || d.Chain[1].Status != record.ReasonRevoked {
		t.Fatalf("link statuses = %s, %s; want active, revoked", d.Chain[0].Status, d.Chain[1].Status)
	}
	// The QA agency's own question reports revoked, not chain_broken.
	if d := f.decide(decide.Question{Entity: f.qa.DID, Framework: fwID, Action: record.ActionAccredit, Resource: nursing, At: date(2026, 10, 1)}); d.Reason != record.ReasonRevoked {
		t.Fatalf("QA decision: %s, want revoked", d.Reason)
	}
	// Revocation is final.
	if r := f.apply(f.sign(f.root, record.OpReinstate, map[string]any{"accreditation": f.qaAcc})); r.Code != record.CodeConflict {
		t.Fatalf("reinstate after revoke: %+v, want conflict", r)
	}
}

func TestRetroactiveRevocation(t *testing.T) {
	f := mustChain(t)
	f.now = date(2026, 9, 1)
	// Fraud found later: the college's accreditation is void from 2025-01-01.
	r := f.mustAccept(f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:00Z", "reason": "fraud"}))
	if d := f.ask(date(2025, 6, 1), 0); d.Authorized || d.Reason != record.ReasonRevoked {
		t.Fatalf("after retroactive revocation: %v %s, want revoked", d.Authorized, d.Reason)
	}
	if d := f.ask(date(2024, 9, 1), 0); !d.Authorized {
		t.Fatalf("before the effective time: %s, want authorized", d.Reason)
	}
	// As the registry knew it before the revocation was recorded.
	if d := f.ask(date(2025, 6, 1), r.Index-1); !d.Authorized || d.Index != r.Index-1 {
		t.Fatalf("as_of before: %v %s at index %d", d.Authorized, d.Reason, d.Index)
	}
}

func TestSuspendThenReinstate(t *testing.T) {
	f := mustChain(t)
	f.now = date(2026, 4, 1)
	f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "review"}))
	if r := f.apply(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc})); r.Code != record.CodeConflict {
		t.Fatalf("suspend twice: %+v", r)
	}
	f.now = date(2026, 5, 1)
	// The root, above the QA agency in the chain, may reinstate.
	f.mustAccept(f.sign(f.root, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc}))
	for _, tc := range []struct {
		at     time.Time
		reason string
	}{{date(2026, 3, 15), record.ReasonActive}, {date(2026, 4, 15), record.ReasonSuspended}, {date(2026, 5, 15), record.ReasonActive}} {
		if d := f.ask(tc.at, 0); d.Reason != tc.reason {
			t.Errorf("at %s: %s, want %s", tc.at.Format(time.DateOnly), d.Reason, tc.reason)
		}
	}
	// A suspended intermediate suspends the chain below it too.
	f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.qaAcc}))
	if d := f.ask(date(2026, 6, 1), 0); d.Reason != record.ReasonChainBroken {
		t.Fatalf("under a suspended intermediate: %s", d.Reason)
	}
}

func TestUnknownEntityLooksLikeUnauthorized(t *testing.T) {
	f := mustChain(t)
	stranger := f.decide(decide.Question{Entity: "did:web:nobody.example", Framework: fwID, Action: record.ActionIssue, Resource: nursing})
	wrongType := f.decide(decide.Question{Entity: f.college.DID, Framework: fwID, Action: record.ActionIssue, Resource: law})
	for _, d := range []*record.Decision{stranger, wrongType} {
		if d.Authorized || d.Reason != record.ReasonNeverAuthorized || d.Chain == nil || len(d.Chain) != 0 {
			t.Fatalf("decision = %+v, want never_authorized with an empty chain", d)
		}
	}
	if d := f.decide(decide.Question{Entity: f.college.DID, Framework: "https://example.org/none", Action: record.ActionIssue}); d.Reason != record.ReasonUnknownFramework {
		t.Fatalf("unknown framework: %s", d.Reason)
	}
	if d := f.decide(decide.Question{Entity: f.college.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing, Jurisdiction: "CA", At: date(2025, 1, 1)}); d.Authorized {
		t.Fatal("college authorized outside its jurisdiction")
	}
	if _, err := f.s.Decide(decide.Question{Entity: f.college.DID, Framework: fwID, Action: record.ActionIssue, AsOf: 1 << 40}, f.now); !errors.Is(err, record.ErrBadQuery) {
		t.Fatalf("as_of in the future: %v, want ErrBadQuery", err)
	}
	if _, err := f.s.Decide(decide.Question{Entity: f.college.DID, Framework: fwID, Action: "teach"}, f.now); !errors.Is(err, record.ErrBadQuery) {
		t.Fatalf("bad action: %v, want ErrBadQuery", err)
	}
}

// TestCachedAnswersFollowWrites asks, changes what the answer depends on
// (status, new grants, roots), and asks again: the read cache must never
// serve the old record.
func TestCachedAnswersFollowWrites(t *testing.T) {
	f := mustChain(t)
	at := date(2025, 6, 1)
	steps := []struct {
		op   []byte
		want string
	}{
		{nil, record.ReasonActive},
		{f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:00Z"}), record.ReasonSuspended},
		{f.sign(f.root, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-02-01T00:00:00Z"}), record.ReasonActive},
		{f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.root.DID, "effectiveAt": "2025-03-01T00:00:00Z"}), record.ReasonChainBroken},
	}
	for i, s := range steps {
		if s.op != nil {
			f.now = f.now.Add(time.Second)
			f.mustAccept(s.op)
		}
		for range 2 { // the second answer comes from the cache
			if d := f.ask(at, 0); d.Reason != s.want {
				t.Fatalf("step %d: %s, want %s", i, d.Reason, s.want)
			}
		}
	}
	// A second grant to the same subject shows up in the cached list.
	other := mustKey(t, record.KeyEd25519)
	q := decide.Question{Entity: other.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing, At: at}
	if d := f.decide(q); d.Reason != record.ReasonNeverAuthorized {
		t.Fatalf("before the grant: %s", d.Reason)
	}
	f.mustAccept(f.govSign(record.OpAddRootAccreditor, map[string]any{"framework": fwID, "accreditor": other.DID}))
	f.mustAccept(f.sign(other, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": other.DID, "subject": f.college.DID,
		"action": record.ActionIssue, "resources": []string{nursing}, "validFrom": "2024-01-01T00:00:00Z"}))
	if d := f.ask(at, 0); !d.Authorized || d.Root != other.DID {
		t.Fatalf("after a second grant from a new root: %+v", d)
	}
}

// TestKeptIteratorsSeeCommits: the read side keeps Pebble iterators
// between questions (recordCache.iter), each seeing the database as it was
// when opened. A commit must retire them, or a question asked after a grant
// would list the subject's accreditations as they were before it.
func TestKeptIteratorsSeeCommits(t *testing.T) {
	f := mustChain(t)
	other := mustKey(t, record.KeyEd25519)
	q := decide.Question{Entity: other.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing, At: date(2025, 6, 1)}
	if d := f.decide(q); d.Reason != record.ReasonNeverAuthorized {
		t.Fatalf("before the grant: %s", d.Reason)
	}
	f.s.caches.records.mu.Lock()
	kept := len(f.s.caches.records.iters)
	f.s.caches.records.mu.Unlock()
	if kept == 0 {
		t.Fatal("no iterator was kept after a question; this test would prove nothing")
	}
	f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": f.qa.DID, "subject": other.DID,
		"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
		"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z"}))
	if d := f.decide(q); !d.Authorized {
		t.Fatalf("after the grant: %s", d.Reason)
	}
}

// TestKeptIteratorsUnderConcurrentWrites: readers ask about colleges while
// grants to them commit one by one. Once a reader has seen a grant's commit
// finish, every later question about that college must find it, whichever
// kept iterator or cached list answers. Readers also ask about colleges not
// granted yet, so kept iterators and cached empty lists are there to go
// stale.
func TestKeptIteratorsUnderConcurrentWrites(t *testing.T) {
	f := mustChain(t)
	const colleges, readers = 40, 4
	at := date(2025, 6, 1)
	ops := make([][]byte, colleges)
	questions := make([]decide.Question, colleges)
	for i := range colleges {
		subject := fmt.Sprintf("did:web:concurrent-%d.example", i)
		questions[i] = decide.Question{Entity: subject, Framework: fwID, Action: record.ActionIssue, Resource: nursing, At: at}
		ops[i] = f.sign(f.qa, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": f.qa.DID, "subject": subject,
			"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
			"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z"})
	}
	var granted [colleges]atomic.Bool
	var stop atomic.Bool
	var asked atomic.Int64
	failed := make(chan string, readers)
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			for j := 0; j < 1_000_000 && !stop.Load(); j++ {
				i := (j*7 + r) % colleges
				done := granted[i].Load() // before asking
				d, err := f.s.Decide(questions[i], at)
				if err != nil {
					failed <- err.Error()
					return
				}
				asked.Add(1)
				if done && !d.Authorized {
					failed <- fmt.Sprintf("college %d: %s after its grant committed", i, d.Reason)
					return
				}
			}
		})
	}
	for i := range colleges {
		for asked.Load() < int64(i+1)*readers && len(failed) == 0 {
			time.Sleep(100 * time.Microsecond) // let the readers ask before each grant
		}
		if r := f.apply(ops[i]); !r.Accepted {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("grant %d: %s", i, r.Reason)
		}
		granted[i].Store(true)
	}
	stop.Store(true)
	wg.Wait()
	select {
	case msg := <-failed:
		t.Fatal(msg)
	default:
	}
	if asked.Load() < colleges*readers {
		t.Fatalf("only %d questions were asked; this test would prove little", asked.Load())
	}
}

// TestKeptIteratorsAgeOut: an iterator kept longer than maxIterAge is
// closed instead of handed out, so none pins memtables or sstables that
// Pebble has since flushed or compacted away while no writes come.
func TestKeptIteratorsAgeOut(t *testing.T) {
	f := mustChain(t)
	f.ask(date(2025, 6, 1), 0)
	c := f.s.caches.records
	c.mu.Lock()
	if len(c.iters) == 0 {
		c.mu.Unlock()
		t.Fatal("no iterator was kept after a question")
	}
	for i := range c.iters {
		c.iters[i].opened = time.Now().Add(-2 * maxIterAge)
	}
	c.mu.Unlock()
	p := prefix(tableReceived, f.college.DID, fwID)
	v := f.s.View()
	defer v.Close()
	k, err := c.iter(v.snap, v.rd.epoch, p, upperBound(p))
	if err != nil {
		t.Fatal(err)
	}
	// (Pebble reuses a closed iterator's memory, so the new one may have
	// the old one's address: tell them apart by their opening time.)
	if time.Since(k.opened) > maxIterAge {
		t.Fatalf("an iterator opened %v ago was handed out", time.Since(k.opened))
	}
	if !k.it.First() {
		t.Fatalf("the new iterator lists nothing the college received: %v", k.it.Error())
	}
	if err := c.release(k); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.iters) != 1 || time.Since(c.iters[0].opened) > maxIterAge {
		t.Fatalf("kept %d iterators after the aged ones were closed, want only the new one", len(c.iters))
	}
}

// TestOneBatchSeesItsOwnWrites applies, in one batch, a grant and a grant
// under it, then a suspension and a grant under the suspended one: apply
// must read what the batch itself wrote, not the cached committed records.
func TestOneBatchSeesItsOwnWrites(t *testing.T) {
	f := mustChain(t)
	// Warm the read cache with the committed records.
	f.ask(date(2025, 1, 1), 0)
	mid := mustKey(t, record.KeyEd25519)
	leaf := mustKey(t, record.KeyEd25519)
	grant := f.sign(f.qa, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": f.qa.DID, "subject": mid.DID,
		"action": record.ActionAccredit, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc, "validFrom": "2025-01-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z"})
	under := f.sign(mid, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": mid.DID, "subject": leaf.DID,
		"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": record.CIDOf(grant), "validFrom": "2025-02-01T00:00:00Z", "validUntil": "2028-01-01T00:00:00Z"})
	suspend := f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.qaAcc})
	other := mustKey(t, record.KeyEd25519)
	underSuspended := f.sign(f.qa, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": f.qa.DID, "subject": other.DID,
		"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc, "validFrom": "2025-01-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z"})
	var entries []Entry
	for _, op := range [][]byte{grant, under, suspend, underSuspended} {
		f.index++
		entries = append(entries, Entry{Index: f.index, Time: f.now, Data: EncodeOperation(op)})
	}
	res := f.s.ApplyBatch(entries)
	if !res[0].Accepted || !res[1].Accepted || !res[2].Accepted {
		t.Fatalf("grant chain in one batch: %+v %+v %+v", res[0], res[1], res[2])
	}
	if res[3].Accepted || res[3].Code != record.CodeNotAuthorized {
		t.Fatalf("grant under an accreditation suspended earlier in the batch: %+v", res[3])
	}
	// The suspension reaches the read side too.
	if d := f.ask(f.now, 0); d.Reason != record.ReasonChainBroken {
		t.Fatalf("college under the suspended agency: %s", d.Reason)
	}
}

// TestDecideSecond checks reusable answers: evaluated at the start of the
// second and good until the next record time the decision compared with,
// or made for the exact instant when such a time falls inside the second.
func TestDecideSecond(t *testing.T) {
	f := mustChain(t)
	q := decide.Question{Entity: f.college.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing}
	second := t0.Add(time.Hour)
	suspendedAt := second.Add(500 * time.Millisecond)
	f.now = suspendedAt
	f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "audit"}))

	check := func(now time.Time, wantUntil, wantAt time.Time, wantReason string) {
		t.Helper()
		d, until, err := f.s.DecideSecond(q, now)
		if err != nil {
			t.Fatal(err)
		}
		if !until.Equal(wantUntil) || !d.At.Equal(wantAt) || d.Reason != wantReason {
			t.Fatalf("at %s: until %s, at %s, reason %s; want %s, %s, %s", now.Format(time.RFC3339Nano),
				until.Format(time.RFC3339Nano), d.At.Format(time.RFC3339Nano), d.Reason, wantUntil.Format(time.RFC3339Nano), wantAt.Format(time.RFC3339Nano), wantReason)
		}
		// Every instant the answer claims to cover gets the same answer
		// from Decide.
		for _, at := range []time.Time{now, d.At} {
			exact := f.decide(decide.Question{Entity: q.Entity, Framework: q.Framework, Action: q.Action, Resource: q.Resource, At: at})
			if exact.Reason != d.Reason || exact.Authorized != d.Authorized {
				t.Fatalf("at %s: DecideSecond says %s, Decide at %s says %s", now.Format(time.RFC3339Nano), d.Reason, at.Format(time.RFC3339Nano), exact.Reason)
			}
		}
		if !until.IsZero() && until != decide.Forever {
			before := f.decide(decide.Question{Entity: q.Entity, Framework: q.Framework, Action: q.Action, Resource: q.Resource, At: until.Add(-time.Nanosecond)})
			if before.Reason != d.Reason {
				t.Fatalf("just before until %s: %s, want %s", until.Format(time.RFC3339Nano), before.Reason, d.Reason)
			}
		}
	}
	// Before the suspension: the answer holds until it takes effect. (The
	// college's accreditation window, 2024-06-01 to 2029-01-01, and the
	// agency's, 2024 to 2030, bound it too; the suspension comes first.)
	day := date(2026, 1, 1)
	check(day.Add(700*time.Millisecond), suspendedAt, day, record.ReasonActive)
	// The suspension takes effect half-way through its second: that second
	// is answered instant by instant.
	check(second.Add(200*time.Millisecond), time.Time{}, second.Add(200*time.Millisecond), record.ReasonActive)
	check(second.Add(800*time.Millisecond), time.Time{}, second.Add(800*time.Millisecond), record.ReasonSuspended)
	// From the next second on, the answer holds until the college's window ends.
	check(second.Add(1300*time.Millisecond), date(2029, 1, 1), second.Add(time.Second), record.ReasonSuspended)
	// A question at a given time does not depend on the clock.
	q.At = second.Add(800 * time.Millisecond)
	if d, until, err := f.s.DecideSecond(q, date(2026, 1, 1)); err != nil || until != decide.Forever || d.Reason != record.ReasonSuspended || !d.At.Equal(q.At) {
		t.Fatalf("explicit at: %+v until %s err %v", d, until, err)
	}
}
