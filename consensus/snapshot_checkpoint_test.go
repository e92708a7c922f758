package consensus

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func streams(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), streamSuffix) {
			out = append(out, e.Name())
		}
	}
	return out
}
