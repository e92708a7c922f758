package consensus

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"
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

// stamp wraps cmd in the entry envelope entryVersion1 (wire.go).
func stamp(cmd []byte, t time.Time) []byte {
	b := make([]byte, 0, 9+len(cmd))
	b = append(b, entryVersion1)
	b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	return append(b, cmd...)
}

func unstamp(index uint64, data []byte) Entry {
	if len(data) < 9 || data[0] != entryVersion1 {
		panic(fmt.Sprintf("consensus: log entry %d has an unknown envelope: this node cannot apply it; upgrade trustd", index))
	}
	return Entry{Index: index, Time: time.Unix(0, int64(binary.BigEndian.Uint64(data[1:9]))).UTC(), Data: data[9:]}
}

// fsm adapts a StateMachine to raft.FSM and raft.BatchingFSM.
type fsm struct {
	sm StateMachine
}

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	entries := make([]Entry, 0, len(logs))
	pos := make([]int, 0, len(logs))
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		entries = append(entries, unstamp(l.Index, l.Data))
		pos = append(pos, i)
	}
	if len(entries) == 0 {
		return out
	}
	res := f.sm.Apply(entries)
	for i, p := range pos {
		out[p] = res[i]
	}
	return out
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.sm.Snapshot()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{s: s}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.sm.Restore(rc)
}

type fsmSnapshot struct {
	s Snapshot
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.s.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.s.Release() }
