package registry

import (
	"bytes"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// Each cache of caches (cache.go) states what invalidates it; a test per
// invariant breaks when that invalidation is taken away:
//
//   - record cache, commit: TestCachedAnswersFollowWrites,
//     TestKeptIteratorsUnderConcurrentWrites;
//   - record cache, restore: TestRestoreDropsCachedRecords;
//   - kept iterators, commit: TestKeptIteratorsSeeCommits;
//   - list cache, keyed by version: TestListCacheKeyedByVersion;
//   - key cache, keyed by encoding: TestKeyCacheKeyedByEncoding;
//   - the gateway's answer cache, by applied index: gateway's
//     TestAnswerCache and TestReadsReportTheirSnapshotIndex.

// TestRestoreDropsCachedRecords: a restore replaces the whole state, so
// the records cached from the state before it must not answer after it.
// The restored state is a twin that applied another operation at the index
// where this one suspended the college: the cached record's suspension is
// within the restored index, and only dropping it answers right.
func TestRestoreDropsCachedRecords(t *testing.T) {
	f := mustChain(t)
	f.now = date(2026, 4, 1)
	twin := &harness{t: t, dir: t.TempDir(), now: f.now, gov: f.gov, raw: f.raw, index: f.index}
	twin.open()
	if err := twin.s.Restore(bytes.NewReader(snapshotBytes(t, f.s))); err != nil {
		t.Fatal(err)
	}
	twin.mustAccept(twin.govSign(record.OpCreateFramework, map[string]any{"id": "https://example.org/other", "name": "Other"}))
	f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
	at := date(2026, 6, 1)
	for range 2 { // the second answer is the cache's
		if d := f.ask(at, 0); d.Reason != record.ReasonSuspended {
			t.Fatalf("before the restore: %s", d.Reason)
		}
	}
	if err := f.s.Restore(bytes.NewReader(snapshotBytes(t, twin.s))); err != nil {
		t.Fatal(err)
	}
	if d := f.ask(at, 0); d.Reason != record.ReasonActive || d.Index != twin.index {
		t.Fatalf("after restoring a state where the college was never suspended: %s at index %d, want active at %d", d.Reason, d.Index, twin.index)
	}
}

// TestListCacheKeyedByVersion: decoded bitstrings are kept by the CID of
// the version they were decoded from, so a new version of the same list is
// never answered with the bits of the one before.
func TestListCacheKeyedByVersion(t *testing.T) {
	f := &listFixture{mustChain(t)}
	f.now = date(2026, 4, 1)
	bits := make([]byte, record.MinStatusListEntries/8)
	first := f.publish(f.college, "l", "", []string{record.PurposeRevocation}, 1, nil, bits)
	if !first.Accepted {
		t.Fatalf("first version: %s", first.Reason)
	}
	e, err := f.s.CheckStatus(f.college.DID, "l", 7, time.Time{})
	if err != nil || e.Status != 0 {
		t.Fatalf("entry 7 of the first version: %+v %v", e, err)
	}
	revoked := bytes.Clone(bits)
	record.SetStatus(revoked, 7, 1, 1)
	if r := f.publish(f.college, "l", e.Version, []string{record.PurposeRevocation}, 1, nil, revoked); !r.Accepted {
		t.Fatalf("second version: %s", r.Reason)
	}
	if e, err := f.s.CheckStatus(f.college.DID, "l", 7, time.Time{}); err != nil || e.Status != 1 {
		t.Fatalf("entry 7 of the second version: %+v %v, want 1", e, err)
	}
	// The first version, asked about at a time it was current, still
	// answers with its own bits.
	if e, err := f.s.CheckStatus(f.college.DID, "l", 7, date(2026, 4, 1).Add(1500*time.Millisecond)); err != nil || e.Status != 0 {
		t.Fatalf("entry 7 of the first version, asked later: %+v %v, want 0", e, err)
	}
}

// TestKeyCacheKeyedByEncoding: parsed keys are kept by the exact JWK (or
// did:key) they were parsed from, and which key a kid names is read from
// the state each time: after a rotation to a new key under the same kid,
// the old key signs nothing, however warm the key cache.
func TestKeyCacheKeyedByEncoding(t *testing.T) {
	f := mustChain(t)
	const web = "did:web:samekid.example"
	old, _ := mustKey(t, record.KeyEd25519).WithKID(web + "#key-1")
	oldJWK, _ := old.PublicJWK()
	f.mustAccept(f.sign(f.qa, record.OpRegisterEntity, map[string]any{"id": web, "name": "Same kid", "keys": []any{oldJWK}}))
	f.mustAccept(f.sign(old, record.OpUpdateEntity, map[string]any{"id": web, "name": "signed by the old key"})) // the key cache holds it
	next, _ := mustKey(t, record.KeyEd25519).WithKID(web + "#key-1")
	nextJWK, _ := next.PublicJWK()
	f.mustAccept(f.sign(old, record.OpRotateKeys, map[string]any{"id": web, "keys": []any{nextJWK}}))
	if r := f.apply(f.sign(old, record.OpUpdateEntity, map[string]any{"id": web, "name": "old key, same kid"})); r.Accepted || r.Code != record.CodeBadSignature {
		t.Fatalf("the old key signed under the rotated kid: %+v", r)
	}
	f.mustAccept(f.sign(next, record.OpUpdateEntity, map[string]any{"id": web, "name": "signed by the new key"}))
}
