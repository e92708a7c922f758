package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/trustreg/trustreg/registry"
	registryrecord "github.com/trustreg/trustreg/registry/record"
)

// The linearizability model: each key is one accreditation whose status a
// client suspends or reinstates and a verifier reads (authorized or not)
// with consistency=linearizable. Writes that conflict with the current
// status are rejected with 409, which the model checks too. A write whose
// outcome the client never learned may or may not have happened.
type linInput struct {
	Key  int
	Kind string // suspend, reinstate, read
}

type linOutput struct {
	Accepted bool
	Conflict bool
	Unknown  bool
	Value    bool // read: authorized
}

var linModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(linInput).Key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() []any { return []any{true} },
	Step: func(state, input, output any) []any {
		active := state.(bool)
		in, out := input.(linInput), output.(linOutput)
		switch in.Kind {
		case "read":
			if out.Value == active {
				return []any{active}
			}
			return nil
		case "suspend", "reinstate":
			target := in.Kind == "reinstate"
			if out.Unknown {
				if active == target {
					return []any{active}
				}
				return []any{active, target}
			}
			if out.Accepted && active != target {
				return []any{target}
			}
			if out.Conflict && active == target {
				return []any{active}
			}
			return nil
		}
		return nil
	},
	Equal: func(a, b any) bool { return a.(bool) == b.(bool) },
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%+v -> %+v", input, output)
	},
}

func TestLinearizableUnderFaults(t *testing.T) {
	// Each node on its own loopback address where the machine has them, as
	// members on their own hosts.
	c := mustNewClusterOn(t, 3, nil, ownHosts(t, 3))
	const keys = 4
	subjects := make([]string, keys)
	accs := make([]string, keys)
	for k := range keys {
		subjects[k] = fmt.Sprintf("did:web:lin-%d.example", k)
		accs[k] = c.mustSubmit(0, c.accreditOp(subjects[k])).ID
	}
	c.converged(c.node(0).State.AppliedIndex())

	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		seq     atomic.Int64
		// notSubmitted are the CIDs of writes answered 503 unavailable.
		notSubmitted []string
	)
	record := func(client int, in linInput, call int64, out linOutput, ret int64) {
		mu.Lock()
		history = append(history, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
		mu.Unlock()
	}
	hc := &http.Client{Timeout: 4 * time.Second}
	urlOf := func(i int) string {
		n := c.node(i)
		if n == nil {
			return ""
		}
		return n.GatewayURL()
	}
	var wg sync.WaitGroup
	const clients, opsPerClient, maxOpsPerClient = 6, 60, 1000
	var faultsDone atomic.Bool
	for cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(cl), 7))
			// Each client runs its share, and on while the faults last,
			// up to a hard bound.
			for i := 0; i < maxOpsPerClient && (i < opsPerClient || !faultsDone.Load()); i++ {
				in := linInput{Key: rng.IntN(keys)}
				base := urlOf(rng.IntN(3))
				for try := 1; base == "" && try < 3; try++ {
					base = urlOf((rng.IntN(3) + try) % 3) // that node is stopped: ask another
				}
				switch rng.IntN(3) {
				case 0:
					in.Kind = "read"
					q := url.Values{"entity": {subjects[in.Key]}, "framework": {c.fw}, "resource": {"https://example.org/R"}, "consistency": {"linearizable"}}
					call := now()
					resp, err := hc.Get(base + "/v1/trust?" + q.Encode())
					if err != nil {
						continue
					}
					var d registryrecord.Decision
					err = json.NewDecoder(resp.Body).Decode(&d)
					resp.Body.Close()
					if resp.StatusCode != 200 || err != nil {
						continue // a failed read tells nothing
					}
					record(cl, in, call, linOutput{Value: d.Authorized}, now())
				default:
					in.Kind = "suspend"
					if rng.IntN(2) == 0 {
						in.Kind = "reinstate"
					}
					raw, _ := json.Marshal(map[string]any{"op": in.Kind, "iat": time.Now().Unix(), "accreditation": accs[in.Key],
						"reason": fmt.Sprintf("lin-%d", seq.Add(1))})
					jws, _ := c.root.SignCompact(raw)
					call := now()
					resp, err := hc.Post(base+"/v1/operations", "application/jose", bytes.NewReader(jws))
					out := linOutput{Unknown: true}
					if err == nil {
						var p struct {
							Type      string
							Accepted  bool
							Duplicate bool
						}
						json.NewDecoder(resp.Body).Decode(&p)
						resp.Body.Close()
						switch {
						case resp.StatusCode == 201:
							out = linOutput{Accepted: true}
						case resp.StatusCode == 200 && p.Duplicate && p.Accepted:
							// The node proposed it again after a leader
							// change left its first proposal's fate unknown,
							// and that one had committed: its result, within
							// this call.
							out = linOutput{Accepted: true}
						case resp.StatusCode == 409:
							out = linOutput{Conflict: true}
						case resp.StatusCode == 503 && p.Type == "urn:trustreg:problem:unavailable":
							// "Not submitted": no operation, and so never in
							// the log, which is checked once the faults end.
							mu.Lock()
							notSubmitted = append(notSubmitted, registryrecord.CIDOf(jws))
							mu.Unlock()
							continue
						case resp.StatusCode != 503:
							t.Errorf("write: status %d", resp.StatusCode)
						}
					}
					record(cl, in, call, out, now())
				}
			}
		}()
	}
	// Faults while the clients run (injectFaults).
	faults := make(chan error, 1)
	go func() {
		defer faultsDone.Store(true)
		faults <- injectFaults(c, func() bool { mu.Lock(); defer mu.Unlock(); return len(history) >= 40 })
	}()
	if err := <-faults; err != nil {
		t.Errorf("fault schedule: %v", err)
	}
	wg.Wait()
	checkNeverSubmitted(t, c, notSubmitted)

	// Operations whose outcome is unknown may take effect at any time after
	// their call: they return at the end of the history.
	end, ambiguous := now()+1, 0
	for i := range history {
		if history[i].Output.(linOutput).Unknown {
			history[i].Return = end
			ambiguous++
		}
	}
	if len(history) < clients*opsPerClient/3 {
		t.Fatalf("only %d operations completed", len(history))
	}
	model := linModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, history, 60*time.Second)
	switch res {
	case porcupine.Illegal:
		// Kept by go test -artifacts (under -outputdir); open in a browser.
		out := filepath.Join(t.ArtifactDir(), "history.html")
		if err := porcupine.VisualizePath(model, info, out); err != nil {
			t.Logf("visualize the history: %v", err)
		}
		t.Fatalf("history of %d operations is not linearizable; partial linearizations in %s", len(history), out)
	case porcupine.Unknown:
		t.Fatalf("linearizability check timed out on %d operations", len(history))
	}
	t.Logf("%d operations (%d with unknown outcome) are linearizable", len(history), ambiguous)
}

// checkNeverSubmitted fails the test if a write answered 503 unavailable
// ("the operation was not submitted") is in the log: once every node has
// applied the same log, no entry of node 0's may carry one of cids.
// Entries that are not operations (raft's own) have no result to look up.
func checkNeverSubmitted(t *testing.T, c *testCluster, cids []string) {
	t.Helper()
	var last uint64
	for i := range 3 {
		if n := c.node(i); n != nil {
			last = max(last, n.State.AppliedIndex())
		}
	}
	c.converged(last)
	refused := make(map[string]bool, len(cids))
	for _, cid := range cids {
		refused[cid] = true
	}
	n := c.node(0)
	for idx := uint64(1); idx <= n.State.AppliedIndex(); idx++ {
		v, err := readView(n.State, func(v *registry.View) (*registryrecord.OperationView, error) {
			return v.Operation(strconv.FormatUint(idx, 10))
		})
		if errors.Is(err, registryrecord.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("read the operation at index %d: %v", idx, err)
		}
		if refused[v.CID] {
			t.Errorf("operation %s was answered 503 unavailable (not submitted) and is in the log at index %d", v.CID, idx)
		}
	}
	t.Logf("%d writes answered unavailable; none is in the log of %d entries", len(cids), n.State.AppliedIndex())
}

// injectFaults runs the test's faults once started() holds: the leader is
// stopped and restarted, a follower is cut off and healed, then the leader
// is cut off (it acknowledges writes up to the moment its followers stop
// hearing it) and healed. Each fault is certain to happen, or an error
// says which could not.
func injectFaults(c *testCluster, started func() bool) error {
	waitForQuietly(10*time.Second, started)
	leads := func(ids ...int) func() bool {
		return func() bool {
			for _, i := range ids {
				if n := c.node(i); n != nil && n.cluster.IsLeader() {
					return true
				}
			}
			return false
		}
	}
	others := func(i int) (int, int) { return (i + 1) % 3, (i + 2) % 3 }
	l := c.leader()
	if l < 0 {
		return errors.New("no leader before the faults")
	}
	a, b := others(l)
	c.stop(l)
	waitForQuietly(5*time.Second, leads(a, b))
	if !leads(a, b)() {
		return fmt.Errorf("no new leader after node %d stopped", l)
	}
	if err := c.tryStart(l); err != nil {
		return fmt.Errorf("restart the stopped leader: %w", err)
	}
	waitForQuietly(5*time.Second, leads(0, 1, 2))
	if l = c.leader(); l < 0 {
		return errors.New("no leader after the old one restarted")
	}
	// Cut one follower off from both others, then heal the same links.
	f, other := others(l)
	c.cut(f, l)
	c.cut(f, other)
	time.Sleep(time.Second) // hold the partition while clients run
	c.heal(f, l)
	c.heal(f, other)
	waitForQuietly(5*time.Second, leads(0, 1, 2))
	if l = c.leader(); l < 0 {
		return errors.New("no leader after the follower's partition healed")
	}
	a, b = others(l)
	c.cut(l, a)
	c.cut(l, b)
	waitForQuietly(5*time.Second, leads(a, b))
	if !leads(a, b)() {
		return fmt.Errorf("no new leader after node %d was cut off", l)
	}
	time.Sleep(500 * time.Millisecond) // clients run against the new leader
	c.heal(l, a)
	c.heal(l, b)
	return nil
}

// waitForQuietly polls cond until it holds or d passes, without failing.
func waitForQuietly(d time.Duration, cond func() bool) {
	deadline := time.Now().Add(d)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// TestLinearizabilityModelRejectsStaleReads shows the check can fail: a
// read that misses a write acknowledged before it began is illegal.
func TestLinearizabilityModelRejectsStaleReads(t *testing.T) {
	m := linModel.ToModel()
	ok := []porcupine.Operation{
		{Input: linInput{Kind: "suspend"}, Call: 0, Output: linOutput{Accepted: true}, Return: 10},
		{Input: linInput{Kind: "read"}, Call: 20, Output: linOutput{Value: false}, Return: 30},
	}
	if porcupine.CheckOperations(m, ok) != true {
		t.Fatal("a legal history was rejected")
	}
	stale := []porcupine.Operation{ok[0], {Input: linInput{Kind: "read"}, Call: 20, Output: linOutput{Value: true}, Return: 30}}
	if porcupine.CheckOperations(m, stale) {
		t.Fatal("a stale read was accepted")
	}
	conflict := []porcupine.Operation{{Input: linInput{Kind: "reinstate"}, Call: 0, Output: linOutput{Accepted: true}, Return: 10}}
	if porcupine.CheckOperations(m, conflict) {
		t.Fatal("reinstating an active accreditation was accepted by the model")
	}
}
