package consensus

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// recordingStream is the stream under a delayedStream: it records each
// write with the time it arrived, and when it was closed.
type recordingStream struct {
	network.Stream // nil: only the methods below are called

	mu       sync.Mutex
	writes   [][]byte
	at       []time.Time
	closedAt time.Time
	done     chan struct{}
}

func (r *recordingStream) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, append([]byte(nil), b...))
	r.at = append(r.at, time.Now())
	return len(b), nil
}

func (r *recordingStream) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closedAt = time.Now()
	close(r.done)
	return nil
}

// TestDelayedStreamDelaysEveryWriteAndKeepsOrder: each write reaches the
// stream underneath no sooner than the delay after it was written, in the
// order written although jitter gives later writes earlier due times, and
// Close acts after the last of them.
func TestDelayedStreamDelaysEveryWriteAndKeepsOrder(t *testing.T) {
	const delay, jitter, n = 40 * time.Millisecond, 30 * time.Millisecond, 200
	rec := &recordingStream{done: make(chan struct{})}
	d := newDelayedStream(rec, LinkDelay{Delay: delay, Jitter: jitter})
	written := make([]time.Time, n)
	for i := range n {
		written[i] = time.Now()
		if _, err := d.Write(binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rec.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the queued Close never reached the stream")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.writes) != n {
		t.Fatalf("%d writes arrived, want %d", len(rec.writes), n)
	}
	for i, b := range rec.writes {
		if got := binary.BigEndian.Uint32(b); got != uint32(i) {
			t.Fatalf("write %d arrived in place %d: order not kept", got, i)
		}
		if early := rec.at[i].Sub(written[i]); early < delay {
			t.Fatalf("write %d arrived %s after it was written, before the delay %s", i, early, delay)
		}
	}
	if rec.closedAt.Before(rec.at[n-1]) {
		t.Fatal("Close reached the stream before the data written before it")
	}
}

// blockingStream is a stream underneath whose writes wait for release.
type blockingStream struct {
	network.Stream
	release chan struct{}
	reset   chan struct{}
}

func (b *blockingStream) Write(p []byte) (int, error) {
	select {
	case <-b.release:
		return len(p), nil
	case <-b.reset:
		return 0, network.ErrReset
	}
}

func (b *blockingStream) Reset() error { close(b.reset); return nil }

// TestDelayedStreamBoundsItsQueue: while the stream underneath takes
// nothing, writes queue up to maxDelayedBytes and the next one waits; a
// Reset ends the wait with an error and drops the queue.
func TestDelayedStreamBoundsItsQueue(t *testing.T) {
	under := &blockingStream{release: make(chan struct{}), reset: make(chan struct{})}
	d := newDelayedStream(under, LinkDelay{Delay: time.Millisecond})
	chunk := make([]byte, 64<<10)
	for range maxDelayedBytes / len(chunk) {
		if _, err := d.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := d.Write(chunk)
		blocked <- err
	}()
	// The waiting writer is seen by the queue it waits on: it holds no
	// more than maxDelayedBytes however long the writer waits.
	waitUntil(t, "the queue to be full", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.queued == maxDelayedBytes
	})
	select {
	case err := <-blocked:
		t.Fatalf("a write beyond maxDelayedBytes did not wait: %v", err)
	default:
	}
	if err := d.Reset(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-blocked:
		if err == nil {
			t.Fatal("a write waiting on a reset stream succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Reset did not end the waiting write")
	}
	d.mu.Lock()
	queued := d.queued
	d.mu.Unlock()
	if queued != 0 {
		t.Fatalf("%d bytes still queued after Reset", queued)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// wanTiming is docs/OPERATIONS.md's timing for members across regions.
func wanTiming(cfg *Config) {
	cfg.HeartbeatTimeout = 2 * time.Second
	cfg.ElectionTimeout = 2 * time.Second
}

// TestClusterAcrossRegions: three voters 150 ms apart each way (every
// stream between them delayed, raft's and the RPCs'), on the WAN timing:
// they elect a leader, commit writes through the leader and through a
// follower, give read indexes at every node, and elect a new leader when
// the first one stops, which then commits too.
func TestClusterAcrossRegions(t *testing.T) {
	if testing.Short() {
		t.Skip("elections across 300 ms round trips take seconds")
	}
	link := LinkDelay{Delay: 150 * time.Millisecond, Jitter: 10 * time.Millisecond}
	cs := mustStartClustersWith(t, 3, func(cfg *Config) {
		wanTiming(cfg)
		cfg.SendDelay = UniformDelay(link)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := leaderOf(cs)
	var last uint64
	for i, c := range []*Cluster{cs[l], cs[(l+1)%3]} {
		for k := range 3 {
			res, err := c.Apply(ctx, fmt.Appendf(nil, "w%d-%d", i, k))
			if err != nil {
				t.Fatalf("write %d through node %d: %v", k, i, err)
			}
			last = res.(uint64)
		}
	}
	for i, c := range cs {
		idx, err := c.ReadIndex(ctx)
		if err != nil || idx < last {
			t.Fatalf("read index at node %d: %d, %v; want at least %d", i, idx, err, last)
		}
	}
	if err := cs[l].Shutdown(); err != nil {
		t.Fatal(err)
	}
	rest := []*Cluster{cs[(l+1)%3], cs[(l+2)%3]}
	waitUntil(t, "a new leader", func() bool { return leaderOf(rest) >= 0 })
	res, err := rest[0].Apply(ctx, []byte("after failover"))
	if err != nil {
		t.Fatalf("write after failover: %v", err)
	}
	if res.(uint64) <= last {
		t.Fatalf("write after failover at index %d, not after %d", res, last)
	}
}
