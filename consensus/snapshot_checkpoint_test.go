package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// writeSnapshot stores a snapshot of content at index in store.
func writeSnapshot(t *testing.T, store *snapshotStore, index uint64, content []byte) string {
	t.Helper()
	sink, err := store.Create(raft.SnapshotVersionMax, index, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return sink.ID()
}

// stringSnapshot is a Snapshot of fixed bytes.
type stringSnapshot struct{ s string }

func (s stringSnapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := io.WriteString(w, s.s)
	return int64(n), err
}
func (stringSnapshot) Release() {}

// TestSnapshotStoreStreamsCheckpoints: a snapshot holding a checkpoint
// reference is opened as the stream its checkpoint makes, with that
// stream's size in its meta and nothing left once read; a streamed
// snapshot, one shorter than the reference among them, opens as stored;
// a reference this state machine cannot open is an error; and what a crash
// left in the checkpoints directory goes when the store opens.
func TestSnapshotStoreStreamsCheckpoints(t *testing.T) {
	dir := t.TempDir()
	guard := newDiskGuard(dir, 0, discardLogger())
	store, err := openSnapshotStore(dir, guard, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	id := writeSnapshot(t, store, 10, checkpointMagic)
	if _, _, err := store.Open(id); err == nil || !strings.Contains(err.Error(), "cannot open") {
		t.Fatalf("opening a checkpoint reference without an opener: %v", err)
	}
	var opened string
	store.ckpts.open = func(d string) (Snapshot, error) {
		opened = d
		return stringSnapshot{"the state at index 10"}, nil
	}
	if err := os.MkdirAll(store.ckpts.path(id), 0o700); err != nil {
		t.Fatal(err)
	}
	meta, rc, err := store.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if string(got) != "the state at index 10" || meta.Size != int64(len(got)) || opened != store.ckpts.path(id) {
		t.Fatalf("opened %q (size %d) from %s", got, meta.Size, opened)
	}
	if left := streams(t, store.ckpts.dir); len(left) != 0 {
		t.Fatalf("a read stream left %v", left)
	}

	for i, content := range [][]byte{[]byte("TRC"), []byte("TRSNAP\x00\x02 a streamed state")} {
		id := writeSnapshot(t, store, uint64(11+i), content)
		meta, rc, err := store.Open(id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		closeRead(rc)
		if err != nil || !bytes.Equal(got, content) || meta.Size != int64(len(content)) {
			t.Fatalf("snapshot %q opened as %q (size %d): %v", content, got, meta.Size, err)
		}
	}

	for _, name := range []string{pendingPrefix + "1-1", "1-2-3" + streamSuffix} {
		if err := os.MkdirAll(filepath.Join(store.ckpts.dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := openSnapshotStore(dir, guard, discardLogger()); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(store.ckpts.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), pendingPrefix) || strings.HasSuffix(e.Name(), streamSuffix) {
			t.Fatalf("opening the store kept %s", e.Name())
		}
	}
}

// streams returns the names of the streams being kept in dir.
func streams(t *testing.T, dir string) []string { return namesEnding(t, dir, streamSuffix) }

// Sends of one snapshot at the same time share one stream, made once,
// removed after the last reader closes it; a stream that could not be made
// is not tried again at once (raft retries a failed Open every commit
// timeout).
func TestCheckpointStreamsAreSharedAndFailuresWait(t *testing.T) {
	dir := t.TempDir()
	store, err := openSnapshotStore(dir, newDiskGuard(dir, 0, discardLogger()), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	id := writeSnapshot(t, store, 10, checkpointMagic)
	var made atomic.Int32
	release := make(chan struct{})
	store.ckpts.open = func(string) (Snapshot, error) {
		made.Add(1)
		<-release // both sends are waiting on the one stream
		return stringSnapshot{"the state at index 10"}, nil
	}
	var wg sync.WaitGroup
	got := make([]string, 2)
	errs := make([]error, 2)
	readers := make([]io.ReadCloser, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var meta *raft.SnapshotMeta
			meta, readers[i], errs[i] = store.Open(id)
			if errs[i] == nil {
				b, err := io.ReadAll(readers[i])
				got[i], errs[i] = string(b), err
				if meta.Size != int64(len(b)) {
					errs[i] = fmt.Errorf("meta size %d, stream %d bytes", meta.Size, len(b))
				}
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); store.waiting(id) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the two opens never both held the stream")
		}
		time.Sleep(time.Millisecond) // until both opens hold the stream
	}
	close(release)
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil || got[i] != "the state at index 10" {
			t.Fatalf("send %d read %q: %v", i, got[i], errs[i])
		}
	}
	if n := made.Load(); n != 1 {
		t.Fatalf("the stream was made %d times for two sends at once", n)
	}
	closeRead(readers[0])
	if left := streams(t, store.ckpts.dir); len(left) != 1 {
		t.Fatalf("with one send still reading, streams %v", left)
	}
	closeRead(readers[1])
	if left := streams(t, store.ckpts.dir); len(left) != 0 {
		t.Fatalf("after both sends, streams %v", left)
	}

	failing := errors.New("no checkpoint")
	store.ckpts.open = func(string) (Snapshot, error) {
		made.Add(1)
		return nil, failing
	}
	made.Store(0)
	for range 3 {
		if _, _, err := store.Open(id); !errors.Is(err, failing) {
			t.Fatalf("open with a failing checkpoint: %v", err)
		}
	}
	if n := made.Load(); n != 1 {
		t.Fatalf("a failing stream was tried %d times in a row, want once until %s passed", n, streamRetryAfter)
	}
}

// closeFailingSink is a raft sink whose Close fails.
type closeFailingSink struct {
	bytes.Buffer
	id string
}

func (s *closeFailingSink) ID() string    { return s.id }
func (s *closeFailingSink) Cancel() error { return nil }
func (s *closeFailingSink) Close() error  { return errors.New("sync the snapshots directory: injected") }

// A snapshot whose sink fails to close keeps its checkpoint when raft's
// store moved the snapshot into place anyway (raft's Close syncs and reaps
// after the move), and removes it when the snapshot is not there.
func TestPersistKeepsTheCheckpointOfASnapshotInPlace(t *testing.T) {
	dir := t.TempDir()
	store, err := openSnapshotStore(dir, newDiskGuard(dir, 0, discardLogger()), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	for _, inPlace := range []bool{true, false} {
		id := fmt.Sprintf("2-%d-1", map[bool]int{true: 7, false: 8}[inPlace])
		if inPlace {
			if err := os.MkdirAll(filepath.Join(store.dir, id), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		pending := store.ckpts.pending()
		if err := os.MkdirAll(pending, 0o700); err != nil {
			t.Fatal(err)
		}
		s := &checkpointSnapshot{ckpts: store.ckpts, dir: pending}
		sink := &closeFailingSink{id: id}
		if err := s.Persist(sink); err == nil {
			t.Fatal("Persist reported a failed Close as success")
		}
		s.Release()
		if !bytes.Equal(sink.Bytes(), checkpointMagic) {
			t.Fatalf("the sink got %q", sink.Bytes())
		}
		_, err := os.Stat(store.ckpts.path(id))
		if kept := err == nil; kept != inPlace {
			t.Fatalf("snapshot in place %v: checkpoint kept %v", inPlace, kept)
		}
		if _, err := os.Stat(pending); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the pending checkpoint is still there: %v", err)
		}
	}
}

// waiting returns how many opens hold the stream of snapshot id .
func (s *snapshotStore) waiting(id string) int {
	s.ckpts.mu.Lock()
	defer s.ckpts.mu.Unlock()
	if st := s.ckpts.streams[id]; st != nil {
		return st.refs
	}
	return 0
}

// A snapshot raft removes while its stream is being sent keeps its
// checkpoint until the send ends, and loses it then.
func TestCheckpointOfARemovedSnapshotGoesAfterItsSend(t *testing.T) {
	dir := t.TempDir()
	store, err := openSnapshotStore(dir, newDiskGuard(dir, 0, discardLogger()), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	id := writeSnapshot(t, store, 10, checkpointMagic)
	if err := os.MkdirAll(store.ckpts.path(id), 0o700); err != nil {
		t.Fatal(err)
	}
	store.ckpts.open = func(string) (Snapshot, error) { return stringSnapshot{"state"}, nil }
	_, rc, err := store.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(store.dir, id)); err != nil { // raft reaps it
		t.Fatal(err)
	}
	if err := store.ckpts.prune(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(store.ckpts.path(id)); err != nil {
		t.Fatalf("the checkpoint being sent was removed: %v", err)
	}
	closeRead(rc)
	if _, err := os.Stat(store.ckpts.path(id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the checkpoint of a removed snapshot outlived its send: %v", err)
	}
}

// A stream that keeps failing is tried again after 10 s, then 20, 40, …
// up to 5 minutes.
func TestStreamFailuresWaitLonger(t *testing.T) {
	for count, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 6: 5 * time.Minute, 60: 5 * time.Minute} {
		if got := (streamFailure{count: count}).wait(); got != want {
			t.Errorf("after %d failures in a row: wait %s, want %s", count, got, want)
		}
	}
}

// A pinned stream outlives its readers, serves the next send without
// being made again, and goes, with its checkpoint, once raft removes its
// snapshot; pinning another drops it.
func TestPinnedStreamStaysReady(t *testing.T) {
	dir := t.TempDir()
	store, err := openSnapshotStore(dir, newDiskGuard(dir, 0, discardLogger()), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	var made atomic.Int32
	store.ckpts.open = func(string) (Snapshot, error) {
		made.Add(1)
		return stringSnapshot{"state"}, nil
	}
	ids := make([]string, 2)
	for i := range ids {
		ids[i] = writeSnapshot(t, store, uint64(10+i), checkpointMagic)
		if err := os.MkdirAll(store.ckpts.path(ids[i]), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	_, rc, err := store.Open(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := store.ckpts.pin(ids[0]); err != nil {
		t.Fatal(err)
	}
	closeRead(rc)
	if left := streams(t, store.ckpts.dir); len(left) != 1 {
		t.Fatalf("after its reader closed, the pinned stream: %v", left)
	}
	_, rc, err = store.Open(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	closeRead(rc)
	if n := made.Load(); n != 1 {
		t.Fatalf("the pinned stream was made %d times", n)
	}
	// Pinning the newer snapshot's stream drops the older one.
	if _, rc, err = store.Open(ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := store.ckpts.pin(ids[1]); err != nil {
		t.Fatal(err)
	}
	closeRead(rc)
	if left := streams(t, store.ckpts.dir); len(left) != 1 || !strings.HasPrefix(left[0], ids[1]+"-") {
		t.Fatalf("streams %v, want only %s's", left, ids[1])
	}
	// raft removes the snapshot: its stream and checkpoint go at the prune.
	if err := os.RemoveAll(filepath.Join(store.dir, ids[1])); err != nil {
		t.Fatal(err)
	}
	if err := store.ckpts.prune(); err != nil {
		t.Fatal(err)
	}
	if left := streams(t, store.ckpts.dir); len(left) != 0 {
		t.Fatalf("streams %v kept for a removed snapshot", left)
	}
	if _, err := os.Stat(store.ckpts.path(ids[1])); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the checkpoint of a removed snapshot: %v", err)
	}
}
