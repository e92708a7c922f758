package consensus

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Errors the cluster returns. Callers compare with errors.Is.
var (
	ErrNotLeader = errors.New("consensus: this node is not the leader")
	ErrNoLeader  = errors.New("consensus: no leader: the cluster cannot commit writes now")
	ErrTimeout   = errors.New("consensus: timed out before the entry was accepted for replication")
	ErrShutdown  = errors.New("consensus: node is shutting down")
	// ErrUnknownOutcome: the entry was handed to raft but its fate is not
	// known (leadership lost, no answer in time). It may still commit;
	// resubmitting an idempotent command is the way to find out.
	ErrUnknownOutcome = errors.New("consensus: outcome unknown; the entry may or may not commit")
	// ErrNothingToSnapshot: Snapshot found no entry applied since this
	// node started (from its latest snapshot, if it has one).
	ErrNothingToSnapshot = errors.New("consensus: nothing applied since this node started, so nothing new to snapshot")
)

// Config configures a Cluster.
type Config struct {
	Dir          string // raft log, stable store and snapshots live here
	Host         host.Host
	StateMachine StateMachine
	Logger       *slog.Logger
	// Bootstrap makes this node start a new cluster of Voters (itself
	// included) when it has no raft state yet.
	Bootstrap bool
	Voters    []peer.ID
	// Contacts are peers this node reaches out to, besides the members of
	// the raft configuration, whenever it hears from no leader (its
	// configured peers and join addresses).
	Contacts          []peer.ID
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// StreamSnapshots: the node's own snapshots are streams written when
	// taken, as before they were kept as checkpoints (Checkpointing), which
	// an earlier build can read; those kept as checkpoints still open.
	StreamSnapshots bool
	// Timing; zero values take raft's defaults scaled for a LAN.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// ClusterID (the genesis CID) must match between peers; a peer with
	// another is refused. It is at most maxHelloFrame bytes.
	ClusterID string
	// Codec encodes state machine responses for writes forwarded to the
	// leader.
	Codec ResponseCodec
	// Gater, if set, is kept in step with the raft configuration.
	Gater *Gater
	// LeaderWait bounds how long a write or read index waits for a leader
	// (default 3s).
	LeaderWait time.Duration
	// IdempotentCommands says that a command proposed twice answers the
	// second time as it did the first (the registry's operations are
	// content-addressed: a resubmission gets the original result). A write
	// whose outcome a leader change left unknown is then proposed again to
	// the new leader, within LeaderWait, instead of failing with
	// ErrUnknownOutcome.
	IdempotentCommands bool
	// Prepare, if set, sees each command this node proposes as leader
	// (its own and those forwarded to it) before it is proposed,
	// concurrently with other requests: work that can be done ahead of
	// the single-threaded apply (signature checks), and the decision
	// whether to propose at all. When it returns decided, the command is
	// not proposed and resp is the answer, as if the state machine had
	// returned it (a command the current state refuses, or one applied
	// before): nothing that the state machine would refuse now enters
	// the log.
	Prepare func(cmd []byte) (resp any, decided bool)
	// FeatureLevel is the highest feature level of the state machine's
	// operations this build applies; peers read it in this node's status.
	// ClusterFeatureLevel, if set, is the level the applied state is at: a
	// node whose build applies less is not admitted as a member.
	FeatureLevel        int
	ClusterFeatureLevel func() int
	// DiskReserveBytes is the free space the raft log keeps in reserve
	// under Dir (DefaultLogReserveBytes if 0): with less, appends and
	// snapshot transfers are refused (disk.go).
	DiskReserveBytes uint64
	// DiskReadings, if set, makes from a function that reads the free
	// space under Dir the readings the raft log's appends may reuse
	// (DiskReadings); if nil, each append reads the disk.
	DiskReadings func(read func() (uint64, error)) DiskReadings
	// SendDelay, if set, delays everything this node sends to a peer on
	// the cluster's protocols by the peer's LinkDelay (delay.go): a
	// testing and benchmark aid standing in for members far apart. Never
	// set in production.
	SendDelay func(peer.ID) LinkDelay

	// helloV1, in tests, makes the node say hello as a build from before
	// wireV2 does: HelloProtocol only, no version.
	helloV1 bool
}

// Cluster is this node's raft participation.
type Cluster struct {
	raft *raft.Raft
	// raftNow is raft once Start made it, for the goroutines that run
	// before that (the raft transport's checks, votesNow).
	raftNow    atomic.Pointer[raft.Raft]
	vouchMu    sync.Mutex
	vouchAsked map[peer.ID]time.Time // askVouchers' last round for each leader asked about
	logs       *LogStore
	snaps      *snapshotStore
	trans      *boundTransport
	watch      *commitWatch // trans, reading the leader's commit index off AppendEntries (Lag)
	host       host.Host
	log        *slog.Logger
	sm         StateMachine
	peers      *peering
	codec      ResponseCodec
	gater      *Gater
	leaderWait time.Duration
	prepare    func(cmd []byte) (any, bool)
	// featureLevel and clusterLevel: Config.FeatureLevel and
	// Config.ClusterFeatureLevel.
	featureLevel int
	clusterLevel func() int
	memberMu     sync.Mutex // held by membership changes and ProposeWithMembers
	contacts     []peer.ID
	fwd          *forwarder
	// life is the cluster's running time: its goroutines and the requests
	// it serves take their context from it, and Shutdown ends it and waits
	// for them before it closes the stores they use.
	life *lifetime

	// termMu serializes the wait for this leader's first commit in its
	// term; readTerm is the term in which that commit was seen (see
	// termCommitted).
	termMu   sync.Mutex
	readTerm atomic.Uint64
	confirm  confirmer // batches leadership confirmations of reads

	leaderCalls leaderCalls // calls in flight to the leader (callLeader)
	// calls bounds the requests open to each peer (call, limits.go).
	calls callSlots
	// contacted is when each peer last answered a call (Members).
	contacted lastContacts
	// joinFailure is the last failed attempt of Join while it has not
	// succeeded (JoinFailure).
	joinFailure atomic.Pointer[JoinError]
	// fork is the first fork found (Forked, fork.go).
	fork forkState
	// fsm is raft's state machine wrapper; its raft is raft once it runs,
	// for the transport's goroutine (refuseFork), which may take a request
	// before raft starts.
	fsm *fsm
	// idempotent: proposing a command twice answers as proposing it once
	// (Config.IdempotentCommands).
	idempotent bool
	metrics    *raftMetrics // metrics.go
	// leaderDecoded is the last leader ID leaderPeer decoded: every write
	// a follower forwards asks for the leader's peer.ID, which changes only
	// with the leader.
	leaderDecoded atomic.Pointer[decodedLeader]
}

// decodedLeader pairs a leader's ID as raft holds it with its peer.ID.
type decodedLeader struct {
	id   string
	peer peer.ID
}

// Start opens the raft stores in cfg.Dir, restores the state machine from
// the newest snapshot if it is empty, and joins raft.
func Start(cfg Config) (*Cluster, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.ClusterID) > maxHelloFrame {
		// Peers would refuse its hello (readHello).
		return nil, fmt.Errorf("cluster id of %d bytes: at most %d fit in a hello", len(cfg.ClusterID), maxHelloFrame)
	}
	cfg.Host = newDelayHost(cfg.Host, cfg.SendDelay)
	rl := logger.With("component", "raft")
	logger = logger.With("component", "consensus")
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	logs, err := OpenLogStore(filepath.Join(cfg.Dir, "log"))
	if err != nil {
		return nil, err
	}
	logs.disk.log = logger
	if cfg.DiskReserveBytes > 0 {
		logs.disk.reserve = cfg.DiskReserveBytes
	}
	if cfg.DiskReadings != nil {
		logs.disk.reuseReadings(cfg.DiskReadings)
	}
	snaps, err := openSnapshotStore(cfg.Dir, logs.disk, rl)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open snapshot store: %w", err), logs.Close())
	}
	if cp, ok := cfg.StateMachine.(Checkpointing); ok {
		snaps.ckpts.open = cp.OpenCheckpoint
	}
	c := &Cluster{logs: logs, snaps: snaps, host: cfg.Host, log: logger, sm: cfg.StateMachine, codec: cfg.Codec, gater: cfg.Gater, leaderWait: cfg.LeaderWait, prepare: cfg.Prepare, life: newLifetime(), contacts: cfg.Contacts, idempotent: cfg.IdempotentCommands, featureLevel: cfg.FeatureLevel, clusterLevel: cfg.ClusterFeatureLevel, metrics: newRaftMetrics(), fork: newForkState()}
	if c.leaderWait <= 0 {
		c.leaderWait = 3 * time.Second
	}
	c.peers = newPeering(cfg.Host, cfg.ClusterID, logger, cfg.helloV1)
	if err := forkedBefore(logs); err != nil {
		return nil, errors.Join(err, logs.Close())
	}
	if err := c.restoreIfBehind(); err != nil {
		return nil, errors.Join(err, logs.Close())
	}
	trans, err := newTransport(cfg.Host, c.peers, rl, &c.metrics.answered, c.raftRequestFrom)
	if err != nil {
		return nil, errors.Join(err, logs.Close())
	}
	c.trans = trans
	c.fsm = &fsm{sm: cfg.StateMachine, metrics: c.metrics, log: logger, afterRestore: c.dropStale}
	c.watch = newCommitWatch(trans, c.refuseFork)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.Host.ID().String())
	rc.Logger = newRaftLogger(rl, "raft")
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	// The state machine keeps its own applied index (written with the
	// state it produced), so raft must not reload a snapshot over it at
	// start; restoreIfBehind covers a state machine that lost its data or
	// failed to restore a snapshot it received.
	rc.NoSnapshotRestoreOnStart = true
	// A leader that loses its vote (demoted to a replica, or removed)
	// steps down. By default raft then shuts itself down, which would leave
	// a demoted leader's process serving without raft; it stays a follower
	// instead: a demoted one goes on as a replica of the new leader.
	rc.ShutdownOnRemove = false
	if cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	if cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cfg.HeartbeatTimeout
		rc.LeaderLeaseTimeout = cfg.HeartbeatTimeout / 2
	}
	if cfg.ElectionTimeout > 0 {
		rc.ElectionTimeout = cfg.ElectionTimeout
	}
	if cfg.Bootstrap {
		has, err := raft.HasExistingState(logs, logs, snaps)
		if err != nil {
			return nil, errors.Join(err, c.close())
		}
		if !has {
			conf := raft.Configuration{}
			voters := append([]peer.ID{cfg.Host.ID()}, cfg.Voters...)
			seen := map[peer.ID]bool{}
			for _, v := range voters {
				if seen[v] {
					continue
				}
				seen[v] = true
				conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(v.String()), Address: raft.ServerAddress(v.String())})
			}
			if err := raft.BootstrapCluster(rc, logs, logs, snaps, trans, conf); err != nil {
				return nil, errors.Join(fmt.Errorf("bootstrap cluster: %w", err), c.close())
			}
			logger.Info("bootstrapped a new cluster", "voters", len(conf.Servers))
		}
	}
	f := c.fsm
	if snaps.ckpts.open != nil && !cfg.StreamSnapshots {
		f.ckpts = snaps.ckpts
	}
	var store raft.LogStore = logs
	prefetcher, prefetches := cfg.StateMachine.(Prefetcher)
	var pl *prefetchLogs
	if prefetches {
		pl = newPrefetchLogs(logs)
		store = pl
	}
	store = forkGuard{LogStore: store, applied: cfg.StateMachine.AppliedIndex, snapshotEnd: func() uint64 {
		p, _ := snaps.newestSnapshot()
		return p.index
	}, found: c.forkFound}
	if c.gater != nil {
		store = configLog{LogStore: store, gater: c.gater, drop: func(id peer.ID) {
			c.life.spawn(func(context.Context) { c.dropPeer(id) })
		}}
	}
	c.seedGater(logs, snaps)
	r, err := raft.NewRaft(rc, f, store, logs, snaps, c.watch)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("start raft: %w", err), c.close())
	}
	if prefetches {
		pl.start(prefetcher, c.life)
	}
	c.raft = r
	c.raftNow.Store(r)
	f.raft.Store(r)
	r.RegisterObserver(raft.NewObserver(nil, false, c.metrics.countLeaders))
	c.fwd = newForwarder(c)
	cfg.Host.SetStreamHandler(RPCProtocol, c.serveRPC)
	c.fwd.start()
	c.life.spawn(c.syncPeers)
	c.life.spawn(c.watchLeader)
	c.life.spawn(c.stopOnFork)
	return c, nil
}

// restoreIfBehind loads the newest snapshot into a state machine that has
// applied less than it holds (a fresh data directory, or a snapshot
// received whose restore failed and left the previous state), since raft
// itself is told not to restore at start: raft takes the newest snapshot's
// index as applied, and would otherwise go on past entries the state
// machine never saw.
func (c *Cluster) restoreIfBehind() error {
	metas, err := c.snaps.List()
	if err != nil || len(metas) == 0 {
		return err
	}
	if metas[0].Index <= c.sm.AppliedIndex() {
		return nil
	}
	meta, rc, err := c.snaps.Open(metas[0].ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", metas[0].ID, err)
	}
	// The snapshot is only read: once Restore has its data, closing it
	// has nothing left to report.
	defer closeRead(rc)
	start := time.Now()
	if err := c.sm.Restore(rc); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", meta.ID, err)
	}
	observeSince(c.metrics.restore, start)
	c.log.Info("restored state from snapshot", "snapshot", meta.ID, "index", meta.Index)
	// As after an install (dropStale): a stop between a received
	// snapshot's restore and that drop left the stale entries.
	if err := dropStaleBelow(c.logs, meta.Index, meta.Term); err != nil {
		c.log.Warn("could not remove the log entries a restored snapshot left stale", "snapshot_index", meta.Index, "err", err)
	}
	return nil
}

// proposeLocal replicates cmd, stamped with this leader's clock, and
// returns the state machine's response once it is applied here.
func (c *Cluster) proposeLocal(ctx context.Context, cmd []byte) (any, error) {
	if resp, decided := c.decide(cmd); decided {
		return resp, nil
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	return c.enqueue(stamp(cmd, time.Now()), timeout).wait()
}

// decide asks Config.Prepare whether to propose cmd, once this leader has
// applied every entry committed before its term (termCommitted: one
// barrier a term). Before that its state may lack a write an earlier
// leader acknowledged, and a refusal decided on it could be wrong; a
// leader that cannot confirm it has proposes cmd undecided, and the
// apply decides (or the proposal fails as a follower's would).
func (c *Cluster) decide(cmd []byte) (any, bool) {
	if c.prepare == nil {
		return nil, false
	}
	term, leads := c.leaderTerm()
	if !leads || c.termCommitted(term) != nil {
		return nil, false
	}
	return c.prepare(cmd)
}

// applyWait is a stamped command handed to raft, or the reason it was
// not, or (decided) the answer to a command that was not proposed.
type applyWait struct {
	f       raft.ApplyFuture
	err     error
	resp    any
	decided bool
	life    *lifetime
}

// enqueue hands a stamped command to raft without waiting for it.
func (c *Cluster) enqueue(stamped []byte, timeout time.Duration) applyWait {
	if c.life.ctx.Err() != nil {
		return applyWait{err: ErrShutdown}
	}
	if c.raft.State() != raft.Leader {
		if c.LeaderID() == "" {
			return applyWait{err: ErrNoLeader}
		}
		return applyWait{err: ErrNotLeader}
	}
	return applyWait{f: c.raft.Apply(stamped, timeout), life: c.life}
}

// wait returns the state machine's response once the command is applied.
func (w applyWait) wait() (any, error) {
	if w.decided {
		return w.resp, nil
	}
	if w.err != nil {
		return nil, w.err
	}
	if err := w.life.await(w.f); err != nil {
		switch {
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, ErrTimeout
		case errors.Is(err, raft.ErrNotLeader):
			// Answered by a follower's or candidate's loop: never appended.
			return nil, ErrNotLeader
		case errors.Is(err, raft.ErrLeadershipTransferInProgress):
			// The leader's loop refuses new entries during a transfer
			// before it appends them.
			return nil, fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		// Anything else may come after the entry reached the log.
		return nil, fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	}
	return w.f.Response(), nil
}

// LeaderID returns the leader's peer id, or "" when there is none.
func (c *Cluster) LeaderID() string {
	_, id := c.raft.LeaderWithID()
	return string(id)
}

// IsLeader reports whether this node leads.
func (c *Cluster) IsLeader() bool { return c.raft.State() == raft.Leader }

// WaitLeader blocks until the cluster has a leader or ctx ends.
func (c *Cluster) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for c.LeaderID() == "" {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for a leader: %w", ErrNoLeader)
		case <-t.C:
		}
	}
	return nil
}

// CommitIndex returns raft's commit index as this node knows it.
func (c *Cluster) CommitIndex() uint64 { return c.raft.CommitIndex() }

// Member is one server of the raft configuration.
type Member struct {
	ID       string `json:"id"`
	Suffrage string `json:"suffrage"` // voter or nonvoter
	Leader   bool   `json:"leader"`
}

// Status summarizes this node's view of the cluster.
type Status struct {
	NodeID      string `json:"node_id"`
	State       string `json:"state"`
	Leader      string `json:"leader"`
	Term        uint64 `json:"term"`
	CommitIndex uint64 `json:"commit_index"`
	// AppliedIndex is the registry's: the log index of the last registry
	// operation applied, the index reads are answered at.
	AppliedIndex uint64 `json:"applied_index"`
	// RaftAppliedIndex also counts raft's own entries (configurations, a
	// new leader's no-op); it is the index members' lag is counted in.
	RaftAppliedIndex uint64   `json:"raft_applied_index"`
	LastLogIndex     uint64   `json:"last_log_index"`
	Members          []Member `json:"members"`
	Addrs            []string `json:"addrs"`
}

// Status returns the node's view of the cluster.
func (c *Cluster) Status() Status {
	leader := c.LeaderID()
	st := Status{
		NodeID:           c.host.ID().String(),
		State:            c.raft.State().String(),
		Leader:           leader,
		Term:             c.raft.CurrentTerm(),
		CommitIndex:      c.raft.CommitIndex(),
		AppliedIndex:     c.sm.AppliedIndex(),
		RaftAppliedIndex: c.raft.AppliedIndex(),
		LastLogIndex:     c.raft.LastIndex(),
		Members:          []Member{},
	}
	for _, a := range c.host.Addrs() {
		st.Addrs = append(st.Addrs, a.String()+"/p2p/"+c.host.ID().String())
	}
	if f := c.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			suffrage := "voter"
			if s.Suffrage != raft.Voter {
				suffrage = "nonvoter"
			}
			st.Members = append(st.Members, Member{ID: string(s.ID), Suffrage: suffrage, Leader: string(s.ID) == leader})
		}
	}
	return st
}

// Snapshot asks raft to take a snapshot now and, when it is kept as a
// checkpoint, makes its stream ready for sending (a node added next
// catches up without waiting for it). It returns ErrNothingToSnapshot when
// nothing was applied since the node started.
func (c *Cluster) Snapshot() error {
	f := c.raft.Snapshot()
	err := f.Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return ErrNothingToSnapshot
	}
	if err != nil {
		return err
	}
	// A snapshot asked for is usually for a node about to be added or
	// behind: one kept as a checkpoint has its stream made now and kept
	// ready for the send (checkpoints.pin).
	meta, rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("snapshot taken; making its stream: %w", err)
	}
	defer closeRead(rc)
	return c.snaps.ckpts.pin(meta.ID)
}

// Shutdown leaves raft and closes the stores. The host is the caller's.
// Calls arriving from then on fail with ErrShutdown; the cluster's
// goroutines and the requests it is serving see their context end, and
// Shutdown waits for them (up to shutdownWait, with a log line if one is
// still running) before it closes the raft log they read.
func (c *Cluster) Shutdown() error {
	c.life.stop()
	c.host.RemoveStreamHandler(RPCProtocol)
	c.peers.close()
	var err error
	if c.raft != nil {
		// Writes handed to raft get their outcome while it still runs:
		// raft never answers one left in its apply channel at shutdown.
		c.life.drainAwaits(strandedWait)
		// Ends the waits on raft (applies, barriers) of the requests.
		err = c.raft.Shutdown().Error()
	}
	if !c.life.wait(shutdownWait) {
		c.log.Warn("closing the raft log with cluster requests or goroutines still running", "waited", shutdownWait)
	}
	return errors.Join(err, c.close())
}

func (c *Cluster) close() error {
	var errs []error
	if c.trans != nil {
		// Raft's pooled streams first: the transport's Close leaves them.
		c.trans.CloseStreams()
		errs = append(errs, c.trans.Close())
		if !c.watch.close(shutdownWait) {
			c.log.Warn("closing the raft log with a heartbeat still being handled", "waited", shutdownWait)
		}
	}
	errs = append(errs, c.logs.Close())
	return errors.Join(errs...)
}

// LogBounds returns the first and last index of the raft log kept here.
func (c *Cluster) LogBounds() (first, last uint64, err error) {
	if first, err = c.logs.FirstIndex(); err != nil {
		return 0, 0, err
	}
	last, err = c.logs.LastIndex()
	return first, last, err
}

// DiskFull returns an ErrDiskFull error while the disk under the raft
// directory has less free space than the raft log's reserve (appends and
// snapshot transfers are refused), and nil otherwise.
func (c *Cluster) DiskFull() error { return c.logs.DiskFull() }

// BatchStats reports how raft batched this node's work so far: the synced
// appends to its log and the entries they carried (LogStore.AppendStats),
// and the command entries its state machine applied, in as many batches
// as trustd_raft_apply_duration_seconds counts.
func (c *Cluster) BatchStats() (appends, appended, applied uint64) {
	appends, appended = c.logs.AppendStats()
	return appends, appended, c.metrics.applied.Load()
}

// State returns raft's state name (Leader, Follower, Candidate, Shutdown).
func (c *Cluster) State() string { return c.raft.State().String() }

// SeedSnapshot writes a raft snapshot at index into the raft directory dir
// of a node that has no raft state yet, with a configuration of the node
// alone. Starting that node then resumes from the snapshot: the way a
// backup becomes a new cluster. write streams the state.
func SeedSnapshot(dir string, self peer.ID, index uint64, write func(io.Writer) error) (err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logs, err := OpenLogStore(filepath.Join(dir, "log"))
	if err != nil {
		return err
	}
	// The current term is written last: a failed close is reported.
	defer func() { err = errors.Join(err, logs.Close()) }()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hclog.NewNullLogger())
	if err != nil {
		return err
	}
	if has, err := raft.HasExistingState(logs, logs, snaps); err != nil || has {
		if err == nil {
			err = fmt.Errorf("%s already holds raft state: restore into a new data directory", dir)
		}
		return err
	}
	_, trans := raft.NewInmemTransport("")
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(self.String()), Address: raft.ServerAddress(self.String())}}}
	term, err := seedTerm()
	if err != nil {
		return err
	}
	sink, err := snaps.Create(raft.SnapshotVersionMax, index, term, conf, index, trans)
	if err != nil {
		return err
	}
	if err := write(sink); err != nil {
		return errors.Join(err, sink.Cancel())
	}
	if err := sink.Close(); err != nil {
		return err
	}
	// Raft needs a current term at least that of the snapshot.
	return logs.SetUint64([]byte("CurrentTerm"), term)
}

// seedTerm is the term a seeded snapshot starts its history at: a random
// one past 2^40, so no two histories share a term. Raft tells logs apart by
// (index, term): within one cluster a term has one leader, so entries with
// the same index and term are the same entry. A cluster restored from a
// backup is a history of its own that would otherwise count its terms
// from 1 again, as the cluster it came from did: a member restored under
// its own identity and run alone would hold entries that match the
// cluster's by index and term and differ in content, and neither raft nor
// the fork check (fork.go) could tell. Terms from 2^40 to 2^52 lie past
// any a cluster reaches by elections, and below 2^53, so the status JSON
// that shows them reads exactly in JavaScript.
func seedTerm() (uint64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	return 1<<40 + binary.BigEndian.Uint64(b[:])%(1<<52-1<<40), nil
}
