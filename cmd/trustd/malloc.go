package main

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
