package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/node"
	"github.com/trustreg/trustreg/registry/audit"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// TestAuditFollowsCosignerChanges: after governance changes the cosigner
// set (the node's key under another name, beside a key no node runs,
// quorum 1), trustctl audit verifies the checkpoints with the set the log's
// changes put in force, and refuses a checkpoint of the changed log that
// the genesis set (the one the change replaced) cosigned.
func TestAuditFollowsCosignerChanges(t *testing.T) {
	d := startDevNode(t)
	renamed, spare := d.newCosignerKeys(t)
	gov, err := record.LoadKeyFile(filepath.Join(d.dir, node.DevGovernanceKey))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := client.New(d.n.GatewayURL())
	submit := func(p map[string]any) {
		t.Helper()
		p["iat"] = time.Now().Unix()
		raw, _ := json.Marshal(p)
		jws, err := record.SignJSON(raw, gov)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := c.Submit(ctx, jws); err != nil || !res.Accepted {
			t.Fatalf("%s: %+v, %v", p["op"], res, err)
		}
	}
	// An entry before the change and one after it, so the change is
	// neither the log's first nor its last leaf.
	submit(map[string]any{"op": record.OpCreateFramework, "id": "https://example.org/frameworks/a", "name": "A", "roots": []string{gov.DID}})
	submit(map[string]any{"op": record.OpSetCosigners, "cosigners": []string{renamed.String(), spare.String()}, "quorum": 1})
	submit(map[string]any{"op": record.OpCreateFramework, "id": "https://example.org/frameworks/b", "name": "B", "roots": []string{gov.DID}})
	note := waitWholeLogCosigned(t, d.n)
	genesis := filepath.Join(d.dir, node.DevGenesisFile)

	out := d.must("audit", "--genesis", genesis)
	if !strings.HasPrefix(out, "AUDIT OK size ") || !strings.Contains(out, "renamed.dev") {
		t.Fatalf("audit printed %q", out)
	}

	// The same checkpoint cosigned by the genesis set: the node's key under
	// its genesis name.
	g, err := os.ReadFile(genesis)
	if err != nil {
		t.Fatal(err)
	}
	var gd record.Genesis
	if err := json.Unmarshal(g, &gd); err != nil {
		t.Fatal(err)
	}
	gk, err := tlog.ParseCosignerKey(gd.Cosigners[0])
	if err != nil {
		t.Fatal(err)
	}
	id, err := consensus.LoadOrCreateIdentity(filepath.Join(d.dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := id.Raw()
	if err != nil {
		t.Fatal(err)
	}
	old, err := tlog.NewCosignatureSigner(gk.Name, ed25519.PrivateKey(raw))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := tlog.ParseCheckpoint(note[:bytes.Index(note, []byte("\n\n"))+1])
	if err != nil {
		t.Fatal(err)
	}
	sig, err := old.Sign(cp, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	oldNote := tlog.SignedNote(cp, sig)
	if v, err := audit.NewVerifier(g); err != nil {
		t.Fatal(err)
	} else if _, err := v.Verify(oldNote); err != nil {
		t.Fatalf("the genesis set does not verify the re-signed note: %v", err)
	}
	refused := func(name string, want error, rewrite func(r *http.Request, status int, body []byte) (int, []byte)) {
		t.Helper()
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			resp, err := http.Get(d.n.GatewayURL() + r.URL.RequestURI())
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			status, body := rewrite(r, resp.StatusCode, body)
			w.WriteHeader(status)
			_, _ = w.Write(body)
		}))
		defer proxy.Close()
		var o, e bytes.Buffer
		err := run(ctx, []string{"--server", proxy.URL, "audit", "--genesis", genesis}, nil, &o, &e)
		if !errors.Is(err, want) || strings.Contains(o.String(), "AUDIT OK") {
			t.Fatalf("%s: %v, want %v\n%s%s", name, err, want, o.String(), e.String())
		}
		t.Logf("%s: %v", name, err)
	}
	refused("cosigned by the set the change replaced", audit.ErrCheckpoint, func(r *http.Request, status int, body []byte) (int, []byte) {
		if r.URL.Path == "/v1/log/checkpoint" {
			return http.StatusOK, oldNote
		}
		return status, body
	})
	// The change left out of the change feed; its result rewritten as a
	// rejection, or not served.
	var changeIndex uint64
	feedWithout := func(body []byte, keep func(item map[string]any)) []byte {
		var page map[string]any
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		items, _ := page["items"].([]any)
		var out []any
		for _, it := range items {
			m := it.(map[string]any)
			if m["op"] == record.OpSetCosigners {
				changeIndex = uint64(m["index"].(float64))
				if keep != nil {
					keep(m)
					out = append(out, m)
				}
				continue
			}
			out = append(out, it)
		}
		page["items"] = out
		b, _ := json.Marshal(page)
		return b
	}
	refused("the change's result served as a rejection", audit.ErrDivergence, func(r *http.Request, status int, body []byte) (int, []byte) {
		if r.URL.Path == "/v1/operations" {
			return status, feedWithout(body, func(m map[string]any) {
				res := m["result"].(map[string]any)
				res["accepted"], res["code"], res["reason"] = false, "invalid", "hidden"
			})
		}
		return status, body
	})
	refused("the change left out of the feed, its result not served", audit.ErrNotServed, func(r *http.Request, status int, body []byte) (int, []byte) {
		switch {
		case r.URL.Path == "/v1/operations":
			return status, feedWithout(body, nil)
		case changeIndex != 0 && r.URL.Path == fmt.Sprintf("/v1/operations/%d", changeIndex):
			return http.StatusNotFound, []byte(`{"type":"not_found"}`)
		}
		return status, body
	})
	if changeIndex == 0 {
		t.Fatal("the change feed never listed the change")
	}
}

// waitWholeLogCosigned waits for a checkpoint of n's whole log and returns
// its signed note.
func waitWholeLogCosigned(t *testing.T, n *node.Node) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		size, _, err := n.State.LogHead()
		if err != nil {
			t.Fatal(err)
		}
		if note, err := n.LatestCheckpoint(); err == nil {
			if cp, err := tlog.ParseCheckpoint(note[:bytes.Index(note, []byte("\n\n"))+1]); err == nil && cp.Size == size {
				return note
			}
		}
		poll := time.NewTimer(50 * time.Millisecond)
		<-poll.C
	}
	t.Fatal("the node never cosigned a checkpoint of its whole log")
	return nil
}
