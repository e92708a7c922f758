// Package audit reads the registry's transparency log from a node's C2SP
// tlog-tiles API (GET /v1/log/...) or from a mirror of it on disk, and
// checks what needs no state machine (issue #32 item 5): the checkpoint's
// cosignatures against the genesis, that every hash tile and entry bundle
// hashes to the checkpoint's root, that every leaf decodes and the raft
// indices increase, and that the log extends a checkpoint saved earlier.
// trustctl audit runs these checks, verifying each checkpoint with the
// cosigner set in force at its size (FollowCosigners reads the changes from
// a node's change feed and results, checked against the leaves); trustd
// audit runs them and then replays every leaf's operations through the
// state machine (it needs Pebble, which a client does not link), which
// follows the changes itself. Before a tile is read, a checkpoint must
// verify with the genesis set or claim a bounded size (Bound).
//
// The package is a leaf: it imports no Pebble, libp2p or raft package.
package audit
