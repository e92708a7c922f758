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
	base := []string{"HOME=/root", "PATH=/usr/bin"}
	for _, c := range []struct {
		name    string
		environ []string
		glibc   bool // and it reads tunables for this process
		mode    string
		want    []string // nil: trustd is not executed again
	}{
		{"glibc, THP on request", base, true, "madvise", append(slices.Clone(base), "GLIBC_TUNABLES=glibc.malloc.hugetlb=1")},
		{"glibc, THP always", base, true, "always", append(slices.Clone(base), "GLIBC_TUNABLES=glibc.malloc.hugetlb=1")},
		{"THP off", base, true, "never", nil},
		{"THP mode unknown", base, true, "", nil},
		{"not glibc, or glibc in secure mode", base, false, "madvise", nil},
		{"other tunables kept, in place", []string{"HOME=/root", "GLIBC_TUNABLES=glibc.malloc.arena_max=2", "PATH=/usr/bin"}, true, "madvise",
			[]string{"HOME=/root", "GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "PATH=/usr/bin"}},
		{"an empty setting", []string{"GLIBC_TUNABLES="}, true, "madvise", []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}},
		{"the operator's value stands", []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=0"}, true, "madvise", nil},
		// What this execution set: the next one does nothing more.
		{"set already", []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"}, true, "always", nil},
		{"a tunable named alike is another", []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb_x=1"}, true, "madvise",
			[]string{"GLIBC_TUNABLES=glibc.malloc.hugetlb_x=1:glibc.malloc.hugetlb=1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := hugePagesEnv(c.environ, c.glibc, c.mode)
			if (got == nil) != (c.want == nil) || !slices.Equal(got, c.want) {
				t.Fatalf("hugePagesEnv(%q, %v, %q) = %q, want %q", c.environ, c.glibc, c.mode, got, c.want)
			}
			if got != nil && hugePagesEnv(got, c.glibc, c.mode) != nil {
				t.Fatalf("the environment it returns, %q, would be executed again", got)
			}
		})
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
