package main

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestLimitMallocArenas(t *testing.T) {
	// The operator's setting stands (glibc read it at start): trustd does
	// not override it.
	if limitMallocArenas(func(k string) string {
		if k == "MALLOC_ARENA_MAX" {
			return "4"
		}
		return ""
	}) {
		t.Fatal("trustd set the arena cap although MALLOC_ARENA_MAX was given")
	}
	// Otherwise trustd sets it wherever the C library is glibc: on Linux
	// with cgo, as the README's build makes it on Debian and in CI.
	set := limitMallocArenas(func(string) string { return "" })
	if glibc := runtime.GOOS == "linux" && linkedToGlibc(t); glibc != set {
		t.Fatalf("linked to glibc: %v; the cap set: %v", glibc, set)
	}
}

// linkedToGlibc reports whether this test binary maps glibc's C library.
func linkedToGlibc(t *testing.T) bool {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(maps), "/libc.so.6")
}

func TestHugePagesEnv(t *testing.T) {
	// /proc/self/environ ends each entry with a NUL: split, an empty one
	// follows the last.
	base := []string{"HOME=/root", "PATH=/usr/bin", ""}
	with := []string{"HOME=/root", "PATH=/usr/bin", "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}
	for _, c := range []struct {
		name    string
		started []string
		current string // GLIBC_TUNABLES as the process holds it
		applies bool
		mode    string
		want    []string // nil: trustd is not executed again
	}{
		{"glibc, THP on request", base, "", true, "madvise", with},
		{"an empty setting is none", []string{"GLIBC_TUNABLES=", "HOME=/root", "PATH=/usr/bin"}, "", true, "madvise", with},
		{"THP always: the kernel gives them already", base, "", true, "always", nil},
		{"THP off", base, "", true, "never", nil},
		{"THP mode unknown", base, "", true, "", nil},
		{"glibc would not apply it", base, "", false, "madvise", nil},
		{"the operator's setting stands", []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=0"}, "glibc.malloc.hugetlb=0", true, "madvise", nil},
		{"and any other", []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2"}, "glibc.malloc.arena_max=2", true, "madvise", nil},
		// The Go runtime keeps the first of two; glibc applies both.
		{"set twice, the first empty", []string{"GLIBC_TUNABLES=", "GLIBC_TUNABLES=glibc.malloc.hugetlb=0"}, "", true, "madvise", nil},
		// Dropped from the environment by glibc after the start (secure
		// mode): the start's block still has it.
		{"this execution's own, dropped since", []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}, "", true, "madvise", nil},
		{"set since the start", base, "glibc.malloc.hugetlb=1", true, "madvise", nil},
		// Every other entry in its place, a name given twice too (the
		// loader takes the last LD_PRELOAD, the Go runtime the first).
		{"entries as given", []string{"LD_PRELOAD=a.so", "HOME=/root", "LD_PRELOAD=b.so", ""}, "", true, "madvise",
			[]string{"LD_PRELOAD=a.so", "HOME=/root", "LD_PRELOAD=b.so", "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := hugePagesEnv(c.started, c.current, c.applies, c.mode)
			if (got == nil) != (c.want == nil) || !slices.Equal(got, c.want) {
				t.Fatalf("hugePagesEnv(%q, %q, %v, %q) = %q, want %q", c.started, c.current, c.applies, c.mode, got, c.want)
			}
			if got != nil && hugePagesEnv(got, "glibc.malloc.hugetlb=1", c.applies, c.mode) != nil {
				t.Fatalf("the environment it returns, %q, would be executed again", got)
			}
			if got != nil && hugePagesEnv(got, "", c.applies, c.mode) != nil {
				t.Fatalf("the environment it returns, %q, would be executed again were the tunable dropped", got)
			}
		})
	}
}

func TestGlibcAtLeast(t *testing.T) {
	for _, c := range []struct {
		version string
		want    bool
	}{
		{"2.36", true}, {"2.35", true}, {"2.34", false}, {"2.43.9000", true}, {"3.0", true}, {"1.99", false},
		{"", false}, {"2", false}, {"x.y", false},
	} {
		if got := glibcAtLeast(c.version, 2, 35); got != c.want {
			t.Errorf("glibcAtLeast(%q, 2, 35) = %v, want %v", c.version, got, c.want)
		}
	}
}

func TestParseTHPMode(t *testing.T) {
	for in, want := range map[string]string{
		"always [madvise] never\n": "madvise",
		"[always] madvise never\n": "always",
		"always madvise [never]\n": "never",
		"always madvise never\n":   "",
		"[madvise":                 "",
		"":                         "",
	} {
		if got := parseTHPMode(in); got != want {
			t.Errorf("parseTHPMode(%q) = %q, want %q", in, got, want)
		}
	}
}
