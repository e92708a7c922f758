package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/trustreg/trustreg/registry/record"
)

// TestProblemDetail checks what a client reads in a problem's detail: the
// sentinels' texts without their Go package prefixes, no status-list code
// the type already names, and the rest of the message untouched.
func TestProblemDetail(t *testing.T) {
	for _, tc := range []struct {
		err    error
		typ    string
		status int
		detail string
	}{
		{fmt.Errorf("%w: entity %q", record.ErrNotFound, "did:example:nope"),
			problemTypeBase + "not_found", http.StatusNotFound, `not found: entity "did:example:nope"`},
		{fmt.Errorf("%w: %w: no status list %q of %s", record.ErrNotFound, record.ErrStatusRetrieval, "l1", "did:example:x"),
			statusListTypeBase + "STATUS_RETRIEVAL_ERROR", http.StatusNotFound, `not found: no status list "l1" of did:example:x`},
		{fmt.Errorf("%w: index 9 of 8", record.ErrRange),
			statusListTypeBase + "RANGE_ERROR", http.StatusBadRequest, "index 9 of 8"},
		{fmt.Errorf("%w: node is shutting down", ErrUnavailable),
			problemTypeBase + "unavailable", http.StatusServiceUnavailable, "no leader or not ready: node is shutting down"},
		// The part after the sentinels may echo the request; it stays as sent.
		{fmt.Errorf("%w: entity %q", record.ErrNotFound, "registry: not found"),
			problemTypeBase + "not_found", http.StatusNotFound, `not found: entity "registry: not found"`},
		// A bare sentinel keeps its text; a status-list code alone is all there is.
		{record.ErrConflict, problemTypeBase + "conflict", http.StatusConflict, "conflicts with the current state"},
		{record.ErrStatusRetrieval, statusListTypeBase + "STATUS_RETRIEVAL_ERROR", http.StatusNotFound, "registry: STATUS_RETRIEVAL_ERROR"},
		// Text that only starts like a sentinel is not one.
		{fmt.Errorf("%w: registry: not foundation", record.ErrInvalid),
			problemTypeBase + "invalid", http.StatusUnprocessableEntity, "semantically invalid: registry: not foundation"},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded),
			problemTypeBase + "timeout", http.StatusServiceUnavailable, "wrapped: context deadline exceeded"},
		{errors.New("disk on fire"), problemTypeBase + "internal", http.StatusInternalServerError, "disk on fire"},
	} {
		p := problemFor(tc.err)
		if p.Type != tc.typ || p.Status != tc.status || p.Detail != tc.detail {
			t.Errorf("%q: got %s %d %q, want %s %d %q", tc.err, p.Type, p.Status, p.Detail, tc.typ, tc.status, tc.detail)
		}
	}
}
