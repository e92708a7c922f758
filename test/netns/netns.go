// Package netns gives process-level tests hosts with addresses of their
// own: each host is a Linux network namespace joined to a bridge in the
// test's namespace by a veth pair, with its own IPv4 address on a /24 the
// test picks. A test runs a trustd in a host with Host.Command, reaches its
// gateway at Host.IP from the test process, and cuts a host off the
// network by taking its veth down (Host.Cut): packets are lost, not
// refused, as when a link between regions fails.
//
// It needs root (CAP_NET_ADMIN) and iproute2's ip; Available says why it
// cannot run. TRUSTREG_TEST_NETNS=off turns it off (tests then run on
// loopback). Every namespace, veth and bridge it makes is removed by the
// test's cleanup, and names carry the test process's pid, so parallel test
// binaries do not collide.
package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ErrUnavailable is returned by Available and New when this machine cannot
// make network namespaces (not root, no ip command, or the kernel refuses).
var ErrUnavailable = errors.New("netns: network namespaces unavailable")

var (
	probeOnce sync.Once
	probeErr  error
	seq       atomic.Uint32 // networks made by this process
)

// Available reports whether New can work here, trying once to make and
// remove a namespace.
func Available() error {
	probeOnce.Do(func() {
		if os.Getenv("TRUSTREG_TEST_NETNS") == "off" {
			probeErr = fmt.Errorf("%w: turned off by TRUSTREG_TEST_NETNS=off", ErrUnavailable)
			return
		}
		if os.Geteuid() != 0 {
			probeErr = fmt.Errorf("%w: not running as root", ErrUnavailable)
			return
		}
		if _, err := exec.LookPath("ip"); err != nil {
			probeErr = fmt.Errorf("%w: no ip command (iproute2): %w", ErrUnavailable, err)
			return
		}
		name := fmt.Sprintf("trprobe%d", os.Getpid())
		if err := ip("netns", "add", name); err != nil {
			probeErr = fmt.Errorf("%w: %w", ErrUnavailable, err)
			return
		}
		if err := ip("netns", "del", name); err != nil {
			probeErr = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	})
	return probeErr
}

// Net is a bridge in the test's namespace with hosts attached.
type Net struct {
	bridge string
	prefix netip.Prefix
	Hosts  []*Host
	// routers are the namespaces of the NATs in front of hosts behind
	// NAT (AddBehindNAT), which are not in Hosts.
	routers []string
	natted  []*Host
}

// Host is one network namespace with an address on the Net.
type Host struct {
	// NS is the namespace's name (for ip netns exec).
	NS string
	// IP is the host's address, reachable from the test process and from
	// every other host of the Net while the host is not cut.
	IP netip.Addr
	// Via, for a host behind NAT (AddBehindNAT), is its router's address
	// on the Net: the test process reaches the ports the router forwards
	// to the host there, and members see the host's connections come
	// from it. The zero Addr for other hosts.
	Via  netip.Addr
	veth string // the test-side end of the host's veth pair (the router's, behind NAT)
	mu   sync.Mutex
	cut  bool
}

// New makes a Net with n hosts and registers its removal with tb.Cleanup.
func New(tb testing.TB, n int) (*Net, error) {
	tb.Helper()
	if err := Available(); err != nil {
		return nil, err
	}
	if n < 1 || n > 200 {
		return nil, fmt.Errorf("netns: %d hosts: want 1 to 200", n)
	}
	id := fmt.Sprintf("%d%c", os.Getpid()%100000, 'a'+rune(seq.Add(1)%26))
	// 10.213.x.0/24 with x from the pid and the sequence: distinct for
	// the networks of one process, unlikely to meet another's.
	third := (os.Getpid()*7 + int(seq.Load())) % 250
	nw := &Net{
		bridge: "trbr" + id,
		prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(third), 0}), 24),
	}
	tb.Cleanup(nw.remove)
	gw := nw.addr(1)
	// nf_call_iptables 0: frames between hosts on this bridge are not run
	// through the machine's iptables FORWARD chain (br_netfilter is often
	// loaded with a DROP policy by container runtimes).
	if err := ip("link", "add", nw.bridge, "type", "bridge", "nf_call_iptables", "0"); err != nil {
		return nil, err
	}
	if err := ip("addr", "add", gw.String()+"/24", "dev", nw.bridge); err != nil {
		return nil, err
	}
	if err := ip("link", "set", nw.bridge, "up"); err != nil {
		return nil, err
	}
	for i := range n {
		h := &Host{NS: fmt.Sprintf("trns%s%d", id, i), IP: nw.addr(2 + i), veth: fmt.Sprintf("trv%s%d", id, i)}
		nw.Hosts = append(nw.Hosts, h)
		steps := [][]string{
			{"netns", "add", h.NS},
			{"link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			{"link", "set", h.veth, "master", nw.bridge, "up"},
			{"-n", h.NS, "addr", "add", h.IP.String() + "/24", "dev", "eth0"},
			{"-n", h.NS, "link", "set", "eth0", "up"},
			{"-n", h.NS, "link", "set", "lo", "up"},
			{"-n", h.NS, "route", "add", "default", "via", gw.String()},
		}
		for _, s := range steps {
			if err := ip(s...); err != nil {
				return nil, err
			}
		}
	}
	for _, h := range nw.Hosts {
		if err := h.reachable(5 * time.Second); err != nil {
			return nil, err
		}
	}
	return nw, nil
}

func (nw *Net) addr(i int) netip.Addr {
	b := nw.prefix.Addr().As4()
	b[3] = byte(i)
	return netip.AddrFrom4(b)
}

// remove deletes the hosts' namespaces (which deletes their veth pairs)
// and the bridge. Errors are ignored: what is gone is gone.
func (nw *Net) remove() {
	for _, h := range append(slices.Clone(nw.Hosts), nw.natted...) {
		_ = ip("netns", "del", h.NS)
	}
	for _, r := range nw.routers {
		_ = ip("netns", "del", r)
	}
	_ = ip("link", "del", nw.bridge)
}

// Command returns a command that runs name with args inside the host's
// namespace. ip netns exec execs the program in its own place, so the
// command's process id is the program's (a SIGKILL reaches it).
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Reach is the address the test process reaches the host at: Via behind
// NAT, IP otherwise.
func (h *Host) Reach() netip.Addr {
	if h.Via.IsValid() {
		return h.Via
	}
	return h.IP
}

// Cut takes the host's link down: from then on nothing reaches it and it
// reaches nothing, and packets already on their way are lost.
func (h *Host) Cut() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ip("link", "set", h.veth, "down"); err != nil {
		return err
	}
	h.cut = true
	return nil
}

// Heal brings the host's link back up and waits until the host is
// reachable again.
func (h *Host) Heal() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ip("link", "set", h.veth, "up"); err != nil {
		return err
	}
	h.cut = false
	return h.reachable(10 * time.Second)
}

// reachable waits until a TCP connection to a closed port of the host is
// refused (the host answered) rather than timed out.
func (h *Host) reachable(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(h.Reach(), 9).String(), 500*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netns: host %s (%s) not reachable: %w", h.NS, h.IP, err)
		}
		time.Sleep(100 * time.Millisecond) // between probes
	}
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netns: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
