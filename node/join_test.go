package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry"
)

// readyzDetail returns the status and problem detail of n's GET /readyz.
func readyzDetail(t *testing.T, n *Node) (int, string) {
	t.Helper()
	resp, err := http.Get(n.GatewayURL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p api.Problem
	_ = json.Unmarshal(body, &p)
	return resp.StatusCode, p.Detail
}

// TestRefusedJoinSaysWhyOnTheJoiningNode: a node whose join the leader
// refuses (its build is older than the cluster's feature level) is not
// ready, and its /readyz gives the leader's reason; a node of another
// consortium is told so, and /readyz says it.
func TestRefusedJoinSaysWhyOnTheJoiningNode(t *testing.T) {
	t.Run("older build", func(t *testing.T) {
		c := soloVoterWithReplica(t, nil)
		logs := &logBuffer{}
		replica, err := New(c.cfgs[1], Options{featureLevel: registry.FeatureLevel - 1, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		c.nodes[1] = replica
		c.mu.Unlock()
		var je *consensus.JoinError
		var me *consensus.MembershipError
		waitFor(t, "the replica to report the refusal", 20*time.Second, func() bool {
			err := replica.Ready()
			return errors.As(err, &je) && errors.Is(err, consensus.ErrJoinRefused) && errors.As(err, &me)
		})
		if je.Peer != c.node(0).PeerID() {
			t.Errorf("refused by %s, want the voter %s", je.Peer, c.node(0).PeerID())
		}
		status, detail := readyzDetail(t, replica)
		if status != http.StatusServiceUnavailable || !strings.Contains(detail, consensus.ErrJoinRefused.Error()) || !strings.Contains(detail, me.Reason) {
			t.Fatalf("readyz: %d %q, want 503 with the leader's reason %q", status, detail, me.Reason)
		}
		if len(c.node(0).cluster.Status().Members) != 1 {
			t.Fatal("the refused node became a member")
		}
		// Its log says so, with the reason, as an error (once for each
		// change of reason: Join asks every second).
		var refusals int
		for line := range strings.Lines(logs.String()) {
			var e struct{ Level, Msg, Reason string }
			if json.Unmarshal([]byte(line), &e) == nil && e.Level == "ERROR" && strings.HasPrefix(e.Msg, "join refused") {
				refusals++
				if !strings.Contains(e.Reason, me.Reason) {
					t.Errorf("logged reason %q, want the leader's %q", e.Reason, me.Reason)
				}
			}
		}
		if refusals == 0 {
			t.Fatalf("no refusal logged:\n%s", logs)
		}
	})
	t.Run("another consortium", func(t *testing.T) {
		c := soloVoterWithReplica(t, nil)
		other, _ := writeGenesis(t, t.TempDir())
		c.cfgs[1].Genesis = other
		c.start(1)
		replica := c.node(1)
		waitFor(t, "the replica to report the refusal", 20*time.Second, func() bool {
			err := replica.Ready()
			return errors.Is(err, consensus.ErrJoinRefused) && errors.Is(err, consensus.ErrForeignCluster)
		})
		if status, detail := readyzDetail(t, replica); status != http.StatusServiceUnavailable || !strings.Contains(detail, consensus.ErrForeignCluster.Error()) {
			t.Fatalf("readyz: %d %q, want 503 saying another cluster", status, detail)
		}
	})
}

// logBuffer is a bytes.Buffer a logger and the test share.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
