// Package test holds black-box tests of whole trustreg nodes: they build
// the trustd and trustctl binaries, start real processes and talk to them
// only through their command lines and HTTP.
//
// The cluster tests put each trustd on a host of its own, a network
// namespace with its own address (package test/netns), when the machine
// allows it (root and iproute2); a link is cut there by taking the host's
// interface down. Elsewhere they run on loopback and log why; the test
// that needs hosts of their own (TestClusterOnHostsOfTheirOwn) is skipped
// with the reason. TRUSTREG_TEST_NETNS=off runs them on loopback.
package test
