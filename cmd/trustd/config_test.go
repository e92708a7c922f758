package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/configs"
)

// TestConfigCommands: trustd config keys and trustd config example print
// the reference and the example file made from configs' list of keys, and
// every flag trustd --help shows is in the reference.
func TestConfigCommands(t *testing.T) {
	out := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, nil, &stdout, &stderr); err != nil {
			t.Fatalf("trustd %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
	ref := out("config", "keys")
	if ref != configs.Reference() {
		t.Errorf("trustd config keys printed:\n%s\nwant configs.Reference():\n%s", ref, configs.Reference())
	}
	if ex := out("config", "example"); ex != configs.Example() {
		t.Errorf("trustd config example printed:\n%s\nwant configs.Example()", ex)
	}
	help := out("--help")
	flags := regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[a-z0-9-]+)`).FindAllStringSubmatch(help, -1)
	if len(flags) < 10 {
		t.Fatalf("trustd --help lists %d flags:\n%s", len(flags), help)
	}
	for _, m := range flags {
		switch f := m[1]; f {
		case "--config", "--help", "--version":
		default:
			if !strings.Contains(ref, "`"+f+"`") {
				t.Errorf("flag %s of trustd --help is not in trustd config keys", f)
			}
		}
	}
}

// TestTestDelayNeedsItsFlag: p2p.test_delay (or p2p.test_jitter) set
// without --allow-test-delay stops trustd before it starts a node.
func TestTestDelayNeedsItsFlag(t *testing.T) {
	for _, key := range []string{"test_delay: 150ms", "test_jitter: 5ms"} {
		conf := filepath.Join(t.TempDir(), "trustd.yaml")
		if err := os.WriteFile(conf, []byte("p2p:\n  "+key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		args := []string{"--config", conf, "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
			"--listen", "/ip4/127.0.0.1/tcp/0"}
		// A node started by mistake would run until the context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := run(ctx, args, nil, &stdout, &stderr)
		cancel()
		if !errors.Is(err, errTestDelay) {
			t.Fatalf("%s without --%s: %v, want errTestDelay", key, allowTestDelayFlag, err)
		}
	}
}
