package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// localClusterBase returns a BASE_PORT for configs/local-cluster.sh whose
// ports (BASE+1..3 on TCP and UDP, BASE+4001..4003, BASE+4101..4103) are
// free now.
func localClusterBase(t *testing.T) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(25000)
		free := true
		for _, off := range []int{1, 2, 3, 4001, 4002, 4003, 4101, 4102, 4103} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+off))
			if err != nil {
				free = false
				break
			}
			l.Close()
			if off < 4 {
				u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", base+off))
				if err != nil {
					free = false
					break
				}
				u.Close()
			}
		}
		if free {
			return base
		}
	}
	t.Fatal("no free ports for the local cluster")
	return 0
}

// readPids reads the script's pids file: one pid per node, in order.
func readPids(t *testing.T, path string) []int {
	t.Helper()
	pids, err := parsePids(mustRead(t, path))
	if err != nil {
		t.Fatalf("pids file %s: %v", path, err)
	}
	if len(pids) != 3 {
		t.Fatalf("pids file %s lists %d pids, want 3", path, len(pids))
	}
	return pids
}

// parsePids reads the pids of a pids file, one a line, up to the first
// line that is not one (its error).
func parsePids(b []byte) ([]int, error) {
	var pids []int
	for line := range strings.Lines(string(b)) {
		pid, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			return pids, err
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// ownNode reports whether pid is a process whose command line names dir:
// a node the script started there, not another program that got its pid.
func ownNode(pid int, dir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(cmdline), dir)
}

// alive reports whether pid is a process that has not ended.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: Z is a zombie.
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// TestLocalClusterScript runs configs/local-cluster.sh from a directory
// outside the repository: start, restart node 2, stop; the pids file lists
// the running nodes and goes away on stop, and the logs are appended to.
func TestLocalClusterScript(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "ps", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("configs/local-cluster.sh needs %s: %v", tool, err)
		}
	}
	script, err := filepath.Abs("../configs/local-cluster.sh")
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, dir := t.TempDir(), filepath.Join(t.TempDir(), "cluster")
	base := localClusterBase(t)
	pidsFile := filepath.Join(dir, "pids")
	sh := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
		cmd.Dir = elsewhere
		// READY_WAIT: up to 60 s for a node to become ready, as a bound on
		// a hang (the script's default, 15 s, was passed under a loaded
		// machine once), not a speed check.
		cmd.Env = append(os.Environ(), "BASE_PORT="+strconv.Itoa(base), "READY_WAIT=600")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("local-cluster.sh %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var started []int
	t.Cleanup(func() {
		// Also the pids the script wrote before a failed step ended the
		// test, which started has not taken in yet (a start whose node 1
		// never became ready left nodes 2 and 3 running). Each is a trustd
		// of this test's directory: its command line names the directory.
		if b, err := os.ReadFile(pidsFile); err == nil {
			pids, _ := parsePids(b) // what was written before a failure: a pid to a line
			for _, pid := range pids {
				if ownNode(pid, dir) {
					started = append(started, pid)
				}
			}
		}
		for _, pid := range started {
			if alive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL) // a node this test started
			}
		}
	})

	out := sh("start", dir)
	pids := readPids(t, pidsFile)
	started = append(started, pids...)
	for i, pid := range pids {
		if !alive(pid) {
			t.Fatalf("node %d, pid %d, does not run after start:\n%s", i+1, pid, out)
		}
	}
	logs := make([]string, 3)
	for i := range logs {
		if logs[i] = string(mustRead(t, filepath.Join(dir, fmt.Sprintf("node%d.log", i+1)))); !strings.Contains(logs[i], "node started") {
			t.Fatalf("node%d.log does not say the node started:\n%s", i+1, logs[i])
		}
	}

	// The genesis names the three nodes as cosigners (two make a quorum),
	// so the cluster serves cosigned checkpoints: proofs and audits work.
	var g struct {
		Cosigners []string `json:"cosigners"`
		Quorum    int      `json:"cosignerQuorum"`
	}
	if err := json.Unmarshal(mustRead(t, filepath.Join(dir, "genesis.json")), &g); err != nil || len(g.Cosigners) != 3 || g.Quorum != 2 {
		t.Fatalf("genesis cosigners %v quorum %d: %v", g.Cosigners, g.Quorum, err)
	}
	checkpoint := fmt.Sprintf("http://127.0.0.1:%d/v1/checkpoint", base+4001)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(checkpoint)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Count(string(body), "\n\u2014 ") >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint cosigned by a quorum within 30 s: %d %s", resp.StatusCode, body)
			}
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // bounded by the deadline above
	}

	sh("restart", "2", dir)
	after := readPids(t, pidsFile)
	started = append(started, after[1])
	if after[0] != pids[0] || after[2] != pids[2] || after[1] == pids[1] {
		t.Fatalf("pids %v after restarting node 2, were %v: want only node 2's replaced", after, pids)
	}
	if alive(pids[1]) || !alive(after[1]) {
		t.Fatalf("after restart 2 the old node 2 (pid %d) runs: %v, the new one (pid %d): %v", pids[1], alive(pids[1]), after[1], alive(after[1]))
	}
	log2 := string(mustRead(t, filepath.Join(dir, "node2.log")))
	if !strings.HasPrefix(log2, logs[1]) || strings.Count(log2, "node started") != 2 {
		t.Fatalf("node2.log was not appended to by the restart:\n%s", log2)
	}

	sh("stop", dir)
	if _, err := os.Stat(pidsFile); !os.IsNotExist(err) {
		t.Fatalf("the pids file outlives stop: %v", err)
	}
	for _, pid := range after {
		if alive(pid) {
			t.Fatalf("pid %d runs after stop", pid)
		}
	}
	// Started again, the same cluster comes back; the logs keep growing.
	sh(dir)
	again := readPids(t, pidsFile)
	started = append(started, again...)
	if log := string(mustRead(t, filepath.Join(dir, "node1.log"))); !strings.HasPrefix(log, logs[0]) {
		t.Fatal("node1.log was truncated by a second start")
	}
	sh("stop", dir)
}
