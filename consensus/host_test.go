package consensus

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
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
