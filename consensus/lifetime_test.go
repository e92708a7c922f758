package consensus

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"go.uber.org/goleak"
)

// mustStartLeaderless starts a cluster whose configuration names a second
// voter that never answers: it never elects a leader, so a write or a
// membership request waits for one for LeaderWait.
func mustStartLeaderless(t *testing.T) *Cluster {
	t.Helper()
	h := mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	key, err := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "ghost.key"))
	if err != nil {
		t.Fatal(err)
	}
	ghost, _ := peer.IDFromPrivateKey(key)
	c, err := Start(Config{Dir: filepath.Join(t.TempDir(), "raft"), Host: h, StateMachine: &countingMachine{},
		Bootstrap: true, Voters: []peer.ID{ghost}, ClusterID: "test", Codec: indexCodec{}, LeaderWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown() })
	return c
}

// goroutinesIn counts the goroutines whose stack holds fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), fn+"(")
}

// TestShutdownEndsRequestsAndWaitsForThem: a local write and a request
// served for another node, both waiting for a leader, end when the cluster
// shuts down, with ErrShutdown; Shutdown returns only once the request it
// served has returned, and leaves no goroutine behind.
func TestShutdownEndsRequestsAndWaitsForThem(t *testing.T) {
	a, b := mustStartLeaderless(t), mustStartLeaderless(t)
	b.host.Peerstore().AddAddrs(a.host.ID(), a.host.Addrs(), peerstore.PermanentAddrTTL)

	applied := make(chan error, 1)
	go func() {
		_, err := a.Apply(context.Background(), []byte("write"))
		applied <- err
	}()
	served := make(chan error, 1)
	go func() {
		// b asks a to have it added; a waits for a leader to forward it to.
		_, err := b.call(context.Background(), a.host.ID(), rpcJoin, []byte(`{"nonvoter":true}`))
		served <- err
	}()
	deadline := time.Now().Add(15 * time.Second)
	for goroutinesIn("consensus.(*Cluster).handleJoin") == 0 || goroutinesIn("consensus.(*Cluster).leaderPeer") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the write and the join request never reached the wait for a leader")
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}

	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if n := goroutinesIn("consensus.(*Cluster).handleJoin"); n != 0 {
		t.Fatalf("Shutdown returned while %d request(s) it was serving still ran", n)
	}
	for what, ch := range map[string]chan error{"local write": applied, "request served for another node": served} {
		select {
		case err := <-ch:
			if !errors.Is(err, ErrShutdown) {
				t.Errorf("%s ended with %v, want ErrShutdown", what, err)
			}
		case <-time.After(30 * time.Second): // a hang, not a speed check
			t.Fatalf("%s still waiting for a leader after Shutdown", what)
		}
	}
	if _, err := a.Apply(context.Background(), []byte("late")); !errors.Is(err, ErrShutdown) {
		t.Errorf("a write after Shutdown: %v, want ErrShutdown", err)
	}
	if _, err := a.ReadIndex(context.Background()); !errors.Is(err, ErrShutdown) {
		t.Errorf("a read index after Shutdown: %v, want ErrShutdown", err)
	}

	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	a.host.Close()
	b.host.Close()
	goleak.VerifyNone(t)
}

// TestShutdownAnswersEveryWrite: writes in flight when the cluster shuts
// down all return, with ErrShutdown or ErrUnknownOutcome; raft answers no
// apply still in its buffered channel, and a caller must not wait on one
// for ever.
func TestShutdownAnswersEveryWrite(t *testing.T) {
	c := mustStartClusters(t, 1)[0]
	const writers, bound = 32, 100_000
	var (
		progress atomic.Int64
		ended    = make([]error, writers)
		wg       sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for range bound {
				if _, err := c.Apply(context.Background(), []byte("write")); err != nil {
					ended[w] = err
					return
				}
				progress.Add(1)
			}
		})
	}
	deadline := time.Now().Add(15 * time.Second)
	for progress.Load() < 1000 {
		if time.Now().After(deadline) {
			t.Fatal("the writers made no progress")
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a hang, not a speed check
		t.Fatal("writes in flight at Shutdown never returned")
	}
	for w, err := range ended {
		if !errors.Is(err, ErrShutdown) && !errors.Is(err, ErrUnknownOutcome) {
			t.Errorf("writer %d ended with %v, want ErrShutdown or ErrUnknownOutcome", w, err)
		}
	}
}
