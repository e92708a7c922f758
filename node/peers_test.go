package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
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
