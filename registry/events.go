package registry

import (
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// statusAt returns the status in force at valid time t, counting only events
// recorded at or before index asOf: the event with the latest effectiveAt not
// after t (ties go to the later-recorded event). ok is false when no event
// applies yet.
func statusAt(events []record.StatusEvent, t time.Time, asOf uint64) (ev record.StatusEvent, ok bool) {
	for _, e := range events {
		if e.Index > asOf || e.EffectiveAt.After(t) {
			continue
		}
		if !ok || e.EffectiveAt.After(ev.EffectiveAt) || (e.EffectiveAt.Equal(ev.EffectiveAt) && e.Index > ev.Index) {
			ev, ok = e, true
		}
	}
	return ev, ok
}

// everRevoked reports whether a revoke event was recorded at or before asOf.
func everRevoked(events []record.StatusEvent, asOf uint64) bool {
	for _, e := range events {
		if e.Index <= asOf && e.Status == record.StatusRevoked {
			return true
		}
	}
	return false
}

// latestRecorded returns the most recently recorded event.
func latestRecorded(events []record.StatusEvent) (record.StatusEvent, bool) {
	if len(events) == 0 {
		return record.StatusEvent{}, false
	}
	return events[len(events)-1], true
}
