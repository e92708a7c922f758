// Package gateway serves trustreg's verifier-facing HTTP API: trust
// decisions, registry records, operation history, operation submission,
// cluster status, health, metrics and the OpenAPI document.
//
// It depends on registry types and errors only, and declares the small
// interfaces it consumes (Registry, Writer, Node). Every error leaves
// through one table (errorTable) that maps it to an HTTP status and an RFC
// 9457 problem type.
package gateway
