package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/trustreg/trustreg/node"
	"github.com/trustreg/trustreg/test/ports"
)

// asMainEnv makes this test binary run trustctl's main instead of the
// tests, so the tests can read trustctl's exit codes from a process.
const asMainEnv = "TRUSTCTL_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
		os.Exit(0) // main exits itself; this is not reached
	}
	os.Exit(m.Run())
}

// runProcess runs trustctl with args as a process and returns its exit
// code and what it wrote to stdout and stderr.
func runProcess(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("trustctl %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errw.String()
}

// TestExitCodes: trustctl's exit codes, read from a process: 0 for done
// and AUTHORIZED, 3 for NOT AUTHORIZED (the answer still printed, nothing
// with -q) and for a lookup of something unknown, 2 for a command line
// that is wrong, 1 for a refused write.
func TestExitCodes(t *testing.T) {
	d := startDevNode(t)
	srv := d.n.GatewayURL()
	gov, rootKey := filepath.Join(d.dir, node.DevGovernanceKey), filepath.Join(d.dir, node.DevRootAccreditorKey)
	root := strings.TrimSpace(d.must("did", rootKey))
	const fw = "https://example.org/fw"
	d.must("-q", "framework", "create", "--id", fw, "--name", "FW", "--root", root, "--key", gov)
	acc := strings.TrimSpace(d.must("-q", "accredit", "--key", rootKey, "--framework", fw, "--subject", "did:web:college.example", "--resource", "https://example.org/Nursing"))

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // in stdout; "-" for nothing at all
		stderr string // in stderr; "-" for nothing at all
	}{
		{"trust authorized", []string{"trust", "--entity", root, "--framework", fw, "--action", "accredit"}, 0, "AUTHORIZED (active)", "-"},
		{"trust not authorized", []string{"trust", "--entity", "did:web:other.example", "--framework", fw}, 3, "NOT AUTHORIZED (never_authorized)", "-"},
		{"trust not authorized -q", []string{"-q", "trust", "--entity", "did:web:other.example", "--framework", fw}, 3, "-", "-"},
		{"trust not authorized --json", []string{"--json", "trust", "--entity", "did:web:other.example", "--framework", fw}, 3, `"authorized": false`, "-"},
		{"accreditation show", []string{"accreditation", "show", acc}, 0, acc, "-"},
		{"accreditation show has the signed operation", []string{"accreditation", "show", acc}, 0, "  signed operation (byte for byte)\n  ey", "-"},
		{"accreditation show unknown", []string{"accreditation", "show", "bafyreiunknownunknownunknownunknownunknownunknownunknown"}, 3, "-", "404"},
		{"entity show unknown", []string{"entity", "show", "did:web:nobody.example"}, 3, "-", "404"},
		{"framework show unknown", []string{"framework", "show", "https://example.org/nothing"}, 3, "-", "404"},
		{"status show unknown list", []string{"status", "show", "--issuer", root, "--list", "nope"}, 3, "-", "404"},
		{"unknown command", []string{"frobnicate"}, 2, "-", `unknown command "frobnicate"`},
		{"unknown flag", []string{"trust", "--entitty", root}, 2, "-", "--entitty"},
		{"missing argument", []string{"accreditation", "show"}, 2, "-", "accepts 1 arg"},
		{"trust without --entity", []string{"trust", "--framework", fw}, 2, "-", "--entity"},
		{"trust --at yesterday", []string{"trust", "--entity", root, "--framework", fw, "--at", "yesterday"}, 2, "-", `--at "yesterday" must be RFC 3339`},
		{"trust --as-of 0", []string{"trust", "--entity", root, "--framework", fw, "--as-of", "0"}, 2, "-", `--as-of "0" must be a registry index`},
		{"trust --at a date", []string{"trust", "--entity", root, "--framework", fw, "--action", "accredit", "--at", time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)}, 0, "AUTHORIZED (active)", "-"},
		{"unknown output", []string{"-o", "xml", "trust", "--entity", root, "--framework", fw}, 2, "-", "table, json or yaml"},
		{"framework create without --id", []string{"framework", "create", "--name", "X", "--key", gov}, 2, "-", "--id is required"},
		{"framework create with a chain length of 0", []string{"framework", "create", "--id", "https://example.org/fw0", "--name", "X", "--max-chain-length", "0", "--key", gov}, 2, "-", "--max-chain-length 0: give 1 or more"},
		{"sign -o yaml", []string{"-o", "yaml", "sign", "-", "--key", gov}, 2, "-", "trustctl sign prints table or json only"},
		{"export dcc --out -o yaml", []string{"-o", "yaml", "export", "dcc", "--out", filepath.Join(d.dir, "dcc.json")}, 2, "-", "-o yaml only prints"},
		{"sign --compact with two keys", []string{"sign", "-", "--compact", "--key", gov, "--key", rootKey}, 2, "-", "--compact holds one signature"},
		{"framework update with nothing to change", []string{"framework", "update", "--id", fw, "--key", gov}, 2, "-", "nothing to change"},
		{"entity register without --id", []string{"entity", "register", "--name", "X", "--key", rootKey}, 2, "-", "--id is required"},
		{"entity register with an --identifier without =", []string{"entity", "register", "--id", "did:web:x.example", "--name", "X", "--identifier", "duns", "--key", rootKey}, 2, "-", `--identifier "duns" must be name=value`},
		{"entity register with a javascript: homepage", []string{"entity", "register", "--id", "did:web:x.example", "--name", "X", "--homepage", "javascript:alert(1)", "--key", rootKey}, 2, "-", `--homepage: homepage "javascript:alert(1)" is not an http or https URL with a host`},
		{"accredit without --key", []string{"accredit", "--framework", fw, "--subject", "did:web:x.example", "--resource", "https://example.org/Nursing"}, 2, "-", "--key is required"},
		{"keygen without --out", []string{"keygen"}, 2, "-", "--out is required"},
		{"keygen --kid of a did:key", []string{"keygen", "--out", filepath.Join(d.dir, "k.jwk"), "--kid", "did:key:z6Mkxyz#abc"}, 2, "-", "a did:key is made from the key itself"},
		{"status revoke without --list", []string{"status", "revoke", "--key", rootKey, "5"}, 2, "-", "--list is required"},
		{"status show without --list", []string{"status", "show", "--issuer", root}, 2, "-", "--list is required"},
		{"verify --max-age 0", []string{"verify", "bundle.json", "--genesis", filepath.Join(d.dir, "genesis.json"), "--max-age", "0"}, 2, "-", "--max-age 0s: give how old"},
		{"refused write", []string{"accredit", "--key", rootKey, "--framework", fw, "--subject", "did:web:x.example", "--action", "frobnicate", "--resource", "https://example.org/Nursing"}, 1, "", "trustctl:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errw := runProcess(t, append([]string{"--server", srv}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errw)
			}
			for _, c := range []struct{ name, got, want string }{{"stdout", out, tc.stdout}, {"stderr", errw, tc.stderr}} {
				if c.want == "-" && c.got != "" || c.want != "-" && !strings.Contains(c.got, c.want) {
					t.Errorf("%s %q, want %q", c.name, c.got, c.want)
				}
			}
		})
	}
}

// TestNoRouteIsNoAnswer: a 404 for the path itself (a --server with a
// path prefix the node does not serve) says nothing about any record: an
// error (exit 1) with the node's words, not NOT AUTHORIZED or "no such
// record" (exit 3).
func TestNoRouteIsNoAnswer(t *testing.T) {
	d := startDevNode(t)
	srv := d.n.GatewayURL() + "/trustreg"
	root := strings.TrimSpace(d.must("did", filepath.Join(d.dir, node.DevRootAccreditorKey)))
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"trust", "--entity", root, "--framework", "https://example.org/fw"}, "no route GET /trustreg/v1/trust"},
		{[]string{"-q", "trust", "--entity", root, "--framework", "https://example.org/fw"}, "no route GET /trustreg/v1/trust"},
		{[]string{"entity", "show", root}, "no route GET /trustreg/v1/entities/"},
	} {
		code, out, errw := runProcess(t, append([]string{"--server", srv}, tc.args...)...)
		if code != exitError || out != "" || !strings.Contains(errw, tc.stderr) {
			t.Errorf("%v: exit code %d, want %d\nstdout: %s\nstderr: %s", tc.args, code, exitError, out, errw)
		}
	}
}

// TestOutputFormats: -o json prints the node's answer, -o yaml the same
// document in YAML (integers as integers), -o table the text; --json is
// -o json, and a --json that contradicts -o is a usage error.
func TestOutputFormats(t *testing.T) {
	d := startDevNode(t)
	root := strings.TrimSpace(d.must("did", filepath.Join(d.dir, node.DevRootAccreditorKey)))
	d.must("-q", "framework", "create", "--id", "https://example.org/fw", "--name", "FW", "--root", root, "--key", filepath.Join(d.dir, node.DevGovernanceKey))
	ask := []string{"trust", "--entity", root, "--framework", "https://example.org/fw", "--action", "accredit", "--at", "2030-01-01"}

	var fromJSON, fromAlias, fromYAML map[string]any
	if err := json.Unmarshal([]byte(d.must(append([]string{"-o", "json"}, ask...)...)), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(d.must(append([]string{"--json"}, ask...)...)), &fromAlias); err != nil {
		t.Fatal(err)
	}
	out := d.must(append([]string{"-o", "yaml"}, ask...)...)
	if err := yaml.Unmarshal([]byte(out), &fromYAML); err != nil {
		t.Fatalf("-o yaml: %v\n%s", err, out)
	}
	if fromJSON["authorized"] != true || fromJSON["reason"] != "active" || fmt.Sprint(fromJSON) != fmt.Sprint(fromAlias) {
		t.Fatalf("-o json %v, --json %v", fromJSON, fromAlias)
	}
	if fromYAML["authorized"] != true || fromYAML["index"] != int(fromJSON["index"].(float64)) || fromYAML["reason"] != "active" || len(fromYAML) != len(fromJSON) {
		t.Fatalf("-o yaml %v (%T index), -o json %v", fromYAML, fromYAML["index"], fromJSON)
	}
	if out := d.must(append([]string{"-o", "table"}, ask...)...); !strings.HasPrefix(out, "AUTHORIZED (active)") {
		t.Fatalf("-o table: %s", out)
	}
	if _, _, err := d.ctl(append([]string{"--json", "-o", "yaml"}, ask...)...); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--json") {
		t.Fatalf("--json -o yaml: %v", err)
	}
}

// TestAccreditErrorsAreAccredits: when accredit's look-up of the signer's
// own accreditation fails, the error is about accredit and says what to
// change, not about the GET /v1/trust it made.
func TestAccreditErrorsAreAccredits(t *testing.T) {
	d := startDevNode(t)
	rootKey := filepath.Join(d.dir, node.DevRootAccreditorKey)
	grant := []string{"accredit", "--key", rootKey, "--subject", "did:web:college.example", "--resource", "https://example.org/Nursing"}

	port, err := ports.Free() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("http://127.0.0.1:%d", port)
	var out, errw bytes.Buffer
	err = run(context.Background(), append([]string{"--server", closed}, append(grant, "--framework", "https://example.org/fw")...), nil, &out, &errw)
	if err == nil || !strings.HasPrefix(err.Error(), "accredit: no node answers at "+closed+": start trustd or pass --server") ||
		!errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "/v1/trust") {
		t.Errorf("no node: %v", err)
	}

	_, _, err = d.ctl(append(grant, "--framework", "https://example.org/fw-mistyped")...)
	if err == nil || !strings.HasPrefix(err.Error(), "accredit: the framework https://example.org/fw-mistyped is not known to the node at "+d.n.GatewayURL()) ||
		!errors.Is(err, errUnknownFramework) || !strings.Contains(err.Error(), "--framework") || strings.Contains(err.Error(), "/v1/trust") {
		t.Errorf("mistyped framework: %v", err)
	}

	_, _, err = d.ctl(grant...)
	if err == nil || !strings.HasPrefix(err.Error(), "accredit: --framework is required") || strings.Contains(err.Error(), "/v1/trust") {
		t.Fatalf("no --framework: %v", err)
	}
}

// TestSignRefusesWhatNoNodeTakes: sign refuses a payload that is not a
// JSON object (the registry would refuse the operation) and signs one
// that is, compact with one key.
func TestSignRefusesWhatNoNodeTakes(t *testing.T) {
	key := filepath.Join(t.TempDir(), "k.jwk")
	if _, _, err := runInProcess(t, nil, "keygen", "--out", key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runInProcess(t, []byte("notjson"), "sign", "-", "--key", key); err == nil || !strings.Contains(err.Error(), "is not a JSON object") {
		t.Fatalf("sign of notjson: %v", err)
	}
	out, _, err := runInProcess(t, []byte(`{"op":"updateFramework","iat":1,"id":"x","name":"y"}`), "sign", "-", "--compact", "--key", key)
	if err != nil || strings.Count(strings.TrimSpace(out), ".") != 2 {
		t.Fatalf("sign --compact: %v %q", err, out)
	}
}

// runInProcess runs trustctl in this process with stdin, returning what it
// printed and its error.
func runInProcess(t *testing.T, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	var out, errw bytes.Buffer
	err := run(context.Background(), args, bytes.NewReader(stdin), &out, &errw)
	return out.String(), errw.String(), err
}
