package registry

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// The layout docs/OPERATIONS.md shows: a did:web governance member with a
// key listed in the genesis, beside did:key members.
const (
	boardDID    = "did:web:board.example"
	fw2ID       = "https://example.org/frameworks/law"
	root3DID    = "did:web:root3.example"   // a root of fw2, not registered
	agency2DID  = "did:web:agency2.example" // accredited to accredit in fw2, not registered
	college2DID = "did:web:college2.example"
)

// authorityFixture is a consortium whose first member is boardDID, at this
// build's feature level, with two frameworks: fw1 (fwID) whose root is a
// did:key, and fw2 whose roots are root2 (a did:web governance
// registered) and root3DID, where root2 accredits agency2DID to accredit
// and college2DID to issue.
type authorityFixture struct {
	*harness
	board, root1, root2 *record.Signer
	agency2Acc          string // agency2DID's accreditation in fw2
}

func mustAuthority(t *testing.T, threshold int) *authorityFixture {
	t.Helper()
	return mustAuthorityAt(t, threshold, FeatureLevel)
}

// mustAuthorityAt is mustAuthority at the given feature level.
func mustAuthorityAt(t *testing.T, threshold, level int) *authorityFixture {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), now: t0}
	f := &authorityFixture{harness: h, board: mustAs(t, mustKey(t, record.KeyEd25519), boardDID+"#gov-1"), root1: mustKey(t, record.KeyEd25519)}
	g := record.Genesis{Consortium: "test consortium", Threshold: threshold, Members: []record.Member{{ID: boardDID, Keys: []json.RawMessage{mustJWK(t, f.board)}}}}
	h.gov = append(h.gov, f.board)
	h.addMembers(&g, record.KeyEd25519, 2)
	h.openGenesis(g)
	if r := h.applyCommand(EncodeFeatureLevel(level)); !r.Accepted {
		t.Fatalf("raise the feature level: %+v", r)
	}
	f.root2 = mustAs(t, mustKey(t, record.KeyEd25519), "did:web:root2.example#k1")
	h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Health", "roots": []string{f.root1.DID}}))
	h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": fw2ID, "name": "Law", "roots": []string{f.root2.DID, root3DID}}))
	h.mustAccept(h.govSign(record.OpRegisterEntity, map[string]any{"id": f.root2.DID, "name": "Law root", "keys": []json.RawMessage{mustJWK(t, f.root2)}}))
	grant := func(subject, action string) string {
		return h.mustAccept(h.sign(f.root2, record.OpAccredit, map[string]any{
			"framework": fw2ID, "accreditor": f.root2.DID, "subject": subject, "action": action,
			"resources": []string{law}, "validFrom": "2024-01-01T00:00:00Z",
		})).ID
	}
	f.agency2Acc = grant(agency2DID, record.ActionAccredit)
	grant(college2DID, record.ActionIssue)
	return f
}

func mustAs(t testing.TB, s *record.Signer, kid string) *record.Signer {
	t.Helper()
	as, err := s.WithKID(kid)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func mustJWK(t testing.TB, s *record.Signer) json.RawMessage {
	t.Helper()
	k, err := s.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// register signs, as signer, a registerEntity binding key's public key to
// key's DID.
func (f *authorityFixture) register(signer, key *record.Signer) []byte {
	return f.sign(signer, record.OpRegisterEntity, map[string]any{"id": key.DID, "name": "Entity", "keys": []json.RawMessage{mustJWK(f.t, key)}})
}

func (f *authorityFixture) expect(r *record.Result, code, reasonHas string) {
	f.t.Helper()
	switch {
	case code == "" && !r.Accepted:
		f.t.Fatalf("rejected: %s: %s", r.Code, r.Reason)
	case code != "" && (r.Accepted || r.Code != code):
		f.t.Fatalf("got %+v, want code %s", r, code)
	case !strings.Contains(r.Reason, reasonHas):
		f.t.Fatalf("reason %q does not say %q", r.Reason, reasonHas)
	}
}

// Nobody binds keys to an identifier that holds authority it does not
// control (SPEC §3): the takeovers the hardening issue describes are
// refused, and the paths that remain (governance, the entity itself, an
// accreditor registering a DID that holds no authority) are accepted.
func TestWhoMayBindKeys(t *testing.T) {
	attacker := func(t *testing.T, did string) *record.Signer {
		return mustAs(t, mustKey(t, record.KeyEd25519), did+"#gov-1")
	}
	for _, tc := range []struct {
		name      string
		op        func(t *testing.T, f *authorityFixture) []byte // may change the state first
		code      string
		reasonHas string
		then      func(t *testing.T, f *authorityFixture)
	}{{
		name: "a root registers a governance member",
		op: func(t *testing.T, f *authorityFixture) []byte {
			return f.register(f.root1, attacker(t, boardDID))
		},
		code: record.CodeNotAuthorized, reasonHas: "governance member",
		then: func(t *testing.T, f *authorityFixture) {
			// Signing as the member with a key of one's own fails; the
			// member's genesis key still governs.
			fake := attacker(t, boardDID)
			r := f.apply(f.sign(fake, record.OpCreateFramework, map[string]any{"id": "https://example.org/frameworks/fake", "name": "Fake"}))
			if r.Accepted || (r.Code != record.CodeBadSignature && r.Code != record.CodeUnknownKey) {
				t.Fatalf("createFramework signed as the member with another key: %+v", r)
			}
			f.mustAccept(f.sign(f.board, record.OpCreateFramework, map[string]any{"id": "https://example.org/frameworks/real", "name": "Real"}))
		},
	}, {
		name: "a root registers a root of another framework",
		op: func(t *testing.T, f *authorityFixture) []byte {
			return f.register(f.root1, attacker(t, root3DID))
		},
		code: record.CodeNotAuthorized, reasonHas: "a root accreditor of framework " + fw2ID,
		then: func(t *testing.T, f *authorityFixture) {
			r := f.apply(f.sign(attacker(t, root3DID), record.OpAccredit, map[string]any{
				"framework": fw2ID, "accreditor": root3DID, "subject": mustKey(t, record.KeyEd25519).DID, "action": record.ActionIssue, "resources": []string{law},
			}))
			if r.Accepted || r.Code != record.CodeUnknownKey {
				t.Fatalf("a grant in the root's name: %+v", r)
			}
		},
	}, {
		name: "a root registers an accreditor of another framework",
		op: func(t *testing.T, f *authorityFixture) []byte {
			return f.register(f.root1, attacker(t, agency2DID))
		},
		code: record.CodeNotAuthorized, reasonHas: "the subject of accreditation",
		then: func(t *testing.T, f *authorityFixture) {
			r := f.apply(f.sign(attacker(t, agency2DID), record.OpAccredit, map[string]any{
				"framework": fw2ID, "accreditor": agency2DID, "subject": mustKey(t, record.KeyEd25519).DID, "action": record.ActionIssue, "resources": []string{law}, "parent": f.agency2Acc,
			}))
			if r.Accepted || r.Code != record.CodeUnknownKey {
				t.Fatalf("a grant in the accreditor's name: %+v", r)
			}
		},
	}, {
		name: "an accreditor of another framework registers an issuer of this one",
		op: func(t *testing.T, f *authorityFixture) []byte {
			return f.register(f.root1, attacker(t, college2DID))
		},
		code: record.CodeNotAuthorized, reasonHas: "granted by did:web:root2.example",
	}, {
		name: "a root registers a DID it accredited itself",
		op: func(t *testing.T, f *authorityFixture) []byte {
			college := mustAs(t, mustKey(t, record.KeyEd25519), "did:web:college1.example#k1")
			f.mustAccept(f.sign(f.root1, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.root1.DID, "subject": college.DID, "action": record.ActionIssue, "resources": []string{nursing},
			}))
			return f.register(f.root1, college)
		},
	}, {
		name: "a root registers a brand-new DID, which then rotates its own keys",
		op: func(t *testing.T, f *authorityFixture) []byte {
			fresh := mustAs(t, mustKey(t, record.KeyEd25519), "did:web:new.example#k1")
			f.mustAccept(f.register(f.root1, fresh))
			next := mustAs(t, mustKey(t, record.KeyP256), "did:web:new.example#k2")
			return f.sign(fresh, record.OpRotateKeys, map[string]any{"id": fresh.DID, "keys": []json.RawMessage{mustJWK(t, next)}})
		},
	}, {
		name: "a registrar rotates the keys of the DID it registered",
		op: func(t *testing.T, f *authorityFixture) []byte {
			fresh := mustAs(t, mustKey(t, record.KeyEd25519), "did:web:new.example#k1")
			f.mustAccept(f.register(f.root1, fresh))
			return f.sign(f.root1, record.OpRotateKeys, map[string]any{"id": fresh.DID, "keys": []json.RawMessage{mustJWK(t, attacker(t, fresh.DID))}})
		},
		code: record.CodeNotAuthorized, reasonHas: "rotated with one of its current keys",
	}, {
		name: "governance registers a root of another framework",
		op: func(t *testing.T, f *authorityFixture) []byte {
			return f.govSign(record.OpRegisterEntity, map[string]any{"id": root3DID, "name": "Root 3", "keys": []json.RawMessage{mustJWK(t, attacker(t, root3DID))}})
		},
	}, {
		name: "governance binds new keys to a member",
		op: func(t *testing.T, f *authorityFixture) []byte {
			return f.govSign(record.OpRegisterEntity, map[string]any{"id": boardDID, "name": "Nursing board", "keys": []json.RawMessage{mustJWK(t, mustAs(t, mustKey(t, record.KeyEd25519), boardDID+"#gov-2"))}})
		},
		then: func(t *testing.T, f *authorityFixture) {
			// The genesis key is replaced by the one governance bound.
			r := f.apply(f.sign(f.board, record.OpCreateFramework, map[string]any{"id": "https://example.org/frameworks/old-key", "name": "Old key"}))
			if r.Accepted || r.Code != record.CodeUnknownKey {
				t.Fatalf("the member's genesis key after governance replaced it: %+v", r)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustAuthority(t, 1)
			op := tc.op(t, f)
			before := f.digest()
			r := f.apply(op)
			f.expect(r, tc.code, tc.reasonHas)
			if tc.code != "" && f.digest() != before {
				t.Fatal("a refused operation changed the state")
			}
			if tc.then != nil {
				tc.then(t, f)
			}
		})
	}
}

// A governance member's keys change only through M of N governance: with
// a threshold of two, the member alone may not rotate them, nor update
// them by registering itself; two members may.
func TestMemberKeysChangeOnlyThroughGovernance(t *testing.T) {
	f := mustAuthority(t, 2)
	next := mustAs(t, mustKey(t, record.KeyEd25519), boardDID+"#gov-2")
	f.mustAccept(f.govSign(record.OpRegisterEntity, map[string]any{"id": boardDID, "name": "Nursing board"}))
	// A registration without keys binds none: the genesis key still signs.
	rotate := func(signers ...*record.Signer) *record.Result {
		jws, err := record.SignJSON(f.payload(record.OpRotateKeys, map[string]any{"id": boardDID, "keys": []json.RawMessage{mustJWK(t, next)}}), signers...)
		if err != nil {
			t.Fatal(err)
		}
		return f.apply(jws)
	}
	f.expect(rotate(f.board), record.CodeNotAuthorized, "change only through governance")
	f.expect(rotate(f.board, f.gov[1]), "", "")
	// The new key now signs for the member, with another member.
	f.now = f.now.Add(time.Second)
	jws, err := record.SignJSON(f.payload(record.OpCreateFramework, map[string]any{"id": "https://example.org/frameworks/new-key", "name": "New key"}), next, f.gov[2])
	if err != nil {
		t.Fatal(err)
	}
	f.mustAccept(jws)
}

// An issuer whose accreditation ended or whose chain broke can still make
// its credentials less valid in its existing lists: set revocation and
// suspension bits. A new list, lifting a suspension, growing a list or
// changing a message list still need an active issue accreditation, and
// the refusal says which.
func TestRevocationAfterTheAccreditationEnds(t *testing.T) {
	ends := map[string]func(f *listFixture){
		"chain broken": func(f *listFixture) {
			f.mustAccept(f.sign(f.root, record.OpRevoke, map[string]any{"accreditation": f.qaAcc, "reason": "withdrawn"}))
		},
		"accreditation expired": func(f *listFixture) { f.now = date(2029, 6, 1) },
	}
	for name, end := range ends {
		t.Run(name, func(t *testing.T) {
			f := &listFixture{mustChain(t)}
			if r := f.applyCommand(EncodeFeatureLevel(FeatureLevel)); !r.Accepted {
				t.Fatalf("raise the feature level: %+v", r)
			}
			f.now = date(2026, 4, 1)
			zero := make([]byte, record.MinStatusListEntries/8)
			suspended := make([]byte, record.MinStatusListEntries/8)
			record.SetStatus(suspended, 7, 1, 1)
			msgs := []record.StatusMessage{{Status: "0x0", Message: "valid"}, {Status: "0x1", Message: "pending"}, {Status: "0x2", Message: "suspended"}, {Status: "0x3", Message: "revoked"}}
			current := map[string]string{}
			for _, l := range []struct {
				id       string
				purposes []string
				size     int
				msgs     []record.StatusMessage
				bits     []byte
			}{
				{"rev", []string{record.PurposeRevocation}, 1, nil, zero},
				{"sus", []string{record.PurposeSuspension}, 1, nil, suspended},
				{"msg", []string{record.PurposeMessage}, 2, msgs, make([]byte, record.MinStatusListEntries/4)},
			} {
				r := f.publish(f.college, l.id, "", l.purposes, l.size, l.msgs, l.bits)
				if !r.Accepted {
					t.Fatalf("list %s: %s: %s", l.id, r.Code, r.Reason)
				}
				current[l.id] = mustCurrent(t, f.s, f.college.DID, l.id)
			}
			end(f)
			if d := f.ask(f.now, 0); d.Authorized {
				t.Fatalf("the college is still authorized: %+v", d)
			}

			revoked := make([]byte, record.MinStatusListEntries/8)
			record.SetStatus(revoked, 42, 1, 1)
			bigger := make([]byte, record.MinStatusListEntries/4)
			record.SetStatus(bigger, 42, 1, 1)
			two := make([]byte, record.MinStatusListEntries/4)
			record.SetStatus(two, 3, 2, 3)
			for _, tc := range []struct {
				name                string
				list                string
				purposes            []string
				size                int
				msgs                []record.StatusMessage
				bits                []byte
				code, reasonHas     string
				advancesCurrentList bool
			}{
				{name: "revoke an entry", list: "rev", purposes: []string{record.PurposeRevocation}, size: 1, bits: revoked},
				{name: "suspend another entry", list: "sus", purposes: []string{record.PurposeSuspension}, size: 1, bits: func() []byte {
					b := make([]byte, record.MinStatusListEntries/8)
					record.SetStatus(b, 7, 1, 1)
					record.SetStatus(b, 8, 1, 1)
					return b
				}()},
				{name: "lift a suspension", list: "sus", purposes: []string{record.PurposeSuspension}, size: 1, bits: zero,
					code: record.CodeNotAuthorized, reasonHas: "lifting a suspension needs"},
				{name: "a new list", list: "new", purposes: []string{record.PurposeRevocation}, size: 1, bits: zero,
					code: record.CodeNotAuthorized, reasonHas: "a new status list needs one"},
				{name: "grow a list", list: "rev", purposes: []string{record.PurposeRevocation}, size: 1, bits: bigger,
					code: record.CodeNotAuthorized, reasonHas: "growing list rev"},
				{name: "change a message list", list: "msg", purposes: []string{record.PurposeMessage}, size: 2, msgs: msgs, bits: two,
					code: record.CodeNotAuthorized, reasonHas: "purpose message"},
			} {
				before := f.digest()
				r := f.publish(f.college, tc.list, current[tc.list], tc.purposes, tc.size, tc.msgs, tc.bits)
				switch {
				case tc.code == "" && !r.Accepted:
					t.Fatalf("%s: rejected: %s: %s", tc.name, r.Code, r.Reason)
				case tc.code != "" && (r.Accepted || r.Code != tc.code || !strings.Contains(r.Reason, tc.reasonHas)):
					t.Fatalf("%s: got %+v, want %s saying %q", tc.name, r, tc.code, tc.reasonHas)
				case tc.code != "" && f.digest() != before:
					t.Fatalf("%s: a refused version changed the state", tc.name)
				}
				if r.Accepted {
					current[tc.list] = mustCurrent(t, f.s, f.college.DID, tc.list)
				}
			}
			if e, err := f.s.CheckStatus(f.college.DID, "rev", 42, time.Time{}); err != nil || e.Valid {
				t.Fatalf("entry 42 after the revocation: %+v %v", e, err)
			}
		})
	}
}

func mustCurrent(t *testing.T, s *State, issuer, list string) string {
	t.Helper()
	v, err := s.StatusList(issuer, list)
	if err != nil {
		t.Fatal(err)
	}
	return v.Current
}
