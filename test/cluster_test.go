package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/test/netns"
	"github.com/trustreg/trustreg/test/ports"
)

// freePort returns a loopback port no other node of this test process
// was given (ports.Free).
func freePort(t *testing.T) int {
	t.Helper()
	p, err := ports.Free()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// procCluster is trustd processes sharing a genesis: voters first, then
// non-voting replicas. When the machine can make network namespaces
// (netns.Available), each process runs on a host of its own with its own
// address, and links are cut by taking a host's interface down; otherwise
// all run on loopback, and the test log says why.
type procCluster struct {
	t       *testing.T
	bin     string
	configs []string
	mu      sync.Mutex
	procs   []*proc
	peerIDs []string
	admins  []string
	hosts   []*netns.Host // hosts[i] runs node i; nil: every node on loopback
	token   string        // the admin API token, on hosts of their own (not loopback)
	gov     *record.Signer
	govFile string
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// placeNodes gives each of n nodes a host of its own when the machine
// allows it, and nil (loopback) when it does not, saying so.
func placeNodes(t *testing.T, n int) []*netns.Host {
	if err := netns.Available(); err != nil {
		t.Logf("nodes on loopback, not on hosts of their own: %v", err)
		return nil
	}
	nw, err := netns.New(t, n)
	if err != nil {
		t.Logf("nodes on loopback, not on hosts of their own: %v", err)
		return nil
	}
	addrs := make([]string, n)
	for i, h := range nw.Hosts {
		addrs[i] = h.IP.String()
	}
	t.Logf("nodes on hosts of their own: %s", strings.Join(addrs, ", "))
	return nw.Hosts
}

// mustStartProcCluster starts n voters.
func mustStartProcCluster(t *testing.T, n int) *procCluster {
	t.Helper()
	return startProcCluster(t, n, 0, placeNodes(t, n))
}

// startProcCluster starts voters voting members and replicas non-voters
// (which join the voters), on hosts (one per node) or, with hosts nil, on
// loopback.
func startProcCluster(t *testing.T, voters, replicas int, hosts []*netns.Host) *procCluster {
	t.Helper()
	return startProcClusterWith(t, voters, replicas, hosts, "")
}

// startProcClusterWith is startProcCluster with p2pExtra (lines of the p2p
// section, indented by two spaces) in every node's configuration.
func startProcClusterWith(t *testing.T, voters, replicas int, hosts []*netns.Host, p2pExtra string) *procCluster {
	t.Helper()
	bin := mustBuild(t)
	base := t.TempDir()
	n := voters + replicas
	c := &procCluster{t: t, bin: bin, hosts: hosts}
	govFile := filepath.Join(base, "governance.jwk")
	run(t, bin+"/trustctl", "keygen", "--out", govFile)
	gov, err := record.ParseSignerJWK(mustRead(t, govFile))
	if err != nil {
		t.Fatal(err)
	}
	c.gov, c.govFile = gov, govFile
	genesis, _ := json.Marshal(record.Genesis{Consortium: "process test", Members: []record.Member{{ID: gov.DID}}, Threshold: 1})
	genesisPath := filepath.Join(base, "genesis.json")
	if err := os.WriteFile(genesisPath, genesis, 0o644); err != nil {
		t.Fatal(err)
	}
	if hosts != nil {
		c.token = fmt.Sprintf("test-token-%d", time.Now().UnixNano())
	}

	type nodeInfo struct{ dir, p2p, http, admin string }
	infos := make([]nodeInfo, n)
	for i := range infos {
		dir := filepath.Join(base, fmt.Sprintf("node%d", i))
		id := run(t, bin+"/trustd", "identity", "--data-dir", dir)
		c.peerIDs = append(c.peerIDs, id)
		if hosts != nil {
			// Each host has its ports to itself: the defaults do.
			ip := hosts[i].IP.String()
			infos[i] = nodeInfo{dir: dir, p2p: fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", ip, id), http: ip + ":8080", admin: ip + ":8081"}
		} else {
			infos[i] = nodeInfo{dir: dir, p2p: fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", freePort(t), id),
				http: fmt.Sprintf("127.0.0.1:%d", freePort(t)), admin: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		}
	}
	for i, info := range infos {
		var peers, join []string
		for j, o := range infos {
			// Voters know the voters (they bootstrap the cluster from this
			// list); a replica knows the voters and asks them to add it.
			if j != i && j < voters {
				peers = append(peers, "    - "+o.p2p)
			}
			if i >= voters && j < voters {
				join = append(join, "    - "+o.p2p)
			}
		}
		listen := info.p2p[:strings.Index(info.p2p, "/p2p/")]
		// As trustd listens by default: TCP and QUIC (the UDP port of the
		// same number; peers learn it from each other).
		quic := strings.Replace(listen, "/tcp/", "/udp/", 1) + "/quic-v1"
		c.admins = append(c.admins, "http://"+info.admin)
		cfg := fmt.Sprintf("data_dir: %s\ngenesis: %s\nhttp:\n  addr: %s\nadmin:\n  addr: %s\n  token: %q\np2p:\n  listen:\n    - %s\n    - %s\n  peers:\n%s\n%sraft:\n  heartbeat_timeout: 500ms\n  election_timeout: 500ms\n",
			info.dir, genesisPath, info.http, info.admin, c.token, listen, quic, strings.Join(peers, "\n"), p2pExtra)
		if i >= voters {
			cfg += "  nonvoter: true\n  join:\n" + strings.Join(join, "\n") + "\n"
		}
		path := filepath.Join(base, fmt.Sprintf("node%d.yaml", i))
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		c.configs = append(c.configs, path)
	}
	c.procs = make([]*proc, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range voters {
		wg.Go(func() { c.procs[i], errs[i] = c.tryStart(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// Replicas are added by an operator, then start and join.
	for i := voters; i < n; i++ {
		c.addNonvoter(t, infos[i].p2p)
		if c.procs[i], err = c.tryStart(i); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// addNonvoter adds the node at addr as a non-voter through trustctl,
// retrying for up to 30 s while the voters elect their first leader.
func (c *procCluster) addNonvoter(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.trustctl(append([]string{"cluster", "add-nonvoter", addr}, c.adminArgs(0)...)...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("add-nonvoter %s: %v\n%s", addr, err, out)
		}
		time.Sleep(200 * time.Millisecond) // the voters elect a leader
	}
}

// host is node i's host, nil on loopback.
func (c *procCluster) host(i int) *netns.Host {
	if c.hosts == nil {
		return nil
	}
	return c.hosts[i]
}

// tryStart starts node i with its configuration.
func (c *procCluster) tryStart(i int) (*proc, error) {
	return tryStartTrustdOn(c.t, c.host(i), c.bin, filepath.Dir(c.configs[i]), "--config", c.configs[i])
}

// restart starts node i again after it ended.
func (c *procCluster) restart(i int) {
	c.t.Helper()
	p, err := c.tryStart(i)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.procs[i] = p
	c.mu.Unlock()
}

// adminArgs are trustctl's flags to reach node i's admin API.
func (c *procCluster) adminArgs(i int) []string {
	return []string{"--admin", c.admins[i], "--admin-token", c.token}
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c *procCluster) proc(i int) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[i]
}

// leader returns the index of the process that leads, asking node from.
func (c *procCluster) leader(from int) int {
	var st struct {
		Leader string `json:"leader"`
	}
	if err := client.New(c.proc(from).url).Get(context.Background(), "/v1/status", nil, &st); err != nil {
		return -1
	}
	for i, id := range c.peerIDs {
		if id == st.Leader {
			return i
		}
	}
	return -1
}

func (c *procCluster) digest(i int) (uint64, string, error) {
	var d struct {
		AppliedIndex uint64 `json:"applied_index"`
		Digest       string `json:"digest"`
	}
	cl := client.New(c.admins[i])
	cl.Token = c.token
	err := cl.Get(context.Background(), "/admin/v1/digest", nil, &d)
	return d.AppliedIndex, d.Digest, err
}

func signOp(t *testing.T, s *record.Signer, compact bool, fields map[string]any) []byte {
	fields["iat"] = time.Now().Unix()
	raw, _ := json.Marshal(fields)
	var jws []byte
	var err error
	if compact {
		jws, err = s.SignCompact(raw)
	} else {
		jws, err = record.SignJSON(raw, s)
	}
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

// TestKillLeaderDuringWrites starts three trustd processes, streams signed
// writes through all of them, SIGKILLs the leader in the middle, restarts
// it, and checks that every acknowledged operation is on every node and
// that the nodes' state digests agree.
func TestKillLeaderDuringWrites(t *testing.T) {
	c := mustStartProcCluster(t, 3)
	root, _ := record.GenerateKey(record.KeyEd25519)
	fw := "https://example.org/fw"
	ctx := context.Background()
	if _, err := client.New(c.procs[0].url).Submit(ctx, signOp(t, c.gov, false, map[string]any{
		"op": "createFramework", "id": fw, "name": "FW", "roots": []string{root.DID}})); err != nil {
		t.Fatal(err)
	}

	const total = 600
	killed := make(chan int, 1)
	var acked map[string]uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		acked = c.streamWrites(t, root, fw, total, 8, []int{0, 1, 2}, func(i int64) {
			if i != total/3 {
				return
			}
			if leader := c.leader(int(i) % 3); leader >= 0 {
				if err := c.proc(leader).cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Error(err)
				}
				killed <- leader
			}
		})
	}()
	var victim int
	select {
	case victim = <-killed:
	case <-time.After(2 * time.Minute):
		t.Fatal("the leader was never killed")
	}
	<-c.procs[victim].done
	c.procs[victim].done <- nil
	c.restart(victim)
	<-done
	if len(acked) < total*9/10 {
		t.Fatalf("only %d of %d writes were acknowledged", len(acked), total)
	}
	c.waitConverged(t, acked)
	t.Logf("%d writes acknowledged of %d attempted; leader %d killed and restarted", len(acked), total, victim)

	// Operators see every member through trustctl and can move leadership.
	// The restarted member may take a moment to answer status calls again.
	var view struct {
		Node    struct{ Leader string }
		Members []struct {
			ID        string
			Suffrage  string
			Reachable bool
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := run(t, c.bin+"/trustctl", append([]string{"--json", "cluster", "status"}, c.adminArgs(1)...)...)
		if err := json.Unmarshal([]byte(out), &view); err != nil || len(view.Members) != 3 {
			t.Fatalf("cluster status: %v\n%s", err, out)
		}
		var bad []string
		for _, m := range view.Members {
			if !m.Reachable || m.Suffrage != "voter" {
				bad = append(bad, fmt.Sprintf("%+v", m))
			}
		}
		if len(bad) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members not reachable voters 10 s after convergence: %v", bad)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
	run(t, c.bin+"/trustctl", append([]string{"cluster", "transfer-leader"}, c.adminArgs(2)...)...)
	deadline = time.Now().Add(20 * time.Second)
	for c.leader(0) < 0 || c.peerIDs[c.leader(0)] == view.Node.Leader {
		if time.Now().After(deadline) {
			t.Fatal("leadership did not move")
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	for _, p := range c.procs {
		p.stop(t)
	}
}

// TestFollowersCarryOnRightAfterTheLeaderDies: the moment the leader is
// killed, one write and one linearizable read sent to the followers, each
// once and with no retry by the client, are answered: the follower stops
// dialling the dead leader when raft elects another and asks the new one.
// (A dead peer's QUIC address gives no "connection refused": a dial to it
// waits out the QUIC handshake timeout, longer than the node waits for a
// leader.)
func TestFollowersCarryOnRightAfterTheLeaderDies(t *testing.T) {
	c := mustStartProcCluster(t, 3)
	root, _ := record.GenerateKey(record.KeyEd25519)
	fw := "https://example.org/fw"
	ctx := context.Background()
	created, err := client.New(c.procs[0].url).Submit(ctx, signOp(t, c.gov, false, map[string]any{
		"op": "createFramework", "id": fw, "name": "FW", "roots": []string{root.DID}}))
	if err != nil {
		t.Fatal(err)
	}
	// Every node has applied it, so each knows the others' addresses.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < 3; {
		if idx, _, err := c.digest(i); err == nil && idx >= created.Index {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d did not apply the framework", i)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	leader := c.leader(0)
	if leader < 0 {
		t.Fatal("no leader")
	}
	writeTo, readFrom := c.proc((leader+1)%3), c.proc((leader+2)%3)
	jws := signOp(t, root, true, map[string]any{"op": "accredit", "framework": fw, "accreditor": root.DID,
		"subject": "did:web:college.example", "action": "issue", "resources": []string{"*"}})
	if err := c.proc(leader).cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	// expect sends req and wants status back, with no retry.
	expect := func(what string, req *http.Request, status int) {
		resp, err := hc.Do(req)
		if err != nil {
			t.Errorf("%s as the leader died: %v", what, err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != status {
			body, _ := io.ReadAll(resp.Body)
			t.Errorf("%s as the leader died: %d %s", what, resp.StatusCode, body)
		}
	}
	write, _ := http.NewRequest(http.MethodPost, writeTo.url+"/v1/operations", bytes.NewReader(jws))
	write.Header.Set("Content-Type", "application/jose")
	read, _ := http.NewRequest(http.MethodGet, readFrom.url+"/v1/frameworks/"+url.PathEscape(fw)+"?consistency=linearizable", nil)
	var wg sync.WaitGroup
	wg.Go(func() { expect("write through a follower", write, http.StatusCreated) })
	wg.Go(func() { expect("linearizable read from a follower", read, http.StatusOK) })
	wg.Wait()
	<-c.proc(leader).done
	c.proc(leader).done <- nil
}

// TestTrustctlReadsItsWritesThroughFollowers: an accreditor writes through
// one follower and reads through the other at once, as two trustctl runs.
// trustctl's reads are linearizable by default, so each read sees the
// write acknowledged just before it; with --consistency local the second
// follower may not have applied it yet.
func TestTrustctlReadsItsWritesThroughFollowers(t *testing.T) {
	c := mustStartProcCluster(t, 3)
	defer func() {
		for _, p := range c.procs {
			p.stop(t)
		}
	}()
	leader := -1
	for deadline := time.Now().Add(20 * time.Second); leader < 0; {
		if leader = c.leader(0); leader < 0 && time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	a, b := c.proc((leader+1)%3), c.proc((leader+2)%3)
	rootFile := filepath.Join(t.TempDir(), "root.jwk")
	run(t, c.bin+"/trustctl", "keygen", "--out", rootFile)
	root := run(t, c.bin+"/trustctl", "did", rootFile)
	for i := range 8 {
		fw := fmt.Sprintf("https://example.org/fw-%d", i)
		run(t, c.bin+"/trustctl", "--server", a.url, "-q", "framework", "create", "--id", fw, "--name", "FW", "--root", root, "--key", c.govFile)
		show := exec.Command(c.bin+"/trustctl", "--server", b.url, "framework", "show", fw)
		if out, err := show.CombinedOutput(); err != nil || !strings.Contains(string(out), fw) {
			t.Fatalf("write %d through %s, read through %s: %v\n%s", i, a.url, b.url, err, out)
		}
	}
}

// streamWrites sends total accreditations under fw, signed by root, from
// workers goroutines, each write through nodes in turn. A client retries
// the same signed operation on the next node until one acknowledges it
// (resubmission is idempotent), at most 20 tries. after(i) runs after the
// i-th write's tries, on its worker. It returns the acknowledged writes:
// CID → index.
func (c *procCluster) streamWrites(t *testing.T, root *record.Signer, fw string, total, workers int, nodes []int, after func(i int64)) map[string]uint64 {
	var (
		mu       sync.Mutex
		acked    = map[string]uint64{}
		attempts atomic.Int64
	)
	writer := func() {
		hc := &http.Client{Timeout: 5 * time.Second}
		for {
			i := attempts.Add(1)
			if i > int64(total) {
				return
			}
			jws := signOp(t, root, true, map[string]any{"op": "accredit", "framework": fw, "accreditor": root.DID,
				"subject": fmt.Sprintf("did:web:college-%d.example", i), "action": "issue", "resources": []string{"*"}})
			for try := range 20 {
				target := c.proc(nodes[(int(i)+try)%len(nodes)])
				resp, err := hc.Post(target.url+"/v1/operations", "application/jose", bytes.NewReader(jws))
				if err != nil {
					time.Sleep(50 * time.Millisecond) // back-off before the next node
					continue
				}
				var res record.Result
				err = json.NewDecoder(resp.Body).Decode(&res)
				resp.Body.Close()
				if resp.StatusCode == 201 || resp.StatusCode == 200 {
					if err != nil {
						t.Errorf("write %d: acknowledged with an unreadable result: %v", i, err)
						break
					}
					mu.Lock()
					acked[res.CID] = res.Index
					mu.Unlock()
					break
				}
				if resp.StatusCode != 503 {
					t.Errorf("write %d: status %d", i, resp.StatusCode)
					break
				}
				time.Sleep(50 * time.Millisecond) // back-off before the next node
			}
			if after != nil {
				after(i)
			}
		}
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(writer)
	}
	wg.Wait()
	return acked
}

// waitConverged waits (up to 60 s) until every node has applied the
// highest acknowledged index and all report the same state digest, then
// checks that every node serves every acknowledged operation.
func (c *procCluster) waitConverged(t *testing.T, acked map[string]uint64) {
	t.Helper()
	var maxIndex uint64
	for _, idx := range acked {
		maxIndex = max(maxIndex, idx)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var digests []string
		agree := true
		for i := range c.procs {
			idx, d, err := c.digest(i)
			if err != nil || idx < maxIndex {
				agree = false
				digests = append(digests, fmt.Sprintf("node %d: index %d, %v", i, idx, err))
				continue
			}
			digests = append(digests, fmt.Sprintf("%d/%s", idx, d))
			if digests[i] != digests[0] {
				agree = false
			}
		}
		if agree {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes did not converge: %v", digests)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	for i := range c.procs {
		p := c.proc(i)
		for cid := range acked {
			resp, err := http.Get(p.url + "/v1/operations/" + cid)
			if err != nil {
				t.Fatalf("node %d: acknowledged operation %s: %v", i, cid, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("node %d lacks acknowledged operation %s: status %d", i, cid, resp.StatusCode)
			}
		}
	}
}

// trustctl runs the built trustctl with args and returns its output.
func (c *procCluster) trustctl(args ...string) ([]byte, error) {
	return exec.Command(c.bin+"/trustctl", args...).CombinedOutput()
}
