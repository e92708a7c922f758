package consensus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func mustNewHost(t *testing.T, psk []byte, listen ...string) host.Host {
	t.Helper()
	id, err := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(HostConfig{Identity: id, Listen: listen, PSK: psk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestIdentityPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	a, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	ida, _ := peer.IDFromPrivateKey(a)
	idb, _ := peer.IDFromPrivateKey(b)
	if ida != idb {
		t.Fatal("identity changed between loads")
	}
}

func TestPreSharedKeyClosesTheNetwork(t *testing.T) {
	k1 := bytes.Repeat([]byte{1}, 32)
	k2 := bytes.Repeat([]byte{2}, 32)
	a := mustNewHost(t, k1, "/ip4/127.0.0.1/tcp/0")
	same := mustNewHost(t, k1, "/ip4/127.0.0.1/tcp/0")
	other := mustNewHost(t, k2, "/ip4/127.0.0.1/tcp/0")
	open := mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	target := peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}
	if err := same.Connect(ctx, target); err != nil {
		t.Fatalf("same key: %v", err)
	}
	for name, h := range map[string]host.Host{"another key": other, "no key": open} {
		if err := h.Connect(ctx, target); err == nil {
			t.Fatalf("%s connected to a pre-shared-key network", name)
		}
	}
	id, _ := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "k"))
	if _, err := NewHost(HostConfig{Identity: id, Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, PSK: k1}); err == nil || !strings.Contains(err.Error(), "QUIC") {
		t.Fatalf("QUIC with a pre-shared key: %v", err)
	}
}

func TestGaterAdmitsClusterPeersOnly(t *testing.T) {
	a := mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	b := mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	g := NewGater(a.ID(), b.ID())
	if !g.Allowed(b.ID()) || !g.Allowed(a.ID()) {
		t.Fatal("configured peer or self refused")
	}
	g.Block(b.ID())
	if g.Allowed(b.ID()) {
		t.Fatal("blocked peer admitted")
	}
	g.Unblock(b.ID())
	g.Disallow(b.ID())
	if g.Allowed(b.ID()) {
		t.Fatal("disallowed peer admitted")
	}
}

// The node serves its own Prometheus registry; a host that registered
// libp2p's metrics with the global one would collect them for nobody.
func TestHostKeepsOutOfTheGlobalRegistry(t *testing.T) {
	a := mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	b := mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	const proto = "/trustreg/test-echo/1"
	b.SetStreamHandler(proto, func(s network.Stream) {
		_, _ = io.Copy(s, s)
		s.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := a.NewStream(ctx, b.ID(), proto)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	if got, err := io.ReadAll(s); err != nil || string(got) != "ping" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		// go-libp2p registers its event bus's counters whatever the
		// options; they move when a subscription changes, not per stream.
		if strings.HasPrefix(f.GetName(), "libp2p_") && !strings.HasPrefix(f.GetName(), "libp2p_eventbus_") {
			t.Errorf("libp2p registered %s with the global registry", f.GetName())
		}
	}
}

// TestUnfinishedHandshakesAreDropped: TCP connections that never finish
// the security handshake (silent ones, and ones that stop after the first
// protocol line) are closed by the node within seconds, with a pre-shared
// key and without; a peer that finished its handshake keeps its
// connection. libp2p alone held them for its 15 s accept timeout.
func TestUnfinishedHandshakesAreDropped(t *testing.T) {
	for name, psk := range map[string][]byte{"open network": nil, "pre-shared key": bytes.Repeat([]byte{7}, 32)} {
		t.Run(name, func(t *testing.T) {
			h := mustNewHost(t, psk, "/ip4/127.0.0.1/tcp/0")
			peerHost := mustNewHost(t, psk, "/ip4/127.0.0.1/tcp/0")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := peerHost.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
				t.Fatal(err)
			}
			var addr string
			for _, a := range h.Addrs() {
				if na, err := manet.ToNetAddr(a); err == nil {
					addr = na.String()
				}
			}
			const idle = 200
			// Well under libp2p's own 15 s, well over handshakeTimeout.
			window := time.Now().Add(12 * time.Second)
			var wg sync.WaitGroup
			var held atomic.Int32
			for i := range idle {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				if i%2 == 1 {
					// The first line of multistream-select, then nothing.
					_, _ = c.Write(append([]byte{19}, "/multistream/1.0.0\n"...))
				}
				wg.Go(func() {
					defer c.Close()
					_ = c.SetReadDeadline(window)
					// Whatever the node sends, it must then close.
					for {
						_, err := c.Read(make([]byte, 512))
						var ne net.Error
						if errors.As(err, &ne) && ne.Timeout() {
							held.Add(1)
							return
						}
						if err != nil {
							return
						}
					}
				})
			}
			wg.Wait()
			if n := held.Load(); n > 0 {
				t.Fatalf("%d of %d connections that never finished a handshake were still open after 12 s", n, idle)
			}
			if h.Network().Connectedness(peerHost.ID()) != network.Connected {
				t.Fatal("a peer that finished its handshake lost its connection")
			}
		})
	}
}

// TestNewHostOnATakenPortLeavesNothingRunning: a host that cannot bind
// its listen address returns an error and leaves none of its goroutines
// (its resource manager's among them) behind; a node that retries, or a
// test that goes on, must not carry them.
func TestNewHostOnATakenPortLeavesNothingRunning(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	before := goleak.IgnoreCurrent()
	id, err := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	port := taken.Addr().(*net.TCPAddr).Port
	h, err := NewHost(HostConfig{Identity: id, Listen: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)}})
	if err == nil {
		h.Close()
		t.Fatalf("a host on the taken port %d started", port)
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %q does not say the address is in use", err)
	}
	goleak.VerifyNone(t, before)
}
