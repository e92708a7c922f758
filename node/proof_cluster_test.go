package node

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/record"
)

// TestClusterProofsVerifyWhileWritesStreamIn: a follower's bundle of a
// 3-node cluster verifies; while writes stream in, every proof answer of
// the leader and a follower either verifies or is a 503 with Retry-After,
// never a bundle that fails verification.
func TestClusterProofsVerifyWhileWritesStreamIn(t *testing.T) {
	c, genesis, _ := mustNewCosigningCluster(t, 3, 0)
	leader := c.waitLeader()
	follower := (leader + 1) % 3
	root := mustKey(t)
	submit := func(jws []byte) *record.Result { return c.mustSubmit(leader, jws) }
	ch := mustProofChain(t, submit, c.gov, root)
	q := url.Values{"entity": {ch.college.DID}, "framework": {ch.fw}, "resource": {ch.nursing}, "consistency": {"linearizable"}}

	a, _ := getProven(t, trustURL(c.node(follower).GatewayURL(), q))
	if _, v := mustVerify(t, a, genesis); !v.Decision.Authorized {
		t.Fatalf("follower's answer: %+v", v.Decision)
	}

	const writes = 40
	var wg sync.WaitGroup
	ops := make([][]byte, writes)
	for i := range ops {
		k := mustKey(t)
		ops[i] = signed(t, k, map[string]any{"op": record.OpRegisterEntity, "id": k.DID, "name": "E"})
	}
	wg.Go(func() {
		for _, op := range ops {
			if res, err := c.submit(leader, op); err != nil || !res.Accepted {
				t.Errorf("write: %+v, %v", res, err)
				return
			}
		}
	})
	verified, refused := 0, 0
	for i := range 60 {
		base := c.node([]int{leader, follower}[i%2]).GatewayURL()
		ask := q
		if i%4 >= 2 { // a local read: from the latest checkpoint this node holds
			ask = url.Values{"entity": q["entity"], "framework": q["framework"], "resource": q["resource"], "proof": {"true"}}
		}
		resp, err := http.Get(base + "/v1/trust?" + ask.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			var a provenAnswer
			if err := json.Unmarshal(body, &a); err != nil {
				t.Fatal(err)
			}
			b, err := proof.ParseBundle(a.Proof)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := proof.Verify(b, genesis, proof.Options{}); err != nil {
				t.Fatalf("answer %d: a bundle that does not verify: %v", i, err)
			}
			verified++
		case http.StatusServiceUnavailable:
			if resp.Header.Get("Retry-After") == "" {
				t.Fatalf("503 without Retry-After: %s", body)
			}
			refused++
		default:
			t.Fatalf("answer %d: status %d: %s", i, resp.StatusCode, body)
		}
	}
	wg.Wait()
	t.Logf("during the writes: %d verified, %d refused with 503", verified, refused)
	a, _ = getProven(t, trustURL(c.node(follower).GatewayURL(), q))
	mustVerify(t, a, genesis)
}
