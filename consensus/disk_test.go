package consensus

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/trustreg/trustreg/test/smallfs"
)

// TestLogStoreOnAFullDisk fills the disk under a raft log: appends are
// refused with ErrDiskFull (no panic), the store says the disk is full,
// what was stored stays readable, and appends resume once space returns.
func TestLogStoreOnAFullDisk(t *testing.T) {
	fs := smallfs.Mount(t, "32m")
	s, err := OpenLogStore(filepath.Join(fs, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.disk.reserve = 4 << 20
	entry := func(i uint64) *raft.Log {
		return &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: make([]byte, 4<<10)}
	}
	if err := s.StoreLogs([]*raft.Log{entry(1), entry(2)}); err != nil {
		t.Fatal(err)
	}
	filler := smallfs.Fill(t, fs, "filler", 1<<20)
	if err := s.StoreLogs([]*raft.Log{entry(3)}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append on a full disk: %v, want ErrDiskFull", err)
	}
	if err := s.DiskFull(); !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "free space there") {
		t.Fatalf("DiskFull on a full disk: %v", err)
	}
	var got raft.Log
	if err := s.GetLog(2, &got); err != nil || got.Index != 2 {
		t.Fatalf("read an entry stored before: %+v, %v", got, err)
	}
	// Raft must still be able to record its term on a full disk.
	if err := s.SetUint64([]byte("CurrentTerm"), 2); err != nil {
		t.Fatalf("record the term on a full disk: %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.DiskFull(); err != nil {
		t.Fatalf("DiskFull once space returned: %v", err)
	}
	if err := s.StoreLogs([]*raft.Log{entry(3)}); err != nil {
		t.Fatalf("append once space returned: %v", err)
	}
	if last, err := s.LastIndex(); err != nil || last != 3 {
		t.Fatalf("last index %d, %v; want 3", last, err)
	}
	// The refused append is not counted.
	if appends, entries := s.AppendStats(); appends != 2 || entries != 3 {
		t.Fatalf("AppendStats = %d appends, %d entries; want 2 and 3", appends, entries)
	}
}

// fakeReadings is a DiskReadings that serves a set figure without reading
// the disk while reuse is on, recording what each append asked for.
type fakeReadings struct {
	read    func() (uint64, error)
	reuse   bool
	free    uint64
	needs   []uint64
	reserve uint64
	forgets int
}

func (f *fakeReadings) Free(need, reserve uint64) (uint64, error) {
	f.needs = append(f.needs, need)
	f.reserve = reserve
	if f.reuse {
		return f.free, nil
	}
	return f.read()
}

func (f *fakeReadings) Forget() { f.forgets++ }

// TestAppendsReuseReadings: with readings wired in (Config.DiskReadings),
// an append asks them for its batch's bytes against the reserve instead of
// reading the disk; a disk found below the reserve, a write that met a
// full disk, and a disk known full make the next look read the disk.
func TestAppendsReuseReadings(t *testing.T) {
	s, err := OpenLogStore(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var free atomic.Uint64
	var reads atomic.Int64
	s.disk.free = func(string) (uint64, error) { reads.Add(1); return free.Load(), nil }
	var f *fakeReadings
	s.disk.reuseReadings(func(read func() (uint64, error)) DiskReadings {
		f = &fakeReadings{read: read, reuse: true, free: 1 << 40}
		return f
	})
	next := uint64(0)
	appendOne := func(size int) error {
		next++
		return s.StoreLogs([]*raft.Log{{Index: next, Term: 1, Type: raft.LogCommand, Data: make([]byte, size)}})
	}
	free.Store(1 << 40)
	for range 3 {
		if err := appendOne(1000); err != nil {
			t.Fatal(err)
		}
	}
	if reads.Load() != 0 || len(f.needs) != 3 || f.needs[0] < 1000 || f.reserve != s.disk.reserve {
		t.Fatalf("3 appends: %d disk reads, readings asked %v against reserve %d; want none, three asks of the batch's bytes (over 1000) against %d", reads.Load(), f.needs, f.reserve, s.disk.reserve)
	}
	// The readings read the disk and find it below the reserve: refused,
	// and the readings are dropped; while the disk is known full, each
	// look reads it, without asking the readings.
	f.reuse = false
	free.Store(1 << 10)
	if err := appendOne(10); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append on a full disk: %v, want ErrDiskFull", err)
	}
	if f.forgets != 1 {
		t.Fatalf("the readings were dropped %d times after a full disk was read, want 1", f.forgets)
	}
	f.reuse = true // would say there is room; the guard must not ask
	asked := len(f.needs)
	if err := appendOne(10); !errors.Is(err, ErrDiskFull) || len(f.needs) != asked {
		t.Fatalf("append while the disk is known full: %v, readings asked %d more times; want ErrDiskFull and none", err, len(f.needs)-asked)
	}
	free.Store(1 << 40)
	next-- // the refused appends stored nothing
	next--
	if err := appendOne(10); err != nil {
		t.Fatalf("append once space returned: %v", err)
	}
	// A write that met a full disk drops them too.
	if err := s.disk.failed(syscall.ENOSPC); !errors.Is(err, ErrDiskFull) || f.forgets != 3 {
		t.Fatalf("ENOSPC: %v, readings dropped %d times in all; want ErrDiskFull and 3", err, f.forgets)
	}
}

// TestSnapshotStoreLeavesNothingOfAFailedSnapshot writes a snapshot until
// the disk is full: the write fails with ErrDiskFull and cancelling it
// leaves no temporary directory (raft's own store keeps it); while the disk
// stays full no snapshot is begun; and one left by a crash is removed when
// the store opens.
func TestSnapshotStoreLeavesNothingOfAFailedSnapshot(t *testing.T) {
	fs := smallfs.Mount(t, "8m")
	guard := newDiskGuard(fs, 1<<20, discardLogger())
	store, err := openSnapshotStore(fs, guard, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	sink, err := store.Create(raft.SnapshotVersionMax, 10, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 256<<10)
	rnd := rand.New(rand.NewPCG(1, 2))
	var werr error
	for i := 0; i < 64 && werr == nil; i++ {
		for j := range chunk {
			chunk[j] = byte(rnd.Uint32())
		}
		_, werr = sink.Write(chunk)
	}
	if !errors.Is(werr, ErrDiskFull) {
		t.Fatalf("writing a snapshot larger than the disk: %v, want ErrDiskFull", werr)
	}
	_ = sink.Cancel() // raft's Cancel fails to flush; the directory must go all the same
	if left := tmpSnapshots(t, store.dir); len(left) != 0 {
		t.Fatalf("a failed snapshot left %v", left)
	}

	filler := smallfs.Fill(t, fs, "filler", 512<<10)
	if _, err := store.Create(raft.SnapshotVersionMax, 11, 1, raft.Configuration{}, 1, nil); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("create a snapshot on a full disk: %v, want ErrDiskFull", err)
	}
	if left := tmpSnapshots(t, store.dir); len(left) != 0 {
		t.Fatalf("a refused snapshot left %v", left)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}

	crashed := filepath.Join(store.dir, "1-12-1234"+snapshotTmpSuffix)
	if err := os.MkdirAll(crashed, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := openSnapshotStore(fs, guard, discardLogger()); err != nil {
		t.Fatal(err)
	}
	if left := tmpSnapshots(t, store.dir); len(left) != 0 {
		t.Fatalf("opening the store kept %v", left)
	}
}

func tmpSnapshots(t *testing.T, dir string) []string { return namesEnding(t, dir, snapshotTmpSuffix) }

// namesEnding returns the names in dir that end with suffix.
func namesEnding(t *testing.T, dir, suffix string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestClusterOnAFullDisk runs a one-node cluster whose raft directory
// fills up: a write fails with an error (no panic), the cluster says the
// disk is full, and writes go through again once space returns.
func TestClusterOnAFullDisk(t *testing.T) {
	fs := smallfs.Mount(t, "64m")
	h := mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	c, err := Start(Config{Dir: filepath.Join(fs, "raft"), Host: h, StateMachine: &countingMachine{},
		Bootstrap: true, Voters: []peer.ID{h.ID()}, Contacts: []peer.ID{h.ID()}, ClusterID: "test", Codec: indexCodec{},
		DiskReserveBytes: 8 << 20, LeaderWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	apply := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Apply(ctx, []byte("x"))
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for err := apply(); err != nil; err = apply() {
		if time.Now().After(deadline) {
			t.Fatalf("no write before the disk filled: %v", err)
		}
	}
	filler := smallfs.Fill(t, fs, "filler", 4<<20)
	if err := apply(); err == nil {
		t.Fatal("a write went through with the disk full")
	}
	if err := c.DiskFull(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("DiskFull on a full disk: %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := c.DiskFull(); err != nil {
		t.Fatalf("DiskFull once space returned: %v", err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for err := apply(); err != nil; err = apply() {
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume once space returned: %v", err)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestRaftLogWriteOnAFullDiskEndsWithoutAStackTrace lets an append reach a
// disk with no room at all (no reserve), where Pebble's commit pipeline
// cannot go on: the process (this test binary, run again) ends with one
// clear "disk full" line and no panic or stack trace.
func TestRaftLogWriteOnAFullDiskEndsWithoutAStackTrace(t *testing.T) {
	if dir := os.Getenv("TRUSTREG_FULL_DISK_DIR"); dir != "" {
		s, err := OpenLogStore(filepath.Join(dir, "log"))
		if err != nil {
			t.Fatal(err)
		}
		s.disk.reserve = 0
		smallfs.Fill(t, dir, "filler", 0)
		err = s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: make([]byte, 64<<10)}})
		t.Fatalf("the append on a full disk returned: %v", err)
	}
	fs := smallfs.Mount(t, "16m")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestRaftLogWriteOnAFullDiskEndsWithoutAStackTrace$")
	cmd.Env = append(os.Environ(), "TRUSTREG_FULL_DISK_DIR="+fs)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("the process ended with %v, want exit status 1:\n%s", err, out)
	}
	if !strings.Contains(string(out), "disk full: the raft log cannot go on writing") || strings.Contains(string(out), "goroutine ") || strings.Contains(string(out), "panic") {
		t.Fatalf("the process did not end with a clear line:\n%s", out)
	}
}

// restoreMachine is a state machine at a set applied index that counts
// the snapshots restored into it.
type restoreMachine struct {
	countingMachine
	restores atomic.Int32
}

func (m *restoreMachine) Restore(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	m.restores.Add(1)
	m.applied.Store(10)
	return nil
}

// TestStartRestoresASnapshotTheStateIsBehind starts raft over a snapshot
// at index 10: a state machine that applied less (a received snapshot
// whose restore failed kept the previous state) gets the snapshot
// restored before raft, which takes 10 as applied, goes on; one at 10
// does not.
func TestStartRestoresASnapshotTheStateIsBehind(t *testing.T) {
	for _, applied := range []uint64{0, 4, 10} {
		h := mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
		dir := filepath.Join(t.TempDir(), "raft")
		if err := SeedSnapshot(dir, h.ID(), 10, func(w io.Writer) error { _, err := w.Write([]byte("state")); return err }); err != nil {
			t.Fatal(err)
		}
		sm := &restoreMachine{}
		sm.applied.Store(applied)
		c, err := Start(Config{Dir: dir, Host: h, StateMachine: sm, ClusterID: "test", Codec: indexCodec{}})
		if err != nil {
			t.Fatal(err)
		}
		c.Shutdown()
		want := int32(1)
		if applied == 10 {
			want = 0
		}
		if got := sm.restores.Load(); got != want || sm.AppliedIndex() != 10 {
			t.Errorf("state at %d before start: %d restores, applied %d after; want %d restores, applied 10", applied, got, sm.AppliedIndex(), want)
		}
	}
}
