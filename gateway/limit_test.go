package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/node"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

// mustNewLimitedEnv is mustNewEnv for a node whose configuration edit
// changes.
func mustNewLimitedEnv(t testing.TB, edit func(*configs.Config)) *env {
	t.Helper()
	var dataDir string
	n := mustNewNode(t, func(c *configs.Config) {
		dataDir = c.DataDir
		edit(c)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.State.WaitFeatureLevel(ctx, registry.FeatureLevel); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, n: n, c: client.New(n.GatewayURL())}
	e.gov = mustLoad(t, dataDir+"/"+node.DevGovernanceKey)
	e.root = mustLoad(t, dataDir+"/"+node.DevRootAccreditorKey)
	e.qa, _ = record.GenerateKey(record.KeyEd25519)
	e.college, _ = record.GenerateKey(record.KeyP256)
	return e
}

// postFrom sends a write to the gateway from the loopback address local
// (127.0.0.0/8 is all loopback on Linux), on a connection of its own.
func postFrom(t testing.TB, e *env, local string, body []byte) answer {
	t.Helper()
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", e.n.GatewayURL()+"/v1/operations", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/jose")
	return mustDo(t, &http.Client{Transport: tr}, req)
}

// limitedCount reads trustd_http_writes_limited_total{by=by} from the
// gateway's /metrics.
func limitedCount(t testing.TB, e *env, by string) int {
	t.Helper()
	resp, body := e.get("/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	prefix := `trustd_http_writes_limited_total{by="` + by + `"} `
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s%s: %v", prefix, v, err)
			}
			return n
		}
	}
	t.Fatalf("/metrics has no %s", prefix)
	return 0
}

// mustBeLimited checks a 429 answer: a problem saying what was limited,
// and a Retry-After of whole seconds, rounded up.
func mustBeLimited(t testing.TB, a answer, what string, maxRetry int) {
	t.Helper()
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %s", a.status, a.body)
	}
	p := a.problem(t)
	if !strings.HasSuffix(p.Type, ":rate_limited") || !strings.Contains(p.Detail, what) {
		t.Fatalf("problem %+v, want rate_limited naming %q", p, what)
	}
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > maxRetry {
		t.Fatalf("Retry-After %q, want 1 to %d seconds", a.header.Get("Retry-After"), maxRetry)
	}
}

// TestWritesLimitedPerAddress: past its burst, a client address's writes
// are refused 429 with Retry-After and counted, and nothing reaches the
// log; other addresses write on. The buckets kept are bounded: beyond
// max_tracked the least recently seen address is forgotten.
func TestWritesLimitedPerAddress(t *testing.T) {
	e := mustNewLimitedEnv(t, func(c *configs.Config) {
		c.HTTP.Limits.AddressRate = 0.01 // a write every 100 s
		c.HTTP.Limits.AddressBurst = 2
		c.HTTP.Limits.MaxTracked = 2
	})
	sent := 0
	op := func() []byte {
		sent++
		return e.sign(e.qa, record.OpRegisterEntity, map[string]any{"id": e.qa.DID, "name": "QA " + strconv.Itoa(sent)})
	}
	for i := range 2 {
		if a := postFrom(t, e, "127.0.0.1", op()); a.status == http.StatusTooManyRequests {
			t.Fatalf("write %d within the burst: %d %s", i, a.status, a.body)
		}
	}
	applied := e.n.State.AppliedIndex()
	mustBeLimited(t, postFrom(t, e, "127.0.0.1", op()), "client address 127.0.0.1", 100)
	if got := e.n.State.AppliedIndex(); got != applied {
		t.Fatalf("a refused write moved the applied index from %d to %d", applied, got)
	}
	if n := limitedCount(t, e, "address"); n != 1 {
		t.Fatalf("limited by address: %d, want 1", n)
	}
	// Two other addresses write; tracking them forgets 127.0.0.1, whose
	// bucket starts full again.
	for _, addr := range []string{"127.0.0.2", "127.0.0.3"} {
		if a := postFrom(t, e, addr, op()); a.status == http.StatusTooManyRequests {
			t.Fatalf("%s: %d %s", addr, a.status, a.body)
		}
	}
	if a := postFrom(t, e, "127.0.0.1", op()); a.status == http.StatusTooManyRequests {
		t.Fatalf("127.0.0.1 after its bucket was dropped: %d %s", a.status, a.body)
	}
}

// TestWritesLimitedPerSigner: past its burst, a signer's writes are
// refused 429 whichever address sends them; another signer writes on.
func TestWritesLimitedPerSigner(t *testing.T) {
	e := mustNewLimitedEnv(t, func(c *configs.Config) {
		c.HTTP.Limits.SignerRate = 0.5 // a write every 2 s
		c.HTTP.Limits.SignerBurst = 2
	})
	register := func(s *record.Signer, name string) []byte {
		return e.sign(s, record.OpRegisterEntity, map[string]any{"id": s.DID, "name": name})
	}
	for i, addr := range []string{"127.0.0.1", "127.0.0.2"} {
		if a := postFrom(t, e, addr, register(e.qa, "QA "+addr)); a.status == http.StatusTooManyRequests {
			t.Fatalf("write %d within the burst: %d %s", i, a.status, a.body)
		}
	}
	mustBeLimited(t, postFrom(t, e, "127.0.0.3", register(e.qa, "QA again")), "signer "+e.qa.DID, 2)
	if a := postFrom(t, e, "127.0.0.3", register(e.college, "College")); a.status == http.StatusTooManyRequests {
		t.Fatalf("another signer: %d %s", a.status, a.body)
	}
	if n := limitedCount(t, e, "signer"); n != 1 {
		t.Fatalf("limited by signer: %d, want 1", n)
	}
	if n := limitedCount(t, e, "address"); n != 0 {
		t.Fatalf("limited by address: %d, want 0", n)
	}
}

// TestOversizeWriteCounted: a write over http.max_body_bytes is refused
// 413 and counted as limited by size.
func TestOversizeWriteCounted(t *testing.T) {
	e := mustNewLimitedEnv(t, func(c *configs.Config) { c.HTTP.MaxBodyBytes = 1024 })
	a := postFrom(t, e, "127.0.0.1", bytes.Repeat([]byte("a"), 2048))
	if a.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413: %s", a.status, a.body)
	}
	a.problem(t)
	if n := limitedCount(t, e, "size"); n != 1 {
		t.Fatalf("limited by size: %d, want 1", n)
	}
}

// TestForgedAndReplayedWritesSpendNoSignerWrites: the signer of a write
// is read before its signature is checked, so what a write takes from its
// signer's bucket is given back when the write proves not to be the
// signer's: a bad signature under the signer's kid, or a replay of an
// operation the signer published. A third party cannot spend a signer's
// writes.
func TestForgedAndReplayedWritesSpendNoSignerWrites(t *testing.T) {
	e := mustNewLimitedEnv(t, func(c *configs.Config) {
		c.HTTP.Limits.SignerRate = 0.01 // a write every 100 s
		c.HTTP.Limits.SignerBurst = 2
	})
	register := func(name string) []byte {
		return e.sign(e.qa, record.OpRegisterEntity, map[string]any{"id": e.qa.DID, "name": name})
	}
	first := register("QA")
	forged := bytes.Clone(first)
	sig := bytes.LastIndexByte(forged, '.') + 10
	forged[sig] ^= 'A' ^ 'B' // a letter of the signature changed: still base64url, no longer valid
	if forged[sig] != 'A' && forged[sig] != 'B' {
		forged[sig] = 'A'
	}
	for i := range 3 {
		if a := postFrom(t, e, "127.0.0.1", forged); a.status != http.StatusUnauthorized {
			t.Fatalf("forged write %d: %d %s, want 401", i, a.status, a.body)
		}
	}
	if a := postFrom(t, e, "127.0.0.1", first); a.status != http.StatusCreated {
		t.Fatalf("the signer's write: %d %s", a.status, a.body)
	}
	for i := range 3 {
		if a := postFrom(t, e, "127.0.0.2", first); a.status != http.StatusOK {
			t.Fatalf("replay %d: %d %s, want 200 (the original result)", i, a.status, a.body)
		}
	}
	// The signer's own second write is within its burst of 2; the third
	// is not.
	if a := postFrom(t, e, "127.0.0.1", register("QA, second")); a.status == http.StatusTooManyRequests {
		t.Fatalf("the signer's second write: %d %s", a.status, a.body)
	}
	mustBeLimited(t, postFrom(t, e, "127.0.0.1", register("QA, third")), "signer "+e.qa.DID, 100)
}
