package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// mallocArenas caps the arenas of glibc's allocator, through which Pebble
// allocates its block cache and memtables. By default glibc gives each
// thread that meets a locked arena a new one, up to eight per core, and
// memory freed in one arena is not reused by another: at a million
// entities, a node's resident memory outside the Go runtime's measured
// 324–380 MiB with the default and 227–322 MiB with two arenas
// (BENCHMARKS.md, eleventh pass). Pebble allocates on block-cache misses
// and memtable rotations, not per request, so two arenas do not become a
// point of contention.
const mallocArenas = 2

// limitMallocArenas applies mallocArenas unless MALLOC_ARENA_MAX is set in
// the environment (glibc has then applied the operator's value itself).
// glibc fixes how many arenas it may create when it first needs a second
// one, once threads allocate at the same time; trustd sets the cap first
// thing in main, before Pebble is opened. It reports whether it set the
// cap. Its effect is measured, not unit-tested: trustbench's scale run
// reads the peak.
func limitMallocArenas(getenv func(string) string) bool {
	if getenv("MALLOC_ARENA_MAX") != "" {
		return false
	}
	return setMallocArenas(mallocArenas)
}

// mallocHugePagesTunable is the glibc tunable (glibc 2.35 and later) that
// makes malloc advise transparent huge pages (madvise MADV_HUGEPAGE) for
// the memory it maps. Pebble's memtables, 32 MiB each in both databases,
// are such mappings: with the kernel's THP mode "madvise" (Debian's
// default) and 4 KiB pages, filling one takes 8,192 page faults and its
// skiplist's inserts walk a range wider than the TLB covers. With huge
// pages a node's memtable inserts took about a third less CPU a write
// under 64 writing clients (BENCHMARKS.md, "Huge pages for Pebble's
// memtables").
const mallocHugePagesTunable = "glibc.malloc.hugetlb"

// thpModePath is where the kernel says when it backs memory with
// transparent huge pages: the mode in force is the one in brackets.
const thpModePath = "/sys/kernel/mm/transparent_hugepage/enabled"

// hugePagesEnv returns the environment to execute trustd again with, so
// that glibc reads mallocHugePagesTunable at start (it reads tunables only
// then: no call sets one later), or nil where there is nothing to do: the
// C library is not glibc, or does not read tunables for this process
// (tunables, from mallocReadsTunables); GLIBC_TUNABLES already sets the
// tunable (the operator's value, glibc.malloc.hugetlb=0 to turn this off,
// or this execution's own); or the kernel's THP mode is "never" or
// unknown.
func hugePagesEnv(environ []string, tunables bool, thpMode string) []string {
	if !tunables {
		return nil
	}
	if thpMode != "madvise" && thpMode != "always" {
		return nil
	}
	out := make([]string, 0, len(environ)+1)
	tunable := mallocHugePagesTunable + "=1"
	set := false
	for _, kv := range environ {
		v, ok := strings.CutPrefix(kv, "GLIBC_TUNABLES=")
		if !ok {
			out = append(out, kv)
			continue
		}
		for _, t := range strings.Split(v, ":") {
			if name, _, _ := strings.Cut(t, "="); name == mallocHugePagesTunable {
				return nil
			}
		}
		if v != "" {
			tunable = v + ":" + tunable
		}
		if !set {
			out = append(out, "GLIBC_TUNABLES="+tunable)
			set = true
		}
	}
	if !set {
		out = append(out, "GLIBC_TUNABLES="+tunable)
	}
	return out
}

// thpMode returns the kernel's transparent huge page mode ("always",
// "madvise" or "never"), or "" where it cannot be read.
func thpMode() string {
	b, err := os.ReadFile(thpModePath)
	if err != nil {
		return ""
	}
	return parseTHPMode(string(b))
}

// parseTHPMode returns the bracketed mode of thpModePath's text
// ("always [madvise] never"), or "".
func parseTHPMode(s string) string {
	_, rest, ok := strings.Cut(s, "[")
	if !ok {
		return ""
	}
	mode, _, ok := strings.Cut(rest, "]")
	if !ok {
		return ""
	}
	return mode
}

// useMallocHugePages executes trustd again, as the same process, with
// mallocHugePagesTunable set (hugePagesEnv), first thing in main: before
// Pebble maps a memtable. Where the execution fails, trustd goes on as it
// is, with 4 KiB pages, and says so.
func useMallocHugePages() {
	env := hugePagesEnv(os.Environ(), mallocReadsTunables(), thpMode())
	if env == nil {
		return
	}
	// The same file, even if its path now names another or none.
	err := syscall.Exec("/proc/self/exe", os.Args, env)
	fmt.Fprintf(os.Stderr, "trustd: starting without huge pages for Pebble's memtables: could not execute trustd again with %s=1: %v\n", mallocHugePagesTunable, err)
}
