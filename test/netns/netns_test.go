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
