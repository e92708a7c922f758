// Package version says which build of trustreg is running: the main
// module's version, the VCS revision and commit time it was built from,
// whether the work tree had changes then, and the Go version, as the go
// command stamped them into the binary (runtime/debug.ReadBuildInfo).
//
// A binary built with go build or go install in a git checkout carries
// the revision; go run and go test stamp no VCS information, and a
// build outside a module stamps no version.
package version
