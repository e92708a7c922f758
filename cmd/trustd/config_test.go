package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

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
