// Package ports hands out loopback ports to the tests and the benchmark
// that start trustd nodes (in-process or as processes) and etcd members
// whose addresses must be known before they start: a cluster's members
// name each other in their configuration, so the ports cannot be left to
// the kernel at bind time.
//
// A port handed out is one the kernel gave for 127.0.0.1, that was then
// free for UDP too (trustd listens for QUIC on the TCP port's number),
// and that this process has not handed out before. The last rule is the
// one a bare "listen on :0, close, return the port" lacks: the kernel may
// give the same port to two such calls a moment apart, and two members of
// one cluster then race to bind it.
package ports

import (
	"errors"
	"net"
	"strconv"
	"sync"
)

// tries bounds the search for a port not handed out before.
const tries = 100

var (
	mu     sync.Mutex
	handed = make(map[int]bool)
)

// Free returns a loopback port free for TCP and UDP a moment ago and
// never returned before by this process. Another process may still take
// it before the caller's server binds it.
func Free() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for range tries {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		udp, uerr := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		_ = ln.Close() // a probe, only bound; its close loses nothing
		if uerr != nil {
			continue
		}
		_ = udp.Close() // a probe, only bound
		if handed[port] {
			continue
		}
		handed[port] = true
		return port, nil
	}
	return 0, errors.New("ports: no loopback port free for TCP and UDP that was not handed out before, in " + strconv.Itoa(tries) + " tries")
}
