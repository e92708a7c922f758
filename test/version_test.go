package test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionOfBuiltBinaries: trustd --version and trustctl --version,
// run as built binaries, print what the go command stamped into them (go
// version -m reads the same): the module version, the VCS revision and
// time when the build had them, and the Go version.
func TestVersionOfBuiltBinaries(t *testing.T) {
	bin := mustBuild(t)
	for _, name := range []string{"trustd", "trustctl"} {
		path := filepath.Join(bin, name)
		stamped, err := exec.Command("go", "version", "-m", path).Output()
		if err != nil {
			t.Fatalf("go version -m %s: %v", name, err)
		}
		var want []string // what the version line must contain
		for _, line := range strings.Split(string(stamped), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && strings.HasSuffix(f[0], ":"):
				want = append(want, f[1]) // the Go version
			case len(f) >= 3 && f[0] == "mod":
				want = append(want, f[2])
			case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
				want = append(want, "revision "+strings.TrimPrefix(f[1], "vcs.revision="))
			case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.time="):
				want = append(want, "committed "+strings.TrimPrefix(f[1], "vcs.time="))
			}
		}
		if len(want) < 2 {
			t.Fatalf("go version -m %s: no Go or module version in\n%s", name, stamped)
		}
		out, err := exec.Command(path, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --version: %v\n%s", name, err, out)
		}
		if !strings.HasPrefix(string(out), name+" version ") {
			t.Errorf("%s --version printed %q", name, out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s --version printed %q, lacking %q (go version -m:\n%s)", name, out, w, stamped)
			}
		}
	}
}
