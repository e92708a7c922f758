package ports

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeNeverRepeats asks for more ports than any test cluster uses and
// checks that none comes back twice and each can be bound for TCP and UDP.
func TestFreeNeverRepeats(t *testing.T) {
	seen := make(map[int]bool)
	for range 200 {
		p, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		if p <= 0 || p > 65535 {
			t.Fatalf("port %d out of range", p)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	p, err := Free()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("tcp %s: %v", addr, err)
	}
	defer ln.Close()
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("udp %s: %v", addr, err)
	}
	udp.Close()
}
