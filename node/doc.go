// Package node wires a trustreg node together: configuration, the registry
// state on Pebble, the libp2p host and raft cluster, and the HTTP gateway.
// It is the only package that imports all of them.
package node
