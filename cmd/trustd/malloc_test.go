package main

import (
	"os"
	"runtime"
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
