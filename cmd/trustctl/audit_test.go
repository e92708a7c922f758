package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/node"
	"github.com/trustreg/trustreg/registry/audit"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// TestAuditChecksTheTiles: trustctl audit accepts a node's log, saves its
// checkpoint and accepts the log again --since it; through a proxy that
// alters one hash of a hash tile it reports the tile, at its leaf.
func TestAuditChecksTheTiles(t *testing.T) {
	d := startDevNode(t)
	gov, err := record.LoadKeyFile(filepath.Join(d.dir, node.DevGovernanceKey))
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(d.n.GatewayURL())
	for _, id := range []string{"https://example.org/frameworks/a", "https://example.org/frameworks/b", "https://example.org/frameworks/c"} {
		p, _ := json.Marshal(map[string]any{"op": record.OpCreateFramework, "iat": time.Now().Unix(), "id": id, "name": "F", "roots": []string{gov.DID}})
		jws, err := record.SignJSON(p, gov)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Submit(context.Background(), jws); err != nil {
			t.Fatal(err)
		}
	}
	size, _, err := d.n.State.LogHead()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		note, err := d.n.LatestCheckpoint()
		if err == nil {
			if cp, err := tlog.ParseCheckpoint(note[:bytes.Index(note, []byte("\n\n"))+1]); err == nil && cp.Size == size {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint of the whole log")
		}
		poll := time.NewTimer(50 * time.Millisecond)
		<-poll.C
	}
	genesis := filepath.Join(d.dir, node.DevGenesisFile)
	saved := filepath.Join(t.TempDir(), "checkpoint")
	mirror := t.TempDir()
	out := d.must("audit", "--genesis", genesis, "--save", saved, "--mirror", mirror)
	if !strings.HasPrefix(out, "AUDIT OK size ") {
		t.Fatalf("audit printed %q", out)
	}
	if note, err := os.ReadFile(saved); err != nil || !bytes.Contains(note, []byte("\n\n")) {
		t.Fatalf("saved checkpoint: %q %v", note, err)
	}
	d.must("audit", "--genesis", genesis, "--since", saved)
	var report auditReport
	if err := json.Unmarshal([]byte(d.must("--json", "audit", "--genesis", genesis)), &report); err != nil || !report.OK || report.Size != size || report.CosignerChanges == nil ||
		len(report.Root) != 64 || len(report.Cosigners) == 0 || !strings.Contains(out, report.Root) {
		t.Fatalf("audit --json: %+v %v (the text said %q)", report, err, out)
	}
	if y := d.must("-o", "yaml", "audit", "--genesis", genesis); !strings.Contains(y, "ok: true") || !strings.Contains(y, "root: "+report.Root) {
		t.Fatalf("audit -o yaml printed %q", y)
	}
	// The mirror holds the same log.
	if out := d.must("audit", "--genesis", genesis, "--from-dir", mirror, "--since", saved); !strings.HasPrefix(out, "AUDIT OK size ") {
		t.Fatalf("audit of the mirror printed %q", out)
	}

	// One hash of the level 0 tile altered: the leaf it names.
	const bad = 2
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(d.n.GatewayURL() + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if strings.HasPrefix(r.URL.Path, "/v1/log/tile/0/") && len(body) > bad*tlog.HashSize {
			body[bad*tlog.HashSize] ^= 1
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	}))
	t.Cleanup(proxy.Close)
	var o, e bytes.Buffer
	err = run(context.Background(), []string{"--server", proxy.URL, "audit", "--genesis", genesis}, nil, &o, &e)
	var div *audit.Divergence
	if !errors.As(err, &div) || div.Leaf != bad || !strings.Contains(div.What, "hash tile") {
		t.Fatalf("audit through a proxy altering a tile: %v\n%s%s", err, o.String(), e.String())
	}
	if !strings.HasPrefix(o.String(), "AUDIT FAILED at leaf 2: hash tile tile/0/000.p/") {
		t.Fatalf("audit printed %q", o.String())
	}
	o.Reset()
	err = run(context.Background(), []string{"--server", proxy.URL, "--json", "audit", "--genesis", genesis}, nil, &o, &e)
	report = auditReport{}
	if !errors.Is(err, errAuditFailed) || json.Unmarshal(o.Bytes(), &report) != nil || report.OK || report.Leaf == nil || *report.Leaf != bad || !strings.Contains(report.What, "hash tile") {
		t.Fatalf("audit --json through the altering proxy: %v, printed %q", err, o.String())
	}
}
