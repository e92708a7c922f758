package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway"
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

// TestClusterErrorKeepsTheCause: a consensus error the node hands the
// gateway keeps the consensus error in its chain beside the gateway's, so
// either can be asked for with errors.Is or errors.As; a membership
// refusal reads as a bad request in the leader's words. Before, the
// consensus error was formatted into the text (%v) and lost.
func TestClusterErrorKeepsTheCause(t *testing.T) {
	for _, tc := range []struct {
		err      error
		gateway  error
		original error
	}{
		{fmt.Errorf("%w: no answer", consensus.ErrUnknownOutcome), gateway.ErrOutcomeUnknown, consensus.ErrUnknownOutcome},
		{fmt.Errorf("%w: reach x", consensus.ErrNoLeader), gateway.ErrUnavailable, consensus.ErrNoLeader},
		{consensus.ErrForeignCluster, gateway.ErrUnavailable, consensus.ErrForeignCluster},
		{&consensus.MembershipError{Reason: "x already leads"}, gateway.ErrBadRequest, consensus.ErrBadMembership},
	} {
		got := clusterError(tc.err)
		if !errors.Is(got, tc.gateway) || !errors.Is(got, tc.original) {
			t.Errorf("clusterError(%v) = %v: want both %v and %v", tc.err, got, tc.gateway, tc.original)
		}
	}
	got := clusterError(&consensus.MembershipError{Reason: "x already leads"})
	var me *consensus.MembershipError
	if !errors.As(got, &me) || me.Reason != "x already leads" || got.Error() != gateway.ErrBadRequest.Error()+": x already leads" {
		t.Errorf("a membership refusal became %q", got)
	}
}

// TestMemberOfAnotherClusterIsNotAdded: a node that holds a raft log of
// its own and follows another leader (here the leader of another one-node
// cluster of the same consortium; in the field a member of a running
// cluster, or a registry restored from its backup) is refused as a voter
// and as a non-voter: following this cluster's leader, with its term,
// would take it from its own (consensus.TestOwnHistory has the cases: a
// promotion among them). It stays its own cluster's leader, and this
// one's configuration is unchanged.
func TestMemberOfAnotherClusterIsNotAdded(t *testing.T) {
	genesis, _ := writeGenesis(t, t.TempDir())
	cfgs := clusterConfigs(t, 2, genesis)
	cfgs[0].P2P.Peers, cfgs[1].P2P.Peers = nil, nil // each bootstraps a cluster of its own
	a, b := mustNewNode(t, cfgs[0]), mustNewNode(t, cfgs[1])
	waitFor(t, "b to lead its own cluster", 10*time.Second, b.cluster.IsLeader)
	addr := fmt.Sprintf("%s/p2p/%s", b.P2PAddrs()[0], b.PeerID())
	admin := client.New(a.AdminURL())
	refused := func(action string, req api.MembershipRequest) {
		t.Helper()
		err := admin.Post(context.Background(), "/admin/v1/cluster/"+action, req, nil)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Problem.Status != http.StatusBadRequest || !strings.Contains(ae.Problem.Detail, "holds a raft log of its own") ||
			!strings.Contains(ae.Problem.Detail, "follows another leader, "+b.PeerID().String()) || !strings.Contains(ae.Problem.Detail, "empty data directory") {
			t.Fatalf("%s of another cluster's leader: %v", action, err)
		}
	}
	b.gater.Allow(a.PeerID()) // b answers a's status calls
	refused("add-voter", api.MembershipRequest{Addr: addr})
	refused("add-nonvoter", api.MembershipRequest{Addr: addr})
	if members := a.cluster.Status().Members; len(members) != 1 {
		t.Fatalf("the refused node is in the configuration: %+v", members)
	}
	if !b.cluster.IsLeader() || len(b.cluster.Status().Members) != 1 {
		t.Fatalf("the refused node left its own cluster: %+v", b.cluster.Status())
	}
}
