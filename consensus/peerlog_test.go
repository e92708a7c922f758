package consensus

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// lockedBuffer is a bytes.Buffer a logger and a test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the JSON records written so far.
func (l *lockedBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	raw := bytes.Clone(l.b.Bytes())
	l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		m["raw"] = string(line)
		out = append(out, m)
	}
	return out
}

// TestUnreachableMemberIsLoggedOncePerPeer: a node whose other voter has
// another pre-shared key, or refuses it, fails to reach it at every
// election and reaches out to it every second. Each kind of record about
// that peer is logged once (per minute), not at every attempt.
func TestUnreachableMemberIsLoggedOncePerPeer(t *testing.T) {
	psk := bytes.Repeat([]byte{1}, 32)
	for _, tc := range []struct {
		name string
		// other starts the other voter and returns its id and addresses
		// and the number of times this node has tried it so far.
		other func(t *testing.T, self peer.ID) (peer.ID, []ma.Multiaddr, func() int32)
	}{
		{"another pre-shared key", func(t *testing.T, _ peer.ID) (peer.ID, []ma.Multiaddr, func() int32) {
			// A peer with another key answers what decrypts to noise:
			// random bytes, then it hangs up.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			var tries atomic.Int32
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					tries.Add(1)
					noise := make([]byte, 64)
					_, _ = rand.Read(noise)
					_, _ = c.Write(noise)
					c.Close()
				}
			}()
			id, err := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "other.key"))
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := peer.IDFromPrivateKey(id)
			addr, _ := manet.FromNetAddr(ln.Addr())
			return pid, []ma.Multiaddr{addr}, tries.Load
		}},
		{"refused by the peer", func(t *testing.T, self peer.ID) (peer.ID, []ma.Multiaddr, func() int32) {
			id, err := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "other.key"))
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := peer.IDFromPrivateKey(id)
			var refusals atomic.Int32
			gater := NewGater(pid) // admits nobody else
			gater.OnRefused = func(peer.ID, network.Direction) { refusals.Add(1) }
			h, err := NewHost(HostConfig{Identity: id, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, PSK: psk, Gater: gater})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.Close() })
			return pid, h.Addrs(), refusals.Load
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			self := mustNewHost(t, psk, "/ip4/127.0.0.1/tcp/0")
			other, addrs, tries := tc.other(t, self.ID())
			self.Peerstore().AddAddrs(other, addrs, peerstore.PermanentAddrTTL)

			var buf lockedBuffer
			logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
			c, err := Start(Config{Dir: filepath.Join(t.TempDir(), "raft"), Host: self, StateMachine: &countingMachine{}, Logger: logger,
				Bootstrap: true, Voters: []peer.ID{other}, Contacts: []peer.ID{other}, ClusterID: "test", Codec: indexCodec{},
				HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Shutdown() })

			pollUntil(t, "ten failed attempts to reach the other voter", 30*time.Second, func() bool { return tries() >= 10 })
			perKind := map[string]int{}
			for _, r := range buf.records(t) {
				if strings.Contains(r["raw"].(string), other.String()) {
					perKind[r["msg"].(string)]++
				}
			}
			if perKind["raft: failed to make requestVote RPC"] == 0 {
				t.Fatalf("the failure to reach the other voter was not logged: %v", perKind)
			}
			for msg, n := range perKind {
				if n > 1 {
					t.Errorf("%q logged %d times about the same peer within a minute", msg, n)
				}
			}
		})
	}
}

// TestRepeatsCountWhatTheyHoldBack: a record of a kind is let through once
// per interval, and the next one let through says how many were held back.
func TestRepeatsCountWhatTheyHoldBack(t *testing.T) {
	r := newRepeats(time.Minute)
	now := time.Unix(0, 0)
	r.now = func() time.Time { return now }
	if ok, n := r.let("a"); !ok || n != 0 {
		t.Fatalf("first record: %v, %d", ok, n)
	}
	for range 5 {
		if ok, _ := r.let("a"); ok {
			t.Fatal("a repeat within the interval was let through")
		}
	}
	if ok, _ := r.let("b"); !ok {
		t.Fatal("another kind was held back")
	}
	now = now.Add(time.Minute)
	if ok, n := r.let("a"); !ok || n != 5 {
		t.Fatalf("after the interval: %v, %d held back; want true, 5", ok, n)
	}
}
