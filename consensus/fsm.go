package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// Entry is one committed command as the StateMachine receives it.
type Entry struct {
	Index uint64
	Time  time.Time // commit time, stamped by the leader that proposed it
	Data  []byte
}

// StateMachine is what the cluster drives. Apply must be a pure function of
// the state and the entries; it returns one response per entry.
type StateMachine interface {
	Apply(entries []Entry) []any
	Snapshot() (Snapshot, error)
	Restore(r io.Reader) error
	AppliedIndex() uint64
}

// Snapshot is a point-in-time view of a StateMachine.
type Snapshot interface {
	WriteTo(w io.Writer) (int64, error)
	Release()
}

// stampLen is the length of the entry envelope before the command: the
// version byte and the leader's clock in nanoseconds.
const stampLen = 9

// stamp wraps cmd in the entry envelope entryVersion1 (wire.go).
func stamp(cmd []byte, t time.Time) []byte {
	b := make([]byte, 0, stampLen+len(cmd))
	b = append(b, entryVersion1)
	b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	return append(b, cmd...)
}

func unstamp(index uint64, data []byte) Entry {
	if len(data) < stampLen || data[0] != entryVersion1 {
		panic(fmt.Sprintf("consensus: log entry %d has an unknown envelope: this node cannot apply it; upgrade trustd", index))
	}
	return Entry{Index: index, Time: time.Unix(0, int64(binary.BigEndian.Uint64(data[1:stampLen]))).UTC(), Data: data[stampLen:]}
}

// fsm adapts a StateMachine to raft.FSM and raft.BatchingFSM.
type fsm struct {
	sm      StateMachine
	metrics *raftMetrics
	ckpts   *checkpoints // where snapshots are kept as checkpoints, when sm is Checkpointing
	log     *slog.Logger
	// raft is set once raft has started; until then no commit latency is
	// observed (raft may apply before NewRaft returns).
	raft atomic.Pointer[raft.Raft]
	// afterRestore, when set, runs once a snapshot raft installed is
	// restored (Cluster.dropStale).
	afterRestore func()
}

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	entries := make([]Entry, 0, len(logs))
	pos := make([]int, 0, len(logs))
	// On the leader, an entry of its own term is one it stamped when it
	// proposed it: the time since is its commit latency.
	var leaderTerm uint64
	if r := f.raft.Load(); r != nil && r.State() == raft.Leader {
		leaderTerm = r.CurrentTerm()
	}
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		e := unstamp(l.Index, l.Data)
		if leaderTerm != 0 && l.Term == leaderTerm {
			observeSince(f.metrics.commit, e.Time)
		}
		entries = append(entries, e)
		pos = append(pos, i)
	}
	if len(entries) == 0 {
		return out
	}
	start := time.Now()
	res := f.sm.Apply(entries)
	// Counted before the batch is observed: a reader that finds the batch
	// in the histogram finds its entries counted.
	f.metrics.applied.Add(uint64(len(entries)))
	observeSince(f.metrics.apply, start)
	for i, p := range pos {
		out[p] = res[i]
	}
	return out
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	start := time.Now()
	if cp, ok := f.sm.(Checkpointing); ok && f.ckpts != nil {
		dir := f.ckpts.pending()
		err := cp.Checkpoint(dir)
		if err == nil {
			return &checkpointSnapshot{ckpts: f.ckpts, dir: dir, start: start, took: f.metrics.snapshot}, nil
		}
		// Streamed as before, from the state as it is.
		f.log.Warn("could not keep a snapshot as a checkpoint; streaming it", "err", err)
		if err := os.RemoveAll(dir); err != nil {
			f.log.Warn("could not remove a failed checkpoint", "dir", dir, "err", err)
		}
	}
	s, err := f.sm.Snapshot()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{s: s, start: start, took: f.metrics.snapshot}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	// raft hands the FSM the snapshot to read and to close; a close's
	// error after the read cannot change what was restored.
	defer func() { _ = rc.Close() }()
	start := time.Now()
	if err := f.sm.Restore(rc); err != nil {
		return err
	}
	observeSince(f.metrics.restore, start)
	if f.afterRestore != nil {
		f.afterRestore()
	}
	return nil
}

type fsmSnapshot struct {
	s Snapshot
	// start is when the capture began; took observes the time from then
	// until the snapshot is written.
	start time.Time
	took  prometheus.Histogram
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.s.WriteTo(sink); err != nil {
		return fmt.Errorf("persist snapshot: %w", errors.Join(err, sink.Cancel()))
	}
	if err := sink.Close(); err != nil {
		return err
	}
	observeSince(s.took, s.start)
	return nil
}

func (s *fsmSnapshot) Release() { s.s.Release() }
