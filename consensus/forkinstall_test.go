package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// indexFSM is a raft FSM whose state is its applied index, kept in its
// snapshots; after, when set, runs after each restore.
type indexFSM struct {
	applied  atomic.Uint64
	restores atomic.Int64
	after    func() // after each restore
}

func (f *indexFSM) Apply(l *raft.Log) any { f.applied.Store(l.Index); return nil }
func (f *indexFSM) Snapshot() (raft.FSMSnapshot, error) {
	return indexFSMSnapshot(f.applied.Load()), nil
}
func (f *indexFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	f.applied.Store(binary.BigEndian.Uint64(b[:]))
	f.restores.Add(1)
	if f.after != nil {
		f.after()
	}
	return nil
}

type indexFSMSnapshot uint64

func (s indexFSMSnapshot) Persist(sink raft.SnapshotSink) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(s))
	if _, err := sink.Write(b[:]); err != nil {
		return errors.Join(err, sink.Cancel())
	}
	return sink.Close()
}
func (indexFSMSnapshot) Release() {}

// failingLogs refuses appends while fail is set (a full disk: LogStore's
// ErrDiskFull).
type failingLogs struct {
	raft.LogStore
	fail *atomic.Bool
}

func (f failingLogs) StoreLog(l *raft.Log) error { return f.StoreLogs([]*raft.Log{l}) }
func (f failingLogs) StoreLogs(ls []*raft.Log) error {
	if f.fail.Load() {
		return ErrDiskFull
	}
	return f.LogStore.StoreLogs(ls)
}

// TestInstallBelowFollowersLogCatchesUp: a healthy follower whose log ran
// past the leader's snapshot (its appends were refused a while: a full
// disk) is sent that snapshot. What the install leaves of its log
// (dropStaleBelow: the entry at the snapshot's index, the snapshot's own,
// and what lies past it) lets it catch up. Clearing the whole log instead
// (raft's way with a monotonic log store) left raft's last index past an
// empty log: every append after the install was refused and the leader
// sent the snapshot again, tens of thousands of times (hashicorp/raft#697).
// Raft runs in memory here, with the fork check's log store wrapper.
func TestInstallBelowFollowersLogCatchesUp(t *testing.T) {
	const n = 3
	var rafts [n]*raft.Raft
	var fsms [n]*indexFSM
	var trans [n]*raft.InmemTransport
	var addrs [n]raft.ServerAddress
	for i := range n {
		addrs[i], trans[i] = raft.NewInmemTransport(raft.ServerAddress(fmt.Sprint("n", i)))
	}
	for i := range n {
		for j := range n {
			if i != j {
				trans[i].Connect(addrs[j], trans[j])
			}
		}
	}
	fail := &atomic.Bool{}
	for i := range n {
		conf := raft.DefaultConfig()
		conf.LocalID = raft.ServerID(addrs[i])
		conf.HeartbeatTimeout = 50 * time.Millisecond
		conf.ElectionTimeout = 50 * time.Millisecond
		conf.LeaderLeaseTimeout = 50 * time.Millisecond
		conf.CommitTimeout = 5 * time.Millisecond
		conf.SnapshotThreshold = 1 << 30
		conf.SnapshotInterval = time.Hour
		conf.LogLevel = "ERROR"
		if i == 0 {
			conf.TrailingLogs = 1
		} else {
			conf.ElectionTimeout = 2 * time.Second
			conf.HeartbeatTimeout = 2 * time.Second
		}
		store := raft.NewInmemStore()
		snaps := raft.NewInmemSnapshotStore()
		fsms[i] = &indexFSM{}
		var logs raft.LogStore = store
		if i == 1 {
			f := fsms[i]
			logs = forkGuard{LogStore: failingLogs{LogStore: store, fail: fail}, applied: f.applied.Load, snapshotEnd: func() uint64 {
				m, _ := snaps.List()
				if len(m) == 0 {
					return 0
				}
				return m[0].Index
			}, found: func(e *ForkError) { t.Errorf("declared forked: %v", e) }}
			f.after = func() {
				m, err := snaps.List()
				if err != nil || len(m) == 0 {
					t.Errorf("no snapshot after a restore: %v", err)
					return
				}
				if err := dropStaleBelow(store, m[0].Index, m[0].Term); err != nil {
					t.Error(err)
				}
			}
		}
		if i == 0 {
			if err := raft.BootstrapCluster(conf, store, store, raft.NewInmemSnapshotStore(), trans[i], raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addrs[i]}}}); err != nil {
				t.Fatal(err)
			}
		}
		r, err := raft.NewRaft(conf, fsms[i], logs, store, snaps, trans[i])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Shutdown().Error() })
		rafts[i] = r
	}
	pollUntil(t, "n0 leads", 5*time.Second, func() bool { return rafts[0].State() == raft.Leader })
	for i := 1; i < n; i++ {
		if err := rafts[0].AddVoter(raft.ServerID(addrs[i]), addrs[i], 0, 0).Error(); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		if err := rafts[0].Apply([]byte("x"), time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rafts[0].Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	snapIdx := rafts[0].AppliedIndex()
	for range 2 {
		if err := rafts[0].Apply([]byte("x"), time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	pollUntil(t, "follower holds every entry", 5*time.Second, func() bool { return rafts[1].LastIndex() == rafts[0].LastIndex() })
	t.Logf("leader snapshot at %d, follower's log ends at %d", snapIdx, rafts[1].LastIndex())
	fail.Store(true)
	for range 5 {
		_ = rafts[0].Apply([]byte("x"), time.Second).Error()
	}
	pollUntil(t, "the snapshot installed on the follower", 10*time.Second, func() bool { return fsms[1].restores.Load() > 0 })
	fail.Store(false)
	for range 3 {
		_ = rafts[0].Apply([]byte("x"), time.Second).Error()
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if fsms[1].applied.Load() == rafts[0].AppliedIndex() {
			if installs := fsms[1].restores.Load(); installs > 3 {
				t.Fatalf("caught up after %d installs of the same snapshot", installs)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("follower stuck: applied %d, leader %d, installs %d (raft lastIndex %d, snapshot %d)",
		fsms[1].applied.Load(), rafts[0].AppliedIndex(), fsms[1].restores.Load(), rafts[1].LastIndex(), snapIdx)
}
