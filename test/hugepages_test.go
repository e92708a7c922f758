package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTrustdAsksGlibcForHugePages: trustd linked to glibc 2.35 or later,
// on a kernel that gives transparent huge pages on request, runs with
// glibc's tunable glibc.malloc.hugetlb=1 and glibc advises huge pages for
// what it maps, as the process its caller started and under the name it
// was started by, a link's too (it executes itself again, before it opens
// anything); an operator's own GLIBC_TUNABLES stands as given; and in
// secure mode, where glibc ignores the tunable and removes it from the
// environment, trustd starts once and runs (it used to execute itself
// forever there).
func TestTrustdAsksGlibcForHugePages(t *testing.T) {
	bin := mustBuild(t)
	if mode := thpMode(t); mode != "madvise" {
		t.Skipf("the kernel's transparent huge page mode is %q: trustd asks glibc for them only under madvise", mode)
	}
	args := []string{"--http-addr", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--admin-addr", "127.0.0.1:0"}
	t.Run("default", func(t *testing.T) {
		t.Setenv("GLIBC_TUNABLES", "")
		if v := glibcVersion(t); v < 235 {
			t.Skipf("glibc %d.%d ignores glibc.malloc.hugetlb (2.35 and later apply it)", v/100, v%100)
		}
		p := startTrustd(t, bin, t.TempDir(), args...)
		pid := p.cmd.Process.Pid
		if !mapsGlibc(t, pid) {
			t.Skip("trustd is not linked dynamically to glibc")
		}
		if got := environOf(t, pid)["GLIBC_TUNABLES"]; got != "glibc.malloc.hugetlb=1" {
			t.Fatalf("trustd (pid %d) runs with GLIBC_TUNABLES=%q, want glibc.malloc.hugetlb=1", pid, got)
		}
		if comm := procFile(t, pid, "comm"); string(comm) != "trustd\n" {
			t.Fatalf("trustd runs under the name %q", comm)
		}
		// glibc advised huge pages for its mappings (the kernel marks them
		// "hg"): Pebble's first memtables and block cache arenas are there
		// once the node serves.
		if !bytes.Contains(procFile(t, pid, "smaps"), []byte(" hg")) {
			t.Fatalf("no mapping of trustd (pid %d) is advised huge pages", pid)
		}
		p.stop(t)
	})
	t.Run("through a link", func(t *testing.T) {
		// Installed as a link to a file of another name: the process keeps
		// the link's name, which it was started by (and scripts find it by).
		t.Setenv("GLIBC_TUNABLES", "")
		if v := glibcVersion(t); v < 235 {
			t.Skipf("glibc %d.%d ignores glibc.malloc.hugetlb", v/100, v%100)
		}
		files, links := t.TempDir(), t.TempDir()
		target := filepath.Join(files, "trustd-1.2-linux-amd64")
		if err := os.Link(filepath.Join(bin, "trustd"), target); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(links, "trustd")); err != nil {
			t.Fatal(err)
		}
		p := startTrustd(t, links, t.TempDir(), args...)
		pid := p.cmd.Process.Pid
		if got := environOf(t, pid)["GLIBC_TUNABLES"]; mapsGlibc(t, pid) && got != "glibc.malloc.hugetlb=1" {
			t.Fatalf("trustd started through a link runs with GLIBC_TUNABLES=%q", got)
		}
		if comm := procFile(t, pid, "comm"); string(comm) != "trustd\n" {
			t.Fatalf("trustd started through a link runs under the name %q", comm)
		}
		p.stop(t)
	})
	t.Run("the operator's setting", func(t *testing.T) {
		t.Setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
		p := startTrustd(t, bin, t.TempDir(), args...)
		if got := environOf(t, p.cmd.Process.Pid)["GLIBC_TUNABLES"]; got != "glibc.malloc.arena_max=2" {
			t.Fatalf("trustd runs with GLIBC_TUNABLES=%q, want the operator's glibc.malloc.arena_max=2", got)
		}
		p.stop(t)
	})
	t.Run("secure mode", func(t *testing.T) {
		// A binary with a file capability, run by an unprivileged user,
		// starts in secure mode (AT_SECURE), as an operator's trustd
		// allowed to bind port 443 would.
		setcap, err := exec.LookPath("setcap")
		if os.Geteuid() != 0 || err != nil {
			t.Skipf("needs root and setcap (euid %d, %v)", os.Geteuid(), err)
		}
		// Directories of their own, not under the test's (those are root's
		// alone): the user nobody must reach the binary and write its data.
		exe := filepath.Join(tempDirFor(t, "trustd-secure-", 0o755), "trustd")
		b, err := os.ReadFile(filepath.Join(bin, "trustd"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(setcap, "cap_net_bind_service+ep", exe).CombinedOutput(); err != nil {
			t.Skipf("setcap: %v: %s", err, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", exe, "--version")
		cmd.Env = append(os.Environ(), "GLIBC_TUNABLES=")
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("trustd --version in secure mode did not end within 20 s (executing itself again and again?): %s", out)
		}
		if err != nil || !strings.HasPrefix(string(out), "trustd version") {
			t.Fatalf("trustd --version in secure mode: %v: %s", err, out)
		}
		// A node that runs: started once, without the tunable (glibc would
		// have dropped it, and a second execution is one too many).
		work := tempDirFor(t, "trustd-secure-data-", 0o777)
		node := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", exe}, args...)...)
		node.Dir = work
		node.Env = append(os.Environ(), "GLIBC_TUNABLES=")
		p, err := tryStartCmd(t, nil, node, args)
		if err != nil {
			t.Fatalf("trustd in secure mode: %v", err)
		}
		if got := environOf(t, p.cmd.Process.Pid)["GLIBC_TUNABLES"]; got != "" {
			t.Fatalf("trustd in secure mode runs with GLIBC_TUNABLES=%q: it executed itself again", got)
		}
		p.stop(t)
	})
}

// tempDirFor returns a new directory with permissions perm, removed when
// the test ends.
func tempDirFor(t *testing.T, pattern string, perm os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
	return dir
}

// glibcVersion returns the C library's glibc version as major*100+minor
// (236 for 2.36), or 0 where it is not glibc.
func glibcVersion(t *testing.T) int {
	out, err := exec.Command("getconf", "GNU_LIBC_VERSION").Output()
	if err != nil {
		return 0
	}
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "glibc %d.%d", &major, &minor); err != nil {
		return 0
	}
	return major*100 + minor
}

// thpMode returns the kernel's transparent huge page mode, or "" where it
// says none.
func thpMode(t *testing.T) string {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		t.Logf("no transparent huge pages: %v", err)
		return ""
	}
	_, rest, _ := strings.Cut(string(b), "[")
	mode, _, _ := strings.Cut(rest, "]")
	return mode
}

// procFile returns /proc/<pid>/<name>.
func procFile(t *testing.T, pid int, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// environOf returns the environment process pid runs with (the last value
// of each name).
func environOf(t *testing.T, pid int) map[string]string {
	t.Helper()
	env := make(map[string]string)
	for _, kv := range bytes.Split(procFile(t, pid, "environ"), []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env
}

// mapsGlibc reports whether process pid maps glibc's C library.
func mapsGlibc(t *testing.T, pid int) bool {
	t.Helper()
	return bytes.Contains(procFile(t, pid, "maps"), []byte("/libc.so.6"))
}
