package consensus

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	dir      string                             // <raft dir>/checkpoints
	snapDir  string                             // <raft dir>/snapshots, raft's file store
	open     func(dir string) (Snapshot, error) // the state machine's OpenCheckpoint; nil without
	disk     *diskGuard
	log      *slog.Logger
	seq      atomic.Uint64
	mu       sync.Mutex
	streams  map[string]*sharedStream // by snapshot id: streams made and being read
	pinned   string                   // the snapshot whose stream is kept ready (pin)
	failures map[string]streamFailure // by snapshot id: the last stream that could not be made
}

// streamRetryAfter is how long a stream that could not be made is not
// tried again, doubling with each failure in a row up to
// streamRetryAfterMax: raft retries a send whose Open failed at its commit
// timeout (50 ms), and each try writes until the disk guard stops it.
const (
	streamRetryAfter    = 10 * time.Second
	streamRetryAfterMax = 5 * time.Minute
)

// sharedStream is the stream of one snapshot's checkpoint in a temporary
// file, made once and read by every send that opens the snapshot while it
// exists; removed when the last reader closes it.
type sharedStream struct {
	ready chan struct{} // closed once made (or failed)
	path  string
	size  int64
	err   error
	refs  int
}

type streamFailure struct {
	at    time.Time
	err   error
	count int // failures in a row
}

// wait is how long after the failure the stream is not tried again.
func (f streamFailure) wait() time.Duration {
	d := streamRetryAfter
	for i := 1; i < f.count && d < streamRetryAfterMax; i++ {
		d *= 2
	}
	return min(d, streamRetryAfterMax)
}

func newCheckpoints(dir, snapDir string, disk *diskGuard, log *slog.Logger) (*checkpoints, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		// Made durable before a snapshot relies on what it will hold.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return nil, err
		}
	}
	c := &checkpoints{dir: dir, snapDir: snapDir, disk: disk, log: log, streams: map[string]*sharedStream{}, failures: map[string]streamFailure{}}
	// What a crash left: checkpoints never given to a snapshot, and
	// streams being made. A failure to remove them is only logged: they
	// take room, and the next start tries again.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), pendingPrefix) || strings.HasSuffix(e.Name(), streamSuffix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				log.Warn("could not remove an unfinished checkpoint", "path", filepath.Join(dir, e.Name()), "err", err)
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

// snapshotHeld reports whether raft's store holds snapshot id, complete or
// being written.
func (c *checkpoints) snapshotHeld(id string) bool {
	// The name being written first: raft renames it to the final one in
	// one step, so a snapshot completing between the two looks is seen.
	for _, name := range []string{id + snapshotTmpSuffix, id} {
		if _, err := os.Stat(filepath.Join(c.snapDir, name)); !errors.Is(err, fs.ErrNotExist) {
			return true // there, or not known to be gone: kept
		}
	}
	return false
}

// prune removes the checkpoints of snapshots raft's store no longer holds
// (it keeps the newest two), except those being streamed. Whether a
// snapshot is held is read from its directory, at the moment of the
// decision, so a snapshot completed meanwhile keeps its checkpoint.
func (c *checkpoints) prune() error {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || strings.HasPrefix(name, pendingPrefix) || c.streams[name] != nil || c.snapshotHeld(name) {
			continue
		}
		errs = append(errs, os.RemoveAll(filepath.Join(c.dir, name)))
	}
	for id := range c.failures {
		if !c.snapshotHeld(id) {
			delete(c.failures, id)
		}
	}
	if c.pinned != "" && !c.snapshotHeld(c.pinned) {
		errs = append(errs, c.unpinLocked())
	}
	return errors.Join(errs...)
}

// stream returns the stream of snapshot meta's checkpoint, with meta's
// size set to the stream's (raft sends the size before the stream). The
// stream is made once into a temporary file, which every send of the
// snapshot reads while any does, and which the last reader's Close
// removes. A stream that could not be made is not tried again for a while
// (streamFailure.wait).
func (c *checkpoints) stream(meta *raft.SnapshotMeta) (*raft.SnapshotMeta, io.ReadCloser, error) {
	if c.open == nil {
		return nil, nil, fmt.Errorf("snapshot %s is kept as a checkpoint, and this state machine cannot open one", meta.ID)
	}
	id := meta.ID
	c.mu.Lock()
	s := c.streams[id]
	if s == nil {
		if f, ok := c.failures[id]; ok && time.Since(f.at) < f.wait() {
			c.mu.Unlock()
			return nil, nil, f.err
		}
		s = &sharedStream{ready: make(chan struct{})}
		c.streams[id] = s
		s.refs++
		c.mu.Unlock()
		s.path, s.size, s.err = c.make(meta)
		c.mu.Lock()
		if s.err != nil {
			delete(c.streams, id)
			c.failures[id] = streamFailure{at: time.Now(), err: s.err, count: c.failures[id].count + 1}
		} else {
			delete(c.failures, id)
		}
		close(s.ready)
		c.mu.Unlock()
	} else {
		s.refs++
		c.mu.Unlock()
		<-s.ready
	}
	if s.err != nil {
		return nil, nil, s.err
	}
	f, err := os.Open(s.path)
	if err != nil {
		c.release(id, s)
		return nil, nil, err
	}
	m := *meta
	m.Size = s.size
	return &m, &streamReader{File: f, done: func() { c.release(id, s) }}, nil
}

// pin keeps the stream of snapshot id, which an open of it holds, ready
// for later sends until the snapshot is removed or another is pinned: a
// snapshot an operator asks for is usually for a node about to be added,
// whose catch-up then does not wait for the stream to be made. A
// snapshot not kept as a checkpoint has nothing to pin.
func (c *checkpoints) pin(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[id]
	if s == nil || s.err != nil || c.pinned == id {
		return nil
	}
	var err error
	if c.pinned != "" {
		err = c.unpinLocked()
	}
	s.refs++
	c.pinned = id
	return err
}

// unpinLocked drops the pinned stream's hold (c.mu held).
func (c *checkpoints) unpinLocked() error {
	id := c.pinned
	c.pinned = ""
	if s := c.streams[id]; s != nil {
		return c.dropLocked(id, s)
	}
	return nil
}

// release drops one reader of s, removing its file after the last.
func (c *checkpoints) release(id string, s *sharedStream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.dropLocked(id, s); err != nil {
		c.log.Warn("could not remove a snapshot's stream", "err", err)
	}
}

// dropLocked drops one hold of s, removing its file after the last, and
// the checkpoint with it if its snapshot is gone (c.mu held).
func (c *checkpoints) dropLocked(id string, s *sharedStream) error {
	if s.refs--; s.refs > 0 || s.err != nil {
		return nil
	}
	delete(c.streams, id)
	err := os.Remove(s.path)
	// A prune while the stream was held skipped the checkpoint.
	if !c.snapshotHeld(id) {
		err = errors.Join(err, os.RemoveAll(c.path(id)))
	}
	return err
}

// make writes the stream of meta's checkpoint into a temporary file, within
// the disk guard's room, and returns its path and size.
func (c *checkpoints) make(meta *raft.SnapshotMeta) (string, int64, error) {
	if err := c.disk.check(); err != nil {
		return "", 0, fmt.Errorf("stream the checkpoint of snapshot %s: %w", meta.ID, err)
	}
	sn, err := c.open(c.path(meta.ID))
	if err != nil {
		return "", 0, fmt.Errorf("open the checkpoint of snapshot %s: %w", meta.ID, err)
	}
	defer sn.Release()
	f, err := os.CreateTemp(c.dir, meta.ID+"-*"+streamSuffix)
	if err != nil {
		return "", 0, err
	}
	n, err := sn.WriteTo(&roomWriter{w: f, disk: c.disk})
	if err == nil {
		err = f.Close()
	} else {
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return "", 0, errors.Join(fmt.Errorf("stream the checkpoint of snapshot %s: %w", meta.ID, err), os.Remove(f.Name()))
	}
	return f.Name(), n, nil
}

// streamReader is one send's reader of a shared stream.
type streamReader struct {
	*os.File
	done func()
	once sync.Once
}

func (r *streamReader) Close() error {
	err := r.File.Close()
	r.once.Do(r.done)
	return err
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
	id := sink.ID()
	final := s.ckpts.path(id)
	err := os.Rename(s.dir, final)
	if err == nil {
		s.dir = ""
		// The rename is made durable before raft's sink makes the
		// snapshot complete (and raft may compact its log).
		err = syncDir(s.ckpts.dir)
	}
	if err == nil {
		_, err = sink.Write(checkpointMagic)
	}
	if err != nil {
		return fmt.Errorf("persist snapshot: %w", errors.Join(err, sink.Cancel(), os.RemoveAll(final)))
	}
	if err := sink.Close(); err != nil {
		// raft's Close can fail after it moved the snapshot into place
		// (syncing its directory, removing older snapshots): a snapshot
		// in place keeps its checkpoint.
		if !s.ckpts.snapshotHeld(id) {
			err = errors.Join(err, os.RemoveAll(final))
		}
		return err
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

// syncDir fsyncs a directory, making the entries renamed into it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
