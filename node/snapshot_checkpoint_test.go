package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/registry"
)

// TestSnapshotsAreKeptAsCheckpoints: a node's raft snapshots hold a
// reference to a checkpoint of the state, not the state streamed; the
// checkpoints of the snapshots raft removes (it keeps the newest two) go
// with them; and a replica that joins after the log was compacted is sent
// the stream made from the newest checkpoint, restores it and agrees with
// the leader; the leader, its state directory removed, starts again from
// its own newest checkpoint; no temporary stream is left behind.
func TestSnapshotsAreKeptAsCheckpoints(t *testing.T) {
	c := soloVoterWithReplica(t, func(voter, _ *configs.Config) {
		voter.Raft.TrailingLogs = 4
	})
	raftDir := filepath.Join(c.cfgs[0].DataDir, "raft")
	var last uint64
	for round := range 3 {
		for i := range 8 {
			last = c.mustSubmit(0, c.accreditOp(fmt.Sprintf("did:web:ckpt-%d-%d.example", round, i))).Index
		}
		if err := c.node(0).cluster.Snapshot(); err != nil {
			t.Fatalf("snapshot %d: %v", round, err)
		}
	}
	snaps := dirNames(t, filepath.Join(raftDir, "snapshots"))
	if len(snaps) != 2 {
		t.Fatalf("snapshots %v, want raft's newest two", snaps)
	}
	for _, id := range snaps {
		b, err := os.ReadFile(filepath.Join(raftDir, "snapshots", id, "state.bin"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, []byte("TRCKPT\x00\x01")) {
			t.Fatalf("snapshot %s holds %d bytes starting %q, not a checkpoint reference", id, len(b), b[:min(len(b), 8)])
		}
		// The checkpoint holds the state at the snapshot's index (the
		// snapshots follow writes, so the last entry is a command).
		var meta struct{ Index uint64 }
		raw, err := os.ReadFile(filepath.Join(raftDir, "snapshots", id, "meta.json"))
		if err == nil {
			err = json.Unmarshal(raw, &meta)
		}
		if err != nil {
			t.Fatal(err)
		}
		sn, err := registry.OpenCheckpoint(filepath.Join(raftDir, "checkpoints", id), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		applied := sn.AppliedIndex()
		sn.Release()
		if applied != meta.Index {
			t.Fatalf("snapshot %s at index %d keeps a checkpoint of the state at %d", id, meta.Index, applied)
		}
	}
	if ckpts := dirNames(t, filepath.Join(raftDir, "checkpoints")); !slices.Equal(ckpts, snaps) {
		t.Fatalf("checkpoints %v, want those of the snapshots held, %v", ckpts, snaps)
	}
	waitFor(t, "the leader's log to be compacted", 30*time.Second, func() bool {
		first, _, err := c.node(0).cluster.LogBounds()
		return err == nil && first > 1
	})
	c.start(1) // sent the newest snapshot
	c.converged(last)
	waitFor(t, "the replica's restore to be counted", 10*time.Second, func() bool { return restoresOf(t, c.node(1)) > 0 })
	// The log's root covers every entry's map root.
	head := func(i int) string {
		size, root, err := c.node(i).State.LogHead()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d %x", size, root)
	}
	if a, b := head(0), head(1); a != b {
		t.Fatalf("log heads %s (leader) and %s (replica)", a, b)
	}
	// A node that lost its state directory starts from its own newest
	// snapshot, streamed from the checkpoint, and the log after it.
	c.stop(0)
	if err := os.RemoveAll(filepath.Join(c.cfgs[0].DataDir, "state")); err != nil {
		t.Fatal(err)
	}
	c.start(0)
	c.waitLeader()
	last = c.mustSubmit(0, c.accreditOp("did:web:ckpt-after.example")).Index
	c.converged(last)
	if a, b := head(0), head(1); a != b {
		t.Fatalf("after the restart without state, log heads %s (leader) and %s (replica)", a, b)
	}
	entries, err := os.ReadDir(filepath.Join(raftDir, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	// Only the stream of the snapshot asked for last is kept ready.
	held := dirNames(t, filepath.Join(raftDir, "snapshots"))
	var streams []string
	for _, e := range entries {
		if !e.IsDir() {
			streams = append(streams, e.Name())
		}
	}
	if len(streams) > 1 || (len(streams) == 1 && !strings.HasPrefix(streams[0], held[len(held)-1]+"-")) {
		t.Fatalf("streams %v kept, snapshots %v: want at most the newest's", streams, held)
	}
}

// dirNames returns the names of the directories in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// TestStreamSnapshotsWritesStreams: with raft.stream_snapshots a node's
// snapshots are streams of the whole state again (what an earlier build
// reads), and it keeps no checkpoints.
func TestStreamSnapshotsWritesStreams(t *testing.T) {
	c := soloVoterWithReplica(t, func(voter, _ *configs.Config) {
		voter.Raft.StreamSnapshots = true
	})
	c.mustSubmit(0, c.accreditOp("did:web:streamed.example"))
	if err := c.node(0).cluster.Snapshot(); err != nil {
		t.Fatal(err)
	}
	raftDir := filepath.Join(c.cfgs[0].DataDir, "raft")
	snaps := dirNames(t, filepath.Join(raftDir, "snapshots"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots %v, want one", snaps)
	}
	b, err := os.ReadFile(filepath.Join(raftDir, "snapshots", snaps[0], "state.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("TRSNAP\x00\x02")) {
		t.Fatalf("the snapshot starts %q, not a stream", b[:min(len(b), 8)])
	}
	if ckpts := dirNames(t, filepath.Join(raftDir, "checkpoints")); len(ckpts) != 0 {
		t.Fatalf("checkpoints %v kept with raft.stream_snapshots", ckpts)
	}
}
