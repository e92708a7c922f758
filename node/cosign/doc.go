// Package cosign runs a member's part in the checkpoints of the registry's
// transparency log (issue #32): it cosigns checkpoints for other members
// over libp2p (protocol /trustreg/cosign/1.0.0, whose request is the C2SP
// tlog-witness add-checkpoint body), collects a quorum of cosignatures on
// the leader, and serves the latest cosigned checkpoint to followers
// (/trustreg/checkpoint/1.0.0) and to the node's gateway.
//
// A member cosigns only through tlog.Cosigner: the checkpoint's root must be
// the one its own state machine produced at that size, and it must extend
// the last checkpoint the member cosigned, which this package keeps in a
// small file in the data directory (FileState), never in the replicated
// state. DESIGN.md says why the leader collects.
package cosign
