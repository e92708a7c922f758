// Package ports hands out loopback ports to the tests and the benchmark
// that start trustd nodes (in-process or as processes) and etcd members
// whose addresses must be known before they start: a cluster's members
// name each other in their configuration, so the ports cannot be left to
// the kernel at bind time.
//
// A port handed out is one that was free on 127.0.0.1 for TCP and for UDP
// a moment ago (trustd listens for QUIC on the TCP port's number), that
// this process has not handed out before, and that lies below the
// kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range) when
// the kernel says where that range starts.
//
// The second rule is the one a bare "listen on :0, close, return the
// port" lacks: the kernel may give the same port to two such calls a
// moment apart, and two members of one cluster then race to bind it. The
// third is for the tests that stop a node and start it again on its
// ports: a port in the ephemeral range can be given, while the node is
// down, to any process's outgoing connection, and the restarted node then
// fails with "address already in use". Ports below the range are given
// to nobody who does not ask for them by number.
package ports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// tries bounds the search for a port not handed out before.
const tries = 200

// lowest is the first port handed out from below the ephemeral range:
// above the ports that services commonly listen on.
const lowest = 20000

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
	below, err := ephemeralStart()
	for range tries {
		port := 0 // the kernel's choice, where the range is unknown
		if err == nil && below > lowest {
			port = lowest + rand.IntN(below-lowest)
		}
		port, ok := probe(port)
		if !ok || handed[port] {
			continue
		}
		handed[port] = true
		return port, nil
	}
	return 0, errors.New("ports: no loopback port free for TCP and UDP that was not handed out before, in " + strconv.Itoa(tries) + " tries")
}

// probe binds port (0: one the kernel picks) on 127.0.0.1 for TCP and
// then the same number for UDP, closes both, and says whether both binds
// succeeded.
func probe(port int) (int, bool) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return 0, false
	}
	port = ln.Addr().(*net.TCPAddr).Port
	udp, uerr := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	_ = ln.Close() // a probe, only bound; its close loses nothing
	if uerr != nil {
		return 0, false
	}
	_ = udp.Close() // a probe, only bound
	return port, true
}

// rangeFile is where Linux keeps the bounds of its ephemeral ports.
var rangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// ephemeralStart returns the first port of the kernel's ephemeral range.
func ephemeralStart() (int, error) {
	b, err := os.ReadFile(rangeFile)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, fmt.Errorf("ports: %s: want two numbers, got %q", rangeFile, b)
	}
	return strconv.Atoi(f[0])
}
