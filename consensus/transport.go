package consensus

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/gostream"
)

// streamLayer is a raft.StreamLayer on libp2p streams: raft server
// addresses are peer ids, and each raft connection is one libp2p stream.
type streamLayer struct {
	h     host.Host
	l     net.Listener
	peers *peering
	conns chan net.Conn
	// answered records the answers read from the streams this layer
	// dialed (raftMetrics.answered).
	answered *lastContacts
	// life ends at Close: the accept loop and the checks of accepted
	// streams end with it and Close waits for them; dials in progress end
	// with it too.
	life *lifetime

	mu       sync.Mutex
	accepted map[*acceptedConn]struct{} // handed to raft and open; closed at Close
}

// acceptedConn is a stream handed to raft; it leaves its layer's set when
// closed.
type acceptedConn struct {
	net.Conn
	s    *streamLayer
	once sync.Once
}

func (c *acceptedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.accepted, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func newStreamLayer(h host.Host, peers *peering, answered *lastContacts) (*streamLayer, error) {
	l, err := gostream.Listen(h, RaftProtocol)
	if err != nil {
		return nil, fmt.Errorf("listen for raft streams: %w", err)
	}
	s := &streamLayer{h: h, l: l, peers: peers, answered: answered, conns: make(chan net.Conn), life: newLifetime(), accepted: map[*acceptedConn]struct{}{}}
	s.life.spawn(s.acceptLoop)
	return s, nil
}

// acceptLoop hands raft only streams from peers of the same cluster.
func (s *streamLayer) acceptLoop(context.Context) {
	for {
		conn, err := s.l.Accept()
		if err != nil {
			return
		}
		started := s.life.spawn(func(ctx context.Context) {
			id, err := peer.Decode(conn.RemoteAddr().String())
			if err == nil {
				vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err = s.peers.verify(vctx, id)
				cancel()
			}
			if err != nil {
				_ = conn.Close() // refused before raft saw it; no one to tell
				return
			}
			ac := &acceptedConn{Conn: conn, s: s}
			s.mu.Lock()
			s.accepted[ac] = struct{}{}
			s.mu.Unlock()
			select {
			case s.conns <- ac:
			case <-ctx.Done():
				_ = ac.Close() // shutting down; raft never received it
			}
		})
		if !started {
			_ = conn.Close() // shutting down; raft never received it
		}
	}
}

func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.life.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting, ends the checks and dials in progress and waits
// for them, and closes the streams it handed to raft, so raft's handlers
// of them return.
func (s *streamLayer) Close() error {
	s.life.stop()
	err := s.l.Close()
	s.life.wait(shutdownWait)
	s.mu.Lock()
	open := make([]*acceptedConn, 0, len(s.accepted))
	for c := range s.accepted {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		_ = c.Close() // the listener's error is the one reported
	}
	return err
}

func (s *streamLayer) Addr() net.Addr { return s.l.Addr() }

// Dial opens a raft stream to the peer the address names.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	pid, err := peer.Decode(string(address))
	if err != nil {
		return nil, fmt.Errorf("raft address %q is not a peer id: %w", address, err)
	}
	ctx, cancel := context.WithTimeout(s.life.ctx, timeout)
	defer cancel()
	// Raft retries with its own backoff; libp2p's dial backoff (5 s and
	// growing after a failed dial) would keep a member that just started
	// or restarted unreachable long after it is up.
	ctx = memberDial(ctx, s.h, pid, "raft retries with its own backoff")
	if err := s.peers.verify(ctx, pid); err != nil {
		return nil, err
	}
	conn, err := gostream.Dial(ctx, s.h, pid, RaftProtocol)
	if err != nil {
		return nil, err
	}
	return &contactConn{Conn: conn, id: pid, seen: s.answered}, nil
}

// newTransport wraps the stream layer in raft's network transport, which
// pools connections so heartbeats reuse streams.
func newTransport(h host.Host, peers *peering, logger *slog.Logger, answered *lastContacts) (*raft.NetworkTransport, error) {
	sl, err := newStreamLayer(h, peers, answered)
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
