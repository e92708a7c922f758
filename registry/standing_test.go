package registry

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// regrant is the QA agency granting the college nursing again under its
// own accreditation, from validFrom.
func (f *chainFixture) regrant(validFrom string) []byte {
	return f.sign(f.qa, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.qa.DID, "subject": f.college.DID, "action": record.ActionIssue,
		"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
		"validFrom": validFrom, "validUntil": "2029-01-01T00:00:00Z",
	})
}

// From FeatureLevelStanding on a grant may not get past a suspension
// placed above its grantor nor reach into a revoked past, and a grantor
// struck off grants nothing. Below the level the apply decides as
// FeatureLevelFinalRevocation's builds do.
func TestStandingFromTheLevelOn(t *testing.T) {
	runLevelCases(t, FeatureLevelStanding, []levelCase{{
		// A reinstatement still lifts every suspension before it, so the
		// agency lifts its own only once governance has lifted its one.
		name: "an accreditor lifts its own suspension under governance's",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "audit"}))
			f.tick()
			f.mustAccept(f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "investigation"}))
			f.tick()
			return f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc, "reason": "audit passed"})
		},
		older: levelOutcome{false, "governance suspended it (at index"},
		level: levelOutcome{false, "governance suspended it (at index"},
	}, {
		name: "a grant a second after a revocation's effectiveAt, before it was recorded",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:00Z", "reason": "fraud since 2025"}))
			f.tick()
			return f.regrant("2025-01-01T00:00:01Z")
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "recorded at 2026-03-01T12:01:00Z"},
	}, {
		name: "a grant from when the revocation was recorded",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:00Z", "reason": "fraud since 2025"}))
			f.tick()
			return f.regrant("2026-03-01T12:01:00Z")
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "a grant past governance's suspension",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-02-01T00:00:00Z", "reason": "investigation"}))
			f.tick()
			return f.regrant("2024-06-01T00:00:00Z")
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "is suspended from 2026-02-01T00:00:00Z (index 5) by governance, above the grantor"},
	}, {
		name: "a grant past the root's suspension, from now on",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.regrant("2026-03-02T00:00:00Z")
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "above the grantor; only that placer or one above it lifts it"},
	}, {
		// The agency revokes what it could not reinstate: the root's
		// suspension still stands against a grant.
		name: "a grant past the root's suspension after the agency revoked",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			f.mustAccept(f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.regrant("2026-03-02T00:00:00Z")
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "above the grantor; only that placer or one above it lifts it"},
	}, {
		name: "the root grants past its own suspension",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.sign(f.root, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.root.DID, "subject": f.college.DID, "action": record.ActionIssue,
				"resources": []string{nursing}, "validFrom": "2026-03-02T00:00:00Z",
			})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "the agency grants past its own suspension",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.regrant("2026-03-02T00:00:00Z")
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		// A peer agency suspends what it granted the subject: it holds no
		// place above the agency, and binds nothing here.
		name: "a grant past a peer agency's suspension",
		run: func(f *chainFixture) []byte {
			f.peerSuspendedGrant()
			f.tick()
			return f.regrant("2026-03-02T00:00:00Z")
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "a grant for another resource past the root's suspension",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.sign(f.qa, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.qa.DID, "subject": f.college.DID, "action": record.ActionIssue,
				"resources": []string{pharmacy}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": "2026-03-02T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
			})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "a grant for another jurisdiction past the root's suspension",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.sign(f.qa, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.qa.DID, "subject": f.college.DID, "action": record.ActionIssue,
				"resources": []string{nursing}, "jurisdictions": []string{"CA"}, "parent": f.qaAcc,
				"validFrom": "2026-03-02T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
			})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		// Suspended, then revoked, by governance: the revocation ends the
		// suspension's hold on grants, and a grant from when it was
		// recorded on is a fresh start.
		name: "a grant after governance suspended and then revoked",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "investigation"}))
			f.tick()
			f.mustAccept(f.govSign(record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "reason": "fraud"}))
			f.tick()
			return f.regrant("2026-03-01T12:03:00Z")
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "a grant past the root's suspension after the root revoked",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			f.mustAccept(f.sign(f.root, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			return f.regrant("2026-03-01T12:03:00Z")
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "a grant co-signed by governance past governance's suspension",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
			f.tick()
			jws, err := record.SignJSON(f.payload(record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.root.DID, "subject": f.college.DID, "action": record.ActionIssue,
				"resources": []string{nursing}, "validFrom": "2026-03-02T00:00:00Z",
			}), append([]*record.Signer{f.root}, f.gov...)...)
			if err != nil {
				f.t.Fatal(err)
			}
			return jws
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "a grant past a suspension lifted before it begins",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2027-01-01T00:00:00Z"}))
			f.tick()
			f.mustAccept(f.sign(f.root, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-06-01T00:00:00Z"}))
			f.tick()
			return f.regrant("2026-03-02T00:00:00Z")
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		// A peer agency's revocation of its own grant, scheduled, binds no
		// other branch (review: any accreditor could so block a subject).
		name: "a grant past a peer agency's scheduled revocation",
		run: func(f *chainFixture) []byte {
			f.peerChangedGrant("2029-12-31T00:00:00Z", record.OpRevoke, map[string]any{"effectiveAt": "2029-12-30T00:00:00Z"})
			f.tick()
			return f.sign(f.qa, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.qa.DID, "subject": f.college.DID, "action": record.ActionIssue,
				"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": "2026-03-02T00:00:00Z", "validUntil": "2030-01-01T00:00:00Z",
			})
		},
		older: levelOutcome{false, "is revoked from 2029-12-30T00:00:00Z"},
		level: levelOutcome{true, ""},
	}, {
		name: "a grant that ends before a scheduled revocation takes effect",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2028-01-01T00:00:00Z"}))
			f.tick()
			return f.sign(f.qa, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.qa.DID, "subject": f.college.DID, "action": record.ActionIssue,
				"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": "2026-03-02T00:00:00Z", "validUntil": "2027-06-01T00:00:00Z",
			})
		},
		older: levelOutcome{false, "is revoked from 2028-01-01T00:00:00Z"},
		level: levelOutcome{true, ""},
	}, {
		name: "the agency's re-grant into the past of its own backdated revocation",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:00Z"}))
			f.tick()
			return f.regrant("2024-12-01T00:00:00Z")
		},
		older: levelOutcome{false, "is revoked from 2025-01-01T00:00:00Z"},
		level: levelOutcome{false, "is revoked from 2025-01-01T00:00:00Z by did:"},
	}, {
		// The agency holds two places in one chain, root -> QA -> X -> QA:
		// X suspends what the agency granted at its lower place; the
		// agency's higher place stands above X, as a reinstatement judges.
		name: "a grant past a suspension by one the grantor also stands above",
		run: func(f *chainFixture) []byte {
			x := mustKey(f.t, record.KeyEd25519)
			xAcc := f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.qa.DID, "subject": x.DID, "action": record.ActionAccredit,
				"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": "2024-06-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
			})).ID
			f.tick()
			qaLow := f.mustAccept(f.sign(x, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": x.DID, "subject": f.qa.DID, "action": record.ActionAccredit,
				"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": xAcc,
				"validFrom": "2024-06-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
			})).ID
			f.tick()
			grant := func(from string) []byte {
				return f.sign(f.qa, record.OpAccredit, map[string]any{
					"framework": fwID, "accreditor": f.qa.DID, "subject": "did:web:c3.example", "action": record.ActionIssue,
					"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": qaLow,
					"validFrom": from, "validUntil": "2029-01-01T00:00:00Z",
				})
			}
			low := f.mustAccept(grant("2026-03-01T12:00:00Z")).ID
			f.tick()
			f.mustAccept(f.sign(x, record.OpSuspend, map[string]any{"accreditation": low, "reason": "X's audit"}))
			f.tick()
			return grant("2026-03-02T00:00:00Z")
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "a grant after governance's suspension is lifted",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-02-01T00:00:00Z"}))
			f.tick()
			f.mustAccept(f.govSign(record.OpReinstate, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-04-01T00:00:00Z"}))
			f.tick()
			return f.regrant("2026-04-01T00:00:00Z")
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "a grant that ends before governance's suspension begins",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.govSign(record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2029-01-01T00:00:00Z"}))
			f.tick()
			return f.regrant("2026-03-02T00:00:00Z")
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{true, ""},
	}, {
		name: "an accreditor revoked before its accreditation begins grants",
		run: func(f *chainFixture) []byte {
			qa2 := mustKey(t, record.KeyEd25519)
			qa2Acc := f.mustAccept(f.sign(f.root, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.root.DID, "subject": qa2.DID, "action": record.ActionAccredit,
				"resources": []string{nursing}, "jurisdictions": []string{"US"},
				"validFrom": "2026-06-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
			})).ID
			f.tick()
			f.mustAccept(f.govSign(record.OpRevoke, map[string]any{"accreditation": qa2Acc, "reason": "struck off before it began"}))
			f.tick()
			return f.sign(qa2, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": qa2.DID, "subject": "did:web:c9.example", "action": record.ActionIssue,
				"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": qa2Acc,
				"validFrom": "2026-06-01T00:00:00Z", "validUntil": "2028-01-01T00:00:00Z",
			})
		},
		older: levelOutcome{true, ""},
		level: levelOutcome{false, "may not accredit: its own accreditation"},
	}, {
		name: "an accreditor under a suspended one grants",
		run: func(f *chainFixture) []byte {
			f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.qaAcc, "effectiveAt": "2026-03-01T00:00:00Z"}))
			f.tick()
			return f.sign(f.qa, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.qa.DID, "subject": "did:web:c10.example", "action": record.ActionIssue,
				"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": "2024-06-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
			})
		},
		// The chain is judged at the commit time below the level too.
		older: levelOutcome{false, "is suspended now"},
		level: levelOutcome{false, "is suspended now"},
	}})
}

// A root removed, added again, then removed with an effectiveAt before the
// re-add (fraud found later). Below FeatureLevelStanding the apply takes
// that removal; answers read a root's events by the one recorded last (at
// every level), so the root is removed from that effectiveAt on, though
// the apply there still read the re-add and let the root act. From the
// level the removal is refused (verifiers of older builds read root
// events by the latest effectiveAt, and would answer otherwise), and a
// removal from the re-add on removes it for the apply and answers alike.
func TestBackdatedRootRemovalAfterReAdd(t *testing.T) {
	for _, level := range []int{FeatureLevelStanding - 1, FeatureLevelStanding} {
		t.Run(fmt.Sprintf("level=%d", level), func(t *testing.T) {
			f := mustChain(t)
			f.mustRaiseLevel(level)
			f.tick()
			f.mustAccept(f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.root.DID, "reason": "lapsed"}))
			f.tick()
			f.mustAccept(f.govSign(record.OpAddRootAccreditor, map[string]any{"framework": fwID, "accreditor": f.root.DID}))
			readded := f.now
			f.tick()
			backdated := f.apply(f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.root.DID,
				"effectiveAt": "2025-01-01T00:00:00Z", "reason": "fraud since 2025"}))
			from := readded.Add(time.Second)
			if level >= FeatureLevelStanding {
				if backdated.Accepted || !strings.Contains(backdated.Reason, "is a root accreditor of "+fwID+" from "+readded.Format(time.RFC3339)) {
					t.Fatalf("the removal from 2025: %+v", backdated)
				}
				if d := f.decide(decide.Question{Entity: f.root.DID, Framework: fwID, Action: record.ActionAccredit, At: f.now.Add(time.Minute)}); !d.Authorized {
					t.Fatalf("the refused removal changed answers: %s", d.Reason)
				}
				f.tick()
				f.mustAccept(f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.root.DID,
					"effectiveAt": readded.Format(time.RFC3339), "reason": "fraud"}))
				from = readded
			} else if !backdated.Accepted {
				t.Fatalf("the removal from 2025 below the level: %s", backdated.Reason)
			}
			f.tick()
			now := f.now.Add(time.Minute)
			for _, at := range []time.Time{from, now} {
				if d := f.decide(decide.Question{Entity: f.root.DID, Framework: fwID, Action: record.ActionAccredit, At: at}); d.Authorized {
					t.Errorf("the removed root, asked about %s: authorized (%s)", at.Format(time.RFC3339), d.Reason)
				}
				if d := f.ask(at, 0); d.Authorized {
					t.Errorf("the college under the removed root, asked about %s: authorized (%s)", at.Format(time.RFC3339), d.Reason)
				}
			}
			if d := f.decide(decide.Question{Entity: f.root.DID, Framework: fwID, Action: record.ActionAccredit, At: date(2024, 6, 1)}); !d.Authorized {
				t.Errorf("the root asked about 2024, before any removal: %s", d.Reason)
			}
			// The EBSI TIR view of the root says the same.
			v := f.s.View()
			attrs, err := v.TIRIssuer(f.root.DID, now)
			v.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(attrs) == 0 {
				t.Error("the TIR lists nothing for the root")
			}
			for _, a := range attrs {
				if a.IssuerType == tirType(TIRRootTAO, record.StatusActive) {
					t.Errorf("the TIR lists the removed root as %s (%s)", a.IssuerType, a.Status)
				}
			}
			// The removed root acts only below the level, where the apply
			// read the re-add.
			r := f.apply(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": f.qaAcc}))
			if want := level < FeatureLevelStanding; r.Accepted != want {
				t.Errorf("the removed root's suspension: accepted=%v %s, want accepted=%v", r.Accepted, r.Reason, want)
			} else if !r.Accepted && !strings.Contains(r.Reason, "it is no longer a root accreditor of "+fwID) {
				t.Errorf("the removed root's suspension refused: %s", r.Reason)
			}
			f.tick()
			// Removed now already: a second removal from now is refused.
			again := f.apply(f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.root.DID, "reason": "again"}))
			if again.Accepted || !strings.Contains(again.Reason, "is not a root accreditor of") {
				t.Errorf("a second removal from now: %+v", again)
			}
		})
	}
}

// The same for a recognition: recognized, withdrawn, recognized again,
// then withdrawn from 2025.
func TestBackdatedUnrecognizeAfterReRecognize(t *testing.T) {
	const other = "https://example.org/frameworks/other"
	for _, level := range []int{FeatureLevelStanding - 1, FeatureLevelStanding} {
		t.Run(fmt.Sprintf("level=%d", level), func(t *testing.T) {
			f := mustChain(t)
			f.mustRaiseLevel(level)
			f.tick()
			f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other}))
			f.tick()
			f.mustAccept(f.govSign(record.OpUnrecognize, map[string]any{"framework": fwID, "recognized": other}))
			f.tick()
			again := f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other}))
			f.tick()
			early := f.apply(f.govSign(record.OpUnrecognize, map[string]any{"framework": fwID, "recognized": other, "effectiveAt": "2025-01-01T00:00:00Z"}))
			if want := level < FeatureLevelStanding; early.Accepted != want {
				t.Fatalf("a withdrawal from 2025: accepted=%v %s, want accepted=%v", early.Accepted, early.Reason, want)
			}
			f.tick()
			if !early.Accepted {
				f.mustAccept(f.govSign(record.OpUnrecognize, map[string]any{"framework": fwID, "recognized": other}))
				f.tick()
			}
			ask := func(at time.Time, asOf uint64) bool {
				d, err := f.s.DecideRecognition(decide.RecognitionQuestion{Framework: fwID, Recognized: other, At: at, AsOf: asOf}, f.now)
				if err != nil {
					t.Fatal(err)
				}
				return d.Recognizes
			}
			if ask(f.now.Add(time.Minute), 0) {
				t.Error("after the withdrawal, asked about now: recognizes")
			}
			if !ask(f.now.Add(time.Minute), again.Index) {
				t.Error("as of the second recognition, asked about now: does not recognize")
			}
		})
	}
}

// From FeatureLevelStanding a root's or a recognition's change must not
// take effect before a change the other way recorded before it: every
// state then reads the same by the one recorded last (answers) and by the
// latest effectiveAt (verifiers of older builds). A removal scheduled
// later and one from now are the same way, and both are taken.
func TestRootChangesInEffectOrder(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelStanding)
	f.tick()
	f.mustAccept(f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.root.DID, "reason": "lapsed"}))
	f.tick()
	f.mustAccept(f.govSign(record.OpAddRootAccreditor, map[string]any{"framework": fwID, "accreditor": f.root.DID}))
	f.tick()
	f.mustAccept(f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.root.DID,
		"effectiveAt": "2028-01-01T00:00:00Z", "reason": "retiring"}))
	f.tick()
	if r := f.apply(f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.root.DID,
		"effectiveAt": "2025-01-01T00:00:00Z", "reason": "fraud since 2025"})); r.Accepted {
		t.Fatal("a removal from before the re-add was taken")
	}
	f.tick()
	f.mustAccept(f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.root.DID, "reason": "fraud"}))
	f.tick()
	// Every state the level allows reads alike both ways.
	root := f.storedRoot()
	for _, at := range []time.Time{date(2024, 1, 1), date(2026, 3, 1), f.now, date(2027, 1, 1), date(2029, 1, 1)} {
		a, aok := decide.StatusAt(root.Events, at, f.index)
		b, bok := decide.LastRecordedAt(root.Events, at, f.index)
		if aok != bok || a.Status != b.Status {
			t.Errorf("at %s: the latest effectiveAt reads %s, the one recorded last %s", at.Format(time.RFC3339), a.Status, b.Status)
		}
	}
}

// storedRoot reads the root accreditor's record of the chain's framework.
func (f *chainFixture) storedRoot() record.RootAccreditor {
	f.t.Helper()
	var root record.RootAccreditor
	if _, err := getJSON(f.s.db, key(tableRoots, fwID, f.root.DID), &root); err != nil {
		f.t.Fatal(err)
	}
	return root
}

// TestLastRecordedAt: of the events in force at t and recorded by asOf,
// the one recorded last.
func TestLastRecordedAt(t *testing.T) {
	ev := func(status string, eff time.Time, idx uint64) record.StatusEvent {
		return record.StatusEvent{Status: status, EffectiveAt: eff, Index: idx}
	}
	events := []record.StatusEvent{
		ev(record.StatusActive, time.Time{}, 1),
		ev(record.StatusRevoked, date(2026, 3, 1), 2),
		ev(record.StatusActive, date(2026, 3, 2), 3),
		ev(record.StatusRevoked, date(2025, 1, 1), 4),
		ev(record.StatusActive, date(2030, 1, 1), 5), // scheduled
	}
	for _, tc := range []struct {
		t    time.Time
		asOf uint64
		want uint64
	}{
		{date(2024, 1, 1), 10, 1}, {date(2025, 6, 1), 10, 4}, {date(2026, 6, 1), 10, 4}, {date(2030, 6, 1), 10, 5},
		{date(2026, 6, 1), 3, 3}, {date(2026, 3, 1), 2, 2}, {date(2025, 6, 1), 3, 1},
	} {
		got, ok := decide.LastRecordedAt(events, tc.t, tc.asOf)
		if !ok || got.Index != tc.want {
			t.Errorf("at %s as of %d: %+v, want index %d", tc.t.Format(time.DateOnly), tc.asOf, got, tc.want)
		}
	}
	if _, ok := decide.LastRecordedAt(events[1:], date(2024, 1, 1), 10); ok {
		t.Error("an event in force before any")
	}
}

// peerChangedGrant has a peer agency (peerAgency) grant the college what
// f.qa grants it, valid until until, then record the status change op
// (change's fields besides the accreditation) on that grant: a change by
// one holding no place above f.qa. It returns the grant.
func (f *chainFixture) peerChangedGrant(until, op string, change map[string]any) string {
	f.t.Helper()
	qa2, qa2Acc := f.peerAgency()
	block := f.mustAccept(f.sign(qa2, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": qa2.DID, "subject": f.college.DID, "action": record.ActionIssue,
		"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": qa2Acc,
		"validFrom": "2026-03-01T00:00:00Z", "validUntil": until,
	})).ID
	f.tick()
	fields := map[string]any{"accreditation": block}
	maps.Copy(fields, change)
	f.mustAccept(f.sign(qa2, op, fields))
	return block
}

// peerSuspendedGrant is peerChangedGrant's suspension from 2026-03-01 of
// a grant valid until 2029.
func (f *chainFixture) peerSuspendedGrant() string {
	f.t.Helper()
	return f.peerChangedGrant("2029-01-01T00:00:00Z", record.OpSuspend, map[string]any{"effectiveAt": "2026-03-01T00:00:00Z"})
}

// peerAgency is a second QA agency the root accredits beside f.qa.
func (f *chainFixture) peerAgency() (*record.Signer, string) {
	f.t.Helper()
	qa2 := mustKey(f.t, record.KeyEd25519)
	acc := f.mustAccept(f.sign(f.root, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.root.DID, "subject": qa2.DID, "action": record.ActionAccredit,
		"resources": []string{nursing, pharmacy}, "jurisdictions": []string{"US", "CA"},
		"validFrom": "2024-01-01T00:00:00Z", "validUntil": "2030-01-01T00:00:00Z",
	})).ID
	f.tick()
	return qa2, acc
}

// From FeatureLevelStanding an accreditation holds at most
// maxStatusEvents status events: past it status changes are refused, but
// a first revocation is always taken, so the accreditation can be ended.
func TestStatusEventsBounded(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelStanding)
	for i := 1; i < maxStatusEvents; i++ { // the grant holds one event
		f.tick()
		op := record.OpSuspend
		if i%2 == 0 {
			op = record.OpReinstate
		}
		f.mustAccept(f.sign(f.qa, op, map[string]any{"accreditation": f.collegeAcc}))
	}
	f.tick()
	before := f.digest()
	if r := f.apply(f.sign(f.root, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc})); r.Accepted || !strings.Contains(r.Reason, fmt.Sprintf("holds %d status events", maxStatusEvents)) {
		t.Fatalf("a change past the bound: %+v", r)
	}
	if f.digest() != before {
		t.Fatal("a refused change changed the state")
	}
	f.tick()
	f.mustAccept(f.sign(f.root, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-06-01T00:00:00Z"}))
	if d := f.ask(date(2026, 7, 1), 0); d.Authorized || d.Reason != record.ReasonRevoked {
		t.Fatalf("after the revocation past the bound: %v (%s)", d.Authorized, d.Reason)
	}
	f.tick()
	if r := f.apply(f.govSign(record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-05-01T00:00:00Z"})); r.Accepted {
		t.Fatal("a second revocation past the bound was taken")
	}
}

// inEffectOrder refuses only a change that would make the two readings
// differ: a root whose scheduled retirement was cancelled (a removal and
// an add at 2028) is removed from now when its key is compromised, and so
// is one with a removal and a re-add scheduled, the re-add cancelled;
// likewise a recognition. Every state reads alike both ways after.
func TestInEffectOrderTakesChangesBothReadingsAgreeOn(t *testing.T) {
	const other = "https://example.org/frameworks/other"
	rootChange := func(f *chainFixture, op, at, reason string) map[string]any {
		m := map[string]any{"framework": fwID, "accreditor": f.root.DID, "reason": reason}
		if at != "" {
			m["effectiveAt"] = at
		}
		return m
	}
	agree := func(t *testing.T, events []record.StatusEvent, index uint64) {
		t.Helper()
		for _, ev := range events {
			for _, at := range []time.Time{ev.EffectiveAt, ev.EffectiveAt.Add(-time.Second)} {
				a, aok := decide.StatusAt(events, at, index)
				b, bok := decide.LastRecordedAt(events, at, index)
				if aok != bok || a.Status != b.Status {
					t.Errorf("at %s: the latest effectiveAt reads %s, the one recorded last %s", at.Format(time.RFC3339), a.Status, b.Status)
				}
			}
		}
	}
	removedNow := func(t *testing.T, f *chainFixture) {
		t.Helper()
		f.tick()
		f.mustAccept(f.govSign(record.OpRemoveRootAccredit, rootChange(f, record.OpRemoveRootAccredit, "", "key compromised")))
		f.tick()
		if d := f.decide(decide.Question{Entity: f.root.DID, Framework: fwID, Action: record.ActionAccredit, At: f.now}); d.Authorized {
			t.Errorf("the root removed from now is a root now: %s", d.Reason)
		}
		if r := f.apply(f.sign(f.root, record.OpAccredit, map[string]any{
			"framework": fwID, "accreditor": f.root.DID, "subject": "did:web:rogue.example", "action": record.ActionIssue, "resources": []string{nursing},
		})); r.Accepted {
			t.Error("the removed root still grants")
		}
		agree(t, f.storedRoot().Events, f.index)
	}
	t.Run("a cancelled retirement", func(t *testing.T) {
		f := mustChain(t)
		f.mustRaiseLevel(FeatureLevelStanding)
		f.tick()
		f.mustAccept(f.govSign(record.OpRemoveRootAccredit, rootChange(f, record.OpRemoveRootAccredit, "2028-01-01T00:00:00Z", "retiring")))
		f.tick()
		f.mustAccept(f.govSign(record.OpAddRootAccreditor, rootChange(f, record.OpAddRootAccreditor, "2028-01-01T00:00:00Z", "retirement cancelled")))
		// A removal from now straight away would read otherwise from 2028
		// by the latest effectiveAt (the add there outweighs it): the
		// refusal says what to record first.
		f.tick()
		if r := f.apply(f.govSign(record.OpRemoveRootAccredit, rootChange(f, record.OpRemoveRootAccredit, "", "key compromised"))); r.Accepted ||
			!strings.Contains(r.Reason, "record the change effective at 2028-01-01T00:00:00Z first") {
			t.Fatalf("a removal from now over the cancelling add: %+v", r)
		}
		f.tick()
		f.mustAccept(f.govSign(record.OpRemoveRootAccredit, rootChange(f, record.OpRemoveRootAccredit, "2028-01-01T00:00:00Z", "retiring after all")))
		removedNow(t, f)
	})
	t.Run("a cancelled re-add", func(t *testing.T) {
		f := mustChain(t)
		f.mustRaiseLevel(FeatureLevelStanding)
		f.tick()
		f.mustAccept(f.govSign(record.OpRemoveRootAccredit, rootChange(f, record.OpRemoveRootAccredit, "2027-01-01T00:00:00Z", "sabbatical")))
		f.tick()
		f.mustAccept(f.govSign(record.OpAddRootAccreditor, rootChange(f, record.OpAddRootAccreditor, "2028-01-01T00:00:00Z", "back")))
		f.tick()
		f.mustAccept(f.govSign(record.OpRemoveRootAccredit, rootChange(f, record.OpRemoveRootAccredit, "2028-01-01T00:00:00Z", "not back")))
		removedNow(t, f)
	})
	t.Run("a recognition's cancelled withdrawal", func(t *testing.T) {
		f := mustChain(t)
		f.mustRaiseLevel(FeatureLevelStanding)
		for _, op := range []struct{ op, at string }{
			{record.OpRecognize, ""}, {record.OpUnrecognize, "2028-01-01T00:00:00Z"}, {record.OpRecognize, "2028-01-01T00:00:00Z"},
			{record.OpUnrecognize, "2028-01-01T00:00:00Z"}, {record.OpUnrecognize, ""},
		} {
			f.tick()
			m := map[string]any{"framework": fwID, "recognized": other}
			if op.at != "" {
				m["effectiveAt"] = op.at
			}
			f.mustAccept(f.govSign(op.op, m))
		}
		d, err := f.s.DecideRecognition(decide.RecognitionQuestion{Framework: fwID, Recognized: other, At: f.now.Add(time.Minute)}, f.now)
		if err != nil {
			t.Fatal(err)
		}
		if d.Recognizes {
			t.Error("withdrawn from now: recognizes")
		}
	})
}

// Past maxStatusEvents an accreditor that scheduled its own revocation
// far ahead does not shut its superiors out: a revocation in force now is
// taken while none is, and after it nothing more.
func TestStatusEventsBoundLeavesSuperiorsARevocation(t *testing.T) {
	for _, by := range []string{"root", "governance"} {
		t.Run(by, func(t *testing.T) {
			f := mustChain(t)
			f.mustRaiseLevel(FeatureLevelStanding)
			f.tick()
			f.mustAccept(f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2028-12-31T00:00:00Z", "reason": "planned"}))
			for i := 2; i < maxStatusEvents; i++ { // the grant and the revocation hold two
				f.tick()
				op := record.OpSuspend
				if i%2 == 1 {
					op = record.OpReinstate
				}
				f.mustAccept(f.sign(f.qa, op, map[string]any{"accreditation": f.collegeAcc}))
			}
			f.tick()
			if d := f.ask(f.now, 0); !d.Authorized {
				t.Fatalf("the college before the superiors act: %s", d.Reason)
			}
			revoke := map[string]any{"accreditation": f.collegeAcc, "reason": "fraud"}
			op := f.govSign(record.OpRevoke, revoke)
			if by == "root" {
				op = f.sign(f.root, record.OpRevoke, revoke)
			}
			f.mustAccept(op)
			f.tick()
			if d := f.ask(f.now, 0); d.Authorized || d.Reason != record.ReasonRevoked {
				t.Errorf("after %s's revocation: %v (%s)", by, d.Authorized, d.Reason)
			}
			if r := f.apply(f.govSign(record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-01-01T00:00:00Z"})); r.Accepted {
				t.Error("a revocation past the bound, one in force already, was taken")
			}
		})
	}
}

// The apply reads a received listing the batch has not written from the
// listings in memory, and one it wrote from the batch (storeReader.Received):
// a grant to a new subject, its grantor's backdated revocation and a
// re-grant into the revoked past, in one batch, are judged as they would be
// one by one.
func TestGrantStandingReadsItsBatchListing(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelStanding)
	subject := mustKey(t, record.KeyEd25519)
	grant := func(validFrom string) []byte {
		return f.sign(f.qa, record.OpAccredit, map[string]any{
			"framework": fwID, "accreditor": f.qa.DID, "subject": subject.DID, "action": record.ActionIssue,
			"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
			"validFrom": validFrom, "validUntil": "2029-01-01T00:00:00Z",
		})
	}
	f.tick()
	first := grant("2024-06-01T00:00:00Z")
	revoke := f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": record.CIDOf(first), "effectiveAt": "2025-01-01T00:00:00Z"})
	again := grant("2024-12-01T00:00:00Z")
	var entries []Entry
	for _, jws := range [][]byte{first, revoke, again} {
		f.index++
		entries = append(entries, Entry{Index: f.index, Time: f.now, Data: EncodeOperation(jws)})
	}
	f.entries = append(f.entries, entries...)
	res := f.s.ApplyBatch(entries)
	if f.s.apply.listings == nil {
		t.Fatal("no listings in memory: the batch read them all from Pebble")
	}
	if !res[0].Accepted || !res[1].Accepted {
		t.Fatalf("the grant and its revocation: %+v / %+v", res[0], res[1])
	}
	if res[2].Accepted || !strings.Contains(res[2].Reason, "is revoked from 2025-01-01T00:00:00Z by did:") {
		t.Fatalf("the re-grant into the revoked past, in the same batch: %+v", res[2])
	}
}

// TestBindsRememberedPerPlacer: grantStanding remembers whether a placer
// binds the grantor, per placer: a peer agency's suspension binds nothing,
// the root's after it on the same accreditation does, and both the
// leader's check and the apply refuse the grant past it.
func TestBindsRememberedPerPlacer(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelStanding)
	f.tick()
	block := f.peerSuspendedGrant() // a peer's suspension: binds nothing
	f.tick()
	f.mustAccept(f.sign(f.root, record.OpSuspend, map[string]any{"accreditation": block})) // the root's: above the grantor
	f.tick()
	grant := f.regrant("2026-03-02T00:00:00Z")
	if r := f.s.Check(grant, f.now); r == nil || r.Accepted || !strings.Contains(r.Reason, "above the grantor") {
		t.Fatalf("the check: %+v, want refused past the root's suspension", r)
	}
	if r := f.apply(grant); r.Accepted || !strings.Contains(r.Reason, "above the grantor") {
		t.Fatalf("the apply: accepted %t %s, want refused past the root's suspension", r.Accepted, r.Reason)
	}
}
