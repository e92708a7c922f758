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
	"github.com/trustreg/trustreg/node/cosign"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/audit"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// auditNode is a development node holding a few dozen operations, with its
// log cosigned up to its last entry.
type auditNode struct {
	n       *node.Node
	genesis string // the genesis file
	cids    []string
	// rejected is an operation the apply rejected: in the log, its bytes
	// not kept.
	rejected *record.Result
}

func mustNewAuditNode(t *testing.T) *auditNode {
	t.Helper()
	dir := t.TempDir()
	n, err := node.New(node.LoopbackConfig(dir), node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.State.WaitFeatureLevel(ctx, registry.FeatureLevel); err != nil {
		t.Fatal(err)
	}
	a := &auditNode{n: n, genesis: filepath.Join(dir, node.DevGenesisFile)}
	gov, err := record.LoadKeyFile(filepath.Join(dir, node.DevGovernanceKey))
	if err != nil {
		t.Fatal(err)
	}
	root, err := record.LoadKeyFile(filepath.Join(dir, node.DevRootAccreditorKey))
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(n.GatewayURL())
	payload := func(op string, fields map[string]any) []byte {
		fields["op"], fields["iat"] = op, time.Now().Unix()
		b, err := json.Marshal(fields)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	submit := func(jws []byte, err error) *record.Result {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Submit(ctx, jws)
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		a.cids = append(a.cids, res.CID)
		return res
	}
	const fw = "https://example.org/frameworks/nursing"
	const nurse = "https://example.org/credentials/RegisteredNurse"
	submit(record.SignJSON(payload(record.OpCreateFramework, map[string]any{"id": fw, "name": "Nursing", "roots": []string{root.DID}}), gov))
	qa, _ := record.GenerateKey(record.KeyEd25519)
	qaAcc := submit(root.SignCompact(payload(record.OpAccredit, map[string]any{"framework": fw, "accreditor": root.DID, "subject": qa.DID,
		"action": "accredit", "resources": []string{nurse}, "validFrom": "2020-01-01T00:00:00Z"}))).ID
	var colleges []string
	for i := range 12 {
		col, _ := record.GenerateKey(record.KeyP256)
		submit(col.SignCompact(payload(record.OpRegisterEntity, map[string]any{"id": col.DID, "name": fmt.Sprintf("College %d", i)})))
		colleges = append(colleges, submit(qa.SignCompact(payload(record.OpAccredit, map[string]any{"framework": fw, "accreditor": qa.DID, "subject": col.DID,
			"action": "issue", "resources": []string{nurse}, "parent": qaAcc, "validFrom": "2022-09-01T00:00:00Z"}))).ID)
	}
	submit(qa.SignCompact(payload(record.OpRevoke, map[string]any{"accreditation": colleges[3], "reason": "withdrawn"})))
	// A rejection at apply: two revocations of one accreditation at once,
	// both past the leader's check before either is applied. The race is
	// the only way into the log for a rejection, so try a few times.
	for k := 5; k < len(colleges) && a.rejected == nil; k++ {
		results := make(chan *record.Result, 2)
		for _, why := range []string{"fraud", "closed"} {
			jws, err := qa.SignCompact(payload(record.OpRevoke, map[string]any{"accreditation": colleges[k], "reason": why}))
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				res, _ := c.Submit(ctx, jws)
				results <- res
			}()
		}
		for range 2 {
			if res := <-results; res != nil && !res.Accepted && res.Index > 0 {
				a.rejected = res
			}
		}
	}
	if a.rejected == nil {
		t.Fatal("no rejection at apply in the log after racing revocations of 7 accreditations")
	}
	// A refused operation (a stranger revoking) never enters the log.
	stranger, _ := record.GenerateKey(record.KeyEd25519)
	jws, err := stranger.SignCompact(payload(record.OpRevoke, map[string]any{"accreditation": colleges[4]}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, jws); err == nil {
		t.Fatal("a stranger's revocation was accepted")
	}
	a.waitCosigned(t)
	return a
}

// waitCosigned waits until the node's cosigned checkpoint covers its log.
func (a *auditNode) waitCosigned(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		size, _, err := a.n.State.LogHead()
		if err != nil {
			t.Fatal(err)
		}
		if note, err := a.n.LatestCheckpoint(); err == nil {
			if cp, err := tlog.ParseCheckpoint(note[:bytes.Index(note, []byte("\n\n"))+1]); err == nil && cp.Size == size {
				return
			}
		}
		poll := time.NewTimer(50 * time.Millisecond)
		<-poll.C
	}
	t.Fatal("the node never cosigned a checkpoint of its whole log")
}

// leafOf returns the index of the leaf naming the operation cid.
func (a *auditNode) leafOf(t *testing.T, c string) uint64 {
	t.Helper()
	v := a.n.State.View()
	defer v.Close()
	cm, err := v.Commitment()
	if err != nil {
		t.Fatal(err)
	}
	for i := range cm.LogSize {
		enc, err := v.Leaf(i)
		if err != nil {
			t.Fatal(err)
		}
		l, err := tlog.DecodeLeaf(enc)
		if err != nil {
			t.Fatal(err)
		}
		if audit.CIDText(l.Ops[0].CID) == c {
			return i
		}
	}
	t.Fatalf("no leaf names operation %s", c)
	return 0
}

// runAuditCmd runs trustd audit against url.
func (a *auditNode) runAuditCmd(t *testing.T, url string) (string, error) {
	t.Helper()
	var out, errw bytes.Buffer
	err := run(context.Background(), []string{"audit", "--from", url, "--genesis", a.genesis, "--scratch-dir", t.TempDir()}, nil, &out, &errw)
	return out.String() + errw.String(), err
}

// TestAuditReplaysTheLog: trustd audit replays a node's log of a few dozen
// operations (a framework, entities, accreditations, a revocation; a
// refused operation stays out of the log) and finds every leaf.
func TestAuditReplaysTheLog(t *testing.T) {
	a := mustNewAuditNode(t)
	out, err := a.runAuditCmd(t, a.n.GatewayURL())
	if err != nil {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	t.Log(out)
	size, root, _ := a.n.State.LogHead()
	if want := fmt.Sprintf("AUDIT OK size %d root %x", size, root); !strings.HasPrefix(out, want) {
		t.Fatalf("audit printed %q, want %q...", out, want)
	}
	if size < uint64(len(a.cids)) {
		t.Fatalf("log size %d, want at least the %d operations", size, len(a.cids))
	}
	if !strings.Contains(out, "but 1 rejected at apply") {
		t.Fatalf("audit did not report the rejection at index %d: %q", a.rejected.Index, out)
	}

	// The same replay with the log read from a mirror on disk.
	g, err := os.ReadFile(a.genesis)
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.NewVerifier(g)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.ReadLog(audit.HTTP{Base: a.n.GatewayURL()}, v, nil)
	if err != nil {
		t.Fatal(err)
	}
	mirror := t.TempDir()
	if err := l.WriteMirror(mirror); err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	err = run(context.Background(), []string{"audit", "--from", a.n.GatewayURL(), "--from-dir", mirror, "--genesis", a.genesis}, nil, &o, &e)
	if err != nil || !strings.HasPrefix(o.String(), "AUDIT OK size ") {
		t.Fatalf("audit --from-dir: %v\n%s%s", err, o.String(), e.String())
	}
}

// TestAuditFindsAnAlteredRejection: a source that serves another result
// for an operation rejected at apply (whose bytes no node keeps) diverges
// at its leaf.
func TestAuditFindsAnAlteredRejection(t *testing.T) {
	a := mustNewAuditNode(t)
	want := a.leafOf(t, a.rejected.CID)
	url := tamperProxy(t, a.n.GatewayURL(), func(path string, body []byte) []byte {
		if path != fmt.Sprintf("/v1/operations/%d", a.rejected.Index) {
			return body
		}
		return bytes.Replace(body, []byte("revocation is final"), []byte("revocation is FINAL"), 1)
	})
	out, err := a.runAuditCmd(t, url)
	var div *audit.Divergence
	if !errors.As(err, &div) || div.Leaf != want || !strings.Contains(div.What, "result of the unserved operation") {
		t.Fatalf("audit through a proxy altering the rejection at leaf %d: %v\n%s", want, err, out)
	}
}

// tamperProxy is an HTTP proxy to a node's gateway that changes answers.
func tamperProxy(t *testing.T, upstream string, change func(path string, body []byte) []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(upstream + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if resp.StatusCode == http.StatusOK {
			body = change(r.URL.Path, body)
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAuditFindsAnAlteredOperation: a source that serves one operation's
// bytes altered diverges at that operation's leaf.
func TestAuditFindsAnAlteredOperation(t *testing.T) {
	a := mustNewAuditNode(t)
	target := a.cids[len(a.cids)/2]
	want := a.leafOf(t, target)
	url := tamperProxy(t, a.n.GatewayURL(), func(path string, body []byte) []byte {
		if path != "/v1/operations/"+target {
			return body
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Error(err)
			return body
		}
		jws := v["jws"].(string)
		i := len(jws) - 3 // a full base64url character; another one, always
		c := byte('A')
		if jws[i] == c {
			c = 'B'
		}
		v["jws"] = jws[:i] + string(c) + jws[i+1:]
		out, _ := json.Marshal(v)
		return out
	})
	out, err := a.runAuditCmd(t, url)
	var div *audit.Divergence
	if !errors.As(err, &div) || div.Leaf != want {
		t.Fatalf("audit through a proxy altering operation %s (leaf %d): %v\n%s", target, want, err, out)
	}
}

// TestAuditFindsAnAlteredLeaf: a source that serves one leaf altered (its
// map root), with hash tiles recomputed to match the altered leaves, is
// found by the replay at that leaf, not only as a root that differs from
// the checkpoint's.
func TestAuditFindsAnAlteredLeaf(t *testing.T) {
	a := mustNewAuditNode(t)
	target := a.leafOf(t, a.cids[len(a.cids)-3])
	// The altered log: every leaf as served, one map root changed.
	v := a.n.State.View()
	cm, err := v.Commitment()
	if err != nil {
		t.Fatal(err)
	}
	var leaves [][]byte
	for i := range cm.LogSize {
		enc, err := v.Leaf(i)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, enc)
	}
	v.Close()
	l, _ := tlog.DecodeLeaf(leaves[target])
	l.MapRoot[0] ^= 1
	if leaves[target], err = l.Encode(); err != nil {
		t.Fatal(err)
	}
	mem, tree := tlog.NewMemStore(), tlog.NewLog()
	for _, enc := range leaves {
		if err := tree.Append(mem, tlog.LeafHash(enc)); err != nil {
			t.Fatal(err)
		}
	}
	size := uint64(len(leaves))
	url := tamperProxy(t, a.n.GatewayURL(), func(path string, body []byte) []byte {
		rest, ok := strings.CutPrefix(path, "/v1/log/")
		if !ok || !strings.HasPrefix(rest, "tile/") {
			return body
		}
		id, err := tlog.ParseTilePath(rest)
		if err != nil {
			return body
		}
		if id.Level == tlog.EntriesLevel {
			first := id.Index * tlog.TileWidth
			b, err := tlog.EncodeBundle(leaves[first : first+uint64(id.Width)])
			if err != nil {
				t.Error(err)
			}
			return b
		}
		b, err := tlog.ReadTile(mem, id, size)
		if err != nil {
			t.Error(err)
		}
		return b
	})
	out, err := a.runAuditCmd(t, url)
	var div *audit.Divergence
	if !errors.As(err, &div) || div.Leaf != target || !strings.Contains(div.What, "map root") {
		t.Fatalf("audit through a proxy altering leaf %d: %v\n%s", target, err, out)
	}
	if !strings.Contains(out, fmt.Sprintf("AUDIT FAILED at leaf %d", target)) {
		t.Fatalf("audit printed %q", out)
	}
}

// TestAuditFollowsCosignerChanges: after governance changes the cosigner
// set (the node's key under another name, beside a key no node runs,
// quorum 1), the checkpoints no longer verify against the genesis set, and
// trustd audit verifies them with the set its replay follows from the
// genesis; the rejection earlier in the log does not move the change.
func TestAuditFollowsCosignerChanges(t *testing.T) {
	a := mustNewAuditNode(t)
	dir := filepath.Dir(a.genesis)
	id, err := consensus.LoadOrCreateIdentity(filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	renamed, err := cosign.CosignerKeyOf("renamed.dev", id)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	spare, err := tlog.NewCosignerKey("spare.dev", pub)
	if err != nil {
		t.Fatal(err)
	}
	gov, err := record.LoadKeyFile(filepath.Join(dir, node.DevGovernanceKey))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"op": record.OpSetCosigners, "iat": time.Now().Unix(), "cosigners": []string{renamed.String(), spare.String()}, "quorum": 1})
	jws, err := record.SignJSON(raw, gov)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if res, err := client.New(a.n.GatewayURL()).Submit(ctx, jws); err != nil || !res.Accepted {
		t.Fatalf("setCosigners: %+v, %v", res, err)
	}
	a.waitCosigned(t)
	g, err := os.ReadFile(a.genesis)
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.NewVerifier(g)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.ReadLog(audit.HTTP{Base: a.n.GatewayURL()}, v, nil); !errors.Is(err, audit.ErrCheckpoint) {
		t.Fatalf("the changed set's checkpoint against the genesis set: %v", err)
	}
	out, err := a.runAuditCmd(t, a.n.GatewayURL())
	if err != nil {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "AUDIT OK size ") || !strings.Contains(out, "renamed.dev") {
		t.Fatalf("audit printed %q", out)
	}
}
