package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// Checkpointing is implemented by a StateMachine whose snapshots can be
// kept as checkpoints: a copy of its state in a directory, made in a few
// milliseconds (hard links), from which the snapshot's stream is made only
// when raft reads it, to send it to a follower or to restore it. A
// snapshot streamed when taken costs CPU in proportion to the whole state
// on every snapshot a node takes for itself (every snapshot_threshold
// entries); raft reads one only for a follower that fell behind its log.
type Checkpointing interface {
	// Checkpoint writes the state as of the last applied entry into dir,
	// which does not exist yet. It is called where Snapshot is, between
	// two applies.
	Checkpoint(dir string) error
	// OpenCheckpoint returns the snapshot a Checkpoint wrote into dir,
	// whose WriteTo streams what Snapshot's would have at that index.
	OpenCheckpoint(dir string) (Snapshot, error)
}

// checkpointMagic is the whole content of a raft snapshot kept as a
// checkpoint: the stream is made from <raft dir>/checkpoints/<snapshot
// id> when the snapshot is opened (snapshotStore.Open).
var checkpointMagic = []byte("TRCKPT\x00\x01")

// Names under the checkpoints directory besides the snapshots' own: a
// checkpoint taken and not yet given to a snapshot, and a stream being
// made from one.
const (
	pendingPrefix = "pending-"
	streamSuffix  = ".stream"
)

// checkpoints is the directory of the checkpoints of a snapshot store.
type checkpoints struct {
	dir     string
	open    func(dir string) (Snapshot, error) // the state machine's OpenCheckpoint; nil without
	log     *slog.Logger
	seq     atomic.Uint64
	mu      sync.Mutex
	writing map[string]int // ids of snapshots being written: not pruned
}

func newCheckpoints(dir string, log *slog.Logger) (*checkpoints, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &checkpoints{dir: dir, log: log, writing: map[string]int{}}
	// What a crash left: checkpoints never given to a snapshot, and
	// streams being made.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), pendingPrefix) || strings.HasSuffix(e.Name(), streamSuffix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("remove an unfinished checkpoint: %w", err)
			}
		}
	}
	return c, nil
}

// pending returns a new directory name for a checkpoint not yet given to a
// snapshot.
func (c *checkpoints) pending() string {
	return filepath.Join(c.dir, fmt.Sprintf("%s%d-%d", pendingPrefix, os.Getpid(), c.seq.Add(1)))
}

// path is the checkpoint directory of snapshot id.
func (c *checkpoints) path(id string) string { return filepath.Join(c.dir, id) }

func (c *checkpoints) begin(id string) {
	c.mu.Lock()
	c.writing[id]++
	c.mu.Unlock()
}

func (c *checkpoints) end(id string) {
	c.mu.Lock()
	if c.writing[id]--; c.writing[id] <= 0 {
		delete(c.writing, id)
	}
	c.mu.Unlock()
}

// prune removes the checkpoints of snapshots the store no longer holds
// (raft's file store keeps the newest two), except those being written.
func (c *checkpoints) prune(held []*raft.SnapshotMeta) error {
	keep := map[string]bool{}
	for _, m := range held {
		keep[m.ID] = true
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || keep[name] || c.writing[name] > 0 || strings.HasPrefix(name, pendingPrefix) {
			continue
		}
		errs = append(errs, os.RemoveAll(filepath.Join(c.dir, name)))
	}
	return errors.Join(errs...)
}

// stream makes the stream of snapshot meta's checkpoint in a temporary
// file, and returns the meta with the stream's size (raft sends the size
// before the stream) and the file, removed when closed.
func (c *checkpoints) stream(meta *raft.SnapshotMeta) (*raft.SnapshotMeta, io.ReadCloser, error) {
	if c.open == nil {
		return nil, nil, fmt.Errorf("snapshot %s is kept as a checkpoint, and this state machine cannot open one", meta.ID)
	}
	sn, err := c.open(c.path(meta.ID))
	if err != nil {
		return nil, nil, fmt.Errorf("open the checkpoint of snapshot %s: %w", meta.ID, err)
	}
	defer sn.Release()
	f, err := os.CreateTemp(c.dir, meta.ID+"-*"+streamSuffix)
	if err != nil {
		return nil, nil, err
	}
	n, err := sn.WriteTo(f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("stream the checkpoint of snapshot %s: %w", meta.ID, err), f.Close(), os.Remove(f.Name()))
	}
	m := *meta
	m.Size = n
	return &m, &removeOnClose{File: f}, nil
}

// removeOnClose is a temporary file that is removed once read and closed.
type removeOnClose struct{ *os.File }

func (r *removeOnClose) Close() error {
	return errors.Join(r.File.Close(), os.Remove(r.Name()))
}

// peekedReader reads the bytes already read from rc, then the rest of rc.
type peekedReader struct {
	io.Reader
	rc io.ReadCloser
}

func (p *peekedReader) Close() error { return p.rc.Close() }

// checkpointSnapshot is an FSM snapshot kept as a checkpoint: Persist
// gives the checkpoint to the snapshot and writes checkpointMagic as its
// content.
type checkpointSnapshot struct {
	ckpts *checkpoints
	dir   string // the pending checkpoint, until Persist renames it
	start time.Time
	took  prometheus.Histogram
}

func (s *checkpointSnapshot) Persist(sink raft.SnapshotSink) error {
	final := s.ckpts.path(sink.ID())
	s.ckpts.begin(sink.ID())
	defer s.ckpts.end(sink.ID())
	err := os.Rename(s.dir, final)
	if err == nil {
		s.dir = ""
		_, err = sink.Write(checkpointMagic)
	}
	if err != nil {
		return fmt.Errorf("persist snapshot: %w", errors.Join(err, sink.Cancel(), os.RemoveAll(final)))
	}
	if err := sink.Close(); err != nil {
		return errors.Join(err, os.RemoveAll(final))
	}
	observeSince(s.took, s.start)
	return nil
}

func (s *checkpointSnapshot) Release() {
	if s.dir != "" {
		if err := os.RemoveAll(s.dir); err != nil {
			s.ckpts.log.Warn("could not remove a checkpoint no snapshot took", "dir", s.dir, "err", err)
		}
	}
}

// isCheckpointRef reports whether head, a snapshot's first bytes, is a
// checkpoint reference.
func isCheckpointRef(head []byte) bool { return bytes.Equal(head, checkpointMagic) }
