package netns

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ErrNoNAT is returned by NATAvailable and AddBehindNAT when this machine
// cannot put a host behind NAT (no iptables, or the kernel's NAT tables
// refuse).
var ErrNoNAT = errors.New("netns: NAT unavailable")

// NATAvailable reports whether AddBehindNAT can work here (besides
// Available): iptables must be installed.
func NATAvailable() error {
	if err := Available(); err != nil {
		return err
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("%w: no iptables command (apt-get install iptables): %w", ErrNoNAT, err)
	}
	return nil
}

// AddBehindNAT adds a host behind a NAT router: the router is a namespace
// with an address on the Net (the host's Via) and a veth to the host,
// which has an address of its own on a private /24 that nothing on the
// Net has a route to. The router masquerades the host's connections
// (iptables MASQUERADE): the host dials anyone on the Net, and no one on
// the Net can dial it, except on the TCP ports in forward, which the
// router forwards to the same ports of the host (as an operator's
// management access would be; the test process reaches the host's
// gateway and admin API there). Host.Cut takes the router's link to the
// Net down.
func (nw *Net) AddBehindNAT(tb testing.TB, forward ...int) (*Host, error) {
	tb.Helper()
	if err := NATAvailable(); err != nil {
		return nil, err
	}
	k := len(nw.routers)
	id := strings.TrimPrefix(nw.bridge, "trbr")
	router := fmt.Sprintf("trnr%s%d", id, k)
	nw.routers = append(nw.routers, router) // removed by nw.remove
	via := nw.addr(200 + k)
	// The private side: 192.168.<k>.0/24, the router at .1, the host at .2.
	private := netip.AddrFrom4([4]byte{192, 168, byte(100 + k), 1})
	h := &Host{NS: fmt.Sprintf("trnh%s%d", id, k), IP: private.Next(), Via: via, veth: fmt.Sprintf("trvr%s%d", id, k)}
	nw.natted = append(nw.natted, h)
	inner := fmt.Sprintf("trpr%s%d", id, k)
	steps := [][]string{
		{"netns", "add", router},
		{"netns", "add", h.NS},
		{"link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", router},
		{"link", "set", h.veth, "master", nw.bridge, "up"},
		{"-n", router, "addr", "add", via.String() + "/24", "dev", "eth0"},
		{"-n", router, "link", "set", "eth0", "up"},
		{"-n", router, "link", "set", "lo", "up"},
		{"-n", router, "route", "add", "default", "via", nw.addr(1).String()},
		{"link", "add", inner, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		{"link", "set", inner, "netns", router, "name", "eth1"},
		{"-n", router, "addr", "add", private.String() + "/24", "dev", "eth1"},
		{"-n", router, "link", "set", "eth1", "up"},
		{"-n", h.NS, "addr", "add", h.IP.String() + "/24", "dev", "eth0"},
		{"-n", h.NS, "link", "set", "eth0", "up"},
		{"-n", h.NS, "link", "set", "lo", "up"},
		{"-n", h.NS, "route", "add", "default", "via", private.String()},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return nil, err
		}
	}
	in := func(args ...string) error {
		out, err := exec.Command("ip", append([]string{"netns", "exec", router}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s: %w: %s", ErrNoNAT, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := in("sysctl", "-q", "-w", "net.ipv4.ip_forward=1"); err != nil {
		return nil, err
	}
	if err := in("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE"); err != nil {
		return nil, err
	}
	for _, p := range forward {
		if err := in("iptables", "-t", "nat", "-A", "PREROUTING", "-i", "eth0", "-p", "tcp", "--dport", strconv.Itoa(p),
			"-j", "DNAT", "--to-destination", h.IP.String()); err != nil {
			return nil, err
		}
	}
	// Nothing else from the Net is forwarded to the host: only replies to
	// its own connections and the forwarded ports.
	for _, rule := range [][]string{
		{"-A", "FORWARD", "-i", "eth0", "-o", "eth1", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED,DNAT", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "eth0", "-o", "eth1", "-j", "DROP"},
	} {
		if err := in(append([]string{"iptables"}, rule...)...); err != nil {
			return nil, err
		}
	}
	if err := h.reachable(5 * time.Second); err != nil {
		return nil, err
	}
	return h, nil
}

// Egress limits the connections the host behind NAT (AddBehindNAT) may
// open to the given addresses on the Net, as a firewall that lets a member
// talk to its relay only; with no addresses it lifts the limit.
func (h *Host) Egress(nw *Net, to ...netip.Addr) error {
	i := slices.Index(nw.natted, h)
	if i < 0 {
		return fmt.Errorf("netns: %s is not behind NAT", h.NS)
	}
	router := nw.routers[i]
	iptables := func(args ...string) error {
		out, err := exec.Command("ip", append([]string{"netns", "exec", router, "iptables"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: iptables %s: %w: %s", ErrNoNAT, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	_ = iptables("-D", "FORWARD", "-i", "eth1", "-o", "eth0", "-j", "EGRESS")
	_ = iptables("-F", "EGRESS")
	_ = iptables("-X", "EGRESS")
	if len(to) == 0 {
		return nil
	}
	if err := iptables("-N", "EGRESS"); err != nil {
		return err
	}
	for _, a := range to {
		if err := iptables("-A", "EGRESS", "-d", a.String(), "-j", "RETURN"); err != nil {
			return err
		}
	}
	if err := iptables("-A", "EGRESS", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"); err != nil {
		return err
	}
	if err := iptables("-A", "EGRESS", "-j", "DROP"); err != nil {
		return err
	}
	return iptables("-I", "FORWARD", "-i", "eth1", "-o", "eth0", "-j", "EGRESS")
}
