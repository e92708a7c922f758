package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
)

// Environment variables of trustctl's endpoints, as their flags read.
const (
	envServer  = "TRUSTCTL_SERVER"  // --server
	envAdmin   = "TRUSTCTL_ADMIN"   // --admin
	envGenesis = "TRUSTCTL_GENESIS" // --genesis
)

// Default endpoints: a trustd started with its defaults on this machine.
const (
	defaultServer = "http://127.0.0.1:8080"
	defaultAdmin  = "http://127.0.0.1:8081"
)

// errOtherConsortium is a node that does not belong to the consortium
// --genesis names.
var errOtherConsortium = fmt.Errorf("the node belongs to another consortium (%w)", client.ErrWrongNode)

// envOr returns the environment variable name, or def when it is empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// endpointsHelp is the help of --server and --admin: what they accept.
func endpointsHelp(what, env string) string {
	return what + ": a URL or host:port (http:// is assumed; write https:// for TLS); repeat the flag or separate with commas " +
		"to name several nodes, and trustctl moves to the next when one cannot be reached or has no leader (env " + env + ")"
}

// genesisCID reads --genesis: the path of a genesis file, whose CID it
// computes as trustd does, or a CID.
func genesisCID(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	raw, err := os.ReadFile(v)
	switch {
	case err == nil:
		if _, perr := record.ParseGenesis(raw); perr != nil {
			return "", usagef("--genesis %q is not a consortium genesis: %v", v, perr)
		}
		return record.CIDOf(raw), nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("--genesis: %w", err)
	}
	c, cerr := cid.Decode(v)
	if cerr != nil {
		return "", usagef("--genesis %q: neither a file nor a CID: give the consortium's genesis file or its CID (trustctl --verbose node prints it)", v)
	}
	return c.String(), nil
}

// nodeIdentity is the part of GET /v1/status and GET /admin/v1/cluster
// that says which node answers and of which consortium.
type nodeIdentity struct {
	Genesis string `json:"genesis"`
	NodeID  string `json:"node_id"` // /v1/status
	Node    struct {
		NodeID string `json:"node_id"` // /admin/v1/cluster
	} `json:"node"`
}

// identifyTimeout bounds the status read that learns an endpoint's
// consortium.
const identifyTimeout = 5 * time.Second

// identify returns a client's Identify for the endpoints of flag: under
// --verbose it says which node and consortium each endpoint is, and with
// --genesis it refuses a node of another consortium. path is where the
// endpoint's API tells the genesis; token its bearer token.
func (a *app) identify(flag, path, token string) func(ctx context.Context, base string) error {
	return func(ctx context.Context, base string) error {
		if !a.verbose && a.genesis == "" {
			return nil
		}
		c := client.New(base)
		c.Token, c.Flag = token, flag
		// A node that does not tell its consortium soon is passed over for
		// the next endpoint (a hung node, say), not waited for.
		ictx, cancel := context.WithTimeout(ctx, identifyTimeout)
		defer cancel()
		var id nodeIdentity
		if err := c.Get(ictx, path, nil, &id); err != nil {
			return fmt.Errorf("%s %s: learn its consortium: %w", flag, base, err)
		}
		node := id.NodeID
		if node == "" {
			node = id.Node.NodeID
		}
		if a.verbose {
			a.note("trustctl: %s %s: node %s of the consortium with genesis %s\n", flag, base, node, id.Genesis)
		}
		if a.genesis != "" && id.Genesis != a.genesis {
			got := id.Genesis
			if got == "" {
				got = "(it does not say)"
			}
			return fmt.Errorf("%w: %s %s answers for genesis %s, and --genesis is %s: check %s", errOtherConsortium, flag, base, got, a.genesis, flag)
		}
		return nil
	}
}

// setEndpoints reads --server and --genesis and makes the gateway client.
func (a *app) setEndpoints() error {
	eps, err := client.ParseEndpoints(a.server)
	if err != nil {
		return usagef("--server: %w", err)
	}
	if a.genesis, err = genesisCID(a.genesisArg); err != nil {
		return err
	}
	a.gw = client.NewFailover(eps, "--server")
	a.gw.Consistency = a.consistency
	a.gw.Identify = a.identify("--server", "/v1/status", "")
	return nil
}

// serverName is the gateway in use, for messages.
func (a *app) serverName() string { return a.gw.Base }

// serverNames are the gateways --server names, for messages.
func (a *app) serverNames() string { return strings.Join(a.gw.Endpoints, ", ") }
