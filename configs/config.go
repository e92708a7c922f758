package configs

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Config is a node's configuration.
type Config struct {
	// DataDir holds the state, the raft log, snapshots, the node identity
	// and, in development mode, the generated genesis and keys.
	DataDir string `mapstructure:"data_dir" json:"data_dir"`
	// Genesis is the path of the consortium's genesis document. Empty means
	// development mode: a genesis and its keys are generated in DataDir.
	Genesis string      `mapstructure:"genesis" json:"genesis"`
	HTTP    HTTPConfig  `mapstructure:"http" json:"http"`
	P2P     P2PConfig   `mapstructure:"p2p" json:"p2p"`
	Raft    RaftConfig  `mapstructure:"raft" json:"raft"`
	Admin   AdminConfig `mapstructure:"admin" json:"admin"`
	Log     LogConfig   `mapstructure:"log" json:"log"`
}

// AdminConfig configures the operators' admin API (cluster membership).
type AdminConfig struct {
	// Addr is the admin listener; loopback by default. Off loopback it
	// needs a Token.
	Addr string `mapstructure:"addr" json:"addr"`
	// Token, if set, must be sent as "Authorization: Bearer <token>".
	Token string `mapstructure:"token" json:"token"`
	// TLSCertFile and TLSKeyFile, both set, serve the admin API over
	// HTTPS (PEM files, read again on SIGHUP).
	TLSCertFile string `mapstructure:"tls_cert_file" json:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file" json:"tls_key_file"`
}

// HTTPConfig configures the gateway.
type HTTPConfig struct {
	Addr         string        `mapstructure:"addr" json:"addr"`
	MaxBodyBytes int64         `mapstructure:"max_body_bytes" json:"max_body_bytes"`
	ReadTimeout  time.Duration `mapstructure:"read_timeout" json:"read_timeout"`
	WriteTimeout time.Duration `mapstructure:"write_timeout" json:"write_timeout"`
	// MaxWait bounds how long a min_index read waits for the node to catch up.
	MaxWait time.Duration `mapstructure:"max_wait" json:"max_wait"`
	// TLSCertFile and TLSKeyFile, both set, serve the gateway over HTTPS
	// (PEM files, read again on SIGHUP).
	TLSCertFile string `mapstructure:"tls_cert_file" json:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file" json:"tls_key_file"`
	// Limits bounds each client's writes.
	Limits LimitsConfig `mapstructure:"limits" json:"limits"`
}

// LimitsConfig bounds the writes (POST /v1/operations) of each client
// address and of each signer: a token bucket each, refilled at the rate
// (writes per second) and holding up to the burst. A refused write is
// answered 429 with Retry-After. The size of one write is
// http.max_body_bytes.
type LimitsConfig struct {
	Enabled      bool    `mapstructure:"enabled" json:"enabled"`
	AddressRate  float64 `mapstructure:"address_rate" json:"address_rate"`
	AddressBurst int     `mapstructure:"address_burst" json:"address_burst"`
	SignerRate   float64 `mapstructure:"signer_rate" json:"signer_rate"`
	SignerBurst  int     `mapstructure:"signer_burst" json:"signer_burst"`
	// MaxTracked bounds the client addresses, and separately the signers,
	// whose buckets are kept; the least recently seen beyond it are
	// forgotten (and start again with a full bucket).
	MaxTracked int `mapstructure:"max_tracked" json:"max_tracked"`
}

// P2PConfig configures the libp2p host.
type P2PConfig struct {
	Listen []string `mapstructure:"listen" json:"listen"`
	// Peers are the other cluster members: multiaddrs ending in /p2p/<id>.
	Peers []string `mapstructure:"peers" json:"peers"`
	// PSKFile holds a 32-byte pre-shared key (64 hex digits) closing the
	// network to nodes without it.
	PSKFile string `mapstructure:"psk_file" json:"psk_file"`
}

// RaftConfig configures consensus.
type RaftConfig struct {
	// Bootstrap starts a new cluster of this node and its peers when the
	// node has no raft state yet.
	Bootstrap         bool          `mapstructure:"bootstrap" json:"bootstrap"`
	SnapshotInterval  time.Duration `mapstructure:"snapshot_interval" json:"snapshot_interval"`
	SnapshotThreshold uint64        `mapstructure:"snapshot_threshold" json:"snapshot_threshold"`
	TrailingLogs      uint64        `mapstructure:"trailing_logs" json:"trailing_logs"`
	HeartbeatTimeout  time.Duration `mapstructure:"heartbeat_timeout" json:"heartbeat_timeout"`
	ElectionTimeout   time.Duration `mapstructure:"election_timeout" json:"election_timeout"`
	// Join names members (multiaddrs ending in /p2p/<id>) this node asks to
	// add it when it has no raft state; it then does not bootstrap.
	Join []string `mapstructure:"join" json:"join"`
	// Nonvoter makes a joining node a non-voting read replica.
	Nonvoter bool `mapstructure:"nonvoter" json:"nonvoter"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `mapstructure:"level" json:"level"`   // debug, info, warn, error
	Format string `mapstructure:"format" json:"format"` // text or json
}

// Default returns the configuration of a single-node development cluster on
// loopback with data under ./trustd-data.
func Default() Config {
	return Config{
		DataDir: "trustd-data",
		HTTP: HTTPConfig{
			Addr: "127.0.0.1:8080", MaxBodyBytes: 1 << 20,
			ReadTimeout: 15 * time.Second, WriteTimeout: 30 * time.Second, MaxWait: 10 * time.Second,
			// Generous: development, the tests and trustbench (thousands
			// of writes a second from one address and a few signers) are
			// never limited. Production sets its own (docs/OPERATIONS.md).
			Limits: LimitsConfig{Enabled: true, AddressRate: 10000, AddressBurst: 20000, SignerRate: 10000, SignerBurst: 20000, MaxTracked: 65536},
		},
		P2P: P2PConfig{Listen: []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"}},
		Raft: RaftConfig{
			Bootstrap: true, SnapshotInterval: 2 * time.Minute, SnapshotThreshold: 8192, TrailingLogs: 10240,
			HeartbeatTimeout: time.Second, ElectionTimeout: time.Second,
		},
		Admin: AdminConfig{Addr: "127.0.0.1:8081"},
		Log:   LogConfig{Level: "info", Format: "text"},
	}
}

// flagKeys maps each flag to the configuration key it sets.
var flagKeys = map[string]string{
	"data-dir":   "data_dir",
	"genesis":    "genesis",
	"http-addr":  "http.addr",
	"listen":     "p2p.listen",
	"peers":      "p2p.peers",
	"psk-file":   "p2p.psk_file",
	"bootstrap":  "raft.bootstrap",
	"join":       "raft.join",
	"nonvoter":   "raft.nonvoter",
	"admin-addr": "admin.addr",
	"log-level":  "log.level",
}

// RegisterFlags adds trustd's flags to fs.
func RegisterFlags(fs *pflag.FlagSet) {
	d := Default()
	fs.String("config", "", "path of a YAML configuration file (see configs/)")
	fs.String("data-dir", d.DataDir, "directory for state, raft log, snapshots and node identity")
	fs.String("genesis", d.Genesis, "path of the consortium genesis document (empty: development mode)")
	fs.String("http-addr", d.HTTP.Addr, "gateway listen address")
	fs.StringSlice("listen", d.P2P.Listen, "libp2p listen multiaddrs")
	fs.StringSlice("peers", d.P2P.Peers, "other cluster members as multiaddrs ending in /p2p/<peer id>")
	fs.String("psk-file", d.P2P.PSKFile, "file with a 32-byte pre-shared network key (64 hex digits)")
	fs.Bool("bootstrap", d.Raft.Bootstrap, "start a new cluster when this node has no raft state")
	fs.StringSlice("join", d.Raft.Join, "ask these members (multiaddrs ending in /p2p/<id>) to add this node")
	fs.Bool("nonvoter", d.Raft.Nonvoter, "join as a non-voting read replica")
	fs.String("admin-addr", d.Admin.Addr, "admin API listen address (cluster membership)")
	fs.String("log-level", d.Log.Level, "log level: debug, info, warn or error")
}

// Load builds the configuration from defaults, the file named by --config,
// the environment (TRUSTD_*) and the flags in fs, in rising precedence.
func Load(fs *pflag.FlagSet, environ []string) (*Config, error) {
	v := viper.New()
	d := Default()
	keys := setDefaults(v, d)
	v.SetEnvPrefix("TRUSTD")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if err := checkEnv(environ, keys); err != nil {
		return nil, err
	}
	for name, k := range flagKeys {
		if f := fs.Lookup(name); f != nil {
			if err := v.BindPFlag(k, f); err != nil {
				return nil, err
			}
		}
	}
	if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
		v.SetConfigFile(f.Value.String())
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config %s: %w", f.Value.String(), err)
		}
		if err := checkCaseTwins(f.Value.String()); err != nil {
			return nil, err
		}
		if err := checkFileKeys(f.Value.String(), v.AllKeys(), keys); err != nil {
			return nil, err
		}
	}
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		return nil, decodeError(v, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// setDefaults registers every key with its default, so that environment
// variables can set any of them, and returns the keys.
func setDefaults(v *viper.Viper, d Config) []string {
	setTyped(v, d)
	return v.AllKeys()
}

func setTyped(v *viper.Viper, d Config) {
	v.SetDefault("data_dir", d.DataDir)
	v.SetDefault("genesis", d.Genesis)
	v.SetDefault("http.addr", d.HTTP.Addr)
	v.SetDefault("http.max_body_bytes", d.HTTP.MaxBodyBytes)
	v.SetDefault("http.read_timeout", d.HTTP.ReadTimeout)
	v.SetDefault("http.write_timeout", d.HTTP.WriteTimeout)
	v.SetDefault("http.max_wait", d.HTTP.MaxWait)
	v.SetDefault("http.tls_cert_file", d.HTTP.TLSCertFile)
	v.SetDefault("http.tls_key_file", d.HTTP.TLSKeyFile)
	v.SetDefault("http.limits.enabled", d.HTTP.Limits.Enabled)
	v.SetDefault("http.limits.address_rate", d.HTTP.Limits.AddressRate)
	v.SetDefault("http.limits.address_burst", d.HTTP.Limits.AddressBurst)
	v.SetDefault("http.limits.signer_rate", d.HTTP.Limits.SignerRate)
	v.SetDefault("http.limits.signer_burst", d.HTTP.Limits.SignerBurst)
	v.SetDefault("http.limits.max_tracked", d.HTTP.Limits.MaxTracked)
	v.SetDefault("p2p.listen", d.P2P.Listen)
	v.SetDefault("p2p.peers", d.P2P.Peers)
	v.SetDefault("p2p.psk_file", d.P2P.PSKFile)
	v.SetDefault("raft.bootstrap", d.Raft.Bootstrap)
	v.SetDefault("raft.snapshot_interval", d.Raft.SnapshotInterval)
	v.SetDefault("raft.snapshot_threshold", d.Raft.SnapshotThreshold)
	v.SetDefault("raft.trailing_logs", d.Raft.TrailingLogs)
	v.SetDefault("raft.heartbeat_timeout", d.Raft.HeartbeatTimeout)
	v.SetDefault("raft.election_timeout", d.Raft.ElectionTimeout)
	v.SetDefault("raft.join", d.Raft.Join)
	v.SetDefault("raft.nonvoter", d.Raft.Nonvoter)
	v.SetDefault("admin.addr", d.Admin.Addr)
	v.SetDefault("admin.token", d.Admin.Token)
	v.SetDefault("admin.tls_cert_file", d.Admin.TLSCertFile)
	v.SetDefault("admin.tls_key_file", d.Admin.TLSKeyFile)
	v.SetDefault("log.level", d.Log.Level)
	v.SetDefault("log.format", d.Log.Format)
}

// checkCaseTwins refuses a configuration file in which one mapping holds
// two keys that differ only in case (Log: and log:). Keys are
// case-insensitive, and of two such keys viper keeps one without a word,
// so a setting written under the other would be lost.
func checkCaseTwins(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read config %s: %w", file, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("read config %s: %w", file, err)
	}
	var walk func(n *yaml.Node, path string) error
	walk = func(n *yaml.Node, path string) error {
		if n.Kind == yaml.DocumentNode {
			for _, c := range n.Content {
				if err := walk(c, path); err != nil {
					return err
				}
			}
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return nil
		}
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			lower := strings.ToLower(k.Value)
			if first, ok := seen[lower]; ok {
				return fmt.Errorf("config %s: %s%s (line %d) and %s%s (line %d) are the same key: keys are case-insensitive; keep one",
					file, path, first.Value, first.Line, path, k.Value, k.Line)
			}
			seen[lower] = k
			if err := walk(n.Content[i+1], path+lower+"."); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(&doc, "")
}

// checkFileKeys refuses keys of the configuration file that name no
// configuration key, with the known key each was likely meant to be.
func checkFileKeys(file string, got, known []string) error {
	isKnown := map[string]bool{}
	for _, k := range known {
		isKnown[k] = true
	}
	var unknown []string
	for _, k := range got {
		if isKnown[k] {
			continue
		}
		if sub := sectionKeys(k, known); sub != nil {
			return fmt.Errorf("config %s: %s is a section, not a value: give its keys (%s)", file, k, strings.Join(sub, ", "))
		}
		if m := nearestKey(k, known); m != "" {
			k += " (did you mean " + m + "?)"
		}
		unknown = append(unknown, k)
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	what := "unknown key"
	if len(unknown) > 1 {
		what += "s"
	}
	return fmt.Errorf("config %s: %s %s: configs/trustd.example.yaml lists every key", file, what, strings.Join(unknown, ", "))
}

// sectionKeys returns the known keys under section k, or nil if k is not
// a section.
func sectionKeys(k string, known []string) []string {
	var sub []string
	for _, c := range known {
		if strings.HasPrefix(c, k+".") {
			sub = append(sub, c)
		}
	}
	sort.Strings(sub)
	return sub
}

// nearestKey returns the known key k was most likely meant to be: the same
// but for underscores and case, or within two edits; "" if none is.
func nearestKey(k string, known []string) string {
	squash := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
	best, bestDist := "", 3
	for _, c := range known {
		if squash(c) == squash(k) {
			return c
		}
		if d := editDistance(k, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (configuration keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decodeError says which keys have values of the wrong kind, one line
// each with the value given, instead of mapstructure's joined text.
func decodeError(v *viper.Viper, err error) error {
	var lines []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				walk(inner)
			}
			return
		}
		var de *mapstructure.DecodeError
		if errors.As(e, &de) {
			lines = append(lines, fmt.Sprintf("%s: %q: %v", de.Name(), fmt.Sprint(v.Get(de.Name())), errors.Unwrap(de)))
			return
		}
		lines = append(lines, e.Error())
	}
	walk(err)
	if len(lines) == 0 {
		return fmt.Errorf("config: %w", err)
	}
	sort.Strings(lines)
	return fmt.Errorf("config: %s", strings.Join(lines, "; "))
}

// checkEnv refuses TRUSTD_* variables that name no configuration key.
func checkEnv(environ []string, keys []string) error {
	known := map[string]bool{}
	for _, k := range keys {
		known["TRUSTD_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = true
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "TRUSTD_") && !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown environment variables %s: configuration keys map to TRUSTD_<SECTION>_<KEY>, e.g. TRUSTD_HTTP_ADDR", strings.Join(unknown, ", "))
	}
	return nil
}

// minHeartbeat is the shortest raft.heartbeat_timeout raft accepts.
const minHeartbeat = 10 * time.Millisecond

// Validate checks the configuration and says what to fix.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is empty"))
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		errs = append(errs, fmt.Errorf("http.addr %q: %v", c.HTTP.Addr, err))
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("http.max_body_bytes %d is below 1024", c.HTTP.MaxBodyBytes))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"http.read_timeout", c.HTTP.ReadTimeout}, {"http.write_timeout", c.HTTP.WriteTimeout}, {"http.max_wait", c.HTTP.MaxWait},
		{"raft.heartbeat_timeout", c.Raft.HeartbeatTimeout}, {"raft.election_timeout", c.Raft.ElectionTimeout}, {"raft.snapshot_interval", c.Raft.SnapshotInterval}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", d.name))
		}
	}
	// raft's own limits (raft.ValidateConfig), said with the keys that set
	// them: the leader lease is half the heartbeat timeout and must be 5 ms.
	if c.Raft.HeartbeatTimeout > 0 && c.Raft.HeartbeatTimeout < minHeartbeat {
		errs = append(errs, fmt.Errorf("raft.heartbeat_timeout %s is below %s", c.Raft.HeartbeatTimeout, minHeartbeat))
	}
	if c.Raft.ElectionTimeout > 0 && c.Raft.ElectionTimeout < c.Raft.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("raft.election_timeout %s is below raft.heartbeat_timeout %s", c.Raft.ElectionTimeout, c.Raft.HeartbeatTimeout))
	}
	// Zero would let raft's defaults apply silently; a node that should keep
	// no log after a snapshot cannot (followers catch up from that log).
	if c.Raft.SnapshotThreshold == 0 {
		errs = append(errs, errors.New("raft.snapshot_threshold must be at least 1"))
	}
	if c.Raft.TrailingLogs == 0 {
		errs = append(errs, errors.New("raft.trailing_logs must be at least 1"))
	}
	if host, _, err := net.SplitHostPort(c.Admin.Addr); err != nil {
		errs = append(errs, fmt.Errorf("admin.addr %q: %v", c.Admin.Addr, err))
	} else if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" && c.Admin.Token == "" {
		errs = append(errs, fmt.Errorf("admin.addr %q is not loopback: set admin.token so membership changes need it", c.Admin.Addr))
	}
	for _, p := range c.Raft.Join {
		if !strings.Contains(p, "/p2p/") {
			errs = append(errs, fmt.Errorf("raft.join entry %q must end in /p2p/<peer id>", p))
		}
	}
	if len(c.P2P.Listen) == 0 {
		errs = append(errs, errors.New("p2p.listen is empty"))
	}
	for _, p := range c.P2P.Peers {
		if !strings.Contains(p, "/p2p/") {
			errs = append(errs, fmt.Errorf("p2p.peers entry %q must end in /p2p/<peer id>", p))
		}
	}
	if l := c.HTTP.Limits; l.Enabled {
		if l.AddressRate <= 0 || l.SignerRate <= 0 {
			errs = append(errs, fmt.Errorf("http.limits.address_rate %g and http.limits.signer_rate %g must be positive (or set http.limits.enabled: false)", l.AddressRate, l.SignerRate))
		}
		if l.AddressBurst < 1 || l.SignerBurst < 1 {
			errs = append(errs, fmt.Errorf("http.limits.address_burst %d and http.limits.signer_burst %d must be at least 1", l.AddressBurst, l.SignerBurst))
		}
		if l.MaxTracked < 1 {
			errs = append(errs, fmt.Errorf("http.limits.max_tracked %d must be at least 1", l.MaxTracked))
		}
	}
	for _, p := range []struct{ name, cert, key string }{{"http", c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile}, {"admin", c.Admin.TLSCertFile, c.Admin.TLSKeyFile}} {
		if (p.cert == "") != (p.key == "") {
			errs = append(errs, fmt.Errorf("%s.tls_cert_file and %s.tls_key_file go together: set both for HTTPS, or neither", p.name, p.name))
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		errs = append(errs, fmt.Errorf("log.level %q must be debug, info, warn or error", c.Log.Level))
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		errs = append(errs, fmt.Errorf("log.format %q must be text or json", c.Log.Format))
	}
	if c.Genesis != "" {
		if _, err := os.Stat(c.Genesis); err != nil {
			errs = append(errs, fmt.Errorf("genesis: %v", err))
		}
	}
	return errors.Join(errs...)
}

// Redacted returns the configuration as logged at start, secrets masked.
func (c *Config) Redacted() Config {
	cc := *c
	if cc.Admin.Token != "" {
		cc.Admin.Token = "<redacted>"
	}
	return cc
}
