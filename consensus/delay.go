package consensus

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// LinkDelay is the one-way delay added to the bytes a node sends to one
// peer: each write is held back Delay plus a uniformly random part of
// Jitter before it is sent. It is a testing and benchmark aid that stands
// in for distance between members (Config.SendDelay); a production node
// never delays its traffic.
type LinkDelay struct {
	Delay  time.Duration
	Jitter time.Duration
}

// UniformDelay delays what a node sends to every peer by the same link.
func UniformDelay(l LinkDelay) func(peer.ID) LinkDelay {
	return func(peer.ID) LinkDelay { return l }
}

// maxDelayedBytes bounds the bytes one delayed stream holds back: a write
// that would go beyond it waits until earlier writes have been sent, so a
// delayed link carries at most maxDelayedBytes per Delay on each stream.
const maxDelayedBytes = 4 << 20

// delayHost is a libp2p host whose streams (opened and accepted) delay
// what this node writes to each peer by delay(peer). Every protocol the
// cluster speaks between nodes (hello, raft, RPC: forwarded writes, read
// index, membership) runs on its streams. Only stream data is delayed:
// connection set-up and protocol negotiation are not.
type delayHost struct {
	host.Host
	delay func(peer.ID) LinkDelay
}

func newDelayHost(h host.Host, delay func(peer.ID) LinkDelay) host.Host {
	if delay == nil {
		return h
	}
	return delayHost{Host: h, delay: delay}
}

// NewStream opens a stream whose writes are delayed.
func (h delayHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return h.wrap(s), nil
}

// SetStreamHandler hands handler accepted streams whose writes are delayed.
func (h delayHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.wrap(s)) })
}

// SetStreamHandlerMatch is SetStreamHandler for protocols that match.
func (h delayHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, func(s network.Stream) { handler(h.wrap(s)) })
}

func (h delayHost) wrap(s network.Stream) network.Stream {
	l := h.delay(s.Conn().RemotePeer())
	if l.Delay <= 0 && l.Jitter <= 0 {
		return s
	}
	return newDelayedStream(s, l)
}

// delayedStream sends each write after its link's delay, in the order
// written: a write is due at max(now + delay + jitter, the previous
// write's due time), so jitter never reorders bytes. Writes return once
// queued; an error of the stream underneath is returned by the writes
// after it. Close and CloseWrite are queued behind the data; Reset drops
// what is queued and acts at once. A goroutine sends the queue while it
// is not empty.
type delayedStream struct {
	network.Stream
	link LinkDelay

	mu      sync.Mutex
	more    *sync.Cond // queue shrank, or the stream failed or was reset
	queue   []delayedWrite
	queued  int       // bytes in queue
	last    time.Time // due time of the last write queued
	err     error     // first error of the stream underneath
	reset   chan struct{}
	pumping bool
}

// delayedWrite is one queued write, or (close set) a queued Close or
// CloseWrite.
type delayedWrite struct {
	due   time.Time
	b     []byte
	close func() error
}

func newDelayedStream(s network.Stream, l LinkDelay) *delayedStream {
	d := &delayedStream{Stream: s, link: l, reset: make(chan struct{})}
	d.more = sync.NewCond(&d.mu)
	return d
}

// dueLocked is when something queued now is sent.
func (d *delayedStream) dueLocked() time.Time {
	wait := d.link.Delay
	if d.link.Jitter > 0 {
		wait += rand.N(d.link.Jitter)
	}
	due := time.Now().Add(wait)
	if due.Before(d.last) {
		due = d.last
	}
	d.last = due
	return due
}

// Write queues a copy of b, waiting while the queue holds maxDelayedBytes.
func (d *delayedStream) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.err == nil && d.queued > 0 && d.queued+len(b) > maxDelayedBytes {
		d.more.Wait()
	}
	if d.err != nil {
		return 0, d.err
	}
	d.enqueueLocked(delayedWrite{due: d.dueLocked(), b: append([]byte(nil), b...)})
	return len(b), nil
}

func (d *delayedStream) enqueueLocked(w delayedWrite) {
	d.queue = append(d.queue, w)
	d.queued += len(w.b)
	if !d.pumping {
		d.pumping = true
		go d.pump()
	}
}

// Close closes the stream once the writes queued before it are sent.
func (d *delayedStream) Close() error { return d.queueClose(d.Stream.Close) }

// CloseWrite closes the write side once the writes queued before it are
// sent.
func (d *delayedStream) CloseWrite() error { return d.queueClose(d.Stream.CloseWrite) }

func (d *delayedStream) queueClose(f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return f()
	}
	d.enqueueLocked(delayedWrite{due: d.dueLocked(), close: f})
	return nil
}

// Reset drops the queue and resets the stream at once.
func (d *delayedStream) Reset() error {
	d.fail(network.ErrReset)
	return d.Stream.Reset()
}

// ResetWithError is Reset with an error code for the peer.
func (d *delayedStream) ResetWithError(code network.StreamErrorCode) error {
	d.fail(network.ErrReset)
	return d.Stream.ResetWithError(code)
}

// fail records the stream's first error, drops the queue and wakes the
// writers and the sender.
func (d *delayedStream) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return
	}
	d.err = err
	d.queue, d.queued = nil, 0
	close(d.reset)
	d.more.Broadcast()
}

// pump sends the queue, each write when it is due, and ends when the
// queue is empty or the stream failed.
func (d *delayedStream) pump() {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		d.mu.Lock()
		if len(d.queue) == 0 || d.err != nil {
			d.pumping = false
			d.mu.Unlock()
			return
		}
		w := d.queue[0]
		d.mu.Unlock()
		if wait := time.Until(w.due); wait > 0 {
			if t == nil {
				t = time.NewTimer(wait)
			} else {
				t.Reset(wait)
			}
			select {
			case <-t.C:
			case <-d.reset:
				continue // the loop sees the error and ends
			}
		}
		var err error
		if w.close != nil {
			err = w.close()
		} else {
			_, err = d.Stream.Write(w.b)
		}
		if err != nil {
			d.fail(err)
			continue
		}
		d.mu.Lock()
		if d.err == nil {
			d.queue[0] = delayedWrite{}
			d.queue = d.queue[1:]
			d.queued -= len(w.b)
			d.more.Broadcast()
		}
		d.mu.Unlock()
	}
}
