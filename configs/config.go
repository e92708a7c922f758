package configs

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v4"
)

// Config is a node's configuration. Each leaf field is one configuration
// key, named by the fields' mapstructure tags joined by dots (log.level);
// its default, flag, environment variable and meaning are its entry in
// keyTable (keys.go), and `trustd config keys` prints them all.
type Config struct {
	DataDir string       `mapstructure:"data_dir" json:"data_dir"`
	Genesis string       `mapstructure:"genesis" json:"genesis"` // empty: development mode
	HTTP    HTTPConfig   `mapstructure:"http" json:"http"`
	P2P     P2PConfig    `mapstructure:"p2p" json:"p2p"`
	Raft    RaftConfig   `mapstructure:"raft" json:"raft"`
	Admin   AdminConfig  `mapstructure:"admin" json:"admin"`
	Log     LogConfig    `mapstructure:"log" json:"log"`
	Proofs  ProofsConfig `mapstructure:"proofs" json:"proofs"`
}

// ProofsConfig configures the verifiable answers: the checkpoints of the
// registry's log that the genesis cosigners cosign.
type ProofsConfig struct {
	// CosignInterval is the longest time between two cosigned
	// checkpoints, writes or not: answers carry freshness.
	CosignInterval time.Duration `mapstructure:"cosign_interval" json:"cosign_interval"`
	// AuditInterval is how often the node checks its stored state against
	// its own commitment (registry.State.SelfAudit) after the check at
	// start; 0 checks only at start (and after a proof read found the
	// state corrupt).
	AuditInterval time.Duration `mapstructure:"audit_interval" json:"audit_interval"`
}

// AdminConfig configures the operators' admin API (cluster membership).
type AdminConfig struct {
	Addr        string `mapstructure:"addr" json:"addr"`
	Token       string `mapstructure:"token" json:"token"` // a secret: Redacted masks it
	TLSCertFile string `mapstructure:"tls_cert_file" json:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file" json:"tls_key_file"`
}

// HTTPConfig configures the gateway.
type HTTPConfig struct {
	Addr         string        `mapstructure:"addr" json:"addr"`
	MaxBodyBytes int64         `mapstructure:"max_body_bytes" json:"max_body_bytes"`
	ReadTimeout  time.Duration `mapstructure:"read_timeout" json:"read_timeout"`
	WriteTimeout time.Duration `mapstructure:"write_timeout" json:"write_timeout"`
	MaxWait      time.Duration `mapstructure:"max_wait" json:"max_wait"`
	// MaxWatchStreams bounds the watch streams (GET /v1/watch) open at
	// once, MaxWatchStreamsPerAddress those of one client address.
	MaxWatchStreams           int          `mapstructure:"max_watch_streams" json:"max_watch_streams"`
	MaxWatchStreamsPerAddress int          `mapstructure:"max_watch_streams_per_address" json:"max_watch_streams_per_address"`
	TLSCertFile               string       `mapstructure:"tls_cert_file" json:"tls_cert_file"`
	TLSKeyFile                string       `mapstructure:"tls_key_file" json:"tls_key_file"`
	Limits                    LimitsConfig `mapstructure:"limits" json:"limits"`
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
	MaxTracked   int     `mapstructure:"max_tracked" json:"max_tracked"`
}

// P2PConfig configures the libp2p host.
type P2PConfig struct {
	Listen  []string `mapstructure:"listen" json:"listen"`
	Peers   []string `mapstructure:"peers" json:"peers"`
	PSKFile string   `mapstructure:"psk_file" json:"psk_file"`
	// Members behind NAT (docs/OPERATIONS.md, Members behind NAT).
	Reachability string   `mapstructure:"reachability" json:"reachability"`
	RelayService bool     `mapstructure:"relay_service" json:"relay_service"`
	StaticRelays []string `mapstructure:"static_relays" json:"static_relays"`
	HolePunching bool     `mapstructure:"hole_punching" json:"hole_punching"`
	// TestDelay and TestJitter stand in for distance between members in
	// tests and benchmarks: everything this node sends to another member
	// is held back TestDelay plus up to TestJitter. trustd refuses them
	// without --allow-test-delay.
	TestDelay  time.Duration `mapstructure:"test_delay" json:"test_delay"`
	TestJitter time.Duration `mapstructure:"test_jitter" json:"test_jitter"`
}

// RaftConfig configures consensus.
type RaftConfig struct {
	Bootstrap         bool          `mapstructure:"bootstrap" json:"bootstrap"`
	SnapshotInterval  time.Duration `mapstructure:"snapshot_interval" json:"snapshot_interval"`
	SnapshotThreshold uint64        `mapstructure:"snapshot_threshold" json:"snapshot_threshold"`
	TrailingLogs      uint64        `mapstructure:"trailing_logs" json:"trailing_logs"`
	StreamSnapshots   bool          `mapstructure:"stream_snapshots" json:"stream_snapshots"`
	HeartbeatTimeout  time.Duration `mapstructure:"heartbeat_timeout" json:"heartbeat_timeout"`
	ElectionTimeout   time.Duration `mapstructure:"election_timeout" json:"election_timeout"`
	Join              []string      `mapstructure:"join" json:"join"`
	Nonvoter          bool          `mapstructure:"nonvoter" json:"nonvoter"`
	// MaxFeatureLevel, when not 0, is the highest feature level this node
	// offers the cluster instead of its build's (node.New checks it).
	MaxFeatureLevel int `mapstructure:"max_feature_level" json:"max_feature_level"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `mapstructure:"level" json:"level"`
	Format string `mapstructure:"format" json:"format"`
}

// Default returns the configuration of a single-node development cluster on
// loopback with data under ./trustd-data: every key at its default
// (keyTable).
func Default() Config {
	var c Config
	for _, k := range keys {
		k.setDefault(&c)
	}
	return c
}

// configFlag names the file Load reads; it is the one flag that is no
// configuration key.
const configFlag = "config"

// RegisterFlags adds trustd's flags to fs: --config and the flag of each
// key that has one (keyTable).
func RegisterFlags(fs *pflag.FlagSet) {
	d := Default()
	fs.String(configFlag, "", "path of a YAML configuration file (see configs/)")
	for _, k := range keys {
		if k.flag != "" {
			def := k.get(&d)
			flagAdders[reflect.TypeOf(def)](fs, k.flag, def, k.doc)
		}
	}
}

// Load builds the configuration from defaults, the file named by --config,
// the environment (TRUSTD_*) and the flags in fs, in rising precedence,
// and validates it. The file is read once.
func Load(fs *pflag.FlagSet, environ []string) (*Config, error) {
	c, err := load(fs, environ)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// load is Load without the validation.
func load(fs *pflag.FlagSet, environ []string) (*Config, error) {
	if err := checkEnv(environ); err != nil {
		return nil, err
	}
	v := viper.New()
	d := Default()
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		names = append(names, k.name)
		v.SetDefault(k.name, k.get(&d))
		if err := v.BindEnv(k.name, k.env); err != nil {
			return nil, err
		}
		if k.flag == "" {
			continue
		}
		if f := fs.Lookup(k.flag); f != nil {
			if err := v.BindPFlag(k.name, f); err != nil {
				return nil, err
			}
		}
	}
	if f := fs.Lookup(configFlag); f != nil && f.Value.String() != "" {
		file := f.Value.String()
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read config %s: %w", file, err)
		}
		// Parsed here first: a syntax error names the line it is on
		// (viper's YAML parser, go-yaml v3, names the line where the
		// construct around it began, often the line before).
		if err := checkCaseTwins(file, b); err != nil {
			return nil, err
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("read config %s: %w", file, err)
		}
		if err := checkFileKeys(file, v.AllKeys(), names); err != nil {
			return nil, err
		}
	}
	var c Config
	if err := v.UnmarshalExact(&c, func(dc *mapstructure.DecoderConfig) {
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(strictValues, dc.DecodeHook)
	}); err != nil {
		return nil, decodeError(v, err)
	}
	return &c, nil
}

// strictValues refuses the values a configuration file's YAML gives that
// viper's loose conversions would read with another meaning: a bare
// number for a duration (nanoseconds: http.max_wait: 30 was 30ns), a
// negative number for an unsigned setting (raft.trailing_logs: -1 became
// 18446744073709551615), a fraction for a whole number (2.7 became 2).
// The environment and flags give strings, which the conversions already
// refuse in those cases.
func strictValues(from, to reflect.Type, data any) (any, error) {
	if data == nil {
		return data, nil
	}
	val := reflect.ValueOf(data)
	switch {
	case to == reflect.TypeFor[time.Duration]() && from != to: // a default is a duration already
		if val.CanInt() && val.Int() != 0 || val.CanUint() && val.Uint() != 0 || val.CanFloat() && val.Float() != 0 {
			return nil, fmt.Errorf("%v is a number without a unit: give a duration such as 30s, 5m or 1h", data)
		}
	case to.Kind() >= reflect.Uint && to.Kind() <= reflect.Uint64:
		if val.CanInt() && val.Int() < 0 || val.CanFloat() && val.Float() < 0 {
			return nil, fmt.Errorf("%v is negative: give 0 or more", data)
		}
		fallthrough
	case to.Kind() >= reflect.Int && to.Kind() <= reflect.Int64:
		if val.CanFloat() && val.Float() != math.Trunc(val.Float()) {
			return nil, fmt.Errorf("%v is not a whole number", data)
		}
	}
	return data, nil
}

// checkCaseTwins refuses a configuration file (named file, holding b)
// that is not YAML, naming the line of the error, or in which one mapping
// holds two keys that differ only in case (Log: and log:). Keys are
// case-insensitive, and of two such keys viper keeps one without a word,
// so a setting written under the other would be lost.
func checkCaseTwins(file string, b []byte) error {
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
func checkEnv(environ []string) error {
	known := map[string]bool{}
	for _, k := range keys {
		known[k.env] = true
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix) && !known[name] {
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
// minSnapshotInterval is raft's least snapshot interval (raft.ValidateConfig),
// checked before anything is written.
const minSnapshotInterval = 5 * time.Millisecond

// checkPort refuses a listen address (host:port) whose port is no TCP
// port: net.SplitHostPort takes 127.0.0.1:99999, and the listen would
// fail only after the data directory was set up.
func checkPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a TCP port (0 to 65535)", port)
	}
	return nil
}

func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is empty"))
	}
	if err := checkPort(c.HTTP.Addr); err != nil {
		errs = append(errs, fmt.Errorf("http.addr %q: %v", c.HTTP.Addr, err))
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("http.max_body_bytes %d is below 1024", c.HTTP.MaxBodyBytes))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"http.read_timeout", c.HTTP.ReadTimeout}, {"http.write_timeout", c.HTTP.WriteTimeout}, {"http.max_wait", c.HTTP.MaxWait},
		{"raft.heartbeat_timeout", c.Raft.HeartbeatTimeout}, {"raft.election_timeout", c.Raft.ElectionTimeout}, {"raft.snapshot_interval", c.Raft.SnapshotInterval},
		{"proofs.cosign_interval", c.Proofs.CosignInterval}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", d.name))
		}
	}
	if c.Raft.MaxFeatureLevel < 0 {
		errs = append(errs, fmt.Errorf("raft.max_feature_level %d is negative (0: this build's level)", c.Raft.MaxFeatureLevel))
	}
	if c.Proofs.AuditInterval < 0 {
		errs = append(errs, fmt.Errorf("proofs.audit_interval %s is negative (0 audits the state only at start)", c.Proofs.AuditInterval))
	}
	// raft's own limits (raft.ValidateConfig), said with the keys that set
	// them: the leader lease is half the heartbeat timeout and must be 5 ms.
	if c.Raft.HeartbeatTimeout > 0 && c.Raft.HeartbeatTimeout < minHeartbeat {
		errs = append(errs, fmt.Errorf("raft.heartbeat_timeout %s is below %s", c.Raft.HeartbeatTimeout, minHeartbeat))
	}
	if c.Raft.SnapshotInterval > 0 && c.Raft.SnapshotInterval < minSnapshotInterval {
		errs = append(errs, fmt.Errorf("raft.snapshot_interval %s is below %s", c.Raft.SnapshotInterval, minSnapshotInterval))
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
	host, _, _ := net.SplitHostPort(c.Admin.Addr)
	if err := checkPort(c.Admin.Addr); err != nil {
		errs = append(errs, fmt.Errorf("admin.addr %q: %v", c.Admin.Addr, err))
	} else if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" && c.Admin.Token == "" {
		errs = append(errs, fmt.Errorf("admin.addr %q is not loopback: set admin.token so membership changes need it", c.Admin.Addr))
	}
	for _, p := range c.Raft.Join {
		if !strings.Contains(p, "/p2p/") {
			errs = append(errs, fmt.Errorf("raft.join entry %q must end in /p2p/<peer id>", p))
		}
	}
	if c.P2P.TestDelay < 0 || c.P2P.TestJitter < 0 {
		errs = append(errs, fmt.Errorf("p2p.test_delay %s and p2p.test_jitter %s must not be negative", c.P2P.TestDelay, c.P2P.TestJitter))
	}
	if len(c.P2P.Listen) == 0 {
		errs = append(errs, errors.New("p2p.listen is empty"))
	}
	for _, p := range c.P2P.Peers {
		if !strings.Contains(p, "/p2p/") {
			errs = append(errs, fmt.Errorf("p2p.peers entry %q must end in /p2p/<peer id>", p))
		}
	}
	if !slices.Contains([]string{"auto", "public", "private"}, c.P2P.Reachability) {
		errs = append(errs, fmt.Errorf("p2p.reachability %q must be auto, public or private", c.P2P.Reachability))
	}
	for _, p := range c.P2P.StaticRelays {
		if !strings.Contains(p, "/p2p/") {
			errs = append(errs, fmt.Errorf("p2p.static_relays entry %q must end in /p2p/<peer id> (a member's address, as in p2p.peers)", p))
		}
	}
	if c.HTTP.MaxWatchStreams < 1 || c.HTTP.MaxWatchStreamsPerAddress < 1 {
		errs = append(errs, fmt.Errorf("http.max_watch_streams %d and http.max_watch_streams_per_address %d must be at least 1", c.HTTP.MaxWatchStreams, c.HTTP.MaxWatchStreamsPerAddress))
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
	for _, k := range keys {
		if p, ok := k.ptr(&cc).(*string); ok && k.secret && *p != "" {
			*p = "<redacted>"
		}
	}
	return cc
}
