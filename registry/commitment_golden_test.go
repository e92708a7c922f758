package registry

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// seededKey is an Ed25519 did:key signer from a fixed seed: its signatures
// are deterministic, so a scenario signed with it gives the same entries,
// and the same commitment, on every run.
func seededKey(t testing.TB, name string) *record.Signer {
	t.Helper()
	seed := sha256.Sum256([]byte("commitment golden " + name))
	s, err := record.NewSigner(ed25519.NewKeyFromSeed(seed[:]), "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goldenScenario applies a fixed history, signed with seeded keys, over
// the raise to FeatureLevelCommitment: accreditations in raft-sized
// batches, a status list and its second version, a recognition, a
// revocation (a listing change without a record of the listing's own) and
// a rejected operation.
func goldenScenario(t *testing.T) *chainFixture {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), now: t0}
	gov := seededKey(t, "gov")
	h.gov = []*record.Signer{gov}
	h.openGenesis(record.Genesis{Consortium: "golden consortium", Threshold: 1, Members: []record.Member{{ID: gov.DID}}})
	f := &chainFixture{harness: h, root: seededKey(t, "root"), qa: seededKey(t, "qa"), college: seededKey(t, "college")}
	h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Health", "roots": []string{f.root.DID}}))
	f.qaAcc = h.mustAccept(h.sign(f.root, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.root.DID, "subject": f.qa.DID, "action": record.ActionAccredit,
		"resources": []string{nursing, pharmacy}, "jurisdictions": []string{"US", "CA"},
		"validFrom": "2024-01-01T00:00:00Z", "validUntil": "2030-01-01T00:00:00Z",
	})).ID
	f.collegeAcc = h.mustAccept(h.sign(f.qa, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.qa.DID, "subject": f.college.DID, "action": record.ActionIssue,
		"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
		"validFrom": "2024-06-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
	})).ID
	lf := &listFixture{f}
	bits := make([]byte, record.MinStatusListEntries/8)
	if r := lf.publish(f.college, "1", "", []string{record.PurposeRevocation}, 1, nil, bits); !r.Accepted {
		t.Fatalf("publish: %s", r.Reason)
	}
	first, err := f.s.StatusList(f.college.DID, "1")
	if err != nil {
		t.Fatal(err)
	}
	f.mustRaiseLevel(FeatureLevelCommitment)
	// Three batches of accreditations, each subject twice in its batch
	// (a listing written by two entries of one batch) and half of them
	// again in the next batch (a listing that grows across batches).
	for b := range 3 {
		var entries []Entry
		for i := range 40 {
			subject := fmt.Sprintf("did:web:college-%d.example", b*10+i/2)
			f.index++
			f.now = f.now.Add(time.Millisecond)
			entries = append(entries, Entry{Index: f.index, Time: f.now, Data: EncodeOperation(f.sign(f.qa, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.qa.DID, "subject": subject, "action": record.ActionIssue,
				"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": fmt.Sprintf("2025-01-%02dT00:00:00Z", b*2+i%2+1), "validUntil": "2026-01-01T00:00:00Z",
			}))})
		}
		for _, r := range f.s.ApplyBatch(entries) {
			if !r.Accepted {
				t.Fatalf("batch %d: %s", b, r.Reason)
			}
		}
		checkRebuild(t, f.s, fmt.Sprintf("batch %d", b))
	}
	f.now = f.now.Add(time.Second)
	if r := f.apply(f.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Again"})); r.Accepted {
		t.Fatal("a second framework of the same id was accepted")
	}
	f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": "https://other.example/fw", "resources": []string{nursing}}))
	f.mustAccept(f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc}))
	record.SetStatus(bits, 7, 1, 1)
	if r := lf.publish(f.college, "1", first.Current, []string{record.PurposeRevocation}, 1, nil, bits); !r.Accepted {
		t.Fatalf("second version: %s", r.Reason)
	}
	return f
}

// The commitment's values after a fixed history: the map root and the log's
// size and root as the build before the write path's rework computed them
// (commit 00fff8b). A change to how the map or the log is written that
// changed a value fails here.
func TestCommitmentGolden(t *testing.T) {
	const (
		wantSize    = 125
		wantLogRoot = "2a2ddcd4592cd445d30bb8e1841dce2b5f7a268d1447f6b6e36114de49e046f9"
		wantMapRoot = "42b39724b357b84fdaaf5c41f3f6becf5411e95dafc7bf9f204332551b3eb31e"
	)
	f := goldenScenario(t)
	c := mustCommitment(t, f.s)
	if c.LogSize != wantSize || hex.EncodeToString(c.LogRoot) != wantLogRoot || hex.EncodeToString(c.MapRoot[:]) != wantMapRoot {
		t.Errorf("log size %d, log root %x, map root %x; want %d, %s, %s", c.LogSize, c.LogRoot, c.MapRoot, wantSize, wantLogRoot, wantMapRoot)
	}
	checkRebuild(t, f.s, "the golden history")
	if err := f.s.SelfAudit(t.Context()); err != nil {
		t.Fatal(err)
	}
}
