package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// logPosition is what a write that enters the log moves on a node.
type logPosition struct{ applied, last uint64 }

func (c *testCluster) positions() []logPosition {
	c.t.Helper()
	out := make([]logPosition, len(c.nodes))
	for i := range c.nodes {
		n := c.node(i)
		_, last, err := n.cluster.LogBounds()
		if err != nil {
			c.t.Fatal(err)
		}
		out[i] = logPosition{n.State.AppliedIndex(), last}
	}
	return out
}

// postOperation submits jws over the gateway's HTTP API, as trustctl and
// every other client does, and returns the status and the problem type or
// result.
func postOperation(t *testing.T, n *Node, jws []byte) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(n.GatewayURL()+"/v1/operations", "application/jose", bytes.NewReader(jws))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("answer %d is not JSON: %s", resp.StatusCode, body)
	}
	return resp.StatusCode, m
}

// TestRefusedOperationsStayOutOfTheLog submits, through the leader and
// through a follower, operations the current state refuses: each gets its
// error, and no node's applied index or raft log moves. A resubmission of
// an accepted operation is answered with its first result, also without a
// log entry.
func TestRefusedOperationsStayOutOfTheLog(t *testing.T) {
	c := mustNewCluster(t, 3)
	accepted := c.accreditOp("did:web:accepted.example")
	first := c.mustSubmit(0, accepted)
	c.converged(first.Index)

	stranger, _ := record.GenerateKey(record.KeyEd25519)
	forger, _ := record.GenerateKey(record.KeyEd25519)
	// The forger signs in the root's name: the kid is the root's, the
	// key is not.
	forged, err := forger.WithKID(c.root.KID)
	if err != nil {
		t.Fatal(err)
	}
	unregistered, err := stranger.WithKID("did:web:nobody.example#k1")
	if err != nil {
		t.Fatal(err)
	}
	accredit := func(s *record.Signer, iat int64, subject string) []byte {
		raw, _ := json.Marshal(map[string]any{"op": record.OpAccredit, "iat": iat, "framework": c.fw,
			"accreditor": s.DID, "subject": subject, "action": "issue", "resources": []string{"*"}})
		jws, err := s.SignCompact(raw)
		if err != nil {
			t.Fatal(err)
		}
		return jws
	}
	nonGovernance := func() []byte {
		raw, _ := json.Marshal(map[string]any{"op": record.OpCreateFramework, "iat": time.Now().Unix(),
			"id": "https://example.org/other", "name": "Other", "roots": []string{stranger.DID}})
		jws, err := record.SignJSON(raw, stranger)
		if err != nil {
			t.Fatal(err)
		}
		return jws
	}

	cases := []struct {
		name   string
		jws    func() []byte
		status int
		code   string // the result's code; "" for a duplicate
	}{
		{"forged signature", func() []byte { return accredit(forged, time.Now().Unix(), "did:web:a.example") }, http.StatusUnauthorized, record.CodeBadSignature},
		{"unknown key", func() []byte { return accredit(unregistered, time.Now().Unix(), "did:web:b.example") }, http.StatusUnauthorized, record.CodeUnknownKey},
		{"unauthorized accreditation", func() []byte { return accredit(stranger, time.Now().Unix(), "did:web:c.example") }, http.StatusForbidden, record.CodeNotAuthorized},
		{"governance without members", nonGovernance, http.StatusForbidden, record.CodeNotAuthorized},
		{"iat outside the window", func() []byte { return accredit(c.root, time.Now().Add(-time.Hour).Unix(), "did:web:d.example") }, http.StatusUnprocessableEntity, record.CodeIATWindow},
		{"malformed", func() []byte { return []byte("not a JWS") }, http.StatusBadRequest, ""},
		{"resubmission", func() []byte { return accepted }, http.StatusOK, ""},
	}
	leader := c.waitLeader()
	follower := (leader + 1) % 3
	for _, tc := range cases {
		for _, via := range []struct {
			name string
			i    int
		}{{"leader", leader}, {"follower", follower}} {
			t.Run(fmt.Sprintf("%s via %s", tc.name, via.name), func(t *testing.T) {
				before := c.positions()
				status, body := postOperation(t, c.node(via.i), tc.jws())
				if after := c.positions(); !equalPositions(before, after) {
					t.Fatalf("log moved: before %v, after %v (answer %d %v)", before, after, status, body)
				}
				if status != tc.status {
					t.Fatalf("status %d, want %d: %v", status, tc.status, body)
				}
				switch {
				case tc.status == http.StatusOK:
					if body["duplicate"] != true || body["cid"] != first.CID || uint64(body["index"].(float64)) != first.Index {
						t.Fatalf("resubmission answered %v, want the first result (index %d) as a duplicate", body, first.Index)
					}
				case tc.code != "":
					res, _ := body["result"].(map[string]any)
					if res == nil || res["code"] != tc.code || res["accepted"] != false {
						t.Fatalf("problem %v, want a result with code %s", body, tc.code)
					}
					if idx, _ := res["index"].(float64); idx != 0 {
						t.Fatalf("a refused operation reports index %v: it is not in the log", idx)
					}
				}
			})
		}
	}

	// What the check lets through still enters the log and is applied.
	res := c.mustSubmit(follower, c.accreditOp("did:web:after.example"))
	if res.Index <= first.Index {
		t.Fatalf("accepted operation at index %d, after %d", res.Index, first.Index)
	}
	c.converged(res.Index)
}

func equalPositions(a, b []logPosition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
