package test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// TestTrustctlFailsOverBetweenNodes: trustctl is given every node's
// gateway and admin API, the node listed first (the leader) is killed, and
// reads, writes and cluster status still succeed through the others. With
// --genesis naming the cluster's genesis each command says, under
// --verbose, which consortium it talks to; naming another consortium's
// genesis, trustctl refuses the nodes and writes nothing.
func TestTrustctlFailsOverBetweenNodes(t *testing.T) {
	c := mustStartProcCluster(t, 3)
	killed := -1
	defer func() {
		for i, p := range c.procs {
			if i != killed {
				p.stop(t)
			}
		}
	}()
	leader := -1
	for deadline := time.Now().Add(20 * time.Second); leader < 0; {
		if leader = c.leader(0); leader < 0 && time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	// The leader first, then the others; the gateways as host:port (no
	// scheme) and comma-separated, the admin APIs as repeated flags.
	order := []int{leader, (leader + 1) % 3, (leader + 2) % 3}
	var servers []string
	admin := []string{"--admin-token", c.token}
	for _, i := range order {
		servers = append(servers, strings.TrimPrefix(c.proc(i).url, "http://"))
		admin = append(admin, "--admin", c.admins[i])
	}
	genesisFile := filepath.Join(filepath.Dir(c.configs[0]), "genesis.json")
	cidOf := record.CIDOf(mustRead(t, genesisFile))
	global := []string{"--server", strings.Join(servers, ","), "--genesis", genesisFile}

	c.proc(leader).kill()
	killed = leader
	// Wait for the other two to elect a leader: a write then succeeds on
	// whichever node trustctl reaches first.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if l := c.leader(order[1]); l >= 0 && l != killed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the two nodes left elected no leader")
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}

	rootFile := filepath.Join(t.TempDir(), "root.jwk")
	run(t, c.bin+"/trustctl", "keygen", "--out", rootFile)
	root := run(t, c.bin+"/trustctl", "did", rootFile)
	fw := "https://example.org/failover"
	ctl := func(args ...string) (string, error) {
		out, err := c.trustctl(append(append([]string{}, global...), args...)...)
		return string(out), err
	}
	if out, err := ctl("-q", "framework", "create", "--id", fw, "--name", "FW", "--root", root, "--key", c.govFile); err != nil {
		t.Fatalf("write with the first node killed: %v\n%s", err, out)
	}
	out, err := ctl("--verbose", "framework", "show", fw)
	if err != nil || !strings.Contains(out, fw) {
		t.Fatalf("read with the first node killed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "genesis "+cidOf) {
		t.Fatalf("--verbose does not name the consortium %s:\n%s", cidOf, out)
	}
	out, err = ctl(append(append([]string{"-o", "json", "cluster"}, admin...), "status")...)
	if err != nil {
		t.Fatalf("cluster status with the first node killed: %v\n%s", err, out)
	}
	var view struct {
		Genesis string `json:"genesis"`
	}
	if err := json.Unmarshal([]byte(out), &view); err != nil || view.Genesis != cidOf {
		t.Fatalf("cluster status: %v, genesis %q, want %s\n%s", err, view.Genesis, cidOf, out)
	}

	// Another consortium's genesis: every command is refused, exit code 1,
	// and the write is not made.
	other, _ := json.Marshal(record.Genesis{Consortium: "another", Members: []record.Member{{ID: root}}, Threshold: 1})
	otherFile := filepath.Join(t.TempDir(), "other.json")
	if err := os.WriteFile(otherFile, other, 0o644); err != nil {
		t.Fatal(err)
	}
	fw2 := fw + "-2"
	for _, args := range [][]string{
		{"framework", "create", "--id", fw2, "--name", "FW", "--root", root, "--key", c.govFile},
		{"framework", "show", fw},
		append(append([]string{"cluster"}, admin...), "status"),
	} {
		b, err := c.trustctl(append([]string{"--server", strings.Join(servers, ","), "--genesis", otherFile}, args...)...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(b), "another consortium") {
			t.Fatalf("%v with another --genesis: %v, want exit code 1 and a refusal\n%s", args, err, b)
		}
	}
	b, err := c.trustctl("--server", strings.Join(servers, ","), "framework", "show", fw2)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("the write refused for another consortium was made: %v\n%s", err, b)
	}
}
