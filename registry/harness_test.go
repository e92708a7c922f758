package registry

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// harness drives a real State on Pebble with entries at controlled commit
// times, the way the consensus layer does.
type harness struct {
	t     testing.TB
	s     *State
	dir   string
	gov   []*record.Signer
	raw   []byte
	index uint64
	now   time.Time
	// entries are the entries apply and applyCommand handed over, for
	// replaying them into another state.
	entries []Entry
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustKey(t testing.TB, kind string) *record.Signer {
	t.Helper()
	s, err := record.GenerateKey(kind)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustNewState opens a state for a consortium of n governance members
// (did:key) with the given threshold.
func mustNewState(t testing.TB, n, threshold int) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), now: t0}
	g := record.Genesis{Consortium: "test consortium", Threshold: threshold}
	h.addMembers(&g, record.KeyEd25519, n)
	h.openGenesis(g)
	return h
}

// addMembers adds n governance members (did:keys of kind) to g, their
// signers to h.gov.
func (h *harness) addMembers(g *record.Genesis, kind string, n int) {
	h.t.Helper()
	for range n {
		k := mustKey(h.t, kind)
		h.gov = append(h.gov, k)
		g.Members = append(g.Members, record.Member{ID: k.DID})
	}
}

// openGenesis opens h's state with genesis g.
func (h *harness) openGenesis(g record.Genesis) {
	h.t.Helper()
	raw, err := json.Marshal(g)
	if err != nil {
		h.t.Fatal(err)
	}
	h.raw = raw
	h.open()
}

func (h *harness) open() {
	h.t.Helper()
	s, err := Open(h.dir, h.raw, Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.s = s
	h.t.Cleanup(func() { s.Close() })
}

// payload builds an operation payload signed now.
func (h *harness) payload(op string, fields map[string]any) []byte {
	m := map[string]any{"op": op, "iat": h.now.Unix()}
	for k, v := range fields {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

func (h *harness) sign(s *record.Signer, op string, fields map[string]any) []byte {
	h.t.Helper()
	jws, err := s.SignCompact(h.payload(op, fields))
	if err != nil {
		h.t.Fatal(err)
	}
	return jws
}

func (h *harness) govSign(op string, fields map[string]any) []byte {
	h.t.Helper()
	jws, err := record.SignJSON(h.payload(op, fields), h.gov...)
	if err != nil {
		h.t.Fatal(err)
	}
	return jws
}

func (h *harness) apply(jws []byte) *record.Result {
	h.t.Helper()
	h.index++
	e := Entry{Index: h.index, Time: h.now, Data: EncodeOperation(jws)}
	h.entries = append(h.entries, e)
	return h.s.ApplyBatch([]Entry{e})[0]
}

func (h *harness) mustAccept(jws []byte) *record.Result {
	h.t.Helper()
	r := h.apply(jws)
	if !r.Accepted {
		h.t.Fatalf("operation rejected: %s: %s", r.Code, r.Reason)
	}
	return r
}

func (h *harness) digest() string {
	h.t.Helper()
	return mustDigest(h.t, h.s)
}

// mustDigest is s's state digest.
func mustDigest(t testing.TB, s *State) string {
	t.Helper()
	d, err := s.StateDigest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (h *harness) decide(q decide.Question) *record.Decision {
	h.t.Helper()
	d, err := h.s.Decide(q, h.now)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

const (
	fwID     = "https://example.org/frameworks/health"
	nursing  = "https://example.org/credentials/Nursing"
	pharmacy = "https://example.org/credentials/Pharmacy"
	law      = "https://example.org/credentials/Law"
)

// chainFixture is a framework with a root accreditor, a QA agency the root
// accredits, and a college the agency accredits to issue nursing credentials.
type chainFixture struct {
	*harness
	root, qa, college *record.Signer
	qaAcc, collegeAcc string
}

func mustChain(t testing.TB) *chainFixture {
	t.Helper()
	h := mustNewState(t, 1, 1)
	f := &chainFixture{harness: h, root: mustKey(t, record.KeyEd25519), qa: mustKey(t, record.KeyP256), college: mustKey(t, record.KeyEd25519)}
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
	return f
}

func (f *chainFixture) ask(at time.Time, asOf uint64) *record.Decision {
	return f.decide(decide.Question{Entity: f.college.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing, At: at, AsOf: asOf})
}

// snapshotBytes streams a snapshot of s into memory.
func snapshotBytes(t testing.TB, s *State) []byte {
	t.Helper()
	var buf bytes.Buffer
	snap := s.Snapshot()
	defer snap.Release()
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// waitForMax bounds waitFor.
const waitForMax = 10 * time.Second

// waitFor waits up to waitForMax for cond, yielding between tries.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitForMax); !cond(); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", waitForMax, what)
		}
	}
}
