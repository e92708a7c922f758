package node

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/gateway/client"
)

// TestMembershipRefusalsThroughAFollower: a membership change sent to a
// follower's admin API is carried out by the leader; a change the leader
// refuses is answered by the follower with the leader's own status (400)
// and reason, word for word as the leader answers it. Before, the RPC
// carried the refusal as plain text and the follower answered 500.
func TestMembershipRefusalsThroughAFollower(t *testing.T) {
	c := mustNewCluster(t, 3)
	l := c.waitLeader()
	f := (l + 1) % 3
	leaderID := c.node(l).PeerID().String()
	waitFor(t, "the follower to know the leader", 10*time.Second, func() bool { return c.node(f).cluster.LeaderID() == leaderID })
	key, err := consensus.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := peer.IDFromPrivateKey(key)
	viaFollower, viaLeader := client.New(c.node(f).AdminURL()), client.New(c.node(l).AdminURL())
	ctx := context.Background()
	for _, tc := range []struct {
		action, id, want string
	}{
		{"remove", stranger.String(), "is not a member of this cluster"},
		{"demote", stranger.String(), "is not a voter of this cluster"},
		{"promote", leaderID, "is not a non-voter of this cluster"},
		{"transfer-leader", leaderID, "already leads"},
	} {
		req := api.MembershipRequest{ID: tc.id}
		err := viaFollower.Post(ctx, "/admin/v1/cluster/"+tc.action, req, nil)
		var ae, leaderAE *client.APIError
		if !errors.As(err, &ae) || ae.Problem.Status != http.StatusBadRequest || !strings.Contains(ae.Problem.Detail, tc.want) ||
			strings.Contains(ae.Problem.Detail, "consensus:") {
			t.Errorf("%s %s through a follower: %v, want 400 saying %q", tc.action, tc.id, err, tc.want)
			continue
		}
		if err := viaLeader.Post(ctx, "/admin/v1/cluster/"+tc.action, req, nil); !errors.As(err, &leaderAE) ||
			leaderAE.Problem.Status != ae.Problem.Status || leaderAE.Problem.Type != ae.Problem.Type || leaderAE.Problem.Detail != ae.Problem.Detail {
			t.Errorf("%s %s: the follower answered %+v, the leader %v", tc.action, tc.id, ae.Problem, err)
		}
	}
	if members := c.node(l).cluster.Status().Members; len(members) != 3 || c.leader() != l {
		t.Fatalf("refused changes changed the cluster: leader %d, members %+v", c.leader(), members)
	}
}
