package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/test/netns"
)

// TestClusterOnHostsOfTheirOwn runs three voters and one read replica,
// each in a network namespace with its own address, and streams writes
// through all four while the network fails under them: a follower's link
// is cut and healed, then the leader's (the others elect a new one while
// it is away), then the leader is killed with SIGKILL and restarted.
// Every acknowledged write must end up on every node, the replica too,
// with the same state digest everywhere.
func TestClusterOnHostsOfTheirOwn(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skipf("needs network namespaces: %v", err)
	}
	if testing.Short() {
		t.Skip("a minute of writes under faults; not in -short")
	}
	nw, err := netns.New(t, 4)
	if err != nil {
		t.Fatal(err)
	}
	c := startProcCluster(t, 3, 1, nw.Hosts)
	const replica = 3
	root, _ := record.GenerateKey(record.KeyEd25519)
	fw := "https://example.org/fw"
	if _, err := client.New(c.proc(0).url).Submit(context.Background(), signOp(t, c.gov, false, map[string]any{
		"op": "createFramework", "id": fw, "name": "FW", "roots": []string{root.DID}})); err != nil {
		t.Fatal(err)
	}
	c.waitMember(t, replica, "nonvoter")

	// The faults, each when the writes reach its point, on the writer that
	// reaches it; the writers go on meanwhile through the other nodes.
	const total = 600
	faults := make(chan error, 1)
	step := func(i int64) {
		var err error
		switch i {
		case total / 5:
			err = c.cutAndHeal(t, c.follower(), 3*time.Second)
		case 2 * total / 5:
			err = c.cutAndHeal(t, c.currentLeader(), 5*time.Second)
		case 3 * total / 5:
			err = c.killLeaderAndRestart(t)
		default:
			return
		}
		if err != nil {
			faults <- fmt.Errorf("fault at write %d: %w", i, err)
		}
	}
	acked := c.streamWrites(t, root, fw, total, 8, []int{0, 1, 2, replica}, step)
	select {
	case err := <-faults:
		t.Fatal(err)
	default:
	}
	if len(acked) < total*9/10 {
		t.Fatalf("only %d of %d writes were acknowledged", len(acked), total)
	}
	c.waitConverged(t, acked)
	t.Logf("%d of %d writes acknowledged through link cuts of a follower and the leader and a leader killed, on %d hosts", len(acked), total, len(nw.Hosts))
}

// currentLeader returns the leader's node index, asking each voter in
// turn, waiting up to 30 s for one.
func (c *procCluster) currentLeader() int {
	deadline := time.Now().Add(30 * time.Second)
	for {
		for i := range 3 {
			if l := c.leader(i); l >= 0 {
				return l
			}
		}
		if time.Now().After(deadline) {
			return -1
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}

// follower returns a voter that does not lead (-1 if there is no leader).
func (c *procCluster) follower() int {
	l := c.currentLeader()
	if l < 0 {
		return -1
	}
	return (l + 1) % 3
}

// cutAndHeal cuts node i's link for d, then heals it. A leader cut off
// loses its leadership: the test waits, while it is away, until the others
// elect another leader.
func (c *procCluster) cutAndHeal(t *testing.T, i int, d time.Duration) error {
	if i < 0 {
		return errors.New("no leader to find the node to cut")
	}
	wasLeader := c.currentLeader() == i
	h := c.host(i)
	if err := h.Cut(); err != nil {
		return err
	}
	t.Logf("cut node %d (%s), leader: %v", i, h.IP, wasLeader)
	if wasLeader {
		deadline := time.Now().Add(30 * time.Second)
		for {
			l := c.leader((i + 1) % 3)
			if l >= 0 && l != i {
				t.Logf("node %d leads while node %d is cut off", l, i)
				break
			}
			if time.Now().After(deadline) {
				_ = h.Heal()
				return fmt.Errorf("no new leader 30 s after cutting the leader %d off", i)
			}
			time.Sleep(100 * time.Millisecond) // polling interval
		}
	}
	time.Sleep(d) // the node stays cut off while writes go on
	if err := h.Heal(); err != nil {
		return err
	}
	t.Logf("healed node %d", i)
	return nil
}

// killLeaderAndRestart sends SIGKILL to the leader and starts it again.
func (c *procCluster) killLeaderAndRestart(t *testing.T) error {
	l := c.currentLeader()
	if l < 0 {
		return errors.New("no leader to kill")
	}
	p := c.proc(l)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	p.done <- nil
	t.Logf("killed the leader, node %d", l)
	np, err := c.tryStart(l)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.procs[l] = np
	c.mu.Unlock()
	return nil
}

// waitMember waits (up to 30 s) until the cluster's configuration holds
// node i with the given suffrage.
func (c *procCluster) waitMember(t *testing.T, i int, suffrage string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.trustctl(append([]string{"--json", "cluster", "status"}, c.adminArgs(0)...)...)
		var view struct {
			Members []struct{ ID, Suffrage string }
		}
		if err == nil && json.Unmarshal(out, &view) == nil {
			for _, m := range view.Members {
				if m.ID == c.peerIDs[i] && m.Suffrage == suffrage {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d is not a %s 30 s after it started: %v\n%s", i, suffrage, err, out)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
}
