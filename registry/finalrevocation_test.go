package registry

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// A revocation is final in answers at every level: an event effective
// after a revocation lifts nothing, whether recorded before a backdated
// revocation (a suspension and its reinstatement) or planted ahead of a
// revocation (a reinstatement effective after it).
func TestRevocationIsFinalInAnswers(t *testing.T) {
	t.Run("backdated past a reinstatement", func(t *testing.T) {
		f := mustChain(t) // commit time 2026-03-01
		f.now = f.now.Add(time.Minute)
		f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-02-01T00:00:00Z"}))
		f.now = f.now.Add(time.Minute)
		f.mustAccept(f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-02-15T00:00:00Z"}))
		f.now = f.now.Add(time.Minute)
		revoked := f.mustAccept(f.govSign(record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:00Z", "reason": "fraud since 2025"}))
		for _, at := range []time.Time{date(2025, 6, 1), date(2026, 2, 20), f.now.Add(time.Hour)} {
			if d := f.ask(at, 0); d.Authorized || d.Reason != record.ReasonRevoked {
				t.Errorf("at %s: %v (%s), want revoked", at, d.Authorized, d.Reason)
			}
		}
		// As of the entry before the revocation, the reinstatement stood.
		if d := f.ask(date(2026, 2, 20), revoked.Index-1); !d.Authorized {
			t.Errorf("as of %d, before the revocation: %v (%s), want authorized", revoked.Index-1, d.Authorized, d.Reason)
		}
	})
	t.Run("a suspension against a reinstatement recorded before it", func(t *testing.T) {
		// The accreditor plants a suspension and its reinstatement ahead;
		// governance suspends the college after: the planted reinstatement
		// lifts nothing recorded after it.
		f := mustChain(t)
		f.tick()
		f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-03-31T23:59:59Z"}))
		f.tick()
		f.mustAccept(f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-04-01T00:00:00Z"}))
		f.tick()
		f.mustAccept(f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "investigation"}))
		for _, at := range []time.Time{date(2026, 3, 15), date(2026, 5, 1)} {
			if d := f.ask(at, 0); d.Authorized || d.Reason != record.ReasonSuspended {
				t.Errorf("at %s: %v (%s), want suspended", at, d.Authorized, d.Reason)
			}
		}
		// A reinstatement recorded after the suspension lifts it.
		f.tick()
		f.mustAccept(f.govSign(record.OpReinstate, map[string]any{"accreditation": f.collegeAcc}))
		if d := f.ask(f.now.Add(time.Second), 0); !d.Authorized {
			t.Errorf("after governance's reinstatement: %v (%s), want authorized", d.Authorized, d.Reason)
		}
	})
	t.Run("a reinstatement planted after it", func(t *testing.T) {
		f := mustChain(t)
		f.now = f.now.Add(time.Minute)
		f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-04-01T00:00:00Z"}))
		f.now = f.now.Add(time.Minute)
		f.mustAccept(f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-04-01T00:00:01Z"}))
		f.now = f.now.Add(time.Hour)
		f.mustAccept(f.sign(f.root, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc}))
		for _, at := range []time.Time{date(2026, 3, 15), date(2026, 5, 1)} {
			if d := f.ask(at, 0); d.Authorized || d.Reason != record.ReasonRevoked {
				t.Errorf("at %s: %v (%s), want revoked", at, d.Authorized, d.Reason)
			}
		}
		if d := f.ask(date(2026, 2, 1), 0); !d.Authorized {
			t.Errorf("before the revocation's effectiveAt: %v (%s), want authorized", d.Authorized, d.Reason)
		}
	})
}

// From FeatureLevelFinalRevocation on the apply reads status events as
// answers do (a revocation is final), and a status change needs authority
// in force: an accreditor struck off, or a root removed, changes nothing
// below it, and a suspension is lifted only at its level or above. Below
// the level the apply decides as older builds do.
func TestFinalRevocationFromTheLevelOn(t *testing.T) {
	runLevelCases(t, FeatureLevelFinalRevocation, []levelCase{{
		name: "an accreditor revoked backdated past its reinstatement accredits",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.qaAcc, "effectiveAt": "2026-02-01T00:00:00Z"}))
			f.tick()
			f.mustAccept(f.sign(f.root, record.OpReinstate, map[string]any{"accreditation": f.qaAcc, "effectiveAt": "2026-02-15T00:00:00Z"}))
			f.tick()
			f.mustAccept(f.govSign(record.OpRevoke, map[string]any{"accreditation": f.qaAcc, "effectiveAt": "2025-01-01T00:00:00Z"}))
			f.tick()
			return f.sign(f.qa, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.qa.DID, "subject": "did:web:new-college.example", "action": record.ActionIssue,
				"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": "2026-01-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
			})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "revoked"},
	}, {
		name: "an accreditor struck off lifts a governance suspension",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:00Z"}))
			f.tick()
			f.mustAccept(f.sign(f.root, record.OpRevoke, map[string]any{"accreditation": f.qaAcc, "reason": "struck off"}))
			f.tick()
			return f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:01Z"})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "its own accreditation QA is revoked"},
	}, {
		name: "a root removed reinstates",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.qaAcc}))
			f.tick()
			f.mustAccept(f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.root.DID}))
			f.tick()
			return f.sign(f.root, record.OpReinstate, map[string]any{"accreditation": f.qaAcc})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "it is no longer a root accreditor of " + fwID},
	}, {
		name: "a root removed revokes",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.root.DID}))
			f.tick()
			return f.sign(f.root, record.OpRevoke, map[string]any{"accreditation": f.qaAcc})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "it is no longer a root accreditor of " + fwID},
	}, {
		name: "the accreditor below lifts the root's suspension",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "suspended it (at index"},
	}, {
		name: "an accreditor lifts governance's suspension",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.sign(f.root, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "governance suspended it (at index"},
	}, {
		// The placer is judged at the highest place it holds: the root,
		// accredited again below the QA agency, suspends what it granted
		// there; the agency is above that grant, not above the root.
		name: "an accreditor lifts a suspension by a root that it also accredited",
		run: func(f *chainFixture) []byte {
			x := f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.qa.DID, "subject": f.root.DID, "action": record.ActionAccredit,
				"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": "2026-01-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
			})).ID
			f.tick()
			c2 := f.mustAccept(f.sign(f.root, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.root.DID, "subject": "did:web:c2.example", "action": record.ActionIssue,
				"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": x,
				"validFrom": "2026-01-01T00:00:00Z", "validUntil": "2028-01-01T00:00:00Z",
			})).ID
			f.tick()
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": c2}))
			f.tick()
			return f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": c2})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "suspended it (at index"},
	}, {
		// A validity window is no striking off: an accreditor whose own
		// accreditation has not begun may undo what it granted.
		name: "an accreditor not yet valid revokes its own grant",
		run: func(f *chainFixture) []byte {
			qa2 := mustKey(t, record.KeyEd25519)
			qa2Acc := f.mustAccept(f.sign(f.root, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.root.DID, "subject": qa2.DID, "action": record.ActionAccredit,
				"resources": []string{nursing}, "jurisdictions": []string{"US"},
				"validFrom": "2026-06-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
			})).ID
			f.tick()
			grant := f.mustAccept(f.sign(qa2, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": qa2.DID, "subject": "did:web:mistake.example", "action": record.ActionIssue,
				"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": qa2Acc,
				"validFrom": "2026-06-01T00:00:00Z", "validUntil": "2028-01-01T00:00:00Z",
			})).ID
			f.tick()
			return f.sign(qa2, record.OpRevoke, map[string]any{"accreditation": grant, "reason": "granted by mistake"})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "an accreditor suspended suspends what it granted",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.qaAcc}))
			f.tick()
			return f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "its own accreditation QA is suspended"},
	}, {
		// Governance suspends now and schedules its reinstatement; the
		// agency suspends and reinstates on its own: its reinstatement,
		// recorded after governance's suspension and in force before
		// governance's, would lift it early.
		name: "an accreditor's reinstatement ahead of governance's scheduled one",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "until 2030"}))
			f.tick()
			f.mustAccept(f.govSign(record.OpReinstate, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2030-01-01T00:00:00Z"}))
			f.tick()
			return f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-01-01T00:00:00Z"})
		},
		older: levelOutcome{false, "is not suspended"},
		level: levelOutcome{false, "governance suspended it (at index"},
	}, {
		// Below the level the agency's own suspension, over governance's,
		// then made its reinstatement possible.
		name: "an accreditor suspends under governance's suspension",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			f.mustAccept(f.govSign(record.OpReinstate, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2030-01-01T00:00:00Z"}))
			f.tick()
			return f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "is suspended already at"},
	}, {
		// A suspension by one above is stacked over one by the agency
		// below: it holds when the agency lifts its own.
		name: "the root suspends over the agency's suspension",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{false, "is suspended already"},
		level: levelOutcome{true, ""},
	}, {
		name: "a suspension twice by one placer",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{false, "is suspended already"},
		level: levelOutcome{false, "is suspended already at"},
	}, {
		// The root schedules a suspension; the agency below suspends now.
		name: "an accreditor suspends under a suspension scheduled above it",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2028-01-01T00:00:00Z"}))
			f.tick()
			return f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{false, "is suspended already"},
		level: levelOutcome{true, ""},
	}, {
		// The agency schedules a revocation for 2028; governance revokes
		// now: a revocation recorded later but effective sooner.
		name: "governance revokes before a revocation scheduled below",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2028-12-31T00:00:00Z"}))
			f.tick()
			return f.govSign(record.OpRevoke, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{false, "revocation is final"},
		level: levelOutcome{true, ""},
	}, {
		name: "a suspension after a revocation in force",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpRevoke, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{false, "revocation is final"},
		level: levelOutcome{false, "revocation is final"},
	}, {
		name: "a reinstatement with nothing to lift",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			f.mustAccept(f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{false, "is not suspended"},
		level: levelOutcome{false, "is not suspended at"},
	}, {
		// The root's suspension is lifted before it would begin: it never
		// takes effect, and blocks no lift of the agency's own.
		name: "an accreditor lifts its own suspension past one that never takes effect",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2027-01-01T00:00:00Z"}))
			f.tick()
			f.mustAccept(f.sign(f.root, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-06-01T00:00:00Z"}))
			f.tick()
			f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		// "Grant a new accreditation instead" starts afresh; backdated
		// past the revocation it would make answers about the revoked
		// past say authorized.
		name: "a new grant reaching back before a revocation",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:00Z", "reason": "fraud"}))
			f.tick()
			return f.sign(f.qa, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": f.qa.DID, "subject": f.college.DID,
				"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": "2024-06-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z"})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "is revoked from 2025-01-01T00:00:00Z: a new grant may begin then or later"},
	}, {
		name: "a new grant from the revocation on",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:00Z", "reason": "fraud"}))
			f.tick()
			return f.sign(f.qa, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": f.qa.DID, "subject": f.college.DID,
				"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": "2026-03-02T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z"})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "the root lifts its own suspension",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.sign(f.root, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "the root lifts the suspension the accreditor below placed",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.sign(f.root, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "governance lifts its own suspension",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.govSign(record.OpReinstate, map[string]any{"accreditation": f.collegeAcc})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}})
}

// levelOutcome is what a levelCase's operation should come to.
type levelOutcome struct {
	accepted bool
	says     string // in the refusal; "accreditation QA" stands for the agency's accreditation
}

// levelCase is an operation applied on mustChain, judged below a feature
// level (older) and at it (level).
type levelCase struct {
	name string
	// run applies the case's setup and returns the operation it is about
	run          func(f *chainFixture) []byte
	older, level levelOutcome
}

// runLevelCases runs each case on a fresh chain at level-1 and at level,
// the clock a minute on: the operation must come to the outcome wanted
// there, and a refused one must leave the state as it was.
func runLevelCases(t *testing.T, level int, cases []levelCase) {
	for _, tc := range cases {
		for _, at := range []int{level - 1, level} {
			t.Run(fmt.Sprintf("%s/level=%d", tc.name, at), func(t *testing.T) {
				f := mustChain(t) // commit time 2026-03-01T12:00
				f.mustRaiseLevel(at)
				f.tick()
				op := tc.run(f)
				want := tc.level
				if at < level {
					want = tc.older
				}
				before := f.digest()
				r := f.apply(op)
				says := strings.ReplaceAll(want.says, "accreditation QA", "accreditation "+f.qaAcc)
				switch {
				case r.Accepted != want.accepted:
					t.Fatalf("accepted=%v %s: %s, want accepted=%v %s", r.Accepted, r.Code, r.Reason, want.accepted, says)
				case !r.Accepted && !strings.Contains(r.Reason, says):
					t.Fatalf("refused %s: %s, want it saying %s", r.Code, r.Reason, says)
				case !r.Accepted && f.digest() != before:
					t.Fatal("a refused operation changed the state")
				}
			})
		}
	}
}

// tick moves the fixture's clock a minute on: one operation a minute.
func (f *chainFixture) tick() { f.now = f.now.Add(time.Minute) }

// The suspension's placer is read from its operation record, which an
// entry of the same apply batch wrote, and the leader's check before the
// log reads the committed one: both refuse the root lifting governance's
// suspension.
func TestLiftReadsThePlacerInTheBatchAndTheCheck(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelFinalRevocation)
	f.tick()
	susp := f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc})
	lift := f.sign(f.root, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc})
	e1 := Entry{Index: f.index + 1, Time: f.now, Data: EncodeOperation(susp)}
	e2 := Entry{Index: f.index + 2, Time: f.now, Data: EncodeOperation(lift)}
	f.index += 2
	f.entries = append(f.entries, e1, e2)
	res := f.s.ApplyBatch([]Entry{e1, e2})
	if !res[0].Accepted || res[1].Accepted || !strings.Contains(res[1].Reason, "governance suspended it") {
		t.Fatalf("in one batch: %+v / %+v", res[0], res[1])
	}
	f.tick()
	again := f.sign(f.root, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc, "reason": "again"})
	if r := f.s.Check(again, f.now); r == nil || r.Accepted || !strings.Contains(r.Reason, "governance suspended it") {
		t.Fatalf("the leader's check: %+v", r)
	}
}
