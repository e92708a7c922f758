package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// Attacks on who may bind keys to an identifier (feature level 3) and on
// the leader's check before proposing (State.Check), each played against
// the real state: every test asserts that the attack fails, as SPEC §3 and
// docs/OPERATIONS.md promise.

// A squatter that took over a governance member's DID under the first
// release's rules (an active accreditor registered the member's DID with
// its own key) signs, still before level 3, a rotateKeys of the member's
// DID as the member. The level-3 migration follows the history from the
// registration (lastKeyBinder), so the rotation keeps the squatter as the
// binder, and after the raise the member's signatures are checked against
// its genesis keys again: "any other entity record of a member's DID ...
// names no key of it".
func TestMigrationDropsASquattersSelfRotatedMemberKeys(t *testing.T) {
	f := mustAuthorityAt(t, 2, FeatureLevelEntityLocation)
	squatter := mustAs(t, mustKey(t, record.KeyEd25519), boardDID+"#sq-1")
	f.mustAccept(f.register(f.root1, squatter)) // the first release's rule
	// The squatter "rotates" the member's keys, signing as the member.
	next := mustAs(t, mustKey(t, record.KeyEd25519), boardDID+"#sq-2")
	f.now = f.now.Add(time.Second)
	f.mustAccept(f.sign(squatter, record.OpRotateKeys, map[string]any{"id": boardDID, "keys": []json.RawMessage{mustJWK(t, next)}}))

	if r := f.applyCommand(EncodeFeatureLevel(FeatureLevelKeyAuthority)); !r.Accepted || r.Duplicate {
		t.Fatalf("raise: %+v", r)
	}
	ent, err := f.s.Entity(boardDID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the raise: keysBoundBy = %q", ent.KeysBoundBy)

	gov := func(signers ...*record.Signer) *record.Result {
		f.now = f.now.Add(time.Second)
		id := fmt.Sprintf("https://example.org/frameworks/x-%d", f.now.Unix())
		jws, err := record.SignJSON(f.payload(record.OpCreateFramework, map[string]any{"id": id, "name": "X"}), signers...)
		if err != nil {
			t.Fatal(err)
		}
		return f.apply(jws)
	}
	// The squatter's key must not count as the member's signature.
	if r := gov(next, f.gov[1]); r.Accepted {
		t.Errorf("after level 3 the squatter's key signs for governance member %s (keysBoundBy %q): %+v", boardDID, ent.KeysBoundBy, r)
	}
	// The member's genesis key must sign for it again.
	if r := gov(f.board, f.gov[2]); !r.Accepted {
		t.Errorf("after level 3 the member's genesis key is refused: %s: %s", r.Code, r.Reason)
	}
}

// "A did:key carries its own key; a registration of it binds no other"
// (OPERATIONS.md): a registration of a did:key that lists any other key
// is refused, so no record names keys the did:key's controller never had.
func TestNoForeignKeysOnADidKey(t *testing.T) {
	f := mustAuthority(t, 1)
	victim := mustKey(t, record.KeyEd25519) // a college's did:key
	attacker := mustAs(t, mustKey(t, record.KeyEd25519), victim.DID+"#k1")
	r := f.apply(f.sign(f.root1, record.OpRegisterEntity, map[string]any{
		"id": victim.DID, "name": "Victim College", "keys": []json.RawMessage{mustJWK(t, attacker)},
	}))
	if !r.Accepted {
		t.Logf("registration refused: %s %s", r.Code, r.Reason)
		return
	}
	ent, err := f.s.Entity(victim.DID)
	if err != nil {
		t.Fatal(err)
	}
	attackerJWK := mustJWK(t, attacker)
	var canon json.RawMessage
	if k, err := record.ParsePublicJWK(attackerJWK); err == nil {
		canon, _ = k.MarshalJSON()
	}
	if slices.ContainsFunc(ent.Keys, func(k json.RawMessage) bool { return string(k) == string(canon) }) {
		t.Errorf("a third party (%s) bound a key that is not the did:key's own to %s: record keys %s, keysBoundBy %q",
			f.root1.DID, victim.DID, ent.Keys, ent.KeysBoundBy)
	}
	// The controller cannot replace them.
	f.now = f.now.Add(time.Second)
	if r := f.apply(f.sign(victim, record.OpRotateKeys, map[string]any{"id": victim.DID, "keys": []json.RawMessage{mustJWK(t, victim)}})); r.Accepted {
		t.Logf("the controller rotated: ok")
	} else {
		t.Logf("the controller cannot rotate them: %s %s", r.Code, r.Reason)
	}
}

// Check must never refuse what the apply accepts. The apply raises the
// in-memory feature level as soon as it applies the raise entry, before
// the batch that holds the level-3 migration commits; a check that runs
// in that window would see level 3 over pre-migration records and refuse
// a member's valid signature. It decides nothing in the window instead.
func TestCheckDecidesNothingWhileALevelRaiseIsUncommitted(t *testing.T) {
	f := mustAuthorityAt(t, 1, FeatureLevelEntityLocation)
	next := mustAs(t, mustKey(t, record.KeyEd25519), boardDID+"#gov-2")
	f.mustAccept(f.govSign(record.OpRegisterEntity, map[string]any{"id": boardDID, "name": "Nursing board", "keys": []json.RawMessage{mustJWK(t, next)}}))

	// One raft batch: the raise, then enough work for the apply to take a
	// while before it commits.
	f.now = f.now.Add(time.Second)
	entries := []Entry{{Index: f.index + 1, Time: f.now, Data: EncodeFeatureLevel(FeatureLevelKeyAuthority)}}
	for i := range 400 {
		jws := f.sign(f.root1, record.OpAccredit, map[string]any{"framework": fwID, "accreditor": f.root1.DID,
			"subject": fmt.Sprintf("did:web:c%d.example", i), "action": record.ActionIssue, "resources": []string{nursing}})
		entries = append(entries, Entry{Index: f.index + 2 + uint64(i), Time: f.now, Data: EncodeOperation(jws)})
	}
	raiseIndex := f.index + 1
	f.index += uint64(len(entries))
	// The member's operation, signed with the key governance bound.
	op := f.sign(next, record.OpCreateFramework, map[string]any{"id": "https://example.org/frameworks/member", "name": "Member"})

	var mu sync.Mutex
	var inWindow []*record.Result
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if f.s.ClusterFeatureLevel() >= FeatureLevelKeyAuthority && f.s.AppliedIndex() < raiseIndex {
				res := f.s.Check(op, f.now)
				if f.s.AppliedIndex() < raiseIndex { // still inside the window
					mu.Lock()
					inWindow = append(inWindow, res)
					mu.Unlock()
				}
			}
		}
	})
	f.s.ApplyBatch(entries)
	close(done)
	wg.Wait()
	if len(inWindow) == 0 {
		t.Skip("no check ran inside the window (timing); rerun")
	}
	refused := 0
	var sample *record.Result
	for _, r := range inWindow {
		if r != nil && !r.Duplicate {
			refused++
			sample = r
		}
	}
	after := f.s.Check(op, f.now)
	applied := f.apply(op)
	t.Logf("checks inside the window: %d, refused: %d; check after commit: %v; apply accepted: %v", len(inWindow), refused, after, applied.Accepted)
	if refused > 0 && applied.Accepted {
		t.Errorf("Check refused %d times (e.g. %s: %s) a member's operation the apply accepts", refused, sample.Code, sample.Reason)
	}
}

// A refused operation never reaches the apply, which takes the operations
// it applies out of the parse memory. Forged operations cost their sender
// nothing and may each be MaxOperationSize long: the check forgets what it
// refuses, and the memory has a byte budget besides.
func TestRefusedOperationsLeaveTheParseMemory(t *testing.T) {
	f := mustAuthority(t, 1)
	forger := mustAs(t, mustKey(t, record.KeyEd25519), "did:web:nobody.example#k1")
	const n = 200
	big := make([]byte, 180<<10)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	var before, after runtimeMem
	before.read()
	for i := range n {
		jws := f.sign(forger, record.OpRegisterEntity, map[string]any{"id": fmt.Sprintf("did:web:e%d.example", i), "name": string(big)})
		if len(jws) > record.MaxOperationSize {
			t.Fatalf("operation of %d bytes", len(jws))
		}
		if err := f.s.PreVerify(jws); err != nil { // what Submit does
			t.Fatal(err)
		}
		if res := f.s.Check(jws, f.now); res == nil || res.Accepted {
			t.Fatalf("a forged operation passed the check: %+v", res)
		}
	}
	after.read()
	retained := int64(after.heap) - int64(before.heap)
	per := retained / n
	t.Logf("retained after %d refused operations: %d MiB (%d KiB each); s.parsed holds %d; at its 4096 entries: about %d MiB",
		n, retained>>20, per>>10, f.s.verify.parsed.Len(), per*4096>>20)
	if f.s.verify.parsed.Len() > 0 && retained > 16<<20 {
		t.Errorf("refused operations stay in memory: %d MiB for %d of them (%d in s.parsed); 4096 would hold about %d MiB",
			retained>>20, n, f.s.verify.parsed.Len(), per*4096>>20)
	}
}

type runtimeMem struct{ heap uint64 }

func (m *runtimeMem) read() {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heap = ms.HeapAlloc
}

// OPERATIONS.md tells an accreditor that accredits an entity someone else
// registered to "check keysBoundBy first". A registrar that registered a
// DID with a key of its own and rotates that DID's keys as the DID stays
// the binder: keys descend from whoever bound the first ones.
func TestSelfRotationKeepsWhoBoundTheKeys(t *testing.T) {
	f := mustAuthority(t, 1)
	const did = "did:web:college-new.example"
	squat := mustAs(t, mustKey(t, record.KeyEd25519), did+"#k1")
	f.mustAccept(f.register(f.root1, squat)) // keysBoundBy: root1
	next := mustAs(t, mustKey(t, record.KeyEd25519), did+"#k2")
	f.now = f.now.Add(time.Second)
	f.mustAccept(f.sign(squat, record.OpRotateKeys, map[string]any{"id": did, "keys": []json.RawMessage{mustJWK(t, next)}}))
	ent, err := f.s.Entity(did)
	if err != nil {
		t.Fatal(err)
	}
	if ent.KeysBoundBy == did {
		t.Errorf("keys %s chose (registered by it, then rotated with its own key) now read keysBoundBy %q: the registrar is gone from the record an accreditor is told to check",
			f.root1.DID, ent.KeysBoundBy)
	}
}

// A third party may not register a did:key that holds authority elsewhere
// (the did:key root of another framework, a did:key governance member):
// the authority rule holds for did:keys too.
func TestThirdPartyCannotRegisterAnAuthorityHoldingDidKey(t *testing.T) {
	f := mustAuthority(t, 1)
	// root2 (a root of fw2) registers root1, the did:key root of fw1.
	attacker := mustAs(t, mustKey(t, record.KeyEd25519), f.root1.DID+"#k1")
	r := f.apply(f.sign(f.root2, record.OpRegisterEntity, map[string]any{
		"id": f.root1.DID, "name": "Impostor Health Board", "metadata": map[string]any{"homepage": "https://impostor.example"},
		"keys": []json.RawMessage{mustJWK(t, attacker)},
	}))
	if r.Accepted {
		ent, _ := f.s.Entity(f.root1.DID)
		t.Errorf("%s registered %s, a root of %s, as %q with keys %s (keysBoundBy %q)", f.root2.DID, f.root1.DID, fwID, ent.Name, ent.Keys, ent.KeysBoundBy)
	}
	// The same for a governance member that is a did:key.
	member := f.gov[1]
	r = f.apply(f.sign(f.root2, record.OpRegisterEntity, map[string]any{
		"id": member.DID, "name": "Impostor Member", "keys": []json.RawMessage{mustJWK(t, mustAs(t, mustKey(t, record.KeyEd25519), member.DID+"#k1"))},
	}))
	if r.Accepted {
		ent, _ := f.s.Entity(member.DID)
		t.Errorf("%s registered governance member %s as %q with keys %s (keysBoundBy %q)", f.root2.DID, member.DID, ent.Name, ent.Keys, ent.KeysBoundBy)
	}
}

// The apply is a pure function of the log: how raft cuts the log into
// batches must not change results or state. The sequence mixes the level
// raise (whose migration writes member records into the batch), the
// member then signing with the key governance bound, a third party's
// registration, self-rotation and a grant that closes a registration, so
// that later entries read what earlier entries of the same batch wrote
// (dirty keys) and what the record cache holds.
func TestBatchBoundariesDoNotChangeTheState(t *testing.T) {
	f := mustAuthorityAt(t, 1, FeatureLevelEntityLocation)
	other, err := Open(t.TempDir(), f.raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	if err := other.Restore(bytes.NewReader(snapshotBytes(t, f.s))); err != nil {
		t.Fatal(err)
	}
	// Warm the read side of one state, so its record cache holds records
	// the batch then changes.
	f.decide(decide.Question{Entity: college2DID, Framework: fw2ID, Action: record.ActionIssue, Resource: law})
	if _, err := f.s.Entity(f.root2.DID); err != nil {
		t.Fatal(err)
	}

	next := mustAs(t, mustKey(t, record.KeyEd25519), boardDID+"#gov-2")
	x := mustAs(t, mustKey(t, record.KeyEd25519), "did:web:x.example#k1")
	y := mustAs(t, mustKey(t, record.KeyEd25519), "did:web:y.example#k1")
	y2 := mustAs(t, mustKey(t, record.KeyEd25519), "did:web:y.example#k2")
	z := mustAs(t, mustKey(t, record.KeyEd25519), "did:web:z.example#k1")
	f.now = f.now.Add(time.Second)
	cmds := [][]byte{
		EncodeOperation(f.govSign(record.OpRegisterEntity, map[string]any{"id": boardDID, "name": "Board", "keys": []json.RawMessage{mustJWK(t, next)}})),
		EncodeOperation(f.register(f.root1, x)),
		EncodeFeatureLevel(FeatureLevelKeyAuthority),
		EncodeOperation(f.sign(next, record.OpCreateFramework, map[string]any{"id": "https://example.org/frameworks/n", "name": "N"})),
		EncodeOperation(f.sign(f.board, record.OpCreateFramework, map[string]any{"id": "https://example.org/frameworks/g", "name": "G"})),
		EncodeOperation(f.register(f.root1, y)),
		EncodeOperation(f.sign(y, record.OpRotateKeys, map[string]any{"id": y.DID, "keys": []json.RawMessage{mustJWK(t, y2)}})),
		EncodeOperation(f.sign(y, record.OpUpdateEntity, map[string]any{"id": y.DID, "name": "old key"})),
		EncodeOperation(f.sign(y2, record.OpUpdateEntity, map[string]any{"id": y.DID, "name": "new key"})),
		EncodeOperation(f.sign(f.root2, record.OpAccredit, map[string]any{"framework": fw2ID, "accreditor": f.root2.DID, "subject": z.DID, "action": record.ActionIssue, "resources": []string{law}})),
		EncodeOperation(f.register(f.root1, z)),
		EncodeOperation(f.sign(f.root2, record.OpRevoke, map[string]any{"accreditation": f.agency2Acc})),
		EncodeOperation(f.register(f.root1, mustAs(t, mustKey(t, record.KeyEd25519), agency2DID+"#k1"))),
	}
	var one, batch []Entry
	for i, c := range cmds {
		e := Entry{Index: f.index + 1 + uint64(i), Time: f.now, Data: c}
		one = append(one, e)
		batch = append(batch, e)
	}
	var single []*record.Result
	for _, e := range one {
		single = append(single, f.s.ApplyBatch([]Entry{e})[0])
	}
	together := other.ApplyBatch(batch)
	for i := range single {
		a, b := single[i], together[i]
		t.Logf("entry %d: %s accepted=%v %s", i, a.Op, a.Accepted, a.Code)
		if a.Accepted != b.Accepted || a.Code != b.Code || a.ID != b.ID {
			t.Errorf("entry %d decided differently: one by one %v %s %q, in one batch %v %s %q", i, a.Accepted, a.Code, a.Reason, b.Accepted, b.Code, b.Reason)
		}
	}
	d1, _ := f.s.StateDigest()
	d2, _ := other.StateDigest()
	if d1 != d2 {
		t.Errorf("state digests differ: %s vs %s", d1, d2)
	}
}

// An issuer whose accreditation ended may set revocation bits, but not
// make its list valid for longer: republishing it valid until 2099, about
// to expire (after which verifiers fail closed), is refused.
func TestExIssuerCannotExtendListValidity(t *testing.T) {
	f := &listFixture{mustChain(t)}
	if r := f.applyCommand(EncodeFeatureLevel(FeatureLevel)); !r.Accepted {
		t.Fatalf("raise: %+v", r)
	}
	f.now = date(2026, 4, 1)
	vc := func(until string, bits []byte) []byte {
		raw, err := record.StatusListCredential(f.college.DID, "rev", []string{record.PurposeRevocation}, 1, nil, 300000, bits)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		m["validFrom"] = "2026-04-01T00:00:00Z"
		m["validUntil"] = until
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	zero := make([]byte, record.MinStatusListEntries/8)
	if r := f.publishVC(f.college, f.college, "rev", "", vc("2026-06-01T00:00:00Z", zero)); !r.Accepted {
		t.Fatalf("first version: %s %s", r.Code, r.Reason)
	}
	f.mustAccept(f.sign(f.root, record.OpRevoke, map[string]any{"accreditation": f.qaAcc, "reason": "fraud"}))
	cur := mustCurrent(t, f.s, f.college.DID, "rev")
	r := f.publishVC(f.college, f.college, "rev", cur, vc("2099-01-01T00:00:00Z", zero))
	if r.Accepted {
		v, _ := f.s.StatusList(f.college.DID, "rev")
		t.Errorf("an issuer whose chain was revoked extended its list's validUntil from 2026-06-01 to %v without an active accreditation", v.Version.ValidUntil)
	}
}

// The DCC issuer registry export (what wallets show as an issuer's name)
// takes the name and homepage from the entity record: an accreditor of
// another framework may not register an accredited did:key issuer of this
// one under a name it chose.
func TestThirdPartyCannotRenameAnAccreditedDidKey(t *testing.T) {
	f := mustChain(t)
	if r := f.applyCommand(EncodeFeatureLevel(FeatureLevel)); !r.Accepted {
		t.Fatalf("raise: %+v", r)
	}
	other := mustKey(t, record.KeyEd25519) // the root of another framework
	f.mustAccept(f.govSign(record.OpCreateFramework, map[string]any{"id": fw2ID, "name": "Law", "roots": []string{other.DID}}))
	if r := f.apply(f.sign(other, record.OpRegisterEntity, map[string]any{
		"id": f.college.DID, "name": "Impostor University", "metadata": map[string]any{"homepage": "https://impostor.example"},
	})); r.Accepted || r.Code != record.CodeNotAuthorized {
		t.Fatalf("a root of another framework registering an accredited did:key: %v %s, want refused not_authorized", r.Accepted, r.Code)
	}
	reg, err := f.s.DCCExport(fwID, f.now.AddDate(0, 4, 0))
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := reg.Registry[f.college.DID]; ok && e.Name == "Impostor University" {
		t.Errorf("the DCC export of %s names the college %s %q (%s), as a root of another framework registered it", fwID, f.college.DID, e.Name, e.URL)
	} else {
		t.Logf("export entry: %+v (listed %v)", e, ok)
	}
}

// The DCC export links an issuer's name to its homepage, which the issuer
// wrote itself as free-form metadata: only a web address is carried, so a
// wallet showing the export never gets a javascript: or data: link.
func TestDCCExportLinksOnlyWebPages(t *testing.T) {
	f := mustChain(t)
	for i, tc := range []struct{ homepage, want string }{
		{"javascript:alert(document.domain)", ""},
		{"data:text/html,<script>alert(1)</script>", ""},
		{"https://college.example/about", "https://college.example/about"},
		{"http://college.example", "http://college.example"},
	} {
		op := record.OpRegisterEntity
		if i > 0 {
			op = record.OpUpdateEntity
		}
		if r := f.apply(f.sign(f.college, op, map[string]any{
			"id": f.college.DID, "name": "Amazing Community College", "metadata": map[string]any{"homepage": tc.homepage},
		})); !r.Accepted {
			t.Fatalf("the college registering itself with homepage %q: %s %s", tc.homepage, r.Code, r.Reason)
		}
		reg, err := f.s.DCCExport(fwID, f.now.AddDate(0, 4, 0))
		if err != nil {
			t.Fatal(err)
		}
		e, ok := reg.Registry[f.college.DID]
		if !ok || e.Name != "Amazing Community College" || e.URL != tc.want {
			t.Fatalf("homepage %q: export entry %+v (listed %v), want url %q", tc.homepage, e, ok, tc.want)
		}
	}
}

// An export that lists no issuer is dated as the state it was read from,
// not with an empty string.
func TestDCCExportOfNoIssuersIsDated(t *testing.T) {
	f := mustChain(t)
	other := mustKey(t, record.KeyEd25519)
	f.mustAccept(f.govSign(record.OpCreateFramework, map[string]any{"id": fw2ID, "name": "Law", "roots": []string{other.DID}}))
	reg, err := f.s.DCCExport(fw2ID, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Registry) != 0 || reg.Meta.Updated == "" || reg.Meta.Created != reg.Meta.Updated {
		t.Fatalf("export of a framework without issuers: %+v", reg)
	}
}
