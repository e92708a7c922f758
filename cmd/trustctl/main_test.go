package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/node"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

// TestReadWithoutLeaderHints: a linearizable read that finds no leader
// says how to read the node's own state; a local read, a write and an
// admin call do not get the hint.
func TestReadWithoutLeaderHints(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(api.Problem{Type: "urn:trustreg:problem:unavailable", Status: 503, Detail: "no leader or not ready: no leader"})
	}))
	defer srv.Close()
	ctx := context.Background()
	var out, errw bytes.Buffer

	err := run(ctx, []string{"--server", srv.URL, "entity", "show", "did:example:a"}, nil, &out, &errw)
	if err == nil || !strings.Contains(err.Error(), "503 unavailable: no leader or not ready: no leader") || !strings.Contains(err.Error(), unavailableHint) {
		t.Fatalf("linearizable read: %v", err)
	}
	err = run(ctx, []string{"--server", srv.URL, "--consistency", "local", "entity", "show", "did:example:a"}, nil, &out, &errw)
	if err == nil || strings.Contains(err.Error(), unavailableHint) {
		t.Fatalf("local read: %v", err)
	}
	if len(queries) != 2 || queries[0] != "consistency=linearizable" || queries[1] != "consistency=local" {
		t.Fatalf("queries sent: %q", queries)
	}
	err = run(ctx, []string{"--server", srv.URL, "submit", "-"}, strings.NewReader("eyJhbGciOiJFZERTQSJ9.e30.c2ln"), &out, &errw)
	if err == nil || !strings.Contains(err.Error(), "503") || strings.Contains(err.Error(), unavailableHint) {
		t.Fatalf("write: %v", err)
	}
	err = run(ctx, []string{"cluster", "--admin", srv.URL, "status"}, nil, &out, &errw)
	if err == nil || strings.Contains(err.Error(), unavailableHint) {
		t.Fatalf("admin call: %v", err)
	}
}

// TestClusterStatusUnreachable: a member that did not answer shows no
// applied index, lag or feature level (they are not known), not zeros.
// Each member's addresses follow its line, and its last contact ends it.
func TestClusterStatusUnreachable(t *testing.T) {
	view := api.ClusterView{
		Node: api.RaftStatus{NodeID: "A", State: "Leader", Leader: "A", Term: 3, CommitIndex: 40, AppliedIndex: 38, RaftAppliedIndex: 40},
		Members: []api.MemberStatus{
			{Member: api.Member{ID: "A", Suffrage: "voter", Leader: true}, Reachable: true, State: "Leader", AppliedIndex: 40, FeatureLevel: 2,
				Addrs: []string{"/ip4/10.0.0.1/tcp/4001/p2p/A"}},
			{Member: api.Member{ID: "B", Suffrage: "voter"}, Reachable: true, State: "Follower", AppliedIndex: 37, Lag: 3, FeatureLevel: 1,
				Addrs: []string{"/ip4/10.0.0.2/tcp/4001/p2p/B", "/ip4/10.0.0.2/udp/4001/quic-v1/p2p/B"}, LastContact: time.Now().Add(-90 * time.Second)},
			{Member: api.Member{ID: "C", Suffrage: "nonvoter"}},
		},
		FeatureLevel: 1,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(view)
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"cluster", "--admin", srv.URL, "status"}, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := [][]string{
		{"node", "A", "Leader", "leader", "A", "term", "3", "commit", "40", "applied", "40", "registry", "index", "38", "feature", "level", "1"},
		{},
		{"PEER", "SUFFRAGE", "LEADER", "STATE", "APPLIED", "LAG", "LEVEL", "LAST", "CONTACT"},
		{"A", "voter", "yes", "Leader", "40", "0", "2", "self"},
		{"/ip4/10.0.0.1/tcp/4001"},
		{"B", "voter", "Follower", "37", "3", "1", "1m30s", "ago"},
		{"/ip4/10.0.0.2/tcp/4001"},
		{"/ip4/10.0.0.2/udp/4001/quic-v1"},
		{"C", "nonvoter", "unreachable", "-", "-", "-", "never"},
	}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s", out.String())
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); !slices.Equal(got, w) {
			t.Errorf("line %d: %q, want %q", i, got, w)
		}
	}
}

// TestListingsFollowEveryPage: listing commands read page after page from
// a real node until the listing ends or --limit is reached, and say when
// they left some out; accredit finds its parent accreditation past the
// first page.
func TestListingsFollowEveryPage(t *testing.T) {
	defer func(n int) { pageSize = n }(pageSize)
	pageSize = 2
	d := startDevNode(t)
	dir, ctl, must := d.dir, d.ctl, d.must
	gov, rootKey := filepath.Join(dir, node.DevGovernanceKey), filepath.Join(dir, node.DevRootAccreditorKey)
	root := strings.TrimSpace(must("did", rootKey))
	for i := range 5 {
		must("-q", "framework", "create", "--id", fmt.Sprintf("https://example.org/fw-%d", i), "--name", "FW", "--root", root, "--key", gov)
	}
	if out := must("framework", "list", "--limit", "0"); strings.Count(out, "https://example.org/fw-") != 5 {
		t.Fatalf("framework list --limit 0 (pages of 2):\n%s", out)
	}
	out, errw, err := ctl("framework", "list", "--limit", "3")
	if err != nil || strings.Count(out, "https://example.org/fw-") != 3 || !strings.Contains(errw, "(more frameworks than these 3: --limit 0 lists them all)") {
		t.Fatalf("framework list --limit 3: %v\n%s%s", err, out, errw)
	}
	var l listing[record.Framework]
	if out := must("--json", "framework", "list", "--limit", "4"); json.Unmarshal([]byte(out), &l) != nil || len(l.Items) != 4 || !l.More {
		t.Fatalf("framework list --json --limit 4: %s", out)
	}
	// Exactly as many as there are: nothing was left out.
	out, errw, err = ctl("framework", "list", "--limit", "5")
	if err != nil || strings.Count(out, "https://example.org/fw-") != 5 || errw != "" {
		t.Fatalf("framework list --limit 5 of 5: %v\n%s%s", err, out, errw)
	}
	if _, _, err := ctl("framework", "list", "--limit", "-1"); err == nil || !strings.Contains(err.Error(), "--limit -1") {
		t.Fatalf("framework list --limit -1: %v", err)
	}

	// The root accredits a QA agency in one framework for five resources.
	// The agency's accreditations are listed by id (a CID); the one listed
	// last is past the first page, and trustctl accredit must find it when
	// the agency grants its resource.
	qaKey := filepath.Join(dir, "qa.jwk")
	must("keygen", "--out", qaKey)
	qa := strings.TrimSpace(must("did", qaKey))
	fw := "https://example.org/fw-0"
	for i := range 5 {
		must("-q", "accredit", "--key", rootKey, "--framework", fw, "--subject", qa, "--action", "accredit", "--resource", fmt.Sprintf("https://example.org/r-%d", i))
	}
	var held listing[record.AccreditationView]
	if out := must("--json", "entity", "accreditations", qa, "--limit", "0"); json.Unmarshal([]byte(out), &held) != nil || len(held.Items) != 5 {
		t.Fatalf("entity accreditations --limit 0 (pages of 2):\n%s", out)
	}
	last := held.Items[4].Resources[0]
	if out := must("accreditation", "list", "--subject", qa, "--resource", last); strings.Count(out, " -> "+qa) != 1 || !strings.Contains(out, held.Items[4].ID) {
		t.Fatalf("accreditation list --subject --resource:\n%s", out)
	}
	must("-q", "accredit", "--key", qaKey, "--framework", fw, "--subject", "did:web:college.example", "--action", "issue", "--resource", last)

	// An empty listing says so on stderr (stdout stays for the items, and
	// --json prints the empty listing itself).
	out, errw, err = ctl("entity", "history", "did:web:nobody.example")
	if err != nil || out != "" || errw != "(no operations)\n" {
		t.Fatalf("entity history of a DID nothing names: %v\nstdout %q\nstderr %q", err, out, errw)
	}
	out, errw, err = ctl("--json", "entity", "history", "did:web:nobody.example")
	if err != nil || !strings.Contains(out, `"items": []`) || errw != "" {
		t.Fatalf("entity history --json of a DID nothing names: %v\nstdout %q\nstderr %q", err, out, errw)
	}
}

// devNode is a development node in a temporary directory and two ways to
// run trustctl against it: ctl returns what it printed and its error, must
// fails the test on an error.
type devNode struct {
	dir  string
	n    *node.Node
	ctl  func(...string) (string, string, error)
	must func(...string) string
}

// startDevNode starts a development node in a temporary directory.
func startDevNode(t *testing.T) devNode {
	t.Helper()
	return startDevNodeWith(t, nil)
}

// startDevNodeWith is startDevNode with the node's configuration changed
// by edit.
func startDevNodeWith(t *testing.T, edit func(*configs.Config)) devNode {
	t.Helper()
	dir := t.TempDir()
	cfg := node.LoopbackConfig(dir)
	if edit != nil {
		edit(&cfg)
	}
	n, err := node.New(cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	// The leader's raise of the feature level is an entry of its own;
	// tests that count indexes start after it.
	if err := n.State.WaitFeatureLevel(ctx, registry.FeatureLevel); err != nil {
		t.Fatal(err)
	}
	ctl := func(args ...string) (string, string, error) {
		var out, errw bytes.Buffer
		err := run(ctx, append([]string{"--server", n.GatewayURL()}, args...), nil, &out, &errw)
		return out.String(), errw.String(), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, errw, err := ctl(args...)
		if err != nil {
			t.Fatalf("trustctl %v: %v\n%s%s", args, err, out, errw)
		}
		return out
	}
	return devNode{dir: dir, n: n, ctl: ctl, must: must}
}

// devFramework is a development node with the framework devFW, whose root
// is the node's development root accreditor.
type devFramework struct {
	devNode
	gov, rootKey, root string // governance and root key files, the root's DID
}

const devFW = "https://example.org/fw"

// startDevFramework starts a development node and creates devFW on it.
func startDevFramework(t *testing.T) devFramework {
	t.Helper()
	d := startDevNode(t)
	f := devFramework{devNode: d, gov: filepath.Join(d.dir, node.DevGovernanceKey), rootKey: filepath.Join(d.dir, node.DevRootAccreditorKey)}
	f.root = strings.TrimSpace(d.must("did", f.rootKey))
	d.must("-q", "framework", "create", "--id", devFW, "--name", "FW", "--root", f.root, "--key", f.gov)
	return f
}

// TestBackupKeepsAnExistingFile: a backup is not written over an existing
// file unless --force is given, and a refused one leaves the file and its
// directory as they were.
func TestBackupKeepsAnExistingFile(t *testing.T) {
	d := startDevNode(t)
	out := filepath.Join(t.TempDir(), "trustreg.backup")
	backup := func(extra ...string) error {
		_, _, err := d.ctl(append([]string{"cluster", "--admin", d.n.AdminURL(), "backup", "--out", out}, extra...)...)
		return err
	}
	if err := backup(); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(out)
	if err != nil || len(first) == 0 {
		t.Fatalf("first backup: %d bytes, %v", len(first), err)
	}
	// The registry moves on, so a second backup differs from the first.
	d.must("-q", "keygen", "--out", filepath.Join(d.dir, "other.jwk"))
	gov := filepath.Join(d.dir, node.DevGovernanceKey)
	root := strings.TrimSpace(d.must("did", filepath.Join(d.dir, node.DevRootAccreditorKey)))
	d.must("-q", "framework", "create", "--id", "https://example.org/fw", "--name", "FW", "--root", root, "--key", gov)

	err = backup()
	if err == nil || !strings.Contains(err.Error(), "exists already") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("backup over an existing file: %v", err)
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, first) {
		t.Fatal("a refused backup changed the existing file")
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
		t.Fatalf("a refused backup left files behind: %v", entries)
	}
	if err := backup("--force"); err != nil {
		t.Fatal(err)
	}
	replaced, _ := os.ReadFile(out)
	if len(replaced) == 0 || bytes.Equal(replaced, first) {
		t.Fatalf("--force did not replace the backup (%d bytes)", len(replaced))
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
		t.Fatalf("a replacing backup left files behind: %v", entries)
	}
}

// TestStatusListChanges: creating a list twice says the list exists; a
// change that changes no entry publishes nothing; an index or value the
// list cannot hold is refused before anything is signed.
func TestStatusListChanges(t *testing.T) {
	d := startDevNode(t)
	dir, ctl, must := d.dir, d.ctl, d.must
	gov, rootKey := filepath.Join(dir, node.DevGovernanceKey), filepath.Join(dir, node.DevRootAccreditorKey)
	fw, res := "https://example.org/fw", "https://example.org/r"
	must("-q", "framework", "create", "--id", fw, "--name", "FW", "--root", strings.TrimSpace(must("did", rootKey)), "--key", gov)
	college := filepath.Join(dir, "college.jwk")
	must("keygen", "--out", college)
	must("-q", "accredit", "--key", rootKey, "--framework", fw, "--subject", strings.TrimSpace(must("did", college)), "--action", "issue", "--resource", res)
	must("-q", "status", "create", "--key", college, "--list", "l")
	// (The same create again within the second is the same signed
	// operation, a duplicate, answered as the first was; another TTL makes
	// it a different one.)
	if _, _, err := ctl("status", "create", "--key", college, "--list", "l", "--ttl", "1000"); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("second status create: %v", err)
	}
	version := func() string {
		t.Helper()
		var doc api.StatusListDocument
		if err := json.Unmarshal([]byte(must("--json", "status", "show", "--key", college, "--list", "l")), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.CID
	}
	must("-q", "status", "revoke", "--key", college, "--list", "l", "5")
	before := version()
	out, errw, err := ctl("status", "revoke", "--key", college, "--list", "l", "5")
	if err != nil || out != "" || !strings.Contains(errw, "nothing to publish") {
		t.Fatalf("revoking a revoked entry again: %v\n%s%s", err, out, errw)
	}
	if after := version(); after != before {
		t.Fatalf("a change of nothing published a version: %s, then %s", before, after)
	}
	// Revoking it with another entry publishes.
	must("-q", "status", "revoke", "--key", college, "--list", "l", "5", "6")
	if after := version(); after == before {
		t.Fatal("revoking a new entry published no version")
	}
	// status check exits 3 for an entry that is not valid, after printing
	// it, as trust does for NOT AUTHORIZED; 0 for a valid one.
	for _, tc := range []struct {
		entry, out string
		code       int
	}{{"6", "entry 6: status 1 (revocation, NOT valid)", exitNo}, {"7", "entry 7: status 0 (revocation, valid)", exitOK}} {
		out, errw, err := ctl("status", "check", "--key", college, "--list", "l", tc.entry)
		if exitCode(err) != tc.code || !strings.Contains(out, tc.out) || errw != "" {
			t.Errorf("status check %s: exit %d (%v), want %d\nstdout %q\nstderr %q", tc.entry, exitCode(err), err, tc.code, out, errw)
		}
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "revoke", "--key", college, "--list", "l", "131072"}, "index 131072 is outside list l, whose entries are 0 to 131071"},
		{[]string{"status", "set", "--key", college, "--list", "l", "--value", "2", "7"}, "value 2 does not fit list l's 1-bit entries (0 to 1)"},
		{[]string{"status", "set", "--key", college, "--list", "l", "--value", "-1", "7"}, "value -1 does not fit"},
	} {
		if _, _, err := ctl(bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) || strings.Contains(err.Error(), "registry:") {
			t.Errorf("trustctl %v: %v, want %q", bad.args[:2], err, bad.want)
		}
	}
}

// lockedBuffer is a bytes.Buffer written by one goroutine and read by
// another.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWatchPrintsOperations: trustctl watch prints the operations a node
// applies, replays those after --since, filters by framework, and ends
// without an error when interrupted.
func TestWatchPrintsOperations(t *testing.T) {
	d := startDevNode(t)
	gov, rootKey := filepath.Join(d.dir, node.DevGovernanceKey), filepath.Join(d.dir, node.DevRootAccreditorKey)
	root := strings.TrimSpace(d.must("did", rootKey))
	d.must("-q", "framework", "create", "--id", "https://example.org/fw-a", "--name", "A", "--root", root, "--key", gov)

	all := startWatch(t, d.n.GatewayURL(), "--since", "0")
	onlyB := startWatch(t, d.n.GatewayURL(), "--json", "--since", "0", "--framework", "https://example.org/fw-b")
	fresh := startWatch(t, d.n.GatewayURL())
	waitForText(t, all.out, "  createFramework  https://example.org/fw-a  ", 1)
	// Each watch has read the applied index it starts after.
	for _, w := range []watcher{all, onlyB, fresh} {
		waitForText(t, w.errw, "trustctl: watching the operations after index ", 1)
	}
	d.must("-q", "framework", "create", "--id", "https://example.org/fw-b", "--name", "B", "--root", root, "--key", gov)
	waitForText(t, all.out, "  createFramework  ", 2)
	waitForText(t, onlyB.out, `"op":"createFramework"`, 1)
	waitForText(t, fresh.out, "  createFramework  https://example.org/fw-b  ", 1)
	for _, w := range []watcher{all, onlyB, fresh} {
		if err := w.stop(); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(onlyB.out.String(), "fw-a") {
		t.Fatalf("the watch of fw-b printed fw-a's operation:\n%s", onlyB.out)
	}
	if strings.Contains(fresh.out.String(), "fw-a") {
		t.Fatalf("a watch without --since printed an old operation:\n%s", fresh.out)
	}
	if _, _, err := d.ctl("watch", "--since", "x"); err == nil {
		t.Fatal("watch --since x accepted")
	}
	// A stream of YAML is not offered: refused, not printed as a table.
	if _, _, err := d.ctl("-o", "yaml", "watch", "--since", "0"); !isUsage(err) || !strings.Contains(err.Error(), "trustctl watch prints table or json only") {
		t.Fatalf("watch -o yaml: %v", err)
	}
}

// TestSameCommandTwiceInOneSecond: suspend, reinstate and suspend again
// within one second leave the accreditation suspended. The third signs
// the same content as the first (iat counts whole seconds), which the
// registry takes as a resubmission of the first; trustctl signs it again
// once the second has turned and submits that.
func TestSameCommandTwiceInOneSecond(t *testing.T) {
	f := startDevFramework(t)
	d, rootKey, fw := f.devNode, f.rootKey, devFW
	acc := strings.TrimSpace(d.must("-q", "accredit", "--key", rootKey, "--framework", fw, "--subject", "did:web:qa.example", "--action", "accredit", "--resource", "https://example.org/r"))
	// Start just after a second turns, so the three commands fall in one.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
	start := time.Now()
	var outs []string
	for _, verb := range []string{"suspend", "reinstate", "suspend"} {
		outs = append(outs, d.must(verb, acc, "--key", rootKey))
	}
	t.Logf("three commands in %v", time.Since(start))
	if strings.Contains(outs[2], "duplicate") || !strings.Contains(outs[2], "accepted suspend") {
		t.Fatalf("the second suspend:\n%s", outs[2])
	}
	var a record.AccreditationView
	if err := json.Unmarshal([]byte(d.must("--json", "accreditation", "show", acc)), &a); err != nil {
		t.Fatal(err)
	}
	if a.Status != record.ReasonSuspended {
		t.Fatalf("after suspend, reinstate, suspend: status %q, want suspended", a.Status)
	}
	// The same signed bytes submitted again are still one operation.
	file := filepath.Join(t.TempDir(), "op.jws")
	d.must("-q", "reinstate", acc, "--key", rootKey, "--out", file)
	first := d.must("submit", file)
	if again := d.must("submit", file); !strings.Contains(again, "already accepted (duplicate)") {
		t.Fatalf("a file submitted twice: %s then %s", first, again)
	}
}
