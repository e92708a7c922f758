package consensus

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// recordingPrefetcher keeps what Prefetch was given.
type recordingPrefetcher struct {
	mu     sync.Mutex
	chunks [][]Entry
	got    chan struct{}
}

func (p *recordingPrefetcher) Prefetch(entries []Entry) {
	p.mu.Lock()
	p.chunks = append(p.chunks, entries)
	p.mu.Unlock()
	p.got <- struct{}{}
}

// The log store hands the entries it stored, as Apply gets them (index,
// the leader's time, the command without its envelope), to the state
// machine's Prefetch in pieces of at most prefetchChunk, and leaves out
// raft's own entries. The entries are stored as they would be without it.
func TestPrefetchLogsHandsStoredCommandsOver(t *testing.T) {
	logs, _ := mustNewLogStore(t)
	pl := newPrefetchLogs(logs)
	p := &recordingPrefetcher{got: make(chan struct{}, 16)}
	life := newLifetime()
	defer func() {
		life.stop()
		if !life.wait(5 * time.Second) {
			t.Error("the prefetch workers did not stop")
		}
	}()
	pl.start(p, life)

	var entries []*raft.Log
	var want []Entry
	for i := range 19 {
		cmd := fmt.Appendf(nil, "command %d", i)
		want = append(want, Entry{Index: uint64(i + 1), Time: time.Unix(int64(i), 0).UTC(), Data: cmd})
		entries = append(entries, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: stamp(cmd, time.Unix(int64(i), 0))})
	}
	entries = append(entries, &raft.Log{Index: 20, Type: raft.LogConfiguration, Data: []byte("configuration")},
		&raft.Log{Index: 21, Type: raft.LogCommand, Data: []byte{0xff}}) // an envelope the apply refuses
	if err := pl.StoreLogs(entries); err != nil {
		t.Fatal(err)
	}
	for range 3 { // 8 + 8 + 3
		select {
		case <-p.got:
		case <-time.After(5 * time.Second):
			t.Fatal("Prefetch called fewer than 3 times")
		}
	}
	p.mu.Lock()
	var got []Entry
	for _, c := range p.chunks {
		if len(c) > prefetchChunk {
			t.Errorf("a piece of %d commands, at most %d", len(c), prefetchChunk)
		}
		got = append(got, c...)
	}
	p.mu.Unlock()
	// Workers take pieces in any order.
	slices.SortFunc(got, func(a, b Entry) int { return int(a.Index) - int(b.Index) })
	if !slices.EqualFunc(got, want, func(a, b Entry) bool {
		return a.Index == b.Index && a.Time.Equal(b.Time) && bytes.Equal(a.Data, b.Data)
	}) {
		t.Fatalf("prefetched %+v, want %+v", got, want)
	}
	var l raft.Log
	if err := logs.GetLog(21, &l); err != nil || l.Type != raft.LogCommand {
		t.Fatalf("entry 21 as stored: %+v, %v", l, err)
	}
}

// A full queue drops pieces instead of holding up raft's goroutine.
func TestPrefetchLogsNeverWaits(t *testing.T) {
	logs, _ := mustNewLogStore(t)
	pl := newPrefetchLogs(logs) // no workers: nothing takes from the queue
	done := make(chan error, 1)
	go func() {
		var err error
		for i := range prefetchQueue + 10 {
			if err = pl.StoreLog(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: stamp([]byte("c"), time.Unix(0, 0))}); err != nil {
				break
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("StoreLog waited for a full prefetch queue")
	}
	if len(pl.queue) != prefetchQueue {
		t.Fatalf("%d pieces queued, want the bound %d", len(pl.queue), prefetchQueue)
	}
	if last, err := logs.LastIndex(); err != nil || last != prefetchQueue+10 {
		t.Fatalf("last index %d, %v; want every entry stored", last, err)
	}
}
