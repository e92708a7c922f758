// Package diskspace reads the space a writer may still use under a
// directory, and keeps a recent reading for the write paths that look
// before every write: the raft log's appends and the state's commits.
//
// Each look is a statfs: about 2 µs alone (BenchmarkFree), and 0.8 % of
// the three nodes' CPU in a profile of a 64-client trustbench write run
// when every commit and append made one, against some 75 ns for a reused
// reading. A reading is reused only while
// it is young and the disk is far from full: then a write, and whatever
// else writes to the disk meanwhile, cannot take it down to the reserve
// before the next statfs. Near the reserve every look reads the disk.
//
// What a reused reading does not see is a disk filled all at once (a file
// of many gigabytes allocated whole) in the reading's last 100 ms. A write
// that then meets the full disk ends the node with one "disk full" line,
// as one always could when that happened between the statfs and the
// write: the window is 100 ms instead of microseconds, and nothing
// acknowledged is lost (the raft log's appends are synced before they
// count).
package diskspace

import (
	"sync"
	"syscall"
	"time"
)

// Free returns the bytes an unprivileged writer may still use under dir.
func Free(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Defaults of a Recent reading's bounds.
const (
	// DefaultMaxAge is how long a reading is reused.
	DefaultMaxAge = 100 * time.Millisecond
	// DefaultHeadroom is the space, beyond the caller's reserve and the
	// write, that a reading must show for it to be reused: what other
	// writers (Pebble's flushes and compactions, other processes) would
	// have to fill within DefaultMaxAge to take the disk down to the
	// reserve unseen.
	DefaultHeadroom = 1 << 30
)

// Recent is a reading of the free space under one directory that a write
// path may reuse. The zero value is not usable: make one with NewRecent.
// Its methods may be called from several goroutines.
type Recent struct {
	read     func() (uint64, error)
	maxAge   time.Duration
	headroom uint64
	now      func() time.Time

	mu    sync.Mutex
	valid bool
	at    time.Time // when the reading was taken
	left  uint64    // bytes free at the reading, less the writes let through since
}

// NewRecent returns a Recent over read, which reads the disk (Free of
// the directory, or a test's stand-in), reusing a reading for at most
// maxAge and only while it shows headroom bytes beyond the reserve and
// the write.
func NewRecent(read func() (uint64, error), maxAge time.Duration, headroom uint64) *Recent {
	return &Recent{read: read, maxAge: maxAge, headroom: headroom, now: time.Now}
}

// Free returns the bytes free under the directory for a write of need
// bytes by a caller that keeps reserve bytes free, and counts the write
// against the reading. It reads the disk unless the last reading is
// younger than the maximum age and, less the writes let through since,
// still shows the headroom beyond reserve and need; then it returns that
// remainder, which is at least reserve+need+headroom.
func (r *Recent) Free(need, reserve uint64) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.valid && now.Sub(r.at) < r.maxAge && now.Sub(r.at) >= 0 && enough(r.left, reserve, need, r.headroom) {
		free := r.left
		r.left -= need
		return free, nil
	}
	free, err := r.read()
	if err != nil {
		r.valid = false
		return free, err
	}
	r.valid, r.at, r.left = true, now, free-min(free, need)
	return free, nil
}

// enough reports whether free >= reserve+need+headroom, without the sum
// overflowing.
func enough(free, reserve, need, headroom uint64) bool {
	return free >= reserve && free-reserve >= need && free-reserve-need >= headroom
}

// Forget drops the reading, so that the next Free reads the disk: a
// write found the disk full.
func (r *Recent) Forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.valid = false
}
