package configs

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// keyTable is the one list of configuration keys. Each entry names the
// Config field it sets, its default, its command-line flag ("" for none)
// and the line that documents it. Everything else is derived from it: the
// key's name (the field's mapstructure tags joined by dots), its
// environment variable (TRUSTD_ and the name in capitals, dots as
// underscores), Default, the viper defaults, environment bindings and
// flags of Load and RegisterFlags, Redacted, and the reference and example
// file that Reference and Example print (docs/OPERATIONS.md and
// configs/trustd.example.yaml hold their output; a test keeps them equal).
//
// The order is the order of the example file: keys of one section stay
// together. A Config field without an entry, or with two, stops the
// program at start (buildKeys), and TestKeyTable says which.
var keyTable = []key{
	keyOf(func(c *Config) *string { return &c.DataDir }, "trustd-data", "data-dir",
		"directory for the state, raft log, snapshots, the node's libp2p identity (node.key) and, in development mode, the generated genesis and keys"),
	keyOf(func(c *Config) *string { return &c.Genesis }, "", "genesis",
		"path of the consortium genesis document shared by every node; empty: development mode (a one-member genesis is generated in data_dir)"),

	keyOf(func(c *Config) *string { return &c.HTTP.Addr }, "127.0.0.1:8080", "http-addr",
		"gateway listen address (verifiers and trustctl talk to it)"),
	keyOf(func(c *Config) *int64 { return &c.HTTP.MaxBodyBytes }, 1<<20, "",
		"largest request body accepted, in bytes (operations are also capped at 256 KiB)"),
	keyOf(func(c *Config) *time.Duration { return &c.HTTP.ReadTimeout }, 15*time.Second, "",
		"longest time to read a request"),
	keyOf(func(c *Config) *time.Duration { return &c.HTTP.WriteTimeout }, 30*time.Second, "",
		"longest time to write a response"),
	keyOf(func(c *Config) *time.Duration { return &c.HTTP.MaxWait }, 10*time.Second, "",
		"how long a read with min_index=N or consistency=linearizable may wait, and a listing or export its turn (503 busy after it)"),
	// Each stream holds a connection (a file descriptor) and a goroutine
	// for as long as its client stays: keep these well under the
	// process's open-file limit (docs/OPERATIONS.md, Limits).
	keyOf(func(c *Config) *int { return &c.HTTP.MaxWatchStreams }, 2048, "",
		"most watch streams (GET /v1/watch) open at once; one more is refused with 503"),
	keyOf(func(c *Config) *int { return &c.HTTP.MaxWatchStreamsPerAddress }, 32, "",
		"most watch streams open at once from one client address (an IPv6 /64); one more is refused with 429"),
	keyOf(func(c *Config) *string { return &c.HTTP.TLSCertFile }, "", "",
		"PEM certificate (chain) to serve the gateway over HTTPS; with tls_key_file, both or neither; read again on SIGHUP (a bad new pair keeps the old one)"),
	keyOf(func(c *Config) *string { return &c.HTTP.TLSKeyFile }, "", "",
		"PEM key of tls_cert_file"),
	// Generous: development, the tests and trustbench (thousands of writes
	// a second from one address and a few signers) are never limited.
	// Production sets its own (docs/OPERATIONS.md, Limits).
	keyOf(func(c *Config) *bool { return &c.HTTP.Limits.Enabled }, true, "",
		"limit each client address's and each signer's writes"),
	keyOf(func(c *Config) *float64 { return &c.HTTP.Limits.AddressRate }, 10000, "",
		"writes a second refilled into each client address's bucket"),
	keyOf(func(c *Config) *int { return &c.HTTP.Limits.AddressBurst }, 20000, "",
		"most writes a client address's bucket holds"),
	keyOf(func(c *Config) *float64 { return &c.HTTP.Limits.SignerRate }, 10000, "",
		"writes a second refilled into each signer's bucket"),
	keyOf(func(c *Config) *int { return &c.HTTP.Limits.SignerBurst }, 20000, "",
		"most writes a signer's bucket holds"),
	keyOf(func(c *Config) *int { return &c.HTTP.Limits.MaxTracked }, 65536, "",
		"most client addresses, and separately signers, tracked; the least recently seen beyond it are forgotten"),

	keyOf(func(c *Config) *[]string { return &c.P2P.Listen }, []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"}, "listen",
		"listen multiaddrs of the libp2p host (TCP and QUIC)"),
	keyOf(func(c *Config) *[]string { return &c.P2P.Peers }, nil, "peers",
		"the other cluster members as multiaddrs ending in /p2p/<peer id>; only these peers (and the raft configuration's members) may connect"),
	keyOf(func(c *Config) *string { return &c.P2P.PSKFile }, "", "psk-file",
		"file with a 32-byte pre-shared network key (64 hex digits), closing the network to nodes without it (TCP only: drop the QUIC listen address)"),
	keyOf(func(c *Config) *string { return &c.P2P.Reachability }, "auto", "",
		"whether members can dial this node: auto (AutoNAT, answered by members for members, finds out), public, or private (behind NAT or a firewall: reserve a slot with a relay at once)"),
	keyOf(func(c *Config) *bool { return &c.P2P.RelayService }, true, "",
		"relay (circuit relay v2) for members only, once this node is reachable: reservations and circuits are limited in number and admitted only for peers the allowlist admits"),
	keyOf(func(c *Config) *[]string { return &c.P2P.StaticRelays }, nil, "",
		"members (multiaddrs ending in /p2p/<peer id>) to reserve a relay slot with when this node is not reachable; empty: the members of p2p.peers"),
	keyOf(func(c *Config) *bool { return &c.P2P.HolePunching }, true, "",
		"after a member connects through a relay, dial it back directly or punch a hole (DCUtR); works between public addresses only, and the log says why when it cannot"),
	keyOf(func(c *Config) *time.Duration { return &c.P2P.TestDelay }, 0, "",
		"TESTS AND BENCHMARKS ONLY: one-way delay added to everything this node sends to other members, standing in for distance; trustd refuses it without `--allow-test-delay`"),
	keyOf(func(c *Config) *time.Duration { return &c.P2P.TestJitter }, 0, "",
		"TESTS AND BENCHMARKS ONLY: up to this much random delay added to p2p.test_delay (order kept); trustd refuses it without `--allow-test-delay`"),

	keyOf(func(c *Config) *bool { return &c.Raft.Bootstrap }, true, "bootstrap",
		"start a new cluster of this node and its peers when this node has no raft state yet"),
	keyOf(func(c *Config) *time.Duration { return &c.Raft.SnapshotInterval }, 2*time.Minute, "",
		"how often raft checks whether to take a snapshot"),
	keyOf(func(c *Config) *uint64 { return &c.Raft.SnapshotThreshold }, 8192, "",
		"log entries since the last snapshot that make raft take another"),
	keyOf(func(c *Config) *uint64 { return &c.Raft.TrailingLogs }, 10240, "",
		"log entries kept after a snapshot, so lagging followers catch up from the log"),
	keyOf(func(c *Config) *bool { return &c.Raft.StreamSnapshots }, false, "",
		"write this node's raft snapshots as streams of the whole state when taken, as earlier builds did and can read, instead of keeping them as checkpoints of the state streamed only when sent; set it, then take a snapshot, before rolling back to an earlier build"),
	keyOf(func(c *Config) *time.Duration { return &c.Raft.HeartbeatTimeout }, time.Second, "",
		"time without contact from the leader before a follower starts an election (at least 10ms)"),
	keyOf(func(c *Config) *time.Duration { return &c.Raft.ElectionTimeout }, time.Second, "",
		"time in candidate state without a leader before a new election (at least raft.heartbeat_timeout)"),
	keyOf(func(c *Config) *[]string { return &c.Raft.Join }, nil, "join",
		"members (multiaddrs ending in /p2p/<peer id>) to ask to add this node when it has no raft state yet; a joining node does not bootstrap, and each member asked admits it only if its own p2p.peers lists it"),
	keyOf(func(c *Config) *bool { return &c.Raft.Nonvoter }, false, "nonvoter",
		"join as a non-voting read replica (a regional node near verifiers); needs raft.join, or raft.bootstrap: false and trustctl cluster add-nonvoter: a node that would bootstrap a new cluster is its voter, and trustd refuses to start it so"),
	keyOf(func(c *Config) *int { return &c.Raft.MaxFeatureLevel }, 0, "",
		"highest feature level this node offers the cluster (0: its build's, which `trustd version` prints); the cluster's level is the lowest its members offer, so a lower one holds it there during a staged upgrade. Levels never go down: a node whose state is already above it refuses to start"),

	keyOf(func(c *Config) *time.Duration { return &c.Proofs.CosignInterval }, time.Minute, "",
		"longest time between two cosigned checkpoints of the registry's log, writes or not (a new write is cosigned within about a second); verifiers judge an answer's freshness by it"),
	keyOf(func(c *Config) *time.Duration { return &c.Proofs.AuditInterval }, time.Hour, "",
		"how often the node checks its stored state against its own commitment after the check at start (0: only at start); a node whose state fails refuses to cosign and is not ready (OPERATIONS.md, State audit)"),

	keyOf(func(c *Config) *string { return &c.Admin.Addr }, "127.0.0.1:8081", "admin-addr",
		"admin API listen address (trustctl cluster ...); loopback by default, any other address needs admin.token"),
	keyOf(func(c *Config) *string { return &c.Admin.Token }, "", "",
		`bearer token the admin API requires when set, sent as "Authorization: Bearer <token>" only`).redacted(),
	keyOf(func(c *Config) *string { return &c.Admin.TLSCertFile }, "", "",
		"PEM certificate (chain) to serve the admin API over HTTPS; with tls_key_file, both or neither; read again on SIGHUP"),
	keyOf(func(c *Config) *string { return &c.Admin.TLSKeyFile }, "", "",
		"PEM key of tls_cert_file"),

	keyOf(func(c *Config) *string { return &c.Log.Level }, "info", "log-level",
		"log level: debug, info, warn or error"),
	keyOf(func(c *Config) *string { return &c.Log.Format }, "text", "",
		"log format: text or json"),
}

// keys is keyTable with the names and environment variables filled in.
var keys = mustBuildKeys(keyTable)

// envPrefix starts every configuration environment variable.
const envPrefix = "TRUSTD_"

// key is one configuration key: where it lives in Config and what sets it.
type key struct {
	name   string // dotted, as in the file: "http.limits.address_rate"
	env    string // environment variable: "TRUSTD_HTTP_LIMITS_ADDRESS_RATE"
	flag   string // command-line flag, or "" for none
	doc    string // one line: the flag's usage and the reference's text
	secret bool   // masked by Redacted

	ptr        func(c *Config) any // the field's address in c
	get        func(c *Config) any // the field's value in c
	setDefault func(c *Config)     // sets the field in c to its default
}

// keyOf describes the key of the field that field points to; the types
// make a default of the wrong kind a compile error.
func keyOf[T any](field func(c *Config) *T, def T, flag, doc string) key {
	return key{
		flag: flag, doc: doc,
		ptr: func(c *Config) any { return field(c) },
		get: func(c *Config) any { return *field(c) },
		setDefault: func(c *Config) {
			v := def
			if s, ok := any(def).([]string); ok && s != nil {
				v = any(slices.Clone(s)).(T) // each Config owns its slices
			}
			*field(c) = v
		},
	}
}

// redacted marks the key as a secret that Redacted masks.
func (k key) redacted() key {
	k.secret = true
	return k
}

// errKeyTable is wrapped by every mistake buildKeys finds in a table.
var errKeyTable = errors.New("configuration key table")

func mustBuildKeys(table []key) []key {
	ks, err := buildKeys(table)
	if err != nil {
		panic(err)
	}
	return ks
}

// fieldRef identifies a Config field by its address in one Config value
// and its type (a struct and its first field share an address).
type fieldRef struct {
	addr uintptr
	typ  reflect.Type
}

// buildKeys names each key of table after the mapstructure tags of its
// field, and checks that every leaf field of Config has exactly one key,
// that no flag is used twice, that flags and secrets have types they can
// have, and that each section's keys are listed together.
func buildKeys(table []key) ([]key, error) {
	probe := new(Config)
	fields := map[fieldRef]string{} // every leaf field: its key name
	var order []string
	var walk func(v reflect.Value, prefix string) error
	walk = func(v reflect.Value, prefix string) error {
		for i := range v.NumField() {
			sf := v.Type().Field(i)
			tag, _, _ := strings.Cut(sf.Tag.Get("mapstructure"), ",")
			if tag == "" {
				return fmt.Errorf("%w: field %s%s has no mapstructure tag", errKeyTable, prefix, sf.Name)
			}
			f := v.Field(i)
			if f.Kind() == reflect.Struct {
				if err := walk(f, prefix+tag+"."); err != nil {
					return err
				}
				continue
			}
			fields[fieldRef{f.Addr().Pointer(), f.Addr().Type()}] = prefix + tag
			order = append(order, prefix+tag)
		}
		return nil
	}
	if err := walk(reflect.ValueOf(probe).Elem(), ""); err != nil {
		return nil, err
	}
	out := make([]key, 0, len(table))
	named := map[string]bool{}
	flags := map[string]string{}
	var sections []string // in the order first seen
	for i, k := range table {
		p := reflect.ValueOf(k.ptr(probe))
		name, ok := fields[fieldRef{p.Pointer(), p.Type()}]
		if !ok {
			return nil, fmt.Errorf("%w: entry %d (%s) points at no leaf field of Config", errKeyTable, i, k.doc)
		}
		if named[name] {
			return nil, fmt.Errorf("%w: %s is listed twice", errKeyTable, name)
		}
		named[name] = true
		k.name = name
		k.env = envPrefix + strings.ToUpper(strings.ReplaceAll(name, ".", "_"))
		if k.flag != "" {
			if other, dup := flags[k.flag]; dup {
				return nil, fmt.Errorf("%w: flag --%s sets both %s and %s", errKeyTable, k.flag, other, name)
			}
			flags[k.flag] = name
			if _, ok := flagAdders[p.Type().Elem()]; !ok {
				return nil, fmt.Errorf("%w: %s: no flag of type %s", errKeyTable, name, p.Type().Elem())
			}
		}
		if k.secret && p.Type().Elem().Kind() != reflect.String {
			return nil, fmt.Errorf("%w: %s: only a string can be a secret", errKeyTable, name)
		}
		if s := section(name); len(sections) == 0 || sections[len(sections)-1] != s {
			if slices.Contains(sections, s) {
				return nil, fmt.Errorf("%w: %s is apart from the other keys of section %q: keep a section's keys together", errKeyTable, name, s)
			}
			sections = append(sections, s)
		}
		out = append(out, k)
	}
	for _, name := range order {
		if !named[name] {
			return nil, fmt.Errorf("%w: Config field %s has no entry", errKeyTable, name)
		}
	}
	return out, nil
}

// section returns the section a key is in: "http.limits" for
// "http.limits.enabled", "" for a top-level key.
func section(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return ""
	}
	return name[:i]
}

// flagAdders registers a flag of each type a key with a flag may have.
var flagAdders = map[reflect.Type]func(fs *pflag.FlagSet, name string, def any, usage string){
	reflect.TypeFor[string]():   func(fs *pflag.FlagSet, n string, d any, u string) { fs.String(n, d.(string), u) },
	reflect.TypeFor[[]string](): func(fs *pflag.FlagSet, n string, d any, u string) { fs.StringSlice(n, d.([]string), u) },
	reflect.TypeFor[bool]():     func(fs *pflag.FlagSet, n string, d any, u string) { fs.Bool(n, d.(bool), u) },
	reflect.TypeFor[int]():      func(fs *pflag.FlagSet, n string, d any, u string) { fs.Int(n, d.(int), u) },
	reflect.TypeFor[int64]():    func(fs *pflag.FlagSet, n string, d any, u string) { fs.Int64(n, d.(int64), u) },
	reflect.TypeFor[uint64]():   func(fs *pflag.FlagSet, n string, d any, u string) { fs.Uint64(n, d.(uint64), u) },
	reflect.TypeFor[float64]():  func(fs *pflag.FlagSet, n string, d any, u string) { fs.Float64(n, d.(float64), u) },
	reflect.TypeFor[time.Duration](): func(fs *pflag.FlagSet, n string, d any, u string) {
		fs.Duration(n, d.(time.Duration), u)
	},
}
