// Package test holds black-box tests of whole trustreg nodes: they build
// the trustd and trustctl binaries, start real processes on loopback and
// talk to them only through their command lines and HTTP.
package test
