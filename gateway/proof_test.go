package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/tlog"
)

// aheadCheckpoints serves a checkpoint of a log this node has not reached.
type aheadCheckpoints struct{ note []byte }

func (c aheadCheckpoints) LatestCheckpoint() ([]byte, error) { return c.note, nil }

// TestProofWithoutTheCheckpointsStateIs503: when the node cannot read the
// state at the latest checkpoint's size in time (here the checkpoint is
// ahead of its log), a proof request is refused with 503 no_proven_state
// and Retry-After, never answered from another state; the same question
// without proof is answered.
func TestProofWithoutTheCheckpointsStateIs503(t *testing.T) {
	e := mustNewEnv(t)
	origin, err := tlog.Origin(e.n.State.GenesisCID())
	if err != nil {
		t.Fatal(err)
	}
	note := append(tlog.Checkpoint{Origin: origin, Size: 1 << 40}.Marshal(), "\n— nobody AAAA\n"...)
	srv, err := gateway.New(gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n, Checkpoints: aheadCheckpoints{note}, MaxWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	q := url.Values{"entity": {"did:web:college.example"}, "framework": {fw}}
	resp, err := http.Get(ts.URL + "/v1/trust?" + q.Encode() + "&proof=true")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var p api.Problem
	_ = json.Unmarshal(body, &p)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || p.Type != "urn:trustreg:problem:no_proven_state" {
		t.Fatalf("status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	t.Logf("refused: %s", p.Detail)
	resp, err = http.Get(ts.URL + "/v1/trust?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("without proof: status %d", resp.StatusCode)
	}
}
