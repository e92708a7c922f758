package node

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

// stateMachine presents the registry to the consensus layer.
type stateMachine struct {
	s   *registry.State
	log *slog.Logger
}

func (m stateMachine) Apply(entries []consensus.Entry) []any {
	res := m.s.ApplyBatch(registryEntries(entries))
	out := make([]any, len(res))
	for i, r := range res {
		out[i] = r
	}
	return out
}

func (m stateMachine) Snapshot() (consensus.Snapshot, error) { return m.s.Snapshot(), nil }
func (m stateMachine) Restore(r io.Reader) error             { return m.s.Restore(r) }
func (m stateMachine) AppliedIndex() uint64                  { return m.s.AppliedIndex() }

// resultCodec carries registry results of writes forwarded to the leader.
type resultCodec struct{}

func (resultCodec) Encode(v any) ([]byte, error) {
	r, ok := v.(*record.Result)
	if !ok {
		return nil, fmt.Errorf("unexpected apply response %T", v)
	}
	return json.Marshal(r)
}

func (resultCodec) Decode(b []byte) (any, error) {
	var r record.Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode forwarded result: %w", err)
	}
	return &r, nil
}

// Checkpoint and OpenCheckpoint keep the node's raft snapshots as Pebble
// checkpoints of the state (consensus.Checkpointing).
func (m stateMachine) Checkpoint(dir string) error { return m.s.Checkpoint(dir) }
func (m stateMachine) OpenCheckpoint(dir string) (consensus.Snapshot, error) {
	return registry.OpenCheckpoint(dir, m.log)
}

// Prefetch checks the operations among entries just stored in the raft
// log before they are applied (consensus.Prefetcher).
func (m stateMachine) Prefetch(entries []consensus.Entry) { m.s.Prefetch(registryEntries(entries)) }

var _ consensus.Prefetcher = stateMachine{}

// registryEntries converts consensus entries for the registry.
func registryEntries(entries []consensus.Entry) []registry.Entry {
	in := make([]registry.Entry, len(entries))
	for i, e := range entries {
		in[i] = registry.Entry{Index: e.Index, Time: e.Time, Data: e.Data}
	}
	return in
}
