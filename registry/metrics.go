package registry

import "github.com/cockroachdb/pebble/v2"

// DBMetrics returns the state database's Pebble metrics (sizes,
// compactions, flushes, cache), for the node's metrics. It only reads;
// the caller must not call it once Close has begun (Pebble panics on a
// closed database).
func (s *State) DBMetrics() *pebble.Metrics { return s.db.Metrics() }
