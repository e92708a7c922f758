package consensus

import (
	"context"
	"runtime"

	"github.com/hashicorp/raft"
)

// Prefetcher is a StateMachine that can prepare for commands before they
// are applied: the cluster hands it the commands of the entries this node
// has just stored in its raft log, before they are committed, off raft's
// goroutines. What it prepares must be only a help to Apply (a memory of
// work Apply would otherwise do, checked there), never a change of state:
// an entry stored may be replaced by another leader's and never applied.
type Prefetcher interface {
	Prefetch(cmds [][]byte)
}

// Bounds of the prefetch queue: commands per piece of work, and pieces
// waiting. Past them, entries are not prefetched (Apply does the work).
const (
	prefetchChunk = 8
	prefetchQueue = 64
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
	queue chan [][]byte
}

// newPrefetchLogs wraps logs; nothing is prefetched before start.
func newPrefetchLogs(logs *LogStore) *prefetchLogs {
	return &prefetchLogs{LogStore: logs, queue: make(chan [][]byte, prefetchQueue)}
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
				case cmds := <-pl.queue:
					p.Prefetch(cmds)
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
	var cmds [][]byte
	for _, l := range logs {
		if l.Type != raft.LogCommand || len(l.Data) < stampLen || l.Data[0] != entryVersion1 {
			continue // raft's own entries; an envelope Apply will refuse
		}
		cmds = append(cmds, l.Data[stampLen:])
		if len(cmds) == prefetchChunk {
			pl.offer(cmds)
			cmds = nil
		}
	}
	if len(cmds) > 0 {
		pl.offer(cmds)
	}
	return nil
}

func (pl *prefetchLogs) offer(cmds [][]byte) {
	select {
	case pl.queue <- cmds:
	default:
	}
}
