package main

import (
	"fmt"
	"os"
	"strconv"
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
// then: no call sets one later), or nil where trustd has nothing to do or
// must not:
//   - glibc would not apply the tunable here (applies false, from
//     glibcAppliesTunables: another C library, a glibc before 2.35, secure
//     mode, or trustd not started by the kernel as itself);
//   - the kernel's THP mode is not "madvise": "never" gives none, and
//     "always" gives them to large mappings already;
//   - GLIBC_TUNABLES is set, in the environment block the process started
//     with (started, which glibc's own changes to the environment do not
//     touch) or as the process holds it now (current): the operator's
//     tunables stand as given, glibc.malloc.hugetlb=0 to turn this off; and
//     so does the setting of this execution, so trustd executes itself at
//     most once.
//
// The new environment is started as given, every entry in its place (the
// Go runtime's copy keeps only the first of a name given twice, where the
// loader takes the last), with the tunable added.
func hugePagesEnv(started []string, current string, applies bool, thpMode string) []string {
	if !applies || thpMode != "madvise" || current != "" {
		return nil
	}
	out := make([]string, 0, len(started)+1)
	for _, kv := range started {
		if v, ok := strings.CutPrefix(kv, "GLIBC_TUNABLES="); ok {
			if v != "" {
				return nil
			}
			continue
		}
		if kv != "" {
			out = append(out, kv)
		}
	}
	return append(out, "GLIBC_TUNABLES="+mallocHugePagesTunable+"=1")
}

// glibcAtLeast reports whether version, as gnu_get_libc_version gives it
// ("2.36"), is major.minor or later.
func glibcAtLeast(version string, major, minor int) bool {
	a, b, ok := strings.Cut(version, ".")
	if !ok {
		return false
	}
	b, _, _ = strings.Cut(b, ".")
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return x > major || x == major && y >= minor
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
// Pebble maps a memtable. It executes the path the kernel was given to
// start it (AT_EXECFN), so the process keeps its name (the kernel names a
// process after the last part of that path, not the file a link leads
// to), and only while that path still names the file running: an upgrade
// that replaced it, or removed it, since leaves trustd as it is. Where
// the execution fails, trustd goes on with 4 KiB pages and says so.
func useMallocHugePages() {
	started, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		return // no /proc: nothing to read the start's environment from, or to check the file by
	}
	env := hugePagesEnv(strings.Split(string(started), "\x00"), os.Getenv("GLIBC_TUNABLES"), glibcAppliesTunables(), thpMode())
	if env == nil {
		return
	}
	path := startPath()
	running, err1 := os.Stat("/proc/self/exe")
	named, err2 := os.Stat(path)
	if path == "" || err1 != nil || err2 != nil || !os.SameFile(running, named) {
		return
	}
	err = syscall.Exec(path, os.Args, env)
	fmt.Fprintf(os.Stderr, "trustd: starting without huge pages for Pebble's memtables: could not execute trustd again with %s=1: %v\n", mallocHugePagesTunable, err)
}
