package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// process is a child process this benchmark started; it is stopped by pid.
type process struct {
	name    string
	cmd     *exec.Cmd
	log     *os.File
	exited  chan struct{} // closed when the process has exited and been reaped
	waitErr error         // how it exited; read after exited is closed
	// floor is the process's CPU with nothing asked of it, in CPU seconds
	// per second (measureFloor; zero until measured): an idle trustd
	// leader sends raft's commit-index AppendEntries to each follower every
	// 50–100 ms (CommitTimeout) and uses 1.5–3 % of a core doing so.
	floor float64
}

func (p *process) stop() {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	// The process wrote its log through its own descriptor; this one
	// holds nothing unwritten.
	_ = p.log.Close()
}

// waitReady polls url until it answers 200, the process exits, or d
// passes; the error names the process and ends with the end of its log,
// which says why a server that never came up did not.
func (p *process) waitReady(url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if answered(url) {
			return nil
		}
		select {
		case <-p.exited:
			tail := p.logTail(2048)
			err := fmt.Errorf("%s exited (%v) before %s answered 200; the end of its log:\n%s", p.name, p.waitErr, url, tail)
			if strings.Contains(tail, "address already in use") {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return err
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s did not answer 200 within %s; the end of its log:\n%s", p.name, url, d, p.logTail(2048))
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// errPortTaken: a server exited because a port picked for it was taken
// between freePort's check and its own listen, by any process on the
// machine (a test running beside the benchmark, an outgoing connection).
var errPortTaken = errors.New("a port was taken before the server listened on it")

// portAttempts bounds how often a cluster is started again, on new ports,
// after errPortTaken.
const portAttempts = 3

// retryOnPortTaken runs startOnce, and again with a cleared dir when it
// fails with errPortTaken, up to portAttempts times; stop undoes a failed
// attempt.
func retryOnPortTaken(dir string, startOnce func() error, stop func()) error {
	for attempt := 1; ; attempt++ {
		err := startOnce()
		if err == nil || attempt == portAttempts || !errors.Is(err, errPortTaken) {
			return err
		}
		stop()
		fmt.Fprintf(os.Stderr, "trustbench: %v\nstarting again on other ports (attempt %d of %d)\n", err, attempt+1, portAttempts)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
}

// logTail returns up to the last n bytes of the process's log.
func (p *process) logTail(n int64) string {
	raw, err := os.ReadFile(p.log.Name())
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	if int64(len(raw)) > n {
		raw = raw[int64(len(raw))-n:]
	}
	if len(raw) == 0 {
		return "(empty)"
	}
	return string(raw)
}

// idleMargin is how much CPU above its floor a process may use and count
// as idle: 3 % of a core.
const idleMargin = 0.03

// settle waits, up to limit, until p is idle (under 3 % of a core above
// its floor in each of two seconds running): after a bulk load a node
// still flushes and compacts its state for a while, and measuring then
// would charge that to whatever runs beside it. One quiet second was once taken for the end of
// a minute of compactions.
func settle(ctx context.Context, p *process, limit time.Duration) {
	settleAll(ctx, []*process{p}, limit)
}

// settleAll is settle for every process of ps at once: two seconds
// running in which each used under 3 % of a core above its floor. It
// returns how long it waited.
func settleAll(ctx context.Context, ps []*process, limit time.Duration) time.Duration {
	if len(ps) == 0 {
		return 0
	}
	start := time.Now()
	busy := make([]float64, len(ps)) // each one's CPU in the last second
	for quiet := 0; quiet < 2 && time.Since(start) < limit; {
		rates, ok := cpuRates(ctx, ps)
		if !ok {
			break
		}
		busy = rates
		idle := true
		for i, p := range ps {
			if busy[i] >= p.floor+idleMargin {
				idle = false
			}
		}
		if idle {
			quiet++
		} else {
			quiet = 0
		}
	}
	d := time.Since(start)
	if d > 3*time.Second {
		names := make([]string, len(ps))
		var still []string
		for i, p := range ps {
			names[i] = p.name
			if busy[i] >= p.floor+idleMargin {
				still = append(still, fmt.Sprintf("%s %.0f %%", p.name, busy[i]*100))
			}
		}
		if len(still) > 0 && d >= limit {
			fmt.Fprintf(os.Stderr, "%s not idle after %s (of a core in the last second: %s)\n", strings.Join(names, ", "), d.Round(time.Second), strings.Join(still, ", "))
		} else {
			fmt.Fprintf(os.Stderr, "%s settled after %s\n", strings.Join(names, ", "), d.Round(time.Second))
		}
	}
	return d
}

// cpuRates returns the CPU each process of ps uses over the next second,
// in CPU seconds per second; false when ctx ends first.
func cpuRates(ctx context.Context, ps []*process) ([]float64, bool) {
	c0 := make([]float64, len(ps))
	for i, p := range ps {
		c0[i] = p.cpuSeconds()
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return nil, false
	case <-time.After(time.Second):
	}
	el := time.Since(t0).Seconds()
	rates := make([]float64, len(ps))
	for i, p := range ps {
		rates[i] = (p.cpuSeconds() - c0[i]) / el
	}
	return rates, true
}

// measureFloor waits until ps settle, then sets each one's floor: the
// least CPU it used in any of three seconds with nothing asked of it.
func measureFloor(ctx context.Context, ps []*process, limit time.Duration) {
	settleAll(ctx, ps, limit)
	floors := make([]float64, len(ps))
	for i := range floors {
		floors[i] = math.Inf(1)
	}
	for range 3 {
		rates, ok := cpuRates(ctx, ps)
		if !ok {
			return
		}
		for i, r := range rates {
			floors[i] = min(floors[i], r)
		}
	}
	var said []string
	for i, p := range ps {
		p.floor = floors[i]
		said = append(said, fmt.Sprintf("%s %.1f %%", p.name, p.floor*100))
	}
	fmt.Fprintf(os.Stderr, "idle floors (of a core): %s\n", strings.Join(said, ", "))
}

// measured runs one measured load on the processes ps and returns its
// stats with their CPU time and minor page faults per request, counted
// until ps settle afterwards: the flushes and compactions a run leaves
// behind are its own cost, and run beside the next one otherwise. What
// the processes use at their floors while settling is not counted: it is
// not the run's (the run's own time counts whole).
func measured(ctx context.Context, c config, ps []*process, run func() stats) (s stats, cpuMs, faults float64) {
	cpu0, flt0 := usageOf(ps)
	s = run()
	waited := settleAll(ctx, ps, c.settleLimit())
	if s.Requests > 0 {
		cpu1, flt1 := usageOf(ps)
		idle := 0.0
		for _, p := range ps {
			idle += p.floor * waited.Seconds()
		}
		cpuMs, faults = max(0, cpu1-cpu0-idle)*1000/float64(s.Requests), (flt1-flt0)/float64(s.Requests)
	}
	return s, cpuMs, faults
}

// cpuSeconds reads the process's user+system CPU time so far.
func (p *process) cpuSeconds() float64 {
	cpu, _ := p.usage()
	return cpu
}

// usage reads the process's user+system CPU seconds and its minor page
// faults so far from /proc/PID/stat (zeros when it cannot be read). A
// minor fault is a first touch of a page the process has not used yet
// (or gave back): on this project's virtual machines one costs about as
// much CPU as verifying a signature, so faults per write say how much of
// the CPU per write is memory being handed out.
func (p *process) usage() (cpu, minorFaults float64) {
	return statUsage(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
}

// selfUsage is usage for this process (the load generator).
func selfUsage() (cpu, minorFaults float64) { return statUsage("/proc/self/stat") }

// statUsage is parseStat of the stat file at path (zeros when it cannot
// be read).
func statUsage(path string) (cpu, minorFaults float64) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	return parseStat(string(raw))
}

// statFields returns the fields of a /proc/PID/stat text after the
// command name (which is in parentheses and may hold spaces): from the
// state, field 3 of proc(5), on.
func statFields(s string) []string {
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

// parseStat reads utime+stime (in seconds) and minflt from the text of
// /proc/PID/stat.
func parseStat(s string) (cpu, minorFaults float64) {
	fields := statFields(s)
	if len(fields) < 13 {
		return 0, 0
	}
	utime, uerr := strconv.ParseFloat(fields[11], 64)
	stime, serr := strconv.ParseFloat(fields[12], 64)
	minflt, ferr := strconv.ParseFloat(fields[7], 64)
	if uerr != nil || serr != nil || ferr != nil {
		return 0, 0
	}
	return (utime + stime) / 100, minflt // clock ticks (USER_HZ = 100)
}

// usageOf sums usage over ps.
func usageOf(ps []*process) (cpu, minorFaults float64) {
	for _, p := range ps {
		c, f := p.usage()
		cpu += c
		minorFaults += f
	}
	return cpu, minorFaults
}

// peakRSS reads the process's peak resident memory (VmHWM) in MiB.
func (p *process) peakRSS() float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}

// serverCPUs, when set (--split-cpus), are the CPUs every server this
// benchmark starts runs on. It is set once, before the first start.
var serverCPUs []int

// serverNice, when above 0 (--server-nice), is the niceness every server
// this benchmark starts runs at, the load generator staying at its own.
// It is set once, before the first start.
var serverNice int

// atNice returns the command line that runs bin with args at niceness n
// (nice execs the program, so the process id stays the program's; every
// thread the program starts inherits the niceness).
func atNice(n int, bin string, args []string) (string, []string) {
	if n <= 0 {
		return bin, args
	}
	return "nice", append([]string{"-n", strconv.Itoa(n), bin}, args...)
}

func start(dir, name string, bin string, args ...string) (*process, error) {
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	bin, args = onCPUs(serverCPUs, bin, args)
	bin, args = atNice(serverNice, bin, args)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		_ = log.Close() // nothing was written to it
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: log, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// answered reports whether a GET of url answers 200.
func answered(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	// Drained so the connection is reused; the status is the answer.
	_, _ = io.Copy(io.Discard, resp.Body)
	closeRead(resp.Body)
	return resp.StatusCode == http.StatusOK
}

// trustdNode is a trustd process with its URLs.
type trustdNode struct {
	*process
	url, admin, peerID, p2p, config, dataDir string
}

// startTrustdCluster starts n trustd processes sharing a fresh genesis
// whose governance key it returns, all again on new ports if a port was
// taken before a node listened on it. With cosign the genesis lists every
// node's cosigner key, so the nodes cosign checkpoints and serve proofs
// (the read benchmark's proof row); without, they do neither, as before.
func startTrustdCluster(ctx context.Context, bin, dir string, n int, cosign bool, maxLevel int) (nodes []*trustdNode, gov *record.Signer, err error) {
	err = retryOnPortTaken(dir, func() error {
		nodes, gov, err = startTrustdClusterOnce(ctx, bin, dir, n, cosign, maxLevel)
		return err
	}, func() { stopAll(nodes) })
	return nodes, gov, err
}

func startTrustdClusterOnce(ctx context.Context, bin, dir string, n int, cosign bool, maxLevel int) ([]*trustdNode, *record.Signer, error) {
	gov, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		return nil, nil, err
	}
	var cosigners []string
	nodes := make([]*trustdNode, n)
	for i := range nodes {
		dd := filepath.Join(dir, fmt.Sprintf("trustd%d", i))
		out, err := exec.Command(bin, "identity", "--data-dir", dd).Output()
		if err != nil {
			return nil, nil, fmt.Errorf("trustd identity: %w", err)
		}
		if cosign {
			vkey, err := exec.Command(bin, "identity", "--data-dir", dd, "--cosigner").Output()
			if err != nil {
				return nil, nil, fmt.Errorf("trustd identity --cosigner: %w", err)
			}
			cosigners = append(cosigners, strings.TrimSpace(string(vkey)))
		}
		port := freePort()
		nodes[i] = &trustdNode{
			peerID: strings.TrimSpace(string(out)), dataDir: dd,
			url:   fmt.Sprintf("http://127.0.0.1:%d", freePort()),
			admin: fmt.Sprintf("127.0.0.1:%d", freePort()),
			p2p:   fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port),
		}
	}
	genesis, _ := json.Marshal(record.Genesis{Consortium: "bench", Members: []record.Member{{ID: gov.DID}}, Threshold: 1, Cosigners: cosigners})
	gpath := filepath.Join(dir, "genesis.json")
	if err := os.WriteFile(gpath, genesis, 0o644); err != nil {
		return nil, nil, err
	}
	for i, nd := range nodes {
		var peers []string
		for j, o := range nodes {
			if j != i {
				peers = append(peers, "    - "+o.p2p+"/p2p/"+o.peerID)
			}
		}
		peerYAML := "  peers: []"
		if len(peers) > 0 {
			peerYAML = "  peers:\n" + strings.Join(peers, "\n")
		}
		cfg := fmt.Sprintf("data_dir: %s\ngenesis: %s\nhttp:\n  addr: %s\nadmin:\n  addr: %s\np2p:\n  listen:\n    - %s\n%s\nlog:\n  level: warn\n",
			nd.dataDir, gpath, strings.TrimPrefix(nd.url, "http://"), nd.admin, nd.p2p, peerYAML)
		if maxLevel > 0 {
			cfg += fmt.Sprintf("raft:\n  max_feature_level: %d\n", maxLevel)
		}
		nd.config = filepath.Join(dir, fmt.Sprintf("trustd%d.yaml", i))
		if err := os.WriteFile(nd.config, []byte(cfg), 0o644); err != nil {
			return nil, nil, err
		}
		p, err := start(dir, fmt.Sprintf("trustd%d", i), bin, "--config", nd.config)
		if err != nil {
			return nil, nil, err
		}
		nd.process = p
	}
	for _, nd := range nodes {
		if err := nd.waitReady(nd.url+"/readyz", 60*time.Second); err != nil {
			return nodes, nil, err
		}
	}
	return nodes, gov, nil
}

// ensureEtcd makes sure Debian's etcd-server is installed, installing it
// with apt-get when etcd is not on the PATH (the write baseline; as root,
// as on CI and the benchmark machine). It says what it runs on w.
func ensureEtcd(w io.Writer) error {
	if _, err := exec.LookPath("etcd"); err == nil {
		return nil
	}
	apt, err := exec.LookPath("apt-get")
	if err != nil {
		return fmt.Errorf("etcd not found and no apt-get to install it: install etcd (Debian's etcd-server) or pass --skip-etcd")
	}
	for _, args := range [][]string{{"update", "-q"}, {"install", "-y", "-q", "etcd-server"}} {
		if _, err := fmt.Fprintf(w, "etcd not found: apt-get %s\n", strings.Join(args, " ")); err != nil {
			return err
		}
		cmd := exec.Command(apt, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("installing etcd-server: apt-get %s: %w (install it yourself or pass --skip-etcd)", args[0], err)
		}
	}
	if _, err := exec.LookPath("etcd"); err != nil {
		return fmt.Errorf("etcd-server installed but etcd is not on the PATH: %w", err)
	}
	return nil
}

// startEtcdCluster starts an n-member etcd cluster (Debian's etcd-server,
// default settings, each member with its own data directory; again on new
// ports if a port was taken) and returns its members and client URLs.
func startEtcdCluster(dir string, n int) (procs []*process, urls []string, err error) {
	err = retryOnPortTaken(dir, func() error {
		procs, urls, err = startEtcdClusterOnce(dir, n)
		return err
	}, func() {
		for _, p := range procs {
			p.stop()
		}
	})
	return procs, urls, err
}

func startEtcdClusterOnce(dir string, n int) ([]*process, []string, error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, nil, fmt.Errorf("etcd not found: install Debian's etcd-server (apt-get install etcd-server) or pass --skip-etcd")
	}
	type member struct{ name, client, peer string }
	ms := make([]member, n)
	var initial []string
	for i := range ms {
		ms[i] = member{fmt.Sprintf("e%d", i), fmt.Sprintf("http://127.0.0.1:%d", freePort()), fmt.Sprintf("http://127.0.0.1:%d", freePort())}
		initial = append(initial, ms[i].name+"="+ms[i].peer)
	}
	var procs []*process
	var urls []string
	for _, m := range ms {
		p, err := start(dir, "etcd-"+m.name, bin,
			"--name", m.name, "--data-dir", filepath.Join(dir, "etcd-"+m.name),
			"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
			"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "trustbench", "--log-level", "warn")
		if err != nil {
			return procs, nil, err
		}
		procs = append(procs, p)
		urls = append(urls, m.client)
	}
	for i, u := range urls {
		if err := procs[i].waitReady(u+"/health", 60*time.Second); err != nil {
			return procs, urls, err
		}
	}
	return procs, urls, nil
}

// buildTrustd builds trustd into dir from the module this runs in.
func buildTrustd(dir string) (string, error) {
	out := filepath.Join(dir, "trustd")
	// -buildvcs=auto: the revision is stamped into the binary whenever the
	// checkout allows (even under GOFLAGS=-buildvcs=false), so that a
	// saved run names the build it measured (trustd_build).
	cmd := exec.Command("go", "build", "-buildvcs=auto", "-o", out, "./cmd/trustd")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/trustd (run trustbench from the repository root, or pass --trustd): %v\n%s", err, b)
	}
	return out, nil
}

func execOutput(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s %v: %w", bin, args, err)
	}
	return string(out), nil
}
