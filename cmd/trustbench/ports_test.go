package main

import (
	"net"
	"strconv"
	"testing"
)

// freePort never gives the same port twice in a run, and each port it
// gives can be bound for TCP and UDP on loopback.
func TestFreePortDistinctAndBindable(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p := freePort()
		if seen[p] {
			t.Fatalf("port %d given twice", p)
		}
		seen[p] = true
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		ln.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("port %d (udp): %v", p, err)
		}
		pc.Close()
	}
}
