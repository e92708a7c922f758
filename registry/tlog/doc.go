// Package tlog is trustreg's transparency log of the registry's history and
// the checkpoints its members cosign (SPEC §7, issue #32): what a verifier
// needs to check, offline and without trusting the node that answered, that an
// answer comes from a log a quorum of members vouched for.
//
// It holds:
//
//   - Leaf: the exact bytes committed for one applied raft entry (raft index,
//     commit time, the CIDs of its operations and their results, the state
//     map root after it), versioned;
//   - Log, RootAt, InclusionProof, ConsistencyProof: an RFC 6962 Merkle tree
//     appended through compact ranges over a NodeWriter (Pebble in the node,
//     MemStore in tests), and VerifyInclusion, VerifyConsistency;
//   - Checkpoint, Origin: C2SP tlog-checkpoint note text, its origin derived
//     from the genesis;
//   - CosignerKey, CosignatureSigner, Cosignature: C2SP tlog-cosignature
//     (Ed25519 cosignature/v1, timestamped) keys, signing and signature lines;
//   - Verifier: a quorum of a cosigner set, with a typed reason for each
//     refusal;
//   - Cosigner: a member's signer, which cosigns only the root its own state
//     produced and never a checkpoint inconsistent with its last;
//   - AddCheckpointRequest: the C2SP tlog-witness add-checkpoint body;
//   - TileID, ReadTile, bundles: C2SP tlog-tiles paths and resources.
//
// The package imports no storage, network or consensus library (no Pebble,
// libp2p or raft), so an offline verifier can import it. DESIGN.md explains
// the formats and the order of the checks.
package tlog
