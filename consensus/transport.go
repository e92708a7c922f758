package consensus

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/gostream"
)

// RaftProtocol is the libp2p protocol raft's RPCs travel on.
const RaftProtocol = protocol.ID("/trustreg/raft/1.0.0")

// streamLayer is a raft.StreamLayer on libp2p streams: raft server
// addresses are peer ids, and each raft connection is one libp2p stream.
type streamLayer struct {
	h      host.Host
	l      net.Listener
	peers  *peering
	conns  chan net.Conn
	closed chan struct{}
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func newStreamLayer(h host.Host, peers *peering) (*streamLayer, error) {
	l, err := gostream.Listen(h, RaftProtocol)
	if err != nil {
		return nil, fmt.Errorf("listen for raft streams: %w", err)
	}
	s := &streamLayer{h: h, l: l, peers: peers, conns: make(chan net.Conn), closed: make(chan struct{})}
	go s.acceptLoop()
	return s, nil
}

// acceptLoop hands raft only streams from peers of the same cluster.
func (s *streamLayer) acceptLoop() {
	for {
		conn, err := s.l.Accept()
		if err != nil {
			return
		}
		go func() {
			id, err := peer.Decode(conn.RemoteAddr().String())
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err = s.peers.verify(ctx, id)
				cancel()
			}
			if err != nil {
				conn.Close()
				return
			}
			select {
			case s.conns <- conn:
			case <-s.closed:
				conn.Close()
			}
		}()
	}
}

func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

func (s *streamLayer) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	return s.l.Close()
}

func (s *streamLayer) Addr() net.Addr { return s.l.Addr() }

// Dial opens a raft stream to the peer the address names.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	pid, err := peer.Decode(string(address))
	if err != nil {
		return nil, fmt.Errorf("raft address %q is not a peer id: %w", address, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Raft retries with its own backoff; libp2p's dial backoff (5 s and
	// growing after a failed dial) would keep a member that just started
	// or restarted unreachable long after it is up.
	ctx = network.WithForceDirectDial(ctx, "raft retries with its own backoff")
	if err := s.peers.verify(ctx, pid); err != nil {
		return nil, err
	}
	return gostream.Dial(ctx, s.h, pid, RaftProtocol)
}

// newTransport wraps the stream layer in raft's network transport, which
// pools connections so heartbeats reuse streams.
func newTransport(h host.Host, peers *peering, logger *slog.Logger) (*raft.NetworkTransport, error) {
	sl, err := newStreamLayer(h, peers)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  sl,
		MaxPool: 4,
		Timeout: 10 * time.Second,
		Logger:  newRaftLogger(logger, "raft-net"),
	}), nil
}
