package consensus

import (
	"context"
	"runtime"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// Prefetcher is a StateMachine that can prepare for entries before they
// are applied: the cluster hands it the entries this node has just stored
// in its raft log (raft's own left out), before they are committed, off
// raft's goroutines; it may skip those it has applied already, or that
// are too far ahead of its apply for what it keeps to last until then.
// What it prepares must be only a help to Apply (a memory of work Apply
// would otherwise do, checked there), never a change of state: an entry
// stored may be replaced by another leader's and never applied.
type Prefetcher interface {
	Prefetch(entries []Entry)
}

// Bounds of the prefetch queue: entries per piece of work, pieces waiting,
// and the bytes of their commands. Past them, entries are not prefetched
// (Apply does the work).
const (
	prefetchChunk      = 8
	prefetchQueue      = 64
	prefetchQueueBytes = 16 << 20
)

// prefetchLogs is the raft log store that, once entries are stored, queues
// their commands for the state machine's Prefetch. A follower stores the
// entries of an append one round before it learns they are committed, and
// applies the batch before them meanwhile; a leader stores its entries as
// it replicates them. So the work Prefetch does (checking the signatures
// of a batch's operations) runs beside the apply of earlier entries on
// the other cores, not in front of the apply of these.
type prefetchLogs struct {
	*LogStore
	queue  chan []Entry
	queued atomic.Int64 // bytes of the commands in queue
}

// newPrefetchLogs wraps logs; nothing is prefetched before start.
func newPrefetchLogs(logs *LogStore) *prefetchLogs {
	return &prefetchLogs{LogStore: logs, queue: make(chan []Entry, prefetchQueue)}
}

// start runs the workers (one per core) under life: they call p.Prefetch
// with what is queued until life ends.
func (pl *prefetchLogs) start(p Prefetcher, life *lifetime) {
	for range runtime.GOMAXPROCS(0) {
		life.spawn(func(ctx context.Context) {
			for {
				select {
				case <-ctx.Done():
					return
				case entries := <-pl.queue:
					pl.queued.Add(-entriesBytes(entries))
					if ctx.Err() == nil {
						p.Prefetch(entries)
					}
				}
			}
		})
	}
}

// StoreLog stores one entry, then queues it.
func (pl *prefetchLogs) StoreLog(l *raft.Log) error { return pl.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores entries, then queues their commands in pieces; a piece
// that finds the queue full is dropped, never waited for (raft's
// goroutine calls this).
func (pl *prefetchLogs) StoreLogs(logs []*raft.Log) error {
	if err := pl.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	var piece []Entry
	for _, l := range logs {
		if l.Type != raft.LogCommand || len(l.Data) < stampLen || l.Data[0] != entryVersion1 {
			continue // raft's own entries; an envelope Apply will refuse
		}
		piece = append(piece, unstamp(l.Index, l.Data))
		if len(piece) == prefetchChunk {
			pl.offer(piece)
			piece = nil
		}
	}
	if len(piece) > 0 {
		pl.offer(piece)
	}
	return nil
}

func (pl *prefetchLogs) offer(piece []Entry) {
	n := entriesBytes(piece)
	if pl.queued.Add(n) > prefetchQueueBytes {
		pl.queued.Add(-n)
		return
	}
	select {
	case pl.queue <- piece:
	default:
		pl.queued.Add(-n)
	}
}

// entriesBytes is the bytes of the entries' commands.
func entriesBytes(entries []Entry) int64 {
	var n int64
	for _, e := range entries {
		n += int64(len(e.Data))
	}
	return n
}
