package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/test/netns"
)

// TestMemberBehindNATJoinsThroughARelay runs three voters on hosts of
// their own and a read replica behind NAT (a router masquerading its
// private /24), which no voter can dial. The replica's firewall first lets
// it reach one voter only, its relay: it reserves a slot there, the
// operator adds it by its address through the relay, and the leader
// replicates to it through the relay. Then the firewall opens (the NAT
// stays): the replica dials back the leader that came through the relay,
// and the two are connected directly. On these private addresses libp2p's
// own hole punching cannot start, and the replica says why in its log.
func TestMemberBehindNATJoinsThroughARelay(t *testing.T) {
	if err := netns.NATAvailable(); err != nil {
		t.Skipf("needs network namespaces and iptables: %v", err)
	}
	if testing.Short() {
		t.Skip("a cluster of four processes for a minute; not in -short")
	}
	nw, err := netns.New(t, 3)
	if err != nil {
		t.Fatal(err)
	}
	natd, err := nw.AddBehindNAT(t, 8080, 8081) // the gateway and admin API, for the test
	if err != nil {
		t.Fatal(err)
	}
	c := startProcClusterWith(t, 3, 0, nw.Hosts, "  reachability: public\n")
	leader := c.currentLeader()
	if leader < 0 {
		t.Fatal("no leader")
	}
	relay := (leader + 1) % 3
	if err := natd.Egress(nw, nw.Hosts[relay].IP); err != nil {
		t.Fatal(err)
	}
	addr := func(i int) string { return fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", nw.Hosts[i].IP, c.peerIDs[i]) }

	// The replica's configuration: the voters as its peers, one of them
	// its relay; no raft.join (it cannot dial the others): the operator
	// adds it.
	base := filepath.Dir(c.configs[0])
	dir := filepath.Join(base, "natd")
	id := run(t, c.bin+"/trustd", "identity", "--data-dir", dir)
	ip := natd.IP.String()
	cfg := fmt.Sprintf(`data_dir: %s
genesis: %s
http:
  addr: %s:8080
admin:
  addr: %s:8081
  token: %q
p2p:
  listen:
    - /ip4/%s/tcp/4001
    - /ip4/%s/udp/4001/quic-v1
  peers:
    - %s
    - %s
    - %s
  reachability: private
  static_relays:
    - %s
raft:
  bootstrap: false
  nonvoter: true
  heartbeat_timeout: 500ms
  election_timeout: 500ms
`, dir, filepath.Join(base, "genesis.json"), ip, ip, c.token, ip, ip, addr(0), addr(1), addr(2), addr(relay))
	path := filepath.Join(base, "natd.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	throughRelay := addr(relay) + "/p2p-circuit/p2p/" + id
	c.addNonvoter(t, throughRelay)
	p, err := tryStartTrustdOn(t, natd, c.bin, dir, "--config", path)
	if err != nil {
		t.Fatalf("%v\nleader:\n%s\nrelay:\n%s", err, c.proc(leader).stderr, c.proc(relay).stderr)
	}
	const replica = 3
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.peerIDs = append(c.peerIDs, id)
	c.admins = append(c.admins, "http://"+natd.Via.String()+":8081")
	c.hosts = append(c.hosts, natd)
	c.configs = append(c.configs, path)
	c.mu.Unlock()
	t.Logf("replica behind NAT at %s (seen as %s), added as %s", natd.IP, natd.Via, throughRelay)

	// Replicated to through the relay.
	root, _ := record.GenerateKey(record.KeyEd25519)
	fw := "https://example.org/fw"
	if _, err := client.New(c.proc(leader).url).Submit(context.Background(), signOp(t, c.gov, false, map[string]any{
		"op": "createFramework", "id": fw, "name": "FW", "roots": []string{root.DID}})); err != nil {
		t.Fatal(err)
	}
	acked := c.streamWrites(t, root, fw, 100, 4, []int{0, 1, 2}, nil)
	c.waitConverged(t, acked)
	if got := c.connectionTo(t, leader, replica); got != "relayed" {
		t.Fatalf("the leader's connection to the replica behind NAT, while it can dial its relay only: %q, want relayed", got)
	}
	// Why it is not direct, in the replica's log.
	c.waitLog(t, replica, "cannot dial a member directly")
	c.waitLog(t, replica, "hole punching cannot start: this node has no public address")

	// The firewall opens; the NAT stays. The replica dials back.
	if err := natd.Egress(nw); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		l := c.currentLeader()
		if l >= 0 && l != relay && c.connectionTo(t, l, replica) == "direct" {
			break
		}
		if l == relay {
			t.Fatal("the relay leads now: its connection to the replica was always direct, so the test shows nothing")
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader (node %d) is not connected directly to the replica 60 s after its firewall opened\n%s", l, c.proc(replica).stderr)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
	c.waitLog(t, replica, "connected directly to a member that reached this node through a relay")
	more := c.streamWrites(t, root, fw, 50, 4, []int{0, 1, 2}, nil)
	for k, v := range more {
		acked[k] = v
	}
	c.waitConverged(t, acked)
}

// connectionTo is how node i is connected to node j ("direct", "relayed"
// or ""), from node i's cluster status.
func (c *procCluster) connectionTo(t *testing.T, i, j int) string {
	t.Helper()
	out, err := c.trustctl(append([]string{"--json", "cluster", "status"}, c.adminArgs(i)...)...)
	if err != nil {
		t.Fatalf("cluster status at node %d: %v\n%s", i, err, out)
	}
	var view struct {
		Members []struct{ ID, Connection string }
	}
	if err := json.Unmarshal(out, &view); err != nil {
		t.Fatalf("cluster status at node %d: %v\n%s", i, err, out)
	}
	for _, m := range view.Members {
		if m.ID == c.peerIDs[j] {
			return m.Connection
		}
	}
	t.Fatalf("node %d's cluster status has no node %d\n%s", i, j, out)
	return ""
}

// waitLog waits (up to 60 s) until node i's log holds text.
func (c *procCluster) waitLog(t *testing.T, i int, text string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(c.proc(i).stderr.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("node %d did not log %q in 60 s:\n%s", i, text, c.proc(i).stderr)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
}
