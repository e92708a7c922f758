package registry

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/trustreg/trustreg/registry/diskspace"
)

// ErrDiskFull says the disk under the state's directory has less free space
// than the state keeps in reserve, or a write found it full. Nothing was
// written; the state is as it was before the write.
var ErrDiskFull = errors.New("registry: disk full")

// DefaultDiskReserveBytes is the free space the state keeps in reserve
// under its directory: a batch is not committed, and a restore not begun,
// with less. Pebble needs room beyond a write to flush its memtable
// (stateMemTableBytes) and rewrite its manifest; a write that meets a full
// disk in Pebble's commit pipeline cannot be undone, so it is refused before.
const DefaultDiskReserveBytes = 128 << 20

// Backoff of an apply that waits for disk space to return.
const (
	diskWaitFirst = 100 * time.Millisecond
	diskWaitMax   = 5 * time.Second
)

// diskGuard knows whether the disk under dir has room for a write, and
// remembers that a write found it full until space returns.
type diskGuard struct {
	dir     string
	reserve uint64
	log     *slog.Logger // each change is logged once
	full    atomic.Bool
	// free returns the bytes an unprivileged writer may still use under
	// dir (statfs by default; a test replaces it).
	free func(dir string) (uint64, error)
	// recent is the last reading of free, which checkWrite reuses while
	// the disk is far from the reserve.
	recent *diskspace.Recent
}

func newDiskGuard(dir string, reserve uint64, log *slog.Logger) *diskGuard {
	g := &diskGuard{dir: dir, reserve: reserve, log: log, free: diskspace.Free}
	g.recent = diskspace.NewRecent(func() (uint64, error) { return g.free(g.dir) }, diskspace.DefaultMaxAge, diskspace.DefaultHeadroom)
	return g
}

// check returns an ErrDiskFull error when the free space under the
// directory is below the reserve, and clears a remembered full disk once
// there is room again. A disk whose space cannot be read counts as having
// room: the write itself then reports what is wrong. It reads the disk
// each time (one statfs).
func (g *diskGuard) check() error { return g.judge(g.free(g.dir)) }

// checkWrite is check before a write of n bytes on the apply's path (each
// batch's commit): it reuses a recent reading while the disk is far from
// the reserve (diskspace.Recent), and reads the disk otherwise, and while
// the disk is known full.
func (g *diskGuard) checkWrite(n uint64) error {
	if g.full.Load() {
		return g.check()
	}
	return g.judge(g.recent.Free(n, g.reserve))
}

// judge is check's verdict on a reading of the free space. A disk below
// the reserve drops the reading commits reuse.
func (g *diskGuard) judge(free uint64, err error) error {
	if err != nil || free >= g.reserve {
		if g.full.Swap(false) {
			g.log.Info("disk space is back; the state takes writes again", "dir", g.dir, "free_bytes", free)
		}
		return nil
	}
	g.recent.Forget()
	if !g.full.Swap(true) {
		g.log.Error("disk full: the state applies nothing more until there is free space; free space under the data directory", "dir", g.dir, "free_bytes", free, "reserve_bytes", g.reserve)
	}
	return fmt.Errorf("%w: %d bytes free under %s, below the %d kept in reserve: free space there", ErrDiskFull, free, g.dir, g.reserve)
}

// failed records a write error; it reports whether the error was a full
// disk (and returns it wrapped in ErrDiskFull).
func (g *diskGuard) failed(err error) (error, bool) {
	if !isNoSpace(err) {
		return err, false
	}
	g.recent.Forget()
	if !g.full.Swap(true) {
		g.log.Error("disk full: a write failed; free space under the data directory", "dir", g.dir, "err", err)
	}
	return fmt.Errorf("%w: free space under %s: %w", ErrDiskFull, g.dir, err), true
}

// isNoSpace reports whether err is the operating system's "no space left
// on device" (or a quota exceeded, which a writer meets the same way).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// DiskFull returns an ErrDiskFull error while the disk under the state's
// directory has less free space than the reserve (the node is then not
// ready: applying waits and a restore is refused), and nil otherwise. It
// looks at the disk each time (one statfs), so a node started on a full
// disk says so before it tries to write.
func (s *store) DiskFull() error { return s.disk.check() }

// waitForSpace blocks the apply until the disk has room for a batch again,
// looking with a growing backoff. Apply cannot skip an entry, and going on
// past one that was not written would part this node from its peers;
// waiting keeps the state at the last entry it committed (not ready
// meanwhile). Halt ends the wait: the goroutine ends without applying,
// and the entries, durable in the raft log, are applied after a restart.
func (s *store) waitForSpace(upTo uint64, cause error) {
	wait := diskWaitFirst
	s.log.Error("disk full: applying waits until there is free space", "up_to_index", upTo, "dir", s.dir, "err", cause)
	for tries := 1; ; tries++ {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.halt:
			t.Stop()
			s.log.Warn("halted while applying waited for disk space; the entries are applied after a restart", "up_to_index", upTo)
			exitGoroutine()
		}
		if err := s.disk.check(); err == nil {
			s.log.Info("disk space is back; applying resumes", "up_to_index", upTo, "waited_tries", tries)
			return
		} else if wait == diskWaitMax && tries%12 == 0 {
			s.log.Error("disk full: applying still waits", "up_to_index", upTo, "err", err)
		}
		wait = min(2*wait, diskWaitMax)
	}
}

// Halt ends a wait for disk space (waitForSpace) before the node shuts
// down: the apply that waits gives up without applying its entries, so
// that raft can stop. Halting twice is harmless.
func (s *store) Halt() {
	s.haltOnce.Do(func() { close(s.halt) })
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
	free, err := diskspace.Free(dir)
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
		return fmt.Errorf("%w: %d bytes free under %s, and opening the database there needs about %d (to flush %d bytes of write-ahead log): free space there and start trustd again", ErrDiskFull, free, dir, need, wal)
	}
	return nil
}

// fatalExit ends the process after Pebble met a full disk where it cannot
// go on (its commit pipeline); a test replaces it.
var fatalExit = func() { os.Exit(1) }

// exitGoroutine ends the apply's goroutine when a halt ends its wait for
// disk space; a test replaces it.
var exitGoroutine = runtime.Goexit
