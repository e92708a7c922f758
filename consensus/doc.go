// Package consensus replicates trustreg's log with Raft (hashicorp/raft)
// carried over libp2p streams, and drives a StateMachine with the committed
// entries.
//
// It owns the libp2p host (a persistent identity, a connection gater that
// admits only cluster peers), the raft StreamLayer on gostream, the
// Pebble-backed raft log and stable stores, and a thin FSM adapter that
// stamps nothing itself: the leader stamps a commit time into each entry
// when it proposes it, and the adapter hands (index, commit time, bytes) to
// the StateMachine.
//
// The package never imports the registry; it declares the StateMachine it
// drives.
package consensus
