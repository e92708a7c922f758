package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/node/cosign"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/diskspace"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/version"
)

var (
	_ gateway.Registry        = (*registry.State)(nil)
	_ gateway.Writer          = (*Node)(nil)
	_ gateway.Node            = (*Node)(nil)
	_ consensus.StateMachine  = stateMachine{}
	_ consensus.Checkpointing = stateMachine{}
	_ consensus.Snapshot      = (*registry.Snapshot)(nil)
)

// Node is one running trustreg node.
type Node struct {
	cfg      configs.Config
	log      *slog.Logger
	State    *registry.State
	host     host.Host
	identity crypto.PrivKey // the libp2p key; also the cosigner key
	gater    *consensus.Gater
	cosign   *cosign.Service // nil: the genesis lists no cosigners
	audit    *auditor        // the state's audit against its commitment (audit.go)
	lag      lagWatch        // whether this follower applies what the cluster committed (lag.go)
	cluster  *consensus.Cluster
	gateway  *gateway.Server
	http     *http.Server
	httpLn   net.Listener
	admin    *http.Server
	adminLn  net.Listener
	lifetime context.Context
	// The goroutines the node starts (the HTTP servers, the join,
	// raiseFeatureLevel) take their context from lifetime and are counted
	// in tasks; Close calls stop and waits for them.
	stop  context.CancelFunc
	tasks sync.WaitGroup
	// buildLevel is the feature level this node applies (registry.FeatureLevel).
	buildLevel int
	calls      inflight // into the state from outside raft; Close waits for them
	twins      twins    // operations being submitted through this node
	// beforeApply, when set, runs in apply before the operation is handed
	// to raft: tests hold a submission in flight with it.
	beforeApply func(jws []byte)
	// refused counts the writes this node, as leader, answered without
	// proposing them (prepare).
	refused *prometheus.CounterVec
	Metrics *prometheus.Registry
	// DevGenesisCreated is true when this start generated a development
	// genesis and its keys.
	DevGenesisCreated bool
	serveErr          chan error

	// httpCert and adminCert serve HTTPS when configured (nil: HTTP);
	// ReloadTLS reads them again.
	httpCert, adminCert *gateway.Certificate
}

// Options configure New.
type Options struct {
	Logger *slog.Logger
	// featureLevel, when set, is the feature level this node reports
	// and raises the cluster to instead of its build's: tests stand in
	// for a member that runs an older build with it.
	featureLevel int
	// raftStarted, when set, runs in New as soon as raft has started:
	// tests stand in for a start that is slow past that point while raft
	// already applies entries.
	raftStarted func(*Node)
	// cosignLog, when set, is the log the node cosigns instead of its
	// state's: tests stand in for a log they append to themselves.
	cosignLog cosign.Log
}

// New starts a node: state, libp2p host, raft, and the HTTP gateway.
func New(cfg configs.Config, opts Options) (_ *Node, err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: logger.With("component", "node"), Metrics: prometheus.NewRegistry(), serveErr: make(chan error, 1), buildLevel: registry.FeatureLevel, refused: newRefusedCounter()}
	n.lifetime, n.stop = context.WithCancel(context.Background())
	n.audit = newAuditor(func() *registry.State { return n.State }, logger, cfg.Proofs.AuditInterval)
	switch {
	case opts.featureLevel != 0:
		n.buildLevel = opts.featureLevel
	case cfg.Raft.MaxFeatureLevel > registry.FeatureLevel:
		return nil, fmt.Errorf("%w: raft.max_feature_level %d is above this build's feature level %d", ErrFeatureLevel, cfg.Raft.MaxFeatureLevel, registry.FeatureLevel)
	case cfg.Raft.MaxFeatureLevel > 0:
		n.buildLevel = cfg.Raft.MaxFeatureLevel
	}
	// A start that fails part way closes what it opened (the state's and
	// raft's databases, the host, listeners), so the data directory and
	// the ports are free for the next attempt. n is not the result, which
	// a failure sets to nil.
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Close())
		}
	}()
	if err := n.listen(); err != nil {
		return nil, err
	}
	// A node that would bootstrap makes a cluster with itself as a voter;
	// the setting would be dropped without a word. One with raft state
	// does not bootstrap (a replica that joined, its raft.join dropped
	// since): warnNonvoterVoter covers a voter there.
	if cfg.Raft.Nonvoter && cfg.Raft.Bootstrap && len(cfg.Raft.Join) == 0 {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "raft")); errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("raft.nonvoter: this node would bootstrap a new cluster (raft.bootstrap, no raft.join, no raft state yet) and be its voter; " +
				"a read replica sets raft.join to its voters, or raft.bootstrap: false and is added with trustctl cluster add-nonvoter")
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	restored, err := refuseRestoredMember(cfg)
	if err != nil {
		return nil, err
	}
	// The identity comes first: a development genesis lists it as the
	// cosigner.
	keyFile := filepath.Join(cfg.DataDir, "node.key")
	if n.identity, err = consensus.LoadOrCreateIdentity(keyFile); err != nil {
		return nil, err
	}
	warnIfShared(logger, keyFile)
	genesis, err := n.loadGenesis()
	if err != nil {
		return nil, err
	}
	// The hook is the state's from its start: raft applies entries (a
	// replay of the log's tail among them) as soon as it runs.
	ops := newOperationsCounter()
	n.State, err = registry.Open(filepath.Join(cfg.DataDir, "state"), genesis, registry.Options{Logger: logger, OnApply: ops.count, OnStateCorrupt: n.audit.corruptRead})
	if err != nil {
		return nil, err
	}
	if have := n.State.ClusterFeatureLevel(); have > n.buildLevel {
		// Levels never go down: a node offering less than its state was
		// written at would hold back nothing and apply rules it claims
		// not to.
		return nil, fmt.Errorf("%w: the state is at feature level %d, above the %d this node offers (raft.max_feature_level); levels never go down: raise it, or start from an empty data directory", ErrFeatureLevel, have, n.buildLevel)
	}
	if err := n.startHost(); err != nil {
		return nil, err
	}
	peers, err := peerIDs(cfg.P2P.Peers)
	if err != nil {
		return nil, err
	}
	joins, err := peerIDs(cfg.Raft.Join)
	if err != nil {
		return nil, err
	}
	n.cluster, err = consensus.Start(consensus.Config{
		Dir: filepath.Join(cfg.DataDir, "raft"), Host: n.host, StateMachine: stateMachine{s: n.State, log: logger}, Logger: logger,
		Bootstrap: cfg.Raft.Bootstrap && len(joins) == 0, Voters: peers, Contacts: append(slices.Clone(peers), joins...),
		ClusterID: n.State.GenesisCID(), Codec: resultCodec{}, Gater: n.gater, Prepare: n.prepare,
		SnapshotInterval: cfg.Raft.SnapshotInterval, SnapshotThreshold: cfg.Raft.SnapshotThreshold, TrailingLogs: cfg.Raft.TrailingLogs, StreamSnapshots: cfg.Raft.StreamSnapshots,
		HeartbeatTimeout: cfg.Raft.HeartbeatTimeout, ElectionTimeout: cfg.Raft.ElectionTimeout,
		// Operations are content-addressed: proposed again, one answers
		// with its first result (a duplicate).
		IdempotentCommands: true,
		FeatureLevel:       n.buildLevel, ClusterFeatureLevel: n.State.ClusterFeatureLevel,
		SendDelay: sendDelay(cfg.P2P),
		// The raft log's appends reuse a young statfs reading far from
		// the reserve, as the state's commits do (registry/diskspace).
		DiskReadings: func(read func() (uint64, error)) consensus.DiskReadings {
			return diskspace.NewRecent(read, diskspace.DefaultMaxAge, diskspace.DefaultHeadroom)
		},
	})
	if err != nil {
		return nil, err
	}
	if opts.raftStarted != nil {
		opts.raftStarted(n)
	}
	if err := n.registerMetrics(ops); err != nil {
		return nil, err
	}
	if err := n.startAudit(); err != nil {
		return nil, err
	}
	if err := n.startCosign(opts.cosignLog); err != nil {
		return nil, err
	}
	n.gateway, err = gateway.New(gateway.Config{
		Registry: n.State, Writer: n, Node: n, Logger: logger,
		Metrics: n.Metrics, Gatherer: n.Metrics, MaxBodyBytes: cfg.HTTP.MaxBodyBytes, MaxWait: cfg.HTTP.MaxWait,
		Limits: writeLimits(cfg.HTTP.Limits), Lag: n.cluster.Lag, Checkpoints: n,
		MaxWatchStreams: cfg.HTTP.MaxWatchStreams, MaxWatchStreamsPerAddress: cfg.HTTP.MaxWatchStreamsPerAddress,
	})
	if err != nil {
		return nil, err
	}
	n.serveHTTP()
	n.serveAdmin(logger)
	n.tasks.Go(func() { n.raiseFeatureLevel(n.lifetime) })
	n.tasks.Go(func() { n.watchLag(n.lifetime) })
	if restored {
		n.tasks.Go(func() { n.watchRestored(n.lifetime) })
	}
	if len(joins) > 0 {
		n.tasks.Go(func() {
			ctx, cancel := context.WithTimeout(n.lifetime, 5*time.Minute)
			defer cancel()
			if err := n.cluster.Join(ctx, joins, cfg.Raft.Nonvoter); err != nil && n.lifetime.Err() == nil {
				n.log.Error("could not join the cluster", "err", err)
			}
		})
	}
	if err := n.diskFull(); err != nil {
		n.log.Error("disk full at start: the node serves reads and is not ready until there is free space", "err", err)
	}
	n.warnNonvoterVoter()
	n.log.Info("node started", "peer_id", n.host.ID().String(), "gateway", n.GatewayURL(),
		"genesis", n.State.GenesisCID(), "applied_index", n.State.AppliedIndex())
	return n, nil
}

// warnNonvoterVoter says so when raft.nonvoter is set on a node its
// cluster already counts as a voter: the setting is only how a node asks
// to join, and a voter stays one until it is demoted.
func (n *Node) warnNonvoterVoter() {
	if !n.cfg.Raft.Nonvoter {
		return
	}
	self := n.host.ID().String()
	for _, m := range n.cluster.Status().Members {
		if m.ID == self && m.Suffrage == "voter" {
			n.log.Warn("raft.nonvoter is set, but this node is a voter of its cluster: the setting applies only when a node joins; "+
				"to make it a read replica, demote it (trustctl cluster demote "+self+")", "peer_id", self)
		}
	}
}

func (n *Node) loadGenesis() ([]byte, error) {
	if n.cfg.Genesis == "" {
		self, err := peer.IDFromPrivateKey(n.identity)
		if err != nil {
			return nil, err
		}
		key, err := cosign.CosignerKeyOf(self.String(), n.identity)
		if err != nil {
			return nil, err
		}
		raw, created, err := ensureDevGenesis(n.cfg.DataDir, key)
		if err != nil {
			return nil, fmt.Errorf("development genesis: %w", err)
		}
		n.DevGenesisCreated = created
		return raw, nil
	}
	raw, err := os.ReadFile(n.cfg.Genesis)
	if err != nil {
		return nil, fmt.Errorf("read genesis: %w", err)
	}
	return raw, nil
}

func (n *Node) startHost() error {
	id := n.identity
	self, err := peer.IDFromPrivateKey(id)
	if err != nil {
		return err
	}
	infos, err := peerInfos(append(slices.Clone(n.cfg.P2P.Peers), n.cfg.Raft.Join...))
	if err != nil {
		return err
	}
	n.gater = consensus.NewGater(self)
	for _, ai := range infos {
		n.gater.Allow(ai.ID)
	}
	n.gater.OnRefused = newRefusalLog(n.log, time.Minute).refused
	var psk []byte
	if n.cfg.P2P.PSKFile != "" {
		if psk, err = readPSK(n.cfg.P2P.PSKFile); err != nil {
			return err
		}
	}
	nat, err := natConfig(n.cfg.P2P, n.cfg.Raft.Join, n.log)
	if err != nil {
		return err
	}
	n.host, err = consensus.NewHost(consensus.HostConfig{Identity: id, Listen: n.cfg.P2P.Listen, PSK: psk, Gater: n.gater, NAT: nat})
	if err != nil {
		return err
	}
	for _, ai := range infos {
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
	}
	return nil
}

// listen loads the gateway's and the admin API's certificates and binds
// both ports. It runs first, before the data directory is made or written
// to: a port in use or a certificate that does not load fails the start
// with nothing made (no development genesis, no raft bootstrapped with a
// configuration the operator may be about to change). Connections that
// arrive before the servers start wait in the listeners' backlog.
func (n *Node) listen() (err error) {
	if n.httpCert, err = loadTLS(n.cfg.HTTP.TLSCertFile, n.cfg.HTTP.TLSKeyFile); err != nil {
		return fmt.Errorf("gateway: %w (http.tls_cert_file, http.tls_key_file)", err)
	}
	if n.adminCert, err = loadTLS(n.cfg.Admin.TLSCertFile, n.cfg.Admin.TLSKeyFile); err != nil {
		return fmt.Errorf("admin API: %w (admin.tls_cert_file, admin.tls_key_file)", err)
	}
	ln, err := net.Listen("tcp", n.cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("gateway listen on %s: %w (a trustd already running with this configuration? else set http.addr or --http-addr)", n.cfg.HTTP.Addr, err)
	}
	n.httpLn = ln
	if ln, err = net.Listen("tcp", n.cfg.Admin.Addr); err != nil {
		return fmt.Errorf("admin listen on %s: %w (a trustd already running with this configuration? else set admin.addr or --admin-addr)", n.cfg.Admin.Addr, err)
	}
	n.adminLn = ln
	return nil
}

// serveHTTP serves the gateway on the listener listen bound.
func (n *Node) serveHTTP() {
	n.http = n.gateway.HTTPServer(n.httpLn.Addr().String(), n.cfg.HTTP.ReadTimeout, n.cfg.HTTP.WriteTimeout)
	n.http.Handler = n.calls.wrap(n.http.Handler)
	n.serve(n.http, n.httpLn, n.httpCert)
}

// loadTLS loads a certificate and key when both are named; nil (plain
// HTTP) when neither is.
func loadTLS(certFile, keyFile string) (*gateway.Certificate, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	return gateway.LoadCertificate(certFile, keyFile)
}

// serve runs srv on ln until Close shuts it down, over TLS with cert if it
// is not nil; a serving error ends up on Errors.
func (n *Node) serve(srv *http.Server, ln net.Listener, cert *gateway.Certificate) {
	if cert != nil {
		srv.TLSConfig = cert.TLSConfig()
	}
	n.tasks.Go(func() {
		var err error
		if cert != nil {
			err = srv.ServeTLS(ln, "", "") // the certificate comes from srv.TLSConfig
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case n.serveErr <- err:
			default: // one fatal error is enough to report
			}
		}
	})
}

// ReloadTLS reads the gateway's and the admin API's certificate and key
// files again (trustd does on SIGHUP); new handshakes get the new pair. A
// pair that does not load is reported and the one served before stays.
// It reports false when no TLS is configured.
func (n *Node) ReloadTLS() (bool, error) {
	var errs []error
	for _, c := range []struct {
		name string
		cert *gateway.Certificate
	}{{"gateway", n.httpCert}, {"admin API", n.adminCert}} {
		if c.cert == nil {
			continue
		}
		if err := c.cert.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
			continue
		}
		n.log.Info("TLS certificate reloaded", "listener", c.name)
	}
	return n.httpCert != nil || n.adminCert != nil, errors.Join(errs...)
}

// writeLimits is the gateway's form of the configured write limits.
func writeLimits(l configs.LimitsConfig) gateway.Limits {
	if !l.Enabled {
		return gateway.Limits{}
	}
	return gateway.Limits{AddressRate: l.AddressRate, AddressBurst: l.AddressBurst,
		SignerRate: l.SignerRate, SignerBurst: l.SignerBurst, MaxTracked: l.MaxTracked}
}

// Errors reports a fatal serving error.
func (n *Node) Errors() <-chan error { return n.serveErr }

// GatewayURL is the base URL of the HTTP gateway.
func (n *Node) GatewayURL() string {
	if n.httpLn == nil {
		return ""
	}
	if n.httpCert != nil {
		return "https://" + n.httpLn.Addr().String()
	}
	return "http://" + n.httpLn.Addr().String()
}

// PeerID is the node's libp2p identity.
func (n *Node) PeerID() peer.ID { return n.host.ID() }

// P2PAddrs are the node's libp2p addresses, each ending in /p2p/<id>.
func (n *Node) P2PAddrs() []string { return n.cluster.Status().Addrs }

// Cluster exposes the node's raft participation.
func (n *Node) Cluster() *consensus.Cluster { return n.cluster }

// Submit replicates a signed operation through the leader (forwarding it
// when this node follows) and returns the registry's result. Malformed and
// oversized operations are refused before they reach the log.
func (n *Node) Submit(ctx context.Context, jws []byte) (*record.Result, error) {
	if err := n.enter(); err != nil {
		return nil, err
	}
	defer n.calls.leave()
	need, err := n.State.PreVerifyLevel(jws)
	if err != nil {
		return nil, err
	}
	if need > n.State.ClusterFeatureLevel() && need <= n.buildLevel {
		// A new cluster's leader raises the level moments after its
		// election; an operation that needs it waits for that rather than
		// be refused. In a cluster still being upgraded it is refused
		// after the wait.
		wctx, cancel := context.WithTimeout(ctx, levelWait)
		_ = n.State.WaitFeatureLevel(wctx, need)
		cancel()
	}
	return n.twins.submit(ctx, jws, func() (*record.Result, error) { return n.apply(ctx, jws) })
}

// apply replicates one signed operation and returns the registry's result
// for its caller.
func (n *Node) apply(ctx context.Context, jws []byte) (*record.Result, error) {
	if n.beforeApply != nil {
		n.beforeApply(jws)
	}
	resp, err := n.cluster.Apply(ctx, registry.EncodeOperation(jws))
	if err != nil {
		return nil, clusterError(err)
	}
	resent, again := resp.(consensus.Resent)
	if again {
		resp = resent.Response
	}
	res, ok := resp.(*record.Result)
	if !ok {
		return nil, fmt.Errorf("unexpected apply response %T", resp)
	}
	if again && res.Duplicate {
		// This node sent the operation again after losing the answer to
		// its first attempt, which is what the duplicate found: the caller
		// sent it once (as far as this node knows), and this is its result.
		c := *res
		c.Duplicate = false
		return &c, nil
	}
	return res, nil
}

// clusterError wraps consensus errors for the gateway's error table; the
// consensus error stays in the chain. An unknown outcome is tried first: a
// write that may have reached the log is never answered as one that was
// not submitted (consensus/DESIGN.md).
func clusterError(err error) error {
	var me *consensus.MembershipError
	switch {
	case errors.Is(err, consensus.ErrUnknownOutcome):
		return record.Errorf(gateway.ErrOutcomeUnknown, "%w", err)
	case errors.Is(err, consensus.ErrNoLeader), errors.Is(err, consensus.ErrNotLeader),
		errors.Is(err, consensus.ErrTimeout), errors.Is(err, consensus.ErrShutdown),
		errors.Is(err, consensus.ErrForeignCluster):
		return record.Errorf(gateway.ErrUnavailable, "%w", err)
	case errors.As(err, &me):
		return &refusedError{refusal: me}
	}
	return err
}

// refusedError is a membership change the leader refused, as the gateway
// answers it: a bad request, in the leader's words ("gateway: bad request:
// <reason>"). It is gateway.ErrBadRequest and the leader's
// *consensus.MembershipError.
type refusedError struct{ refusal *consensus.MembershipError }

func (e *refusedError) Error() string { return gateway.ErrBadRequest.Error() + ": " + e.refusal.Reason }

// Public is what a client reads: the leader's reason.
func (e *refusedError) Public() string {
	return gateway.ErrBadRequest.Words() + ": " + e.refusal.Reason
}

// Unwrap makes a refusedError gateway.ErrBadRequest and the refusal.
func (e *refusedError) Unwrap() []error { return []error{gateway.ErrBadRequest, e.refusal} }

// Status is the node's view of the cluster.
func (n *Node) Status() any {
	return api.NodeStatus{
		RaftStatus:        raftStatus(n.cluster.Status()),
		Genesis:           n.State.GenesisCID(),
		FeatureLevel:      n.State.ClusterFeatureLevel(),
		BuildFeatureLevel: n.buildLevel,
	}
}

// Ready reports whether the node can serve.
func (n *Node) Ready() error {
	// First: a forked node stopped raft, and the rest follows from it.
	if err := n.cluster.Forked(); err != nil {
		return err
	}
	if err := n.diskFull(); err != nil {
		return err
	}
	if err := n.audit.failure(); err != nil {
		return err
	}
	if err := n.lag.failure(); err != nil {
		return err
	}
	// A node that asked to join and is not a member says why: the
	// member's refusal, or which member did not answer.
	if err := n.cluster.JoinFailure(); err != nil {
		return err
	}
	if n.cluster.LeaderID() == "" {
		return consensus.ErrNoLeader
	}
	return nil
}

// diskFull returns why the disk under the data directory is too full to
// write (the state's apply waits, the raft log refuses appends), or nil.
func (n *Node) diskFull() error {
	return errors.Join(n.State.DiskFull(), n.cluster.DiskFull())
}

// ReadIndex returns the leader's commit index, with its leadership
// confirmed by a quorum: a linearizable read waits until it is applied here.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if err := n.enter(); err != nil {
		return 0, err
	}
	defer n.calls.leave()
	idx, err := n.cluster.ReadIndex(ctx)
	if err != nil {
		return 0, clusterError(err)
	}
	return idx, nil
}

// WaitApplied blocks until the registry has applied index, ctx ends, or
// the node closes (errShuttingDown).
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	if err := n.enter(); err != nil {
		return err
	}
	defer n.calls.leave()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(n.lifetime, cancel)()
	err := n.State.WaitApplied(ctx, index)
	if err != nil && n.lifetime.Err() != nil {
		return errShuttingDown
	}
	return err
}

// Members lists the cluster's members with their applied index and lag.
func (n *Node) Members(ctx context.Context) any {
	return api.ClusterView{Node: raftStatus(n.cluster.Status()), Members: memberStatuses(n.cluster.Members(ctx)), FeatureLevel: n.State.ClusterFeatureLevel(), Genesis: n.State.GenesisCID()}
}

// ChangeMembership carries out a membership change at the leader.
func (n *Node) ChangeMembership(ctx context.Context, action, id string, addrs []string) error {
	if err := n.cluster.ChangeMembership(ctx, consensus.MembershipChange{Action: action, ID: id, Addrs: addrs}); err != nil {
		return clusterError(err)
	}
	return nil
}

// Digest returns the applied index and the state digest at it.
func (n *Node) Digest() (uint64, string, error) {
	if err := n.enter(); err != nil {
		return 0, "", err
	}
	defer n.calls.leave()
	return n.State.DigestAt()
}

// Snapshot takes a raft snapshot now.
func (n *Node) Snapshot() error {
	if err := n.cluster.Snapshot(); err != nil {
		if errors.Is(err, consensus.ErrNothingToSnapshot) {
			return record.Errorf(gateway.ErrNothingToSnapshot, "%w", err)
		}
		return err
	}
	return nil
}

// AdminURL is the base URL of the admin API.
func (n *Node) AdminURL() string {
	if n.adminLn == nil {
		return ""
	}
	if n.adminCert != nil {
		return "https://" + n.adminLn.Addr().String()
	}
	return "http://" + n.adminLn.Addr().String()
}

// serveAdmin serves the admin API on the listener listen bound.
func (n *Node) serveAdmin(logger *slog.Logger) {
	n.admin = &http.Server{Handler: n.calls.wrap(gateway.NewAdmin(n, n.cfg.Admin.Token, logger)), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 2 * time.Minute}
	n.serve(n.admin, n.adminLn, n.adminCert)
}

// WaitLeader blocks until a leader is known.
func (n *Node) WaitLeader(ctx context.Context) error { return n.cluster.WaitLeader(ctx) }

// Close stops the gateway, raft, the host and the state, in that order.
// Calls arriving once Close has begun are refused (503 over HTTP,
// ErrUnavailable from the methods). Both HTTP servers drain together
// within closeGrace, then have their connections closed; watch streams
// end. The state is closed only once every call into it has returned and
// every goroutine the node started has ended (raft's shutdown ends their
// waits on it); if one is still running after closeWait, the state is
// left open rather than closed under it, and Close says so.
func (n *Node) Close() error {
	var errs []error
	if n.stop != nil {
		n.stop()
	}
	n.calls.refuse()
	errs = append(errs, n.shutdownHTTP())
	if n.cosign != nil {
		n.cosign.Close() // before the state it reads is closed
	}
	if n.State != nil {
		n.State.Halt() // an apply waiting for disk space must not hold raft's shutdown
	}
	if n.cluster != nil {
		errs = append(errs, n.cluster.Shutdown())
	}
	left := n.calls.wait(closeWait)
	if !waitGroup(&n.tasks, closeWait) {
		n.log.Error("a node goroutine still runs after Close waited for it", "waited", closeWait)
		left++
	}
	if n.host != nil {
		errs = append(errs, n.host.Close())
	}
	if n.State != nil {
		if left > 0 {
			n.log.Error("leaving the state open: calls into it are still running", "calls", left, "waited", closeWait)
			errs = append(errs, fmt.Errorf("%w: %d still running after %s", ErrCallsRunning, left, closeWait))
		} else {
			errs = append(errs, n.State.Close())
		}
	}
	return errors.Join(errs...)
}

// Close's bounds: closeGrace for the HTTP servers' requests to finish
// before their connections are closed, closeWait for the calls and
// goroutines still running after raft's shutdown.
const (
	closeGrace = 5 * time.Second
	closeWait  = 10 * time.Second
)

// ErrFeatureLevel: raft.max_feature_level cannot be offered: above this
// build's level, or below the level the state is already at.
var ErrFeatureLevel = errors.New("node: raft.max_feature_level cannot be offered")

// ErrCallsRunning is returned by Close when calls into the state outlived
// its wait: the state is left open (Pebble panics when a closed database
// is used), to be released when the process exits.
var ErrCallsRunning = errors.New("node: calls into the state outlived Close; the state was left open")

// shutdownHTTP drains the gateway and the admin server together, within
// one closeGrace, and closes the connections of requests still running
// then (their contexts end).
func (n *Node) shutdownHTTP() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	var (
		wg   sync.WaitGroup
		errs = make([]error, 2)
	)
	for i, srv := range []*http.Server{n.http, n.admin} {
		if srv == nil {
			// A start that failed after listen: the port is bound and
			// nothing serves it.
			if ln := []net.Listener{n.httpLn, n.adminLn}[i]; ln != nil {
				errs[i] = ln.Close()
			}
			continue
		}
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				errs[i] = errors.Join(err, srv.Close())
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitGroup waits up to d for wg; it reports whether wg reached zero.
func waitGroup(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// enter counts a call into the state in, for Close to wait for; once
// Close has begun it refuses it with errShuttingDown. A nil error is
// matched by n.calls.leave().
func (n *Node) enter() error {
	if !n.calls.enter() {
		n.calls.leave()
		return errShuttingDown
	}
	return nil
}

// operationsCounter counts applied operations by result; count is the
// state's OnApply hook.
type operationsCounter struct{ *prometheus.CounterVec }

func newOperationsCounter() operationsCounter {
	return operationsCounter{prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "trustd", Subsystem: "registry", Name: "operations_total", Help: "Applied operations by result code (accepted, duplicate or the rejection code).",
	}, []string{"result"})}
}

func (ops operationsCounter) count(rs []*record.Result) {
	for _, r := range rs {
		if r.Op == registry.OpFeatureLevel {
			continue // the cluster's, not an operation anyone signed
		}
		code := r.Code
		switch {
		case r.Duplicate:
			code = "duplicate"
		case r.Accepted:
			code = "accepted"
		}
		ops.WithLabelValues(code).Inc()
	}
}

// signatureChecksHelp is trustd_signature_checks_total's help.
const signatureChecksHelp = "Operation signatures this node verified since it started: when=\"ahead\", before the rules judged the operation (the receiving gateway, the leader's check, the entries a follower stores before they commit), remembered for them; when=\"judging\", by the leader's check or the apply because that memory did not hold the signature (a key rotated in between, an entry first seen when applied, or one pushed out of the memory). Per write, about one ahead on every node and none judging."

func (n *Node) registerMetrics(ops operationsCounter) error {
	cs := []prometheus.Collector{
		ops, n.refused, newBuildInfoGauge(version.Get()),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustd", Subsystem: "registry", Name: "applied_index", Help: "Last applied registry index."},
			func() float64 { return float64(n.State.AppliedIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustd", Subsystem: "registry", Name: "feature_level", Help: "The cluster's feature level: which additions to the operation schema it accepts. Below trustd_build_feature_level while a member runs an older build."},
			func() float64 { return float64(n.State.ClusterFeatureLevel()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustd", Name: "build_feature_level", Help: "The highest feature level this node's build applies."},
			func() float64 { return float64(n.buildLevel) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustd", Name: "disk_full", Help: "1 while the disk under the data directory has less free space than the state or the raft log keeps in reserve: writes wait or are refused and the node is not ready."},
			func() float64 {
				if n.diskFull() != nil {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustd", Subsystem: "raft", Name: "commit_index", Help: "Raft commit index."},
			func() float64 { return float64(n.cluster.CommitIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustd", Subsystem: "raft", Name: "lag_entries", Help: "Entries the leader had committed when it last sent to this node that this node has not applied (0 when caught up). Entries not yet sent are not counted: see trustd_raft_last_contact_seconds."},
			func() float64 { return float64(n.cluster.Lag()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "trustd", Subsystem: "raft", Name: "forwarded_batches_total", Help: "Requests that carried writes from this node to the leader."},
			func() float64 { b, _ := n.cluster.ForwardStats(); return float64(b) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "trustd", Subsystem: "raft", Name: "forwarded_writes_total", Help: "Writes this node forwarded to the leader."},
			func() float64 { _, w := n.cluster.ForwardStats(); return float64(w) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "trustd", Subsystem: "raft", Name: "log_appends_total", Help: "Synced appends to this node's raft log since it started: on the leader, each batch of entries its loop gathered (writes, and raft's own no-op and configuration entries); on a follower, each append request from the leader that carried new entries. Refused appends are not counted."},
			func() float64 { a, _, _ := n.cluster.BatchStats(); return float64(a) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "trustd", Subsystem: "raft", Name: "log_appended_entries_total", Help: "Entries the appends of trustd_raft_log_appends_total carried, since this node started: divided by it, the entries per synced append."},
			func() float64 { _, e, _ := n.cluster.BatchStats(); return float64(e) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "trustd", Subsystem: "raft", Name: "applied_entries_total", Help: "Command entries handed to this node's state machine since it started (after a restart, also those it had applied before and skips), in the batches trustd_raft_apply_duration_seconds_count counts."},
			func() float64 { _, _, a := n.cluster.BatchStats(); return float64(a) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "trustd", Name: "signature_checks_total", Help: signatureChecksHelp, ConstLabels: prometheus.Labels{"when": "ahead"}},
			func() float64 { a, _ := n.State.SignatureChecks(); return float64(a) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "trustd", Name: "signature_checks_total", Help: signatureChecksHelp, ConstLabels: prometheus.Labels{"when": "judging"}},
			func() float64 { _, j := n.State.SignatureChecks(); return float64(j) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustd", Subsystem: "raft", Name: "leader", Help: "1 if this node is the raft leader."},
			func() float64 {
				if n.cluster.IsLeader() {
					return 1
				}
				return 0
			}),
	}
	cs = append(cs, n.storageCollectors()...)
	for _, c := range cs {
		if err := n.Metrics.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// sendDelay is the delay p2p.test_delay and p2p.test_jitter put on what
// this node sends to every other member, or nil: a testing and benchmark
// aid (cmd/trustd refuses it without --allow-test-delay).
func sendDelay(c configs.P2PConfig) func(peer.ID) consensus.LinkDelay {
	if c.TestDelay <= 0 && c.TestJitter <= 0 {
		return nil
	}
	return consensus.UniformDelay(consensus.LinkDelay{Delay: c.TestDelay, Jitter: c.TestJitter})
}

// LoopbackConfig is the configuration of an in-process node on loopback with
// ephemeral ports and fast raft timings, for tests and tools.
func LoopbackConfig(dataDir string) configs.Config {
	c := configs.Default()
	c.DataDir = dataDir
	c.HTTP.Addr = "127.0.0.1:0"
	c.Admin.Addr = "127.0.0.1:0"
	c.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	c.Raft.HeartbeatTimeout = 300 * time.Millisecond
	c.Raft.ElectionTimeout = 300 * time.Millisecond
	return c
}

// warnIfShared warns when the node's private key file can be read or
// written by other users than its owner: whoever reads it can act as this
// node, its peer id and its cosignatures. trustd writes it 0600; a copy or
// a restore may not have kept that.
func warnIfShared(log *slog.Logger, keyFile string) {
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	log.Warn("the node's private key is readable by other users: it signs as this node (peer id, checkpoint cosignatures); chmod 600 it",
		"file", keyFile, "mode", fmt.Sprintf("%#o", fi.Mode().Perm()))
}
