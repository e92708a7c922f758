package test

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRestoredMemberForkThroughTheCommands runs, with the built binaries,
// what an operator who restores one member of a running cluster does,
// which docs/OPERATIONS.md forbids: `trustctl cluster backup` of the
// member, every node stopped, `trustd restore` into a new directory with
// the member's node.key copied in, the member started with its
// configuration (refused: it names peers; the operator removes the
// restore's marker by hand), the member started alone (it leads a
// one-node cluster of its own history) and written to, then the others
// started again. The member must refuse the cluster's entries, say so in
// its log and its /readyz, leave the others writing without its write,
// and refuse to start again on that directory.
func TestRestoredMemberForkThroughTheCommands(t *testing.T) {
	c := startProcCluster(t, 3, 0, nil)
	base := filepath.Dir(c.configs[0])
	for _, fw := range []string{"https://example.org/before-1", "https://example.org/before-2"} {
		if out, err := c.trustctl("--server", c.proc(0).url, "-q", "framework", "create", "--id", fw, "--name", "Before", "--key", c.govFile); err != nil {
			t.Fatalf("framework create: %v\n%s", err, out)
		}
	}
	waitProc(t, "node 2 to apply the writes", 15*time.Second, func() bool {
		out, err := c.trustctl("--server", c.proc(2).url, "--consistency", "local", "framework", "show", "https://example.org/before-2")
		return err == nil && strings.Contains(string(out), "before-2")
	})

	backup := filepath.Join(t.TempDir(), "member.backup")
	if out, err := c.trustctl(append(append([]string{"cluster"}, c.adminArgs(2)...), "backup", "--out", backup)...); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	for i := range 3 {
		c.proc(i).stop(t)
	}

	// The member's restore, under its own identity.
	restored := filepath.Join(base, "node2-restored")
	if err := os.MkdirAll(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(restored, "node.key"), mustRead(t, filepath.Join(base, "node2", "node.key")), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, c.bin+"/trustd", "restore", "--from", backup, "--data-dir", restored, "--genesis", filepath.Join(base, "genesis.json"))
	cfg := strings.Replace(string(mustRead(t, c.configs[2])), "data_dir: "+filepath.Join(base, "node2")+"\n", "data_dir: "+restored+"\n", 1)
	if !strings.Contains(cfg, restored) {
		t.Fatalf("node 2's configuration names no data_dir to replace:\n%s", cfg)
	}
	c.configs[2] = filepath.Join(base, "node2-restored.yaml")
	if err := os.WriteFile(c.configs[2], []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// Started with the member's configuration, which names the others as
	// peers, the restored directory is refused: it would lead a cluster of
	// its own beside theirs.
	if p, err := c.tryStart(2); err == nil {
		p.kill()
		t.Fatal("the restored member started with its peers")
	} else if !strings.Contains(err.Error(), "restored from a backup") || !strings.Contains(err.Error(), "trustctl cluster remove") {
		t.Fatalf("starting the restored member with its peers: %v", err)
	}
	// The operator removes the restore's marker by hand anyway (or the
	// restore was made by a build before it): the rest of this test is
	// what the cluster does about the fork that follows.
	if err := os.Remove(filepath.Join(restored, "restored-one-node-cluster")); err != nil {
		t.Fatal(err)
	}
	c.restart(2) // ready: it leads the one-node cluster the restore seeded
	const forked = "https://example.org/forked"
	if out, err := c.trustctl("--server", c.proc(2).url, "-q", "framework", "create", "--id", forked, "--name", "Forked", "--key", c.govFile); err != nil {
		t.Fatalf("the write to the restored member alone: %v\n%s", err, out)
	}

	// The others come back; they elect a leader between them.
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			p, err := c.tryStart(i)
			c.mu.Lock()
			c.procs[i], errs[i] = p, err
			c.mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	waitProc(t, "the restored member to report the fork", 30*time.Second, func() bool {
		code, body := getBody(c.proc(2).url + "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "this node's state forked from the cluster's log")
	})
	if log := c.proc(2).stderr.String(); !strings.Contains(log, "refusing the leader's entries") {
		t.Fatalf("the forked member's log does not say it refused the leader's entries:\n%s", log)
	}

	// The cluster writes on, without the forked write.
	if out, err := c.trustctl("--server", c.proc(0).url, "-q", "framework", "create", "--id", "https://example.org/after", "--name", "After", "--key", c.govFile); err != nil {
		t.Fatalf("a write to the cluster after the fork: %v\n%s", err, out)
	}
	for i := range 2 {
		if out, err := c.trustctl("--server", c.proc(i).url, "framework", "show", forked); err == nil || !strings.Contains(string(out), "404") {
			t.Fatalf("node %d on the forked write: %v\n%s", i, err, out)
		}
	}

	// Stopped, the member does not start again on that directory.
	c.proc(2).stop(t)
	p, err := c.tryStart(2)
	if err == nil {
		p.kill()
		t.Fatal("the forked member started again")
	}
	if !strings.Contains(err.Error(), "forked") || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("restarting the forked member: %v", err)
	}
	for i := range 2 {
		c.proc(i).stop(t)
	}
}

// waitProc polls cond every 100 ms until it holds or within passes (a
// bound on a wait, not a speed check).
func waitProc(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// getBody GETs url and returns the status and body (0 and the error's
// words when it cannot).
func getBody(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
