package consensus

import (
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestAnswersKeepWhatTheErrorSays: an error goes over the RPC protocol and
// comes back as the same kind of error; an unknown outcome is never
// answered as an error that says the request was not carried out, and a
// membership refusal comes back with the leader's reason as it was.
func TestAnswersKeepWhatTheErrorSays(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"unknown outcome", fmt.Errorf("%w: no answer", ErrUnknownOutcome), ErrUnknownOutcome},
		{"unknown outcome after no leader", errors.Join(ErrNoLeader, ErrUnknownOutcome), ErrUnknownOutcome},
		{"not the leader", ErrNotLeader, ErrNotLeader},
		{"no leader", fmt.Errorf("%w: reach x", ErrNoLeader), ErrNoLeader},
		{"timeout", ErrTimeout, ErrTimeout},
		{"another cluster", ErrForeignCluster, ErrForeignCluster},
		{"bad membership", badMembership("%s is not a member of this cluster", "12D3Koo"), ErrBadMembership},
	} {
		status, body := answerOf(tc.err)
		got := answerError(status, body, "leader")
		if !errors.Is(got, tc.want) {
			t.Errorf("%s: answered %d, came back as %v; want %v", tc.name, status, got, tc.want)
		}
		if !errors.Is(tc.want, ErrUnknownOutcome) && errors.Is(got, ErrUnknownOutcome) {
			t.Errorf("%s: came back as an unknown outcome: %v", tc.name, got)
		}
	}
	var me *MembershipError
	status, body := answerOf(badMembership("12D3Koo already leads"))
	got := answerError(status, body, "leader")
	if !errors.As(got, &me) || me.Reason != "12D3Koo already leads" || got.Error() != badMembership("12D3Koo already leads").Error() {
		t.Errorf("a membership refusal came back as %v", got)
	}
	if got := answerError(200, []byte("a status this build does not know"), "leader"); errors.Is(got, ErrNoLeader) || errors.Is(got, ErrUnknownOutcome) {
		t.Errorf("an unknown status came back as %v", got)
	}
}

// TestDecodeLeaderFollowsTheLeader: the leader's peer.ID is decoded once
// per leader, a new leader is decoded anew, and an ID that does not decode
// is an error that leaves the last good leader's decoding in place.
func TestDecodeLeaderFollowsTheLeader(t *testing.T) {
	var ids []peer.ID
	for range 2 {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	c := &Cluster{}
	var last *decodedLeader
	for i, want := range []peer.ID{ids[0], ids[0], ids[1], ids[0]} {
		got, err := c.decodeLeader(want.String())
		if err != nil || got != want {
			t.Fatalf("decodeLeader(%s) = %s, %v", want, got, err)
		}
		d := c.leaderDecoded.Load()
		if d == nil || d.peer != want || d.id != want.String() {
			t.Fatalf("after %s the decoded leader is %+v", want, d)
		}
		if same := d == last; same != (i == 1) {
			t.Fatalf("call %d: decoded again %v, want a decoding only for a new leader", i, !same)
		}
		last = d
	}
	if got, err := c.decodeLeader("not-a-peer-id"); err == nil {
		t.Fatalf("decodeLeader of a bad ID = %s, no error", got)
	}
	if d := c.leaderDecoded.Load(); d == nil || d.peer != ids[0] {
		t.Fatalf("a bad ID replaced the decoded leader: %+v", d)
	}
}
