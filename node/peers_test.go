package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/trustreg/trustreg/configs"
)

func TestRefusalLogSpeaksOncePerIntervalPerPeer(t *testing.T) {
	var buf bytes.Buffer
	r := newRefusalLog(slog.New(slog.NewJSONHandler(&buf, nil)), time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	a, b := peer.ID("peer-a"), peer.ID("peer-b")
	for range 5 {
		r.refused(a, network.DirInbound)
		now = now.Add(time.Second)
	}
	r.refused(b, network.DirInbound)
	now = now.Add(time.Minute)
	r.refused(a, network.DirInbound)

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (a, b, a again a minute on):\n%s", len(lines), buf.String())
	}
	want := []struct {
		peer   string
		unsaid float64
	}{{a.String(), 0}, {b.String(), 0}, {a.String(), 4}}
	for i, w := range want {
		if lines[i]["peer"] != w.peer || lines[i]["refused_since_last_logged"] != w.unsaid {
			t.Errorf("line %d: %v, want peer %s and %v refusals unlogged", i, lines[i], w.peer, w.unsaid)
		}
	}
}

func TestRefusalLogForgetsPastItsBound(t *testing.T) {
	var buf bytes.Buffer
	r := newRefusalLog(slog.New(slog.NewJSONHandler(&buf, nil)), time.Minute)
	for i := range maxRefusalsTracked + 10 {
		r.refused(peer.ID(fmt.Sprintf("peer-%d", i)), network.DirInbound)
	}
	if n := len(r.last); n > maxRefusalsTracked {
		t.Fatalf("tracking %d peers, bound %d", n, maxRefusalsTracked)
	}
}

// TestStaticRelaysAreMembers: the relays default to p2p.peers, and a
// relay that is not a member is refused.
func TestStaticRelaysAreMembers(t *testing.T) {
	const a = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWQvHhPp1LF6iDh5H3SJHULE95Xzbs1YDaSeeN58khPwVe"
	const b = "/ip4/127.0.0.1/tcp/2/p2p/12D3KooWEQBV4X2P4hipX6N4VN23i5kRvGxzrdUoeNGHGN79kmWj"
	log := slog.New(slog.DiscardHandler)
	nat, err := natConfig(configs.P2PConfig{Peers: []string{a}, Reachability: "private"}, nil, log)
	if err != nil || len(nat.Relays) != 1 || nat.Relays[0].ID.String() != a[strings.LastIndex(a, "/")+1:] {
		t.Fatalf("relays by default: %+v, %v; want the peer of p2p.peers", nat.Relays, err)
	}
	if _, err := natConfig(configs.P2PConfig{Peers: []string{a}, StaticRelays: []string{b}}, nil, log); !errors.Is(err, errRelayNotMember) {
		t.Fatalf("a relay that is not a member: %v, want errRelayNotMember", err)
	}
	if _, err := natConfig(configs.P2PConfig{Peers: []string{a}, StaticRelays: []string{b}}, []string{b}, log); err != nil {
		t.Fatalf("a relay listed in raft.join: %v", err)
	}
}
