package test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestTrustdAsksGlibcForHugePages: trustd linked to glibc, on a kernel
// that gives transparent huge pages on request or always, runs with glibc's
// tunable glibc.malloc.hugetlb=1, as the process its caller started (it
// executes itself again under the same pid, before it opens anything); and
// an operator's own setting of the tunable stands.
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
