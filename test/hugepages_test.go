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

// TestTrustdAsksGlibcForHugePages: trustd linked to glibc, on a kernel
// that gives transparent huge pages on request or always, runs with glibc's
// tunable glibc.malloc.hugetlb=1, as the process its caller started (it
// executes itself again under the same pid, before it opens anything); and
// an operator's own setting of the tunable stands; and in secure mode,
// where glibc ignores the tunable and removes it from the environment,
// trustd does not execute itself again (it would forever).
func TestTrustdAsksGlibcForHugePages(t *testing.T) {
	bin := mustBuild(t)
	mode := thpMode(t)
	t.Run("default", func(t *testing.T) {
		t.Setenv("GLIBC_TUNABLES", "")
		p := startTrustd(t, bin, t.TempDir(), "--http-addr", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--admin-addr", "127.0.0.1:0")
		pid := p.cmd.Process.Pid
		want := ""
		if mapsGlibc(t, pid) && (mode == "madvise" || mode == "always") {
			want = "glibc.malloc.hugetlb=1"
		}
		t.Logf("THP mode %q; GLIBC_TUNABLES wanted %q", mode, want)
		if got := environOf(t, pid)["GLIBC_TUNABLES"]; got != want {
			t.Fatalf("trustd (pid %d) runs with GLIBC_TUNABLES=%q, want %q", pid, got, want)
		}
		p.stop(t)
	})
	t.Run("the operator's setting", func(t *testing.T) {
		t.Setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0")
		p := startTrustd(t, bin, t.TempDir(), "--http-addr", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--admin-addr", "127.0.0.1:0")
		if got := environOf(t, p.cmd.Process.Pid)["GLIBC_TUNABLES"]; got != "glibc.malloc.hugetlb=0" {
			t.Fatalf("trustd runs with GLIBC_TUNABLES=%q, want the operator's glibc.malloc.hugetlb=0", got)
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
		dir, err := os.MkdirTemp("", "trustd-secure-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		exe := filepath.Join(dir, "trustd")
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
	})
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

// environOf returns the environment process pid runs with (the last value
// of each name).
func environOf(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	env := make(map[string]string)
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env
}

// mapsGlibc reports whether process pid maps glibc's C library.
func mapsGlibc(t *testing.T, pid int) bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte("/libc.so.6"))
}
