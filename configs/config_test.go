package configs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func mustFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("trustd", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trustd.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := Load(mustFlags(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "trustd-data" || c.HTTP.Addr != "127.0.0.1:8080" || !c.Raft.Bootstrap || c.HTTP.MaxWait != 10*time.Second {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "data_dir: /from/file\nhttp:\n  addr: 127.0.0.1:1111\n  max_wait: 3s\nlog:\n  level: warn\n")
	env := []string{"TRUSTD_HTTP_ADDR=127.0.0.1:2222", "TRUSTD_LOG_LEVEL=error"}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	c, err := Load(mustFlags(t, "--config", file, "--log-level", "debug"), env)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, got, want string }{
		{"file over default", c.DataDir, "/from/file"},
		{"env over file", c.HTTP.Addr, "127.0.0.1:2222"},
		{"flag over env", c.Log.Level, "debug"},
		{"duration from file", c.HTTP.MaxWait.String(), "3s"},
		{"default kept", c.Log.Format, "text"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestUnknownKeysAreErrors(t *testing.T) {
	file := writeFile(t, "http:\n  adress: 127.0.0.1:1\n")
	if _, err := Load(mustFlags(t, "--config", file), nil); err == nil || !strings.Contains(err.Error(), "adress") {
		t.Fatalf("unknown file key: %v", err)
	}
	if _, err := Load(mustFlags(t), []string{"TRUSTD_HTTP_ADRESS=x"}); err == nil || !strings.Contains(err.Error(), "TRUSTD_HTTP_ADRESS") {
		t.Fatalf("unknown env key: %v", err)
	}
}

func TestValidation(t *testing.T) {
	for _, args := range [][]string{
		{"--http-addr", "nonsense"},
		{"--http-addr", "127.0.0.1:99999"},
		{"--admin-addr", "127.0.0.1:70000"},
		{"--log-level", "loud"},
		{"--peers", "/ip4/127.0.0.1/tcp/1"},
		{"--genesis", "/does/not/exist.json"},
	} {
		if _, err := Load(mustFlags(t, args...), nil); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	for _, env := range [][2]string{
		{"TRUSTD_P2P_REACHABILITY", "sometimes"},
		{"TRUSTD_P2P_STATIC_RELAYS", "/ip4/127.0.0.1/tcp/1"},
	} {
		t.Setenv(env[0], env[1])
		if _, err := Load(mustFlags(t), nil); err == nil || !strings.Contains(err.Error(), strings.ToLower(strings.TrimPrefix(env[0], "TRUSTD_P2P_"))) {
			t.Errorf("%s=%s: %v, want an error naming the key", env[0], env[1], err)
		}
		t.Setenv(env[0], "")
	}
}

// TestRaftLimitsNamedByKey: values raft would refuse at start, or would
// replace with its defaults without a word, are refused with the key.
func TestRaftLimitsNamedByKey(t *testing.T) {
	for raft, want := range map[string]string{
		"heartbeat_timeout: 5ms":                            "raft.heartbeat_timeout 5ms is below 10ms",
		"election_timeout: 500ms":                           "raft.election_timeout 500ms is below raft.heartbeat_timeout 1s",
		"snapshot_threshold: 0":                             "raft.snapshot_threshold must be at least 1",
		"trailing_logs: 0":                                  "raft.trailing_logs must be at least 1",
		"snapshot_interval: 1ms":                            "raft.snapshot_interval 1ms is below 5ms",
		"{heartbeat_timeout: 10ms, election_timeout: 10ms}": "",
	} {
		file := filepath.Join(t.TempDir(), "c.yaml")
		if !strings.HasPrefix(raft, "{") {
			raft = "{" + raft + "}"
		}
		if err := os.WriteFile(file, []byte("raft: "+raft+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(mustFlags(t, "--config", file), nil)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("raft: %s: %v, want %q", raft, err, want)
		}
	}
}

func TestExampleFileLoads(t *testing.T) {
	c, err := Load(mustFlags(t, "--config", "trustd.example.yaml"), nil)
	if err != nil {
		t.Fatalf("configs/trustd.example.yaml: %v", err)
	}
	d := Default()
	if fmt.Sprintf("%+v", *c) != fmt.Sprintf("%+v", d) {
		t.Fatalf("the example file's values differ from the defaults it documents:\n%+v\n%+v", c, d)
	}
}

// TestConfigFileMistakesAreNamed: a misspelt key is named with the key it
// was likely meant to be, a section given a value says what it holds, a
// value of the wrong kind is shown with its key, and a YAML error names
// the line it is on.
func TestConfigFileMistakesAreNamed(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"http:\n  readtimeout: 5s\n", "unknown key http.readtimeout (did you mean http.read_timeout?)"},
		{"admn:\n  addr: 127.0.0.1:1\nlog:\n  fromat: json\n", "unknown keys admn.addr (did you mean admin.addr?), log.fromat (did you mean log.format?)"},
		{"telemetry:\n  endpoint: x\n", "unknown key telemetry.endpoint: configs/trustd.example.yaml lists every key"},
		{"http: 5\n", "http is a section, not a value: give its keys (http.addr, http.limits.address_burst, http.limits.address_rate, http.limits.enabled, http.limits.max_tracked, http.limits.signer_burst, http.limits.signer_rate, http.max_body_bytes, http.max_wait, http.max_watch_streams, http.max_watch_streams_per_address, http.read_timeout, http.tls_cert_file, http.tls_key_file, http.write_timeout)"},
		{"http:\n  read_timeout: five\n", `config: http.read_timeout: "five": time: invalid duration`},
		{"http:\n  max_body_bytes: lots\n", `config: http.max_body_bytes: "lots": cannot parse value`},
		{"Log:\n  level: debug\nhttp:\n  addr: :1\nlog:\n  format: json\n", "Log (line 1) and log (line 5) are the same key: keys are case-insensitive; keep one"},
		{"log:\n  level: debug\n  Level: warn\n", "log.level (line 2) and log.Level (line 3) are the same key"},
		// YAML errors name the line they are on (go-yaml v3, which viper
		// parses with, named line 4 and line 2 for these two).
		{"log:\n  level: debug\nhttp:\n  addr: :1\n  x: [1, 2\nraft:\n  trailing_logs: 1\n", "yaml: line 6: did not find expected ',' or ']'"},
		{"log:\n  level: debug\n\thttp: 1\n", "yaml: line 3: found a tab character"},
		// Numbers that loose conversions would read with another meaning.
		{"http:\n  max_wait: 30\n", `config: http.max_wait: "30": 30 is a number without a unit: give a duration such as 30s`},
		{"raft:\n  trailing_logs: -1\n", `config: raft.trailing_logs: "-1": -1 is negative: give 0 or more`},
		{"raft:\n  snapshot_threshold: -5\n", `config: raft.snapshot_threshold: "-5": -5 is negative`},
		{"http:\n  limits:\n    address_burst: 2.7\n", `config: http.limits.address_burst: "2.7": 2.7 is not a whole number`},
	} {
		_, err := Load(mustFlags(t, "--config", writeFile(t, tc.yaml)), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestLimitsAndTLSKeys: the write limits and the TLS files are set by
// the environment (as by file), and values that cannot work are refused
// by key.
func TestWholeNumbersAndDurationsStillLoad(t *testing.T) {
	c, err := Load(mustFlags(t, "--config", writeFile(t, "http:\n  max_wait: 30s\n  max_body_bytes: 2048\nraft:\n  trailing_logs: 20000\n  snapshot_threshold: 9000\n")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.MaxWait != 30*time.Second || c.HTTP.MaxBodyBytes != 2048 || c.Raft.TrailingLogs != 20000 {
		t.Fatalf("loaded %+v %+v", c.HTTP, c.Raft)
	}
}

func TestLimitsAndTLSKeys(t *testing.T) {
	load := func(t *testing.T, env ...string) (*Config, error) {
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		return Load(mustFlags(t), env)
	}
	t.Run("set", func(t *testing.T) {
		c, err := load(t, "TRUSTD_HTTP_LIMITS_ADDRESS_RATE=2.5", "TRUSTD_HTTP_LIMITS_SIGNER_BURST=3",
			"TRUSTD_HTTP_TLS_CERT_FILE=gw.crt", "TRUSTD_HTTP_TLS_KEY_FILE=gw.key", "TRUSTD_ADMIN_TLS_CERT_FILE=a.crt", "TRUSTD_ADMIN_TLS_KEY_FILE=a.key")
		if err != nil {
			t.Fatal(err)
		}
		if l := c.HTTP.Limits; !l.Enabled || l.AddressRate != 2.5 || l.SignerBurst != 3 || c.HTTP.TLSKeyFile != "gw.key" || c.Admin.TLSCertFile != "a.crt" {
			t.Fatalf("%+v %+v", c.HTTP, c.Admin)
		}
	})
	for _, tc := range []struct{ env, want string }{
		{"TRUSTD_HTTP_LIMITS_ADDRESS_RATE=0", "http.limits.address_rate 0"},
		{"TRUSTD_HTTP_LIMITS_SIGNER_BURST=0", "http.limits.signer_burst 0"},
		{"TRUSTD_HTTP_LIMITS_MAX_TRACKED=0", "http.limits.max_tracked 0"},
		{"TRUSTD_HTTP_MAX_WATCH_STREAMS=0", "http.max_watch_streams 0"},
		{"TRUSTD_HTTP_MAX_WATCH_STREAMS_PER_ADDRESS=0", "http.max_watch_streams_per_address 0"},
		{"TRUSTD_HTTP_TLS_CERT_FILE=gw.crt", "http.tls_cert_file and http.tls_key_file go together"},
		{"TRUSTD_ADMIN_TLS_KEY_FILE=a.key", "admin.tls_cert_file and admin.tls_key_file go together"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			if _, err := load(t, tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want an error saying %q", err, tc.want)
			}
		})
	}
	t.Run("disabled", func(t *testing.T) {
		if _, err := load(t, "TRUSTD_HTTP_LIMITS_ENABLED=false", "TRUSTD_HTTP_LIMITS_ADDRESS_RATE=0"); err != nil {
			t.Errorf("limits disabled with a zero rate: %v", err)
		}
	})
}
