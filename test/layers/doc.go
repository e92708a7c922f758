// Package layers holds only tests: they keep docs/ARCHITECTURE.md's import
// rules true over `go list -deps -json`, and trustctl a thin client.
package layers
