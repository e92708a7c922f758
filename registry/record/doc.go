// Package record holds what a client of the registry needs without the
// registry's storage: the records and their views, the signed operations and
// their payloads, signing and JWS parsing, did:key and Ed25519 verification,
// Bitstring Status List credentials and their bits, the rejection codes with
// the errors they map to, and the checks a tool runs before it signs.
//
// It imports no Pebble, libp2p or raft package and no trustreg package, so
// trustctl links it without the node. The registry package applies and
// queries these records; the gateway and its client carry them as JSON.
package record
