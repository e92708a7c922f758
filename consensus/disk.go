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
	"sync/atomic"
	"syscall"

	"github.com/hashicorp/raft"
)

// ErrDiskFull says the disk under the raft directory has less free space
// than the raft log keeps in reserve, or a write found it full. Nothing was
// written.
var ErrDiskFull = errors.New("consensus: disk full")

// DefaultLogReserveBytes is the free space the raft log keeps in reserve
// under its directory: entries are not appended, and snapshots not
// received, with less. Pebble needs room beyond a write to flush its
// memtable and rewrite its manifest, and raft must still be able to record
// its term and vote (which it cannot survive failing to).
const DefaultLogReserveBytes = 64 << 20

// diskGuard knows whether the disk under dir has room for a write, and
// remembers that it had not until space returns. It logs each change
// once, not each refused write.
type diskGuard struct {
	dir     string
	reserve uint64
	log     *slog.Logger
	full    atomic.Bool
	// free returns the bytes an unprivileged writer may still use under
	// dir (statfs by default; a test replaces it).
	free func(dir string) (uint64, error)
	// recent, when set (Config.DiskReadings), is a reading of free that
	// appends may reuse; nil: each append reads the disk.
	recent DiskReadings
}

// DiskReadings is a reading of the free space under the raft directory
// that appends may reuse while the disk is far from the reserve (the node
// wires in registry/diskspace.Recent; consensus imports no part of the
// registry).
type DiskReadings interface {
	// Free returns the bytes free for a write of need bytes by a writer
	// that keeps reserve bytes free, from the disk or a reused reading,
	// and counts the write against the reading.
	Free(need, reserve uint64) (uint64, error)
	// Forget drops the reading: the next Free reads the disk.
	Forget()
}

func newDiskGuard(dir string, reserve uint64, log *slog.Logger) *diskGuard {
	return &diskGuard{dir: dir, reserve: reserve, log: log, free: statfsFree}
}

// reuseReadings has appends reuse readings made by newReadings over the
// guard's own reading of the disk.
func (g *diskGuard) reuseReadings(newReadings func(read func() (uint64, error)) DiskReadings) {
	g.recent = newReadings(func() (uint64, error) { return g.free(g.dir) })
}

func statfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// check returns an ErrDiskFull error when the free space under the
// directory is below the reserve. A disk whose space cannot be read counts
// as having room: the write itself then says what is wrong. It reads the
// disk each time (one statfs).
func (g *diskGuard) check() error { return g.room(0) }

// room is check for a write of need bytes: the reserve must remain after
// it.
func (g *diskGuard) room(need uint64) error {
	free, err := g.free(g.dir)
	return g.judge(free, err, need)
}

// checkWrite is check before an append of n bytes to the raft log: it may
// reuse a recent reading (recent) while the disk is far from the reserve;
// it reads the disk when there is none, and while the disk is known full.
func (g *diskGuard) checkWrite(n uint64) error {
	if g.recent == nil || g.full.Load() {
		return g.check()
	}
	free, err := g.recent.Free(n, g.reserve)
	return g.judge(free, err, 0)
}

// judge is room's verdict on a reading of the free space.
func (g *diskGuard) judge(free uint64, err error, need uint64) error {
	if err != nil || free >= g.reserve+need {
		if g.full.Swap(false) {
			g.log.Info("disk space is back; the raft log takes writes again", "dir", g.dir, "free_bytes", free)
		}
		return nil
	}
	if g.recent != nil {
		g.recent.Forget()
	}
	err = fmt.Errorf("%w: %d bytes free under %s, below the %d kept in reserve: free space there", ErrDiskFull, free, g.dir, g.reserve)
	if !g.full.Swap(true) {
		g.log.Error("disk full: the raft log refuses new entries until there is free space; free space under the data directory", "dir", g.dir, "free_bytes", free, "reserve_bytes", g.reserve)
	}
	return err
}

// failed turns a write error that is a full disk into ErrDiskFull and
// remembers it; other errors pass unchanged.
func (g *diskGuard) failed(err error) error {
	if !isNoSpace(err) {
		return err
	}
	if g.recent != nil {
		g.recent.Forget()
	}
	if !g.full.Swap(true) {
		g.log.Error("disk full: a raft write failed; free space under the data directory", "dir", g.dir, "err", err)
	}
	return fmt.Errorf("%w: free space under %s: %w", ErrDiskFull, g.dir, err)
}

// status returns the ErrDiskFull error while the disk has less free space
// than the reserve, looking at it each time (one statfs), and nil
// otherwise.
func (g *diskGuard) status() error { return g.check() }

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// openMarginBytes is the room, beyond twice its write-ahead logs, that a
// Pebble database needs to open: it flushes the logs it replays into
// sstables and writes a new manifest before it returns.
const openMarginBytes = 8 << 20

// roomToOpen returns an ErrDiskFull error if the disk under dir has too
// little free space for Pebble to open the database there. Pebble's open
// retries a flush that meets a full disk forever, so a node restarted on a
// full disk would hang before it serves anything; this says why instead.
func roomToOpen(dir string) error {
	free, err := statfsFree(dir)
	if err != nil {
		return nil // a new directory, or no statfs: the open says what is wrong
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var wal uint64
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".log" {
			continue
		}
		if info, err := e.Info(); err == nil {
			wal += uint64(info.Size())
		}
	}
	if need := 2*wal + openMarginBytes; free < need {
		return fmt.Errorf("%w: %d bytes free under %s, and opening the raft log there needs about %d (to flush %d bytes of write-ahead log): free space there and start trustd again", ErrDiskFull, free, dir, need, wal)
	}
	return nil
}

// snapshotStore is raft's file snapshot store with its failures cleaned
// up: a snapshot whose writing fails (a full disk, a transfer cut off)
// leaves no temporary directory behind (raft's own Cancel keeps it when
// flushing the buffered data fails, which is what a full disk does), one
// left by a crash is removed at start, and a snapshot is not begun while
// the disk is full, so a leader's retries cost nothing here but the
// refusal.
type snapshotStore struct {
	*raft.FileSnapshotStore
	dir   string // where raft keeps the snapshots: <raft dir>/snapshots
	disk  *diskGuard
	ckpts *checkpoints // snapshots kept as checkpoints (snapshot_checkpoint.go)
	// newest is the last entry of the newest complete snapshot (nil: none),
	// read from the store at open and kept as snapshots complete, so that
	// the fork check of every append (Cluster.termAt) reads no directory.
	newest atomic.Pointer[snapshotPoint]
	// opened is the last entry of the snapshot Open opened last: the one
	// raft restores when it calls the state machine's Restore right after
	// (Cluster.dropStale), which need not be the newest (a leader may send
	// a snapshot older than one this node took itself).
	opened atomic.Pointer[snapshotPoint]
}

// snapshotPoint is the index and term of a snapshot's last entry.
type snapshotPoint struct{ index, term uint64 }

// newestSnapshot returns the last entry of the newest complete snapshot.
func (s *snapshotStore) newestSnapshot() (snapshotPoint, bool) {
	if p := s.newest.Load(); p != nil {
		return *p, true
	}
	return snapshotPoint{}, false
}

// completed records a complete snapshot ending at p, when it is the newest.
func (s *snapshotStore) completed(p snapshotPoint) {
	for {
		old := s.newest.Load()
		if old != nil && old.index >= p.index || s.newest.CompareAndSwap(old, &p) {
			return
		}
	}
}

var _ raft.SnapshotStore = (*snapshotStore)(nil)

// snapshotTmpSuffix is what raft's file store appends to the directory of a
// snapshot being written.
const snapshotTmpSuffix = ".tmp"

// snapshotBufferBytes bounds what raft's snapshot sink buffers before it
// writes (its bufio.Writer holds 4 KiB; this leaves room to spare).
const snapshotBufferBytes = 64 << 10

func openSnapshotStore(dir string, disk *diskGuard, logger *slog.Logger) (*snapshotStore, error) {
	fs, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, newRaftLogger(logger, "raft-snap"))
	if err != nil {
		return nil, err
	}
	ckpts, err := newCheckpoints(filepath.Join(dir, "checkpoints"), filepath.Join(dir, "snapshots"), disk, disk.log)
	if err != nil {
		return nil, err
	}
	s := &snapshotStore{FileSnapshotStore: fs, dir: filepath.Join(dir, "snapshots"), disk: disk, ckpts: ckpts}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasSuffix(e.Name(), snapshotTmpSuffix) {
			if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
				return nil, fmt.Errorf("remove an unfinished snapshot: %w", err)
			}
			disk.log.Warn("removed a snapshot left unfinished", "dir", filepath.Join(s.dir, e.Name()))
		}
	}
	if err := s.ckpts.prune(); err != nil {
		disk.log.Warn("could not remove the checkpoints of removed snapshots", "err", err)
	}
	metas, err := s.List()
	if err != nil {
		return nil, err
	}
	if len(metas) > 0 {
		s.completed(snapshotPoint{index: metas[0].Index, term: metas[0].Term})
	}
	return s, nil
}

// Open opens a snapshot to read; one kept as a checkpoint is streamed
// first (checkpoints.stream), and its meta carries the stream's size.
func (s *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.FileSnapshotStore.Open(id)
	if err != nil {
		return nil, nil, err
	}
	s.opened.Store(&snapshotPoint{index: meta.Index, term: meta.Term})
	head := make([]byte, len(checkpointMagic))
	n, err := io.ReadFull(rc, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, nil, errors.Join(err, rc.Close())
	}
	if !bytes.Equal(head[:n], checkpointMagic) || meta.Size != int64(len(checkpointMagic)) {
		return meta, &peekedReader{Reader: io.MultiReader(bytes.NewReader(head[:n]), rc), rc: rc}, nil
	}
	closeRead(rc)
	return s.ckpts.stream(meta)
}

// Create begins a snapshot, unless the disk is full.
func (s *snapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration, configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	if err := s.disk.check(); err != nil {
		return nil, fmt.Errorf("create snapshot: %w", err)
	}
	sink, err := s.FileSnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, s.disk.failed(err)
	}
	return &cleanSink{SnapshotSink: sink, dir: filepath.Join(s.dir, sink.ID()+snapshotTmpSuffix), disk: s.disk, store: s, end: snapshotPoint{index: index, term: term}}, nil
}

// cleanSink removes its temporary directory whenever the snapshot does not
// become a complete one.
type cleanSink struct {
	raft.SnapshotSink
	dir   string
	disk  *diskGuard
	store *snapshotStore
	end   snapshotPoint // the snapshot's last entry
}

// Write refuses data the disk has no room for before it reaches raft's
// sink: once raft's buffered writer has failed, its Cancel cannot flush
// and so never closes the file, which would keep the space of the removed
// file (and its descriptor) until the process ends.
func (c *cleanSink) Write(p []byte) (int, error) {
	return (&roomWriter{w: c.SnapshotSink, disk: c.disk}).Write(p)
}

// roomWriter refuses a write the disk guard has no room for, and reports a
// write that found the disk full to the guard.
type roomWriter struct {
	w    io.Writer
	disk *diskGuard
}

func (r *roomWriter) Write(p []byte) (int, error) {
	if err := r.disk.room(uint64(len(p)) + snapshotBufferBytes); err != nil {
		return 0, err
	}
	n, err := r.w.Write(p)
	if err != nil {
		err = r.disk.failed(err)
	}
	return n, err
}

func (c *cleanSink) Close() error {
	err := c.SnapshotSink.Close()
	if err != nil {
		return errors.Join(c.disk.failed(err), c.remove())
	}
	c.store.completed(c.end)
	// raft's store removed the snapshots past the newest two: their
	// checkpoints go too. A failure leaves a checkpoint to the next prune;
	// the snapshot itself is complete.
	if err := c.store.ckpts.prune(); err != nil {
		c.disk.log.Warn("could not remove the checkpoints of removed snapshots", "err", err)
	}
	return nil
}

func (c *cleanSink) Cancel() error {
	err := c.SnapshotSink.Cancel()
	return errors.Join(err, c.remove())
}

func (c *cleanSink) remove() error {
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("remove an unfinished snapshot: %w", err)
	}
	return nil
}
