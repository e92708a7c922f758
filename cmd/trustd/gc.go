package main

import "runtime/debug"

// gcPercent is trustd's GOGC. A node's live heap is small (160–180 MiB
// with its record and answer caches full, at a million entities) and most
// of its garbage is per-request; collecting at 200 % heap growth instead of
// 100 % halves the collector's work on the write path.
const gcPercent = 200

// goMemoryLimit is trustd's soft limit on the Go runtime's memory (Go's
// GOMEMLIMIT). Under GOGC 200 the heap grows to three times the live heap
// between collections: 659 MiB of a node's 951–988 MiB peak at a million
// entities (BENCHMARKS.md), the rest Pebble's block cache, memtables and
// the raft log's, allocated outside the Go runtime (227–330 MiB measured).
// Half of the 1 GiB a node is planned for keeps the Go part below that
// however large the registry: the collector runs earlier once the heap
// nears the limit, and only then. The Go runtime caps the collector's share
// of CPU when the live heap itself nears the limit, so a node that holds
// more than this live trades CPU for memory rather than failing.
const goMemoryLimit = 512 << 20

// tuneCollector applies gcPercent and goMemoryLimit unless GOGC or
// GOMEMLIMIT is set in the environment (the runtime has then applied the
// operator's value itself; GOMEMLIMIT=off removes the limit). It returns
// what it set: -1 for one left to the environment.
func tuneCollector(getenv func(string) string) (percent int, limit int64) {
	percent, limit = -1, -1
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
		percent = gcPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(goMemoryLimit)
		limit = goMemoryLimit
	}
	return percent, limit
}
