package node

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"
)

// ownHosts returns n loopback addresses, 127.0.0.2 and up, one for each
// in-process node, so that nodes bind, dial and see each other at distinct
// addresses as members on their own hosts do, with no root and no
// namespace: Linux routes all of 127.0.0.0/8 to the loopback interface.
// Where one of them cannot be bound (macOS has only 127.0.0.1 unless an
// operator adds aliases) it logs so and returns nil: every node on
// 127.0.0.1.
func ownHosts(t *testing.T, n int) []string {
	t.Helper()
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("127.0.0.%d", i+2)
		ln, err := net.Listen("tcp", net.JoinHostPort(hosts[i], "0"))
		if err != nil {
			t.Logf("every node on 127.0.0.1: this machine does not route %s to loopback (%v)", hosts[i], err)
			return nil
		}
		_ = ln.Close() // a probe, only bound
	}
	return hosts
}

// remoteHosts returns the IP addresses at which node a's connections to
// node b see b, deduplicated.
func remoteHosts(a *Node, b peer.ID) []string {
	var out []string
	for _, conn := range a.host.Network().ConnsToPeer(b) {
		if conn.Stat().Direction != network.DirOutbound {
			// An accepted connection's source is the dialer's choice:
			// libp2p's TCP dial falls back to an unbound socket (source
			// 127.0.0.1) when dialing from its listening port fails, as
			// it sometimes does under load.
			continue
		}
		ip, err := manet.ToIP(conn.RemoteMultiaddr())
		if err != nil {
			out = append(out, conn.RemoteMultiaddr().String())
			continue
		}
		if s := ip.String(); len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// TestClusterMembersOnTheirOwnAddresses: three in-process nodes on
// ownHosts dial each other at those addresses and replicate a write made
// through a follower. The fault tests (TestLinearizableUnderFaults) run on them.
func TestClusterMembersOnTheirOwnAddresses(t *testing.T) {
	hosts := ownHosts(t, 3)
	if hosts == nil {
		t.Skip("no loopback address besides 127.0.0.1 on this machine")
	}
	c := mustNewClusterOn(t, 3, nil, hosts)
	l := c.waitLeader()
	f := (l + 1) % 3
	res := c.mustSubmit(f, c.accreditOp("did:web:own-address.example"))
	c.converged(res.Index)
	dialed := map[[2]int]int{} // outgoing connections seen per pair of nodes
	for i := range 3 {
		for j := range 3 {
			if i == j {
				continue
			}
			a, b := c.node(i), c.node(j)
			if i == l || j == l {
				// The leader and each follower talk; two followers may not.
				waitFor(t, fmt.Sprintf("a connection from node %d to node %d", i, j), 10*time.Second, func() bool {
					return len(a.host.Network().ConnsToPeer(b.PeerID())) > 0
				})
			}
			for _, got := range remoteHosts(a, b.PeerID()) {
				dialed[[2]int{min(i, j), max(i, j)}]++
				if got != hosts[j] {
					t.Errorf("node %d (%s) dialed node %d at %s, want %s", i, hosts[i], j, got, hosts[j])
				}
			}
		}
	}
	for i := range 3 {
		if i != l && dialed[[2]int{min(i, l), max(i, l)}] == 0 {
			t.Errorf("neither node %d nor the leader %d dialed the other", i, l)
		}
	}
}
