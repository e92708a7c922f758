//go:build !linux || !cgo

package main

// setMallocArenas does nothing without cgo on Linux: Pebble then allocates
// its block cache and memtables in the Go heap, not through the C library.
func setMallocArenas(int) bool { return false }

// glibcAppliesTunables reports false without cgo on Linux: Pebble's memory
// is then the Go heap's.
func glibcAppliesTunables() bool { return false }

// startPath returns "" without cgo on Linux: trustd does not execute
// itself again there.
func startPath() string { return "" }
