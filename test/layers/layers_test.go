package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// module is the module path every internal package starts with.
const module = "github.com/trustreg/trustreg"

// maxTrustctlBytes bounds the trustctl binary: a thin client, not a node.
const maxTrustctlBytes = 15 << 20

// leaves are the packages a client links: they import no Pebble, libp2p or
// raft package, and no internal package but other leaves.
var leaves = []string{
	module + "/registry/record",
	module + "/registry/decide",
	module + "/registry/smt",
	module + "/registry/tlog",
	module + "/registry/proof",
	module + "/registry/audit",
	module + "/gateway/api",
	module + "/version",
}

// pkg is what go list says of one package.
type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string
}

// graph is every package of the module with its dependencies, as
// `go list -deps -json ./...` reports them (tests not counted).
type graph map[string]*pkg

func mustGraph(t *testing.T) graph {
	t.Helper()
	root := moduleRoot(t)
	cmd := exec.Command("go", "list", "-deps", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps -json ./...: %v\n%s", err, stderr.Bytes())
	}
	g := graph{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		g[p.ImportPath] = &p
	}
	return g
}

// moduleRoot is the directory of go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not inside the trustreg module")
	}
	return filepath.Dir(gomod)
}

// must returns the package at path; when go list did not list it, the
// test fails and the rules about it are checked over nothing.
func (g graph) must(t *testing.T, path string) *pkg {
	t.Helper()
	p, ok := g[path]
	if !ok {
		t.Errorf("go list did not list %s: a rule names a package that does not exist; update the rule and docs/ARCHITECTURE.md", path)
		return &pkg{ImportPath: path}
	}
	return p
}

// chain returns the imports from "from" to "to", for the message.
func (g graph) chain(from, to string) string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var path []string
			for p := to; p != ""; p = prev[p] {
				path = append(path, p)
			}
			slices.Reverse(path)
			return strings.Join(path, " -> ")
		}
		if p, ok := g[cur]; ok {
			for _, im := range p.Imports {
				if _, seen := prev[im]; !seen {
					prev[im] = cur
					queue = append(queue, im)
				}
			}
		}
	}
	return from + " -> ... -> " + to
}

// nodeLayer reports whether a package belongs to the node's machinery that
// a client must not link.
func nodeLayer(path string) bool {
	return strings.Contains(path, "libp2p") || strings.Contains(path, "raft") || strings.Contains(path, "pebble")
}

func internal(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

// violations lists, for each dependency of from that bad matches, a line
// naming it and the chain of imports that brings it in.
func (g graph) violations(from string, deps []string, bad func(string) bool) []string {
	var out []string
	for _, d := range deps {
		if bad(d) {
			out = append(out, fmt.Sprintf("%s imports %s (%s)", from, d, g.chain(from, d)))
		}
	}
	return out
}

// TestImportRules enforces the import rules of docs/ARCHITECTURE.md over
// what the packages import (test files not counted).
func TestImportRules(t *testing.T) {
	g := mustGraph(t)
	check := func(rule string, lines []string) {
		t.Helper()
		if len(lines) > 0 {
			t.Errorf("rule broken: %s\n\t%s", rule, strings.Join(lines, "\n\t"))
		}
	}

	trustctl := module + "/cmd/trustctl"
	check("trustctl links no libp2p, raft or pebble package",
		g.violations(trustctl, g.must(t, trustctl).Deps, nodeLayer))

	for _, leaf := range leaves {
		p := g.must(t, leaf)
		check(leaf+" (a leaf) imports no pebble, libp2p or raft package",
			g.violations(leaf, p.Deps, nodeLayer))
		check(leaf+" (a leaf) imports no internal package but other leaves",
			g.violations(leaf, p.Imports, func(d string) bool { return internal(d) && !slices.Contains(leaves, d) }))
	}

	consensus := module + "/consensus"
	frame := consensus + "/frame"
	check("consensus imports no internal package but its framing",
		g.violations(consensus, g.must(t, consensus).Imports, func(d string) bool { return internal(d) && d != frame }))
	check("consensus/frame imports no internal package",
		g.violations(frame, g.must(t, frame).Imports, internal))

	registry := module + "/registry"
	check("registry imports no internal package except its leaves",
		g.violations(registry, g.must(t, registry).Imports, func(d string) bool {
			return internal(d) && !strings.HasPrefix(d, registry+"/")
		}))

	for _, gw := range []string{module + "/gateway", module + "/gateway/client"} {
		check(gw+" imports neither node nor consensus",
			g.violations(gw, g.must(t, gw).Deps, func(d string) bool {
				return d == module+"/node" || d == module+"/consensus"
			}))
	}
	client := module + "/gateway/client"
	check("gateway/client imports neither the gateway nor the registry (only their leaves)",
		g.violations(client, g.must(t, client).Deps, func(d string) bool {
			return d == module+"/gateway" || d == registry || nodeLayer(d)
		}))

	var cmds []string
	for path := range g {
		if strings.HasPrefix(path, module+"/cmd/") {
			cmds = append(cmds, path)
		}
	}
	slices.Sort(cmds)
	if len(cmds) == 0 {
		t.Fatal("go list listed no package under cmd/")
	}
	for _, c := range cmds {
		check(c+" imports no test-support package (test/...) outside its tests",
			g.violations(c, g[c].Deps, func(d string) bool { return strings.HasPrefix(d, module+"/test/") }))
	}
}

// TestTrustctlBinarySize builds trustctl as a user would and checks it
// stays a thin client.
func TestTrustctlBinarySize(t *testing.T) {
	out := filepath.Join(t.TempDir(), "trustctl")
	if runtime.GOOS == "windows" {
		out += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", out, "./cmd/trustctl")
	cmd.Dir = moduleRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/trustctl: %v\n%s", err, b)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trustctl: %d bytes (%.1f MB)", fi.Size(), float64(fi.Size())/(1<<20))
	if fi.Size() >= maxTrustctlBytes {
		t.Fatalf("trustctl is %d bytes, limit %d (15 MB): it links more than a client needs; `go list -deps ./cmd/trustctl` shows what", fi.Size(), maxTrustctlBytes)
	}
}
