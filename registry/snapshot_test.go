package registry

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

func TestRestartAppliesNothingTwice(t *testing.T) {
	f := mustChain(t)
	entries := []Entry{}
	for i := uint64(1); i <= f.index; i++ {
		v, err := f.s.Operation(strconv.FormatUint(i, 10))
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, Entry{Index: i, Time: v.Time, Data: EncodeOperation([]byte(v.JWS))})
	}
	before := f.digest()
	applied := f.s.AppliedIndex()
	if err := f.s.Close(); err != nil {
		t.Fatal(err)
	}
	f.open()
	if got := f.s.AppliedIndex(); got != applied {
		t.Fatalf("applied index after restart = %d, want %d", got, applied)
	}
	if f.digest() != before {
		t.Fatal("state digest changed across restart")
	}
	// Raft replays the tail of the log after a restart: nothing changes and
	// the original results come back.
	results := f.s.ApplyBatch(entries)
	for i, r := range results {
		if !r.Accepted || r.Index != entries[i].Index || r.Duplicate {
			t.Fatalf("replayed entry %d: %+v", entries[i].Index, r)
		}
	}
	if f.digest() != before || f.s.AppliedIndex() != applied {
		t.Fatal("replay changed the state")
	}
}

// A batch of entries records its last entry's index and commit time, and
// both survive a restart; a commit time that runs backwards within the
// batch is held at the latest.
func TestBatchRecordsItsLastEntryAcrossRestart(t *testing.T) {
	f := mustChain(t)
	times := []time.Duration{time.Second, 3 * time.Second, 2 * time.Second}
	committed := []time.Duration{time.Second, 3 * time.Second, 3 * time.Second}
	var entries []Entry
	for i, d := range times {
		jws := f.sign(f.qa, record.OpAccredit, map[string]any{
			"framework": fwID, "accreditor": f.qa.DID, "subject": fmt.Sprintf("did:web:batch-%d.example", i),
			"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
			"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
		})
		entries = append(entries, Entry{Index: f.index + uint64(i) + 1, Time: f.now.Add(d), Data: EncodeOperation(jws)})
	}
	for i, r := range f.s.ApplyBatch(entries) {
		if !r.Accepted {
			t.Fatalf("entry %d: %s", entries[i].Index, r.Reason)
		}
		if want := f.now.Add(committed[i]); !r.Time.Equal(want) {
			t.Errorf("entry %d committed at %s, want %s", entries[i].Index, r.Time, want)
		}
	}
	last, latest := entries[2].Index, f.now.Add(3*time.Second)
	check := func(when string) {
		t.Helper()
		if got := f.s.AppliedIndex(); got != last {
			t.Errorf("%s: applied index %d, want %d", when, got, last)
		}
		if got := time.Unix(0, f.s.commitTime.Load()).UTC(); !got.Equal(latest) {
			t.Errorf("%s: commit time %s, want %s", when, got, latest)
		}
	}
	check("after the batch")
	if err := f.s.Close(); err != nil {
		t.Fatal(err)
	}
	f.open()
	check("after a restart")
}

func TestSnapshotRestoreGivesIdenticalState(t *testing.T) {
	f := mustChain(t)
	f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
	buf := bytes.NewBuffer(snapshotBytes(t, f.s))

	fresh, err := Open(t.TempDir(), f.raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	got, _ := fresh.StateDigest()
	if want := f.digest(); got != want {
		t.Fatalf("restored digest %s, want %s", got, want)
	}
	if fresh.AppliedIndex() != f.s.AppliedIndex() {
		t.Fatalf("restored applied index %d, want %d", fresh.AppliedIndex(), f.s.AppliedIndex())
	}
	d, err := fresh.Decide(decide.Question{Entity: f.college.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing}, f.now)
	if err != nil || d.Reason != record.ReasonSuspended {
		t.Fatalf("decision on the restored node: %+v, %v", d, err)
	}

	// A version 1 stream (uncompressed, as older nodes and backups wrote
	// it) restores the same state.
	v1 := snapshotV1(t, buf.Bytes())
	if len(v1) <= buf.Len() {
		t.Errorf("the compressed snapshot (%d bytes) is no smaller than the records (%d bytes)", buf.Len(), len(v1))
	}
	older, err := Open(t.TempDir(), f.raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer older.Close()
	if err := older.Restore(bytes.NewReader(v1)); err != nil {
		t.Fatalf("restore a version 1 snapshot: %v", err)
	}
	if got, _ := older.StateDigest(); got != f.digest() {
		t.Fatalf("version 1 restore digest %s, want %s", got, f.digest())
	}

	// Corrupt, truncated or foreign snapshots are refused and leave the
	// previous state as it was, never half-restored or empty.
	corrupt := bytes.Clone(buf.Bytes())
	corrupt[len(corrupt)/2] ^= 0xff
	other := mustNewState(t, 1, 1)
	foreign := bytes.NewBuffer(snapshotBytes(t, other.s))
	for name, stream := range map[string][]byte{
		"corrupt":   corrupt,
		"truncated": buf.Bytes()[:len(buf.Bytes())-40],
		"empty":     nil,
		"foreign":   foreign.Bytes(),
	} {
		err := fresh.Restore(bytes.NewReader(stream))
		if !errors.Is(err, ErrSnapshot) && !errors.Is(err, record.ErrGenesis) {
			t.Errorf("%s snapshot: err = %v, want ErrSnapshot or ErrGenesis", name, err)
		}
		if fresh.AppliedIndex() != f.s.AppliedIndex() {
			t.Errorf("%s snapshot: applied index %d after a failed restore, want the previous %d", name, fresh.AppliedIndex(), f.s.AppliedIndex())
		}
		if got, _ := fresh.StateDigest(); got != f.digest() {
			t.Errorf("%s snapshot: digest %s after a failed restore, want the previous %s", name, got, f.digest())
		}
	}
}

// snapshotV1 rewrites a version 2 snapshot stream as version 1: the same
// records, uncompressed, under the version 1 magic and checksum.
func snapshotV1(t *testing.T, v2 []byte) []byte {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(v2[len(snapshotMagic):]))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	content, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	out := append(bytes.Clone(snapshotMagicV1), content[:len(content)-sha256.Size]...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...)
}

func TestOpenRefusesAnotherGenesis(t *testing.T) {
	h := mustNewState(t, 1, 1)
	h.s.Close()
	other := mustNewState(t, 1, 1)
	if _, err := Open(h.dir, other.raw, Options{}); !errors.Is(err, record.ErrGenesis) {
		t.Fatalf("open with another genesis: %v, want ErrGenesis", err)
	}
}

// TestOpenOfADirectoryAnotherProcessHoldsIsRefusedUntouched opens the
// state in a second process (this test binary, run again) while this one
// holds it open with a restore under way.
func TestOpenOfADirectoryAnotherProcessHoldsIsRefusedUntouched(t *testing.T) {
	if dir := os.Getenv("TRUSTREG_SECOND_OPEN_DIR"); dir != "" {
		genesis, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), "genesis.json"))
		_, err := Open(dir, genesis, Options{})
		fmt.Printf("second open: %v\n", err)
		return
	}
	h := mustNewState(t, 1, 1)
	os.WriteFile(filepath.Join(filepath.Dir(h.dir), "genesis.json"), h.raw, 0o600)
	restoring := filepath.Join(h.dir, "restore", "000000.sst")
	os.MkdirAll(filepath.Dir(restoring), 0o700)
	if err := os.WriteFile(restoring, []byte("a table being restored"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestOpenOfADirectoryAnotherProcessHoldsIsRefusedUntouched$")
	cmd.Env = append(os.Environ(), "TRUSTREG_SECOND_OPEN_DIR="+h.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("second process: %v\n%s", err, out)
	}
	if _, err := os.Stat(restoring); err != nil {
		t.Fatalf("the refused open removed the holder's restore files: %v", err)
	}
	if !strings.Contains(string(out), "second open: open state "+h.dir+": the data directory is in use by another process") {
		t.Fatalf("the second process was not told the directory is in use:\n%s", out)
	}
}

func TestOpenRemovesTablesOfACutOffRestore(t *testing.T) {
	h := mustNewState(t, 1, 1)
	h.s.Close()
	left := filepath.Join(h.dir, "restore", "000000.sst")
	if err := os.MkdirAll(filepath.Dir(left), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(left, []byte("half a table"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.open()
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("a cut-off restore's table is still there: %v", err)
	}
}

// TestReadSnapshotStopsWhenTheWriterFails checks that a restore whose
// writing fails stops reading at once and reports the failure.
func TestReadSnapshotStopsWhenTheWriterFails(t *testing.T) {
	f := mustChain(t)
	stream := snapshotBytes(t, f.s)
	var records int
	if _, err := readSnapshot(bytes.NewReader(stream), func(k, v []byte) error { records++; return nil }); err != nil || records < 10 {
		t.Fatalf("read %d records: %v", records, err)
	}
	full := errors.New("disk full")
	seen := 0
	_, err := readSnapshot(bytes.NewReader(stream), func(k, v []byte) error {
		if seen++; seen == 3 {
			return full
		}
		return nil
	})
	if !errors.Is(err, full) || seen != 3 {
		t.Fatalf("after a failed write: %v, %d records read", err, seen)
	}
}
