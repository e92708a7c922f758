package netns

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCutHostIsUnreachableUntilHealed: a host answers (a closed port is
// refused) until its link is cut; then a dial gets no answer at all, and
// after Heal it answers again.
func TestCutHostIsUnreachableUntilHealed(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("needs network namespaces: %v", err)
	}
	nw, err := New(t, 2)
	if err != nil {
		t.Fatal(err)
	}
	h := nw.Hosts[1]
	if h.IP == nw.Hosts[0].IP || !nw.prefix.Contains(h.IP) {
		t.Fatalf("hosts %s and %s on %s", nw.Hosts[0].IP, h.IP, nw.prefix)
	}
	dial := func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(h.IP, 9).String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("before the cut: %v, want connection refused", err)
	}
	if err := h.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err == nil || errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("while cut: %v, want no answer", err)
	}
	if err := h.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := dial(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("after healing: %v, want connection refused", err)
	}
}

// TestCommandRunsInTheHost: a program started with Command sees the
// host's address on its own interface.
func TestCommandRunsInTheHost(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("needs network namespaces: %v", err)
	}
	nw, err := New(t, 1)
	if err != nil {
		t.Fatal(err)
	}
	out, err := nw.Hosts[0].Command("ip", "-4", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := " " + nw.Hosts[0].IP.String() + "/24 "; !strings.Contains(string(out), want) {
		t.Fatalf("eth0 in the host: %s, want %q", out, want)
	}
}

// TestHostBehindNAT: a host behind NAT dials the Net, its connections
// arriving from its router's address; no other host can dial it; an
// egress limit stops its dials to other addresses until lifted.
func TestHostBehindNAT(t *testing.T) {
	if err := NATAvailable(); err != nil {
		t.Skipf("needs network namespaces and iptables: %v", err)
	}
	nw, err := New(t, 1)
	if err != nil {
		t.Fatal(err)
	}
	h, err := nw.AddBehindNAT(t)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", netip.AddrPortFrom(nw.addr(1), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// dial runs a TCP connect to addr inside host ns (bash's /dev/tcp).
	dial := func(in *Host, addr string) error {
		out, err := in.Command("timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(addr, ":", "/", 1)).CombinedOutput()
		if err != nil {
			return errors.New(strings.TrimSpace(string(out)) + ": " + err.Error())
		}
		return nil
	}
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c.RemoteAddr()
			c.Close()
		}
	}()
	if err := dial(h, ln.Addr().String()); err != nil {
		t.Fatalf("the host behind NAT cannot dial the Net: %v", err)
	}
	select {
	case a := <-accepted:
		if got := a.(*net.TCPAddr).AddrPort().Addr(); got != h.Via {
			t.Errorf("connection from %s, want the router's %s", got, h.Via)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the listener accepted nothing")
	}
	if err := dial(nw.Hosts[0], netip.AddrPortFrom(h.IP, 9).String()); err == nil || strings.Contains(err.Error(), "refused") {
		t.Errorf("a host on the Net reached the host behind NAT at its own address: %v", err)
	}
	if err := h.Egress(nw, nw.Hosts[0].IP); err != nil {
		t.Fatal(err)
	}
	if err := dial(h, ln.Addr().String()); err == nil {
		t.Error("the egress limit let a dial to another address through")
	}
	if err := h.Egress(nw); err != nil {
		t.Fatal(err)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if err := dial(h, ln.Addr().String()); err != nil {
		t.Errorf("after lifting the egress limit: %v", err)
	}
}
