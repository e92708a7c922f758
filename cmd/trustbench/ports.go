package main

import (
	"fmt"
	"net"
	"strconv"
	"sync"
)

// portTries bounds the search for a port this run has not given out.
const portTries = 100

// portsGiven holds every port freePort returned in this run: the kernel
// may hand the same ephemeral port to two listen-and-close probes a moment
// apart, and two members of one cluster must not both be told to bind it.
var portsGiven = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// freePort returns a loopback port that was free for TCP and for UDP a
// moment ago (trustd serves QUIC on its TCP port's number) and that no
// other server of this run was given; none left is a broken machine, not a
// result.
func freePort() int {
	p, err := probePort()
	if err != nil {
		panic(err)
	}
	return p
}

func probePort() (int, error) {
	portsGiven.Lock()
	defer portsGiven.Unlock()
	for range portTries {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, udpErr := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		closeRead(ln)
		if udpErr != nil {
			continue
		}
		closeRead(pc)
		if portsGiven.m[port] {
			continue
		}
		portsGiven.m[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("free port: none free for TCP and UDP on 127.0.0.1 that this run had not given out, in %d tries", portTries)
}
