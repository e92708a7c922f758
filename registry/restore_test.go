package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/diskspace"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/test/smallfs"
)

// midwayReader hands a stream to Restore and calls at once, when about
// half of it has been read: a read made while the restore is under way.
type midwayReader struct {
	r    io.Reader
	n    int
	half int
	at   func()
	done bool
}

func (m *midwayReader) Read(p []byte) (int, error) {
	if !m.done && m.n >= m.half {
		m.done = true
		m.at()
	}
	p = p[:min(len(p), 512)] // small reads, so the midpoint is met
	n, err := m.r.Read(p)
	m.n += n
	return n, err
}

// restoreFixture is a state at index 3 (the college accredited, active)
// and the snapshot of the same registry at index 4 (the college
// suspended).
type restoreFixture struct {
	*chainFixture
	target *State // holds the index 3 state
	old    uint64
	newer  []byte
	newIdx uint64
}

func mustRestoreFixture(t *testing.T, dir string, reserve uint64) *restoreFixture {
	t.Helper()
	f := mustChain(t)
	older := snapshotBytes(t, f.s)
	old := f.s.AppliedIndex()
	f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
	target, err := Open(dir, f.raw, Options{DiskReserveBytes: reserve})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	if err := target.Restore(bytes.NewReader(older)); err != nil {
		t.Fatal(err)
	}
	return &restoreFixture{chainFixture: f, target: target, old: old, newer: snapshotBytes(t, f.s), newIdx: f.s.AppliedIndex()}
}

// check returns nil if d is the old state's answer (authorized, active, at
// the old index) or the new state's (suspended, at the new index).
func (rf *restoreFixture) check(d *record.Decision, err error) error {
	switch {
	case err != nil:
		return err
	case d.Index == rf.old && d.Authorized && d.Reason == record.ReasonActive:
		return nil
	case d.Index == rf.newIdx && !d.Authorized && d.Reason == record.ReasonSuspended:
		return nil
	}
	return fmt.Errorf("answer from neither state: authorized=%t reason=%s index=%d", d.Authorized, d.Reason, d.Index)
}

func (rf *restoreFixture) ask() (*record.Decision, error) {
	return rf.target.Decide(decide.Question{Entity: rf.college.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing}, rf.now)
}

// readContinuously starts two goroutines that ask the fixture's question
// over and over; the function it returns stops them and returns the first
// answer that was neither state's.
func (rf *restoreFixture) readContinuously() func() error {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	var bad atomic.Pointer[error]
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1_000_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				reads.Add(1)
				if err := rf.check(rf.ask()); err != nil {
					bad.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	return func() error {
		close(stop)
		wg.Wait()
		if e := bad.Load(); e != nil {
			return fmt.Errorf("read during the restore (%d reads): %w", reads.Load(), *e)
		}
		return nil
	}
}

// TestRestoreIsAtomicForReaders reads a decision about a known
// accreditation continuously, and once in the middle of the stream, while
// a snapshot is restored: every answer is the previous state's or the
// restored one's, never unknown_framework from a half or empty state.
func TestRestoreIsAtomicForReaders(t *testing.T) {
	rf := mustRestoreFixture(t, t.TempDir(), 0)
	var mid error
	stream := &midwayReader{r: bytes.NewReader(rf.newer), half: len(rf.newer) / 2, at: func() {
		d, err := rf.ask()
		if mid = rf.check(d, err); mid == nil && d.Index != rf.old {
			mid = errors.New("the restored state was visible before the stream was verified")
		}
	}}
	readers := rf.readContinuously()
	err := rf.target.Restore(stream)
	rerr := readers()
	if err != nil {
		t.Fatal(err)
	}
	if rerr != nil {
		t.Fatal(rerr)
	}
	if mid != nil {
		t.Fatalf("read in the middle of the restore: %v", mid)
	}
	d, err := rf.ask()
	if err != nil || d.Index != rf.newIdx || d.Reason != record.ReasonSuspended {
		t.Fatalf("after the restore: %+v, %v", d, err)
	}
	if got, _ := rf.target.StateDigest(); got != rf.digest() {
		t.Fatalf("restored digest %s, want %s", got, rf.digest())
	}
}

// bigSnapshot returns a snapshot of the fixture's registry grown by
// records of random bytes (which no compression shrinks), so that
// restoring it needs more room than is left.
func bigSnapshot(t *testing.T, rf *restoreFixture, bytesOf int) []byte {
	t.Helper()
	b := rf.s.db.NewBatch()
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < bytesOf>>10; i++ {
		k := append([]byte{tableHistory}, []byte("did:example:padding\x00")...)
		k = append(k, u64(uint64(i))...)
		v := make([]byte, 1<<10)
		for j := range v {
			v[j] = byte(rnd.Uint32())
		}
		if err := b.Set(k, v, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	return snapshotBytes(t, rf.s)
}

// TestFailedRestoreOnAFullDiskKeepsThePreviousState restores a snapshot
// into a state on a small filesystem that fills up while the restore
// writes it: the restore fails with ErrDiskFull, every read in the middle
// of and after it answers from the previous state, the restore's files
// are gone, and the node reports the full disk while it lasts.
func TestFailedRestoreOnAFullDiskKeepsThePreviousState(t *testing.T) {
	fs := smallfs.Mount(t, "32m")
	rf := mustRestoreFixture(t, filepath.Join(fs, "state"), 1<<20)
	big := bigSnapshot(t, rf, 12<<20)
	before := rf.target.AppliedIndex()
	beforeDigest, _ := rf.target.StateDigest()
	filler := smallfs.Fill(t, fs, "filler", 6<<20)

	var mid error
	stream := &midwayReader{r: bytes.NewReader(big), half: len(big) / 4, at: func() {
		mid = rf.check(rf.ask())
	}}
	readers := rf.readContinuously()
	err := rf.target.Restore(stream)
	if rerr := readers(); rerr != nil {
		t.Fatal(rerr)
	}
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("restore on a full disk: %v, want ErrDiskFull", err)
	}
	if mid != nil {
		t.Fatalf("read in the middle of the failed restore: %v", mid)
	}
	d, err := rf.ask()
	if err != nil || d.Index != before || !d.Authorized || d.Reason != record.ReasonActive {
		t.Fatalf("after the failed restore: %+v, %v; want the previous state's answer at %d", d, err, before)
	}
	if got, _ := rf.target.StateDigest(); got != beforeDigest {
		t.Fatalf("digest after the failed restore %s, want the previous %s", got, beforeDigest)
	}
	if _, err := os.Stat(filepath.Join(fs, "state", "restore")); !os.IsNotExist(err) {
		t.Fatalf("the failed restore's files are still there: %v", err)
	}

	// While the disk stays full, the state says so and a restore is
	// refused before it writes anything.
	filler2 := smallfs.Fill(t, fs, "filler2", 512<<10)
	if err := rf.target.Restore(bytes.NewReader(big)); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("restore while the disk is full: %v, want ErrDiskFull", err)
	}
	if err := rf.target.DiskFull(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("DiskFull on a full disk: %v", err)
	}

	// Space returns: the state says so, and the restore succeeds.
	for _, f := range []string{filler, filler2} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := rf.target.DiskFull(); err != nil {
		t.Fatalf("DiskFull once space returned: %v", err)
	}
	if err := rf.target.Restore(bytes.NewReader(rf.newer)); err != nil {
		t.Fatalf("restore once space returned: %v", err)
	}
	if d, err := rf.ask(); err != nil || d.Index != rf.newIdx || d.Reason != record.ReasonSuspended {
		t.Fatalf("after the restore: %+v, %v", d, err)
	}
}

// TestApplyWaitsForDiskSpace fills the disk under a state: the apply
// waits, not ready, instead of panicking or skipping the entry, and goes
// on once space returns.
func TestApplyWaitsForDiskSpace(t *testing.T) {
	h := mustNewState(t, 1, 1)
	var free atomic.Uint64
	// Less than a GiB beyond the reserve: each commit reads the disk (a
	// reading with more is reused for up to 100 ms, diskspace.Recent).
	free.Store(h.s.disk.reserve + diskspace.DefaultHeadroom/2)
	h.s.disk.free = func(string) (uint64, error) { return free.Load(), nil }
	h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Health", "roots": []string{mustKey(t, record.KeyEd25519).DID}}))
	free.Store(1 << 10)
	jws := h.govSign(record.OpCreateFramework, map[string]any{"id": "https://other.example/fw", "name": "Other", "roots": []string{mustKey(t, record.KeyEd25519).DID}})
	done := make(chan *record.Result, 1)
	go func() {
		h.index++
		done <- h.s.ApplyBatch([]Entry{{Index: h.index, Time: h.now, Data: EncodeOperation(jws)}})[0]
	}()
	// An apply that would not wait is given the time to finish before
	// anything else reads the disk (DiskFull's reading drops the one the
	// commits reuse): a bounded look, not a timing bound.
	for range 40 {
		select {
		case r := <-done:
			t.Fatalf("the apply went on with the disk full: %+v", r)
		case <-time.After(5 * time.Millisecond):
		}
		if h.s.AppliedIndex() != 1 {
			t.Fatalf("applied index %d while the disk is full, want 1", h.s.AppliedIndex())
		}
	}
	if err := h.s.DiskFull(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("DiskFull while the apply waits: %v", err)
	}
	free.Store(1 << 40)
	select {
	case r := <-done:
		if !r.Accepted {
			t.Fatalf("the waiting entry: %+v", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the apply did not resume once space returned")
	}
	if h.s.AppliedIndex() != 2 || h.s.DiskFull() != nil {
		t.Fatalf("after space returned: applied %d, DiskFull %v", h.s.AppliedIndex(), h.s.DiskFull())
	}
}

// TestHaltEndsAWaitForDiskSpace checks that a node can shut down while its
// apply waits for space: the wait ends without applying the entry.
func TestHaltEndsAWaitForDiskSpace(t *testing.T) {
	h := mustNewState(t, 1, 1)
	h.s.disk.free = func(string) (uint64, error) { return 0, nil }
	jws := h.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Health", "roots": []string{mustKey(t, record.KeyEd25519).DID}})
	ended := make(chan struct{})
	go func() {
		defer close(ended) // runs as the goroutine exits
		h.s.ApplyBatch([]Entry{{Index: 1, Time: h.now, Data: EncodeOperation(jws)}})
		t.Error("ApplyBatch returned after a halt")
	}()
	deadline := time.Now().Add(10 * time.Second)
	for h.s.DiskFull() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling
	}
	h.s.Halt()
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the apply still waits after Halt")
	}
	if h.s.AppliedIndex() != 0 {
		t.Fatalf("applied index %d after a halted apply, want 0", h.s.AppliedIndex())
	}
}

// TestOpenOnAFullDiskSaysSo opens a state whose write-ahead log must be
// flushed on a disk with no room: Open returns ErrDiskFull at once (Pebble
// itself would retry the flush forever, and the node hang before it
// serves), and opens once space returns.
func TestOpenOnAFullDiskSaysSo(t *testing.T) {
	fs := smallfs.Mount(t, "32m")
	h := mustNewState(t, 1, 1)
	h.dir = filepath.Join(fs, "state")
	h.s.Close()
	s, err := Open(h.dir, h.raw, Options{DiskReserveBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Health", "roots": []string{mustKey(t, record.KeyEd25519).DID}}))
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	filler := smallfs.Fill(t, fs, "filler", 0)
	opened := make(chan error, 1)
	go func() {
		s, err := Open(h.dir, h.raw, Options{})
		if err == nil {
			s.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		if !errors.Is(err, ErrDiskFull) {
			t.Fatalf("open on a full disk: %v, want ErrDiskFull", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("open on a full disk did not return")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(h.dir, h.raw, Options{DiskReserveBytes: 1 << 20}); err != nil {
		t.Fatalf("open once space returned: %v", err)
	}
	defer s.Close()
	if _, err := s.Framework(fwID); err != nil {
		t.Fatalf("the state opened once space returned: %v", err)
	}
}

// TestRestoreReplacesAStateWithSeparatedValues restores over a state whose
// large values live in blob files (flushed and compacted), as a node's
// state does after running a while: the restored state is exactly the
// snapshot's, and stays so after a compaction and a reopen.
func TestRestoreReplacesAStateWithSeparatedValues(t *testing.T) {
	f := mustChain(t)
	b := f.s.db.NewBatch()
	for i := range 2000 {
		k := append([]byte{tableHistory}, []byte("did:example:old\x00")...)
		if err := b.Set(append(k, u64(uint64(i))...), bytes.Repeat([]byte{byte(i)}, 2<<10), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	if err := f.s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.s.db.Compact(context.Background(), []byte{0x00}, []byte{0xff}, true); err != nil {
		t.Fatal(err)
	}
	// Another state of the same consortium, with other records.
	f2 := mustNewState(t, 1, 1)
	f2.raw, f2.gov = f.raw, f.gov
	f2.s.Close()
	f2.dir = t.TempDir()
	f2.open()
	f2.mustAccept(f2.govSign(record.OpCreateFramework, map[string]any{"id": "https://restored.example/fw", "name": "Restored", "roots": []string{mustKey(t, record.KeyEd25519).DID}}))
	want := f2.digest()
	if err := f.s.Restore(bytes.NewReader(snapshotBytes(t, f2.s))); err != nil {
		t.Fatal(err)
	}
	if got := f.digest(); got != want {
		t.Fatalf("restored digest %s, want %s", got, want)
	}
	if err := f.s.db.Compact(context.Background(), []byte{0x00}, []byte{0xff}, true); err != nil {
		t.Fatal(err)
	}
	f.s.Close()
	f.open()
	if got := f.digest(); got != want || f.s.AppliedIndex() != f2.s.AppliedIndex() {
		t.Fatalf("after compaction and reopen: digest %s index %d, want %s and %d", got, f.s.AppliedIndex(), want, f2.s.AppliedIndex())
	}
	if _, err := f.s.Framework(fwID); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("the previous state's framework survived the restore: %v", err)
	}
}
