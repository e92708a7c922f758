package consensus

import "testing"

// TestOwnHistory: a node about to be added or promoted holds a history of
// its own when it has a raft log and follows another leader, or has one,
// follows none and is no member yet; an empty log, or following this
// leader, is none. Among the cases: a non-voter added before it answered
// (as a replica not running yet may be) that turns out to lead another
// cluster is not promoted, and a peer whose build does not report its
// leader is judged by membership, as before.
func TestOwnHistory(t *testing.T) {
	const leader, other = "12D3KooWLeader", "12D3KooWOther"
	for _, tc := range []struct {
		what   string
		member bool
		ps     PeerStatus
		want   bool
	}{
		{"an empty node", false, PeerStatus{}, false},
		{"an empty node that knows this leader", false, PeerStatus{Leader: leader}, false},
		{"a replica following this leader", true, PeerStatus{LastLogIndex: 40, Leader: leader}, false},
		{"a node following this leader, not a member (a change in flight)", false, PeerStatus{LastLogIndex: 40, Leader: leader}, false},
		{"another cluster's leader", false, PeerStatus{LastLogIndex: 4, Leader: other}, true},
		{"another cluster's leader, added as a non-voter before it answered", true, PeerStatus{LastLogIndex: 4, Leader: other}, true},
		{"another cluster's follower", true, PeerStatus{LastLogIndex: 4, Leader: "12D3KooWThird"}, true},
		{"a node with a log and no leader, not a member", false, PeerStatus{LastLogIndex: 4}, true},
		{"a member with a log and no leader (between heartbeats, or an older build)", true, PeerStatus{LastLogIndex: 4}, false},
	} {
		if got := ownHistory(leader, tc.member, tc.ps); got != tc.want {
			t.Errorf("%s: own history %v, want %v", tc.what, got, tc.want)
		}
	}
}
