// Package registry is trustreg's domain: the consortium genesis, frameworks,
// entities and their keys, accreditations with their status events, and
// recognitions between frameworks; the signed operations that change them;
// and the bitemporal trust decisions computed from them.
//
// State lives in Pebble. Every change arrives as a log entry (index, commit
// time, bytes) and is applied by State.ApplyBatch as a pure function of the
// current state and that entry: no local clock, no randomness, no network.
// The applied index is written in the same Pebble batch as the state it
// produced, so replaying an entry after a restart changes nothing.
//
// The package imports no other trustreg package but its leaf
// registry/record, which holds the records, operations, signing and
// status-list parsing that clients link without Pebble. The consensus
// layer drives it through consensus.StateMachine; the gateway reads it
// through gateway.Registry.
package registry
