package cosign

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/trustreg/trustreg/registry/tlog"
)

// TestQuorumOfThreeCosigners: three cosigners, quorum 2; the leader's
// checkpoint of its latest size verifies with tlog.Verifier, and a follower
// fetches it from the leader.
func TestQuorumOfThreeCosigners(t *testing.T) {
	c := mustNewCluster(t, 3)
	ctx := testCtx(t)
	leader := c.nodes[0]
	if err := leader.svc.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	note, _, err := leader.svc.Latest()
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.verifier().Verify(note)
	if err != nil {
		t.Fatalf("the leader's checkpoint does not verify: %v\n%s", err, note)
	}
	if v.Checkpoint.Size != 5 || len(v.Cosignatures) != 3 {
		t.Fatalf("checkpoint of size %d with %d cosignatures, want 5 and 3:\n%s", v.Checkpoint.Size, len(v.Cosignatures), note)
	}
	if want := checkpointOf(t, leader.log); v.Checkpoint != want {
		t.Fatalf("checkpoint %+v, want the log's head %+v", v.Checkpoint, want)
	}

	follower := c.nodes[2]
	if _, _, err := follower.svc.Latest(); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("follower before fetching: %v, want ErrNoCheckpoint", err)
	}
	if err := follower.svc.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	got, _, err := follower.svc.Latest()
	if err != nil || string(got) != string(note) {
		t.Fatalf("follower holds %q (%v), want the leader's note", got, err)
	}

	// New writes: the next round cosigns the larger size, each member
	// sending its last size and a consistency proof from it.
	for _, nd := range c.nodes {
		nd.log.add(t, leaves("entry", 5, 3)...)
	}
	if err := leader.svc.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	note, _, _ = leader.svc.Latest()
	if v, err := c.verifier().Verify(note); err != nil || v.Checkpoint.Size != 8 || len(v.Cosignatures) != 3 {
		t.Fatalf("after writes: %v, %+v", err, v)
	}
}

// TestRootMismatchIsRefusedAndQuorumHolds: a member whose own root at the
// size differs refuses with tlog.ErrRootMismatch, through the protocol, and
// the other two still make the quorum.
func TestRootMismatchIsRefusedAndQuorumHolds(t *testing.T) {
	c := mustNewCluster(t, 3)
	ctx := testCtx(t)
	leader, odd := c.nodes[0], c.nodes[2]
	// The odd member's state was altered: its log has other leaves.
	odd.replaceLog()
	odd.log.add(t, leaves("altered", 0, 5)...)

	cp := checkpointOf(t, leader.log)
	_, err := leader.svc.call(ctx, memberOf(t, leader.svc, odd), cp, tlog.AddCheckpointRequest{Checkpoint: tlog.SignedNote(cp)})
	var refusal *RefusalError
	if !errors.Is(err, tlog.ErrRootMismatch) || !errors.As(err, &refusal) {
		t.Fatalf("asking the altered member: %v, want a refusal that is tlog.ErrRootMismatch", err)
	}

	if err := leader.svc.Collect(ctx); err != nil {
		t.Fatalf("one refusal stopped the quorum: %v", err)
	}
	note, _, err := leader.svc.Latest()
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.verifier().Verify(note)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Cosignatures) != 2 {
		t.Fatalf("%d cosignatures, want the two honest members':\n%s", len(v.Cosignatures), note)
	}
	for _, s := range v.Cosignatures {
		if s.Name == odd.key.Name {
			t.Fatalf("the altered member cosigned:\n%s", note)
		}
	}
}

// TestInconsistentCheckpointAnswersConflict: a member asked to cosign a
// checkpoint that does not extend the one it last cosigned answers a
// conflict carrying that size, even when its own log now agrees with the
// new checkpoint (its data was replaced behind its back).
func TestInconsistentCheckpointAnswersConflict(t *testing.T) {
	c := mustNewCluster(t, 3)
	ctx := testCtx(t)
	leader, b := c.nodes[0], c.nodes[1]
	if err := leader.svc.Collect(ctx); err != nil { // b cosigns size 5 of history X
		t.Fatal(err)
	}
	// Both now hold history Y, of size 7, which does not extend X.
	for _, nd := range []*node{leader, b} {
		nd.replaceLog()
		nd.log.add(t, leaves("fork", 0, 7)...)
	}
	cp := checkpointOf(t, leader.log)
	proof, err := leader.log.LogConsistency(5, 7)
	if err != nil {
		t.Fatal(err)
	}
	_, err = leader.svc.call(ctx, memberOf(t, leader.svc, b), cp, tlog.AddCheckpointRequest{OldSize: 5, Proof: proof, Checkpoint: tlog.SignedNote(cp)})
	var conflict *ConflictError
	if !errors.As(err, &conflict) || !errors.Is(err, tlog.ErrInconsistent) || conflict.Last != 5 {
		t.Fatalf("asking for a fork: %v, want a conflict with last size 5 that is tlog.ErrInconsistent", err)
	}
	// A wrong old size is a conflict too, naming the size to resend from.
	_, err = leader.svc.call(ctx, memberOf(t, leader.svc, b), cp, tlog.AddCheckpointRequest{OldSize: 0, Checkpoint: tlog.SignedNote(cp)})
	if !errors.As(err, &conflict) || !errors.Is(err, tlog.ErrOldSize) || conflict.Last != 5 {
		t.Fatalf("asking with old size 0: %v, want a conflict with last size 5 that is tlog.ErrOldSize", err)
	}
}

// TestNonMemberIsRefused: a peer the allowlist does not admit gets a typed
// refusal from the protocol itself, even over a connection opened while it
// was admitted (the gater checks connections only when they open), and
// cannot fetch checkpoints either.
func TestNonMemberIsRefused(t *testing.T) {
	c := mustNewCluster(t, 3)
	ctx := testCtx(t)
	member := c.nodes[1]
	outsider := mustNewHostNode(t, "outsider")
	outsider.gater.Allow(member.peer)
	outsider.host.Peerstore().AddAddrs(member.peer, member.host.Addrs(), time.Hour)
	outsider.log.add(t, leaves("entry", 0, 5)...)
	member.gater.Allow(outsider.peer)
	if _, err := outsider.host.Network().DialPeer(ctx, member.peer); err != nil {
		t.Fatal(err)
	}
	// The member admits the connection when its side of the handshake
	// ends, which may be after the outsider's dial returned.
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for member.host.Network().Connectedness(outsider.peer) != network.Connected {
		select {
		case <-ctx.Done():
			t.Fatal("the member never saw the outsider's connection")
		case <-poll.C:
		}
	}
	member.gater.Disallow(outsider.peer) // removed from the cluster

	svc, err := New(Config{Host: outsider.host, Identity: outsider.id, Log: outsider.log, Origin: testOrigin,
		Cosigners: c.keys, Quorum: 2, StatePath: filepath.Join(outsider.dir, StateFile),
		Allowed: outsider.gater.Allowed, IsLeader: func() bool { return true }, Leader: func() peer.ID { return member.peer },
		Interval: time.Minute, Now: c.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	cp := checkpointOf(t, outsider.log)
	_, err = svc.call(ctx, memberOf(t, svc, member), cp, tlog.AddCheckpointRequest{Checkpoint: tlog.SignedNote(cp)})
	if !errors.Is(err, ErrNotMember) {
		t.Fatalf("a non-member asking to cosign: %v, want ErrNotMember", err)
	}
	if _, ok, _ := member.svc.state.LastCosigned(); ok {
		t.Fatal("the member recorded a checkpoint a non-member asked for")
	}
	if err := svc.Fetch(ctx); !errors.Is(err, ErrNotMember) {
		t.Fatalf("a non-member fetching: %v, want ErrNotMember", err)
	}
}

// TestRestartKeepsLastCosigned: what a member cosigned survives a restart
// of its service: asked again from size 0 it answers a conflict naming the
// size it cosigned, and a new leader (which knows nothing of it) learns the
// size from that answer and collects anyway.
func TestRestartKeepsLastCosigned(t *testing.T) {
	c := mustNewCluster(t, 3)
	ctx := testCtx(t)
	leader, b := c.nodes[0], c.nodes[1]
	if err := leader.svc.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	b.svc.Close()
	c.startService(b)

	cp := checkpointOf(t, leader.log)
	_, err := leader.svc.call(ctx, memberOf(t, leader.svc, b), cp, tlog.AddCheckpointRequest{OldSize: 0, Checkpoint: tlog.SignedNote(cp)})
	var conflict *ConflictError
	if !errors.As(err, &conflict) || conflict.Last != 5 {
		t.Fatalf("after a restart, asking from size 0: %v, want a conflict with last size 5", err)
	}
	raw, err := os.ReadFile(filepath.Join(b.dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := parseState(raw); err != nil || got.Checkpoint != cp {
		t.Fatalf("state file holds %+v (%v), want %+v", got, err, cp)
	}

	// Node 2 becomes the leader with writes the old one never cosigned.
	for _, nd := range c.nodes {
		nd.log.add(t, leaves("entry", 5, 2)...)
	}
	c.leader = c.nodes[2].peer
	if err := c.nodes[2].svc.Collect(ctx); err != nil {
		t.Fatalf("a new leader, resending from the sizes the members name: %v", err)
	}
	note, _, _ := c.nodes[2].svc.Latest()
	if v, err := c.verifier().Verify(note); err != nil || v.Checkpoint.Size != 7 || len(v.Cosignatures) != 3 {
		t.Fatalf("new leader's checkpoint: %v %+v", err, v)
	}
}

// TestRecosignWithoutWritesRefreshesTime: a round with no new entries
// cosigns the same checkpoint again with the clock's new time, so the
// checkpoint's age (FreshAsOf, the metric) restarts.
func TestRecosignWithoutWritesRefreshesTime(t *testing.T) {
	c := mustNewCluster(t, 3)
	ctx := testCtx(t)
	leader := c.nodes[0]
	start := c.clock.Now()
	if err := leader.svc.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	_, first, _ := leader.svc.Latest()
	if !first.FreshAsOf().Equal(start) {
		t.Fatalf("first checkpoint fresh as of %v, want %v", first.FreshAsOf(), start)
	}
	c.clock.advance(61 * time.Second)
	if err := leader.svc.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	note, second, _ := leader.svc.Latest()
	if second.Checkpoint != first.Checkpoint {
		t.Fatalf("checkpoint changed without writes: %+v, was %+v", second.Checkpoint, first.Checkpoint)
	}
	if want := start.Add(61 * time.Second); !second.FreshAsOf().Equal(want) {
		t.Fatalf("re-cosigned checkpoint fresh as of %v, want %v:\n%s", second.FreshAsOf(), want, note)
	}
	if _, err := c.verifier().Verify(note); err != nil {
		t.Fatal(err)
	}
}

// TestRoundsAreDue: when the collector runs a round. Time is given, not
// slept.
func TestRoundsAreDue(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	const interval = time.Minute
	cases := []struct {
		name             string
		since            time.Duration
		never, ok        bool
		lastSize, size   uint64
		held             uint64
		leader, wantNext bool
	}{
		{name: "first round", never: true, leader: true, wantNext: true},
		{name: "leader, idle, before the interval", since: 59 * time.Second, ok: true, lastSize: 5, size: 5, held: 5, leader: true},
		{name: "leader, idle, at the interval", since: interval, ok: true, lastSize: 5, size: 5, held: 5, leader: true, wantNext: true},
		{name: "leader, new writes, a tick later", since: tickEvery, ok: true, lastSize: 5, size: 6, held: 5, leader: true, wantNext: true},
		{name: "leader, new writes, within a tick", since: tickEvery - time.Millisecond, ok: true, lastSize: 5, size: 6, held: 5, leader: true},
		{name: "leader, failed, retried", since: retryAfterFailure, lastSize: 5, size: 5, leader: true, wantNext: true},
		{name: "leader, failed, not yet", since: retryAfterFailure - time.Second, lastSize: 5, size: 5, leader: true},
		{name: "follower, up to date", since: 10 * time.Second, ok: true, lastSize: 5, size: 5, held: 5},
		{name: "follower, half interval", since: interval / 2, ok: true, lastSize: 5, size: 5, held: 5, wantNext: true},
		{name: "follower, behind its log", since: retryAfterFailure, ok: true, lastSize: 5, size: 6, held: 5, wantNext: true},
	}
	for _, tc := range cases {
		last := t0
		if tc.never {
			last = time.Time{}
		}
		got := due(t0.Add(tc.since), last, tc.ok, tc.lastSize, tc.size, tc.held, interval, tc.leader)
		if got != tc.wantNext {
			t.Errorf("%s: due %v, want %v", tc.name, got, tc.wantNext)
		}
	}
}

// TestFileStateRefusesACorruptRecord: a record that cannot be read is an
// error, never "nothing cosigned yet", and a write leaves no temporary file.
func TestFileStateRefusesACorruptRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, StateFile)
	s := NewFileState(path)
	if _, ok, err := s.LastCosigned(); ok || err != nil {
		t.Fatalf("empty: %v %v", ok, err)
	}
	cp := tlog.Checkpoint{Origin: testOrigin, Size: 3}
	cp.Hash[0] = 1
	want := tlog.Cosigned{Checkpoint: cp, Time: time.Unix(1_800_000_000, 0).UTC()}
	if err := s.StoreCosigned(want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.LastCosigned()
	if err != nil || !ok || got != want {
		t.Fatalf("read back %+v %v %v, want %+v", got, ok, err, want)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d files in the directory, want only %s", len(entries), StateFile)
	}
	if err := os.WriteFile(path, []byte("trustreg cosigned v1\ntime 1\nnot a checkpoint\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LastCosigned(); err == nil {
		t.Fatal("a corrupt record read as fine")
	}
}

// headWatch is a log that tells the test when it was asked for its head.
type headWatch struct {
	*memLog
	asked chan uint64
}

func (w headWatch) LogHead() (uint64, []byte, error) {
	size, root, err := w.memLog.LogHead()
	select {
	case w.asked <- size:
	default:
	}
	return size, root, err
}

// TestBehindMemberWaitsForItsState: a member asked to cosign a size its
// state has not reached yet waits (bounded) for it and then cosigns; one
// that does not reach it in time refuses with ErrBehind.
func TestBehindMemberWaitsForItsState(t *testing.T) {
	c := mustNewCluster(t, 3)
	ctx := testCtx(t)
	leader, b := c.nodes[0], c.nodes[1]
	leader.log.add(t, leaves("entry", 5, 2)...)
	watch := headWatch{memLog: b.log, asked: make(chan uint64, 1)}
	b.swap.set(watch)
	cp := checkpointOf(t, leader.log)
	done := make(chan error, 1)
	go func() {
		_, err := leader.svc.call(ctx, memberOf(t, leader.svc, b), cp, tlog.AddCheckpointRequest{Checkpoint: tlog.SignedNote(cp)})
		done <- err
	}()
	if size := <-watch.asked; size != 5 {
		t.Fatalf("member at size %d, want 5", size)
	}
	b.log.add(t, leaves("entry", 5, 2)...) // its state catches up
	if err := <-done; err != nil {
		t.Fatalf("a member that caught up while asked: %v", err)
	}

	b.svc.catchUp.Store(int64(50 * time.Millisecond))
	leader.log.add(t, leaves("entry", 7, 1)...)
	cp = checkpointOf(t, leader.log)
	_, err := leader.svc.call(ctx, memberOf(t, leader.svc, b), cp, tlog.AddCheckpointRequest{OldSize: 7, Proof: mustProof(t, leader.log, 7, 8), Checkpoint: tlog.SignedNote(cp)})
	if !errors.Is(err, ErrBehind) {
		t.Fatalf("a member that stays behind: %v, want ErrBehind", err)
	}
}

func mustProof(t *testing.T, l *memLog, a, b uint64) [][]byte {
	t.Helper()
	p, err := l.LogConsistency(a, b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
