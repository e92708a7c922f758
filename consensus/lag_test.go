package consensus

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A heartbeat being handled when the cluster closes holds the close of the
// raft log until it returns; one arriving after is refused without
// reaching raft.
func TestHeartbeatsCloseWaitsForRunningHandler(t *testing.T) {
	h := heartbeats{done: make(chan struct{})}
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	handle := h.wrap(func(rpc raft.RPC) {
		calls.Add(1)
		close(entered)
		<-release
		rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
	})
	firstResp := make(chan raft.RPCResponse, 1)
	first := raft.RPC{RespChan: firstResp}
	returned := make(chan struct{})
	go func() { handle(first); close(returned) }()
	<-entered

	if h.close(50 * time.Millisecond) {
		t.Fatal("close reported the handlers ended while one was still running")
	}
	// Refused after close began: raft's handler is not called, the
	// transport gets an answer.
	lateResp := make(chan raft.RPCResponse, 1)
	handle(raft.RPC{RespChan: lateResp})
	if resp := <-lateResp; !errors.Is(resp.Error, raft.ErrRaftShutdown) {
		t.Fatalf("late heartbeat answered %v, want %v", resp.Error, raft.ErrRaftShutdown)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("raft's handler ran %d times, want 1", n)
	}

	waited := make(chan bool)
	go func() { waited <- h.close(10 * time.Second) }()
	select {
	case <-waited:
		t.Fatal("close returned while a handler was still running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if !<-waited {
		t.Fatal("close did not see the running handler end")
	}
	<-returned
	if resp := <-firstResp; resp.Error != nil {
		t.Fatalf("the running heartbeat was answered %v", resp.Error)
	}
}

// With no handler running, close returns at once, and twice is harmless.
func TestHeartbeatsCloseIdle(t *testing.T) {
	h := heartbeats{done: make(chan struct{})}
	ran := false
	h.wrap(func(raft.RPC) { ran = true })(raft.RPC{RespChan: make(chan raft.RPCResponse, 1)})
	if !ran {
		t.Fatal("handler did not run before close")
	}
	for i := range 2 {
		if !h.close(time.Second) {
			t.Fatalf("close %d of an idle gate reported a running handler", i+1)
		}
	}
}

// Raft's heartbeats on a follower go through the counted handler, and a
// follower shut down while the leader goes on sending them refuses them
// from then on.
func TestFollowerHeartbeatsAreCountedAndRefusedAfterShutdown(t *testing.T) {
	cs := mustStartClusters(t, 3)
	f := cs[(leaderOf(cs)+1)%len(cs)]
	deadline := time.Now().Add(15 * time.Second)
	for f.watch.beats.handled.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no heartbeat reached the follower's counted handler in 15 s")
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	if err := f.Shutdown(); err != nil {
		t.Fatal(err)
	}
	f.watch.beats.mu.Lock()
	closed, running := f.watch.beats.closed, f.watch.beats.running
	f.watch.beats.mu.Unlock()
	if !closed || running != 0 {
		t.Fatalf("after Shutdown: heartbeats closed %v, running %d; want closed, none running", closed, running)
	}
	// A heartbeat reaching the follower's gate now is answered with an
	// error and never reaches the handler behind it.
	reached := false
	resp := make(chan raft.RPCResponse, 1)
	f.watch.beats.wrap(func(raft.RPC) { reached = true })(raft.RPC{Command: &raft.AppendEntriesRequest{}, RespChan: resp})
	if r := <-resp; reached || !errors.Is(r.Error, raft.ErrRaftShutdown) {
		t.Fatalf("a heartbeat after Shutdown: reached the handler %v, answered %v; want refused with %v", reached, r.Error, raft.ErrRaftShutdown)
	}
}
