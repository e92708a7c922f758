package registry

import (
	"github.com/trustreg/trustreg/registry/record"
)

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
