package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/trustreg/trustreg/registry/record"
)

// TestProblemDetail checks what a client reads in a problem's detail: an
// error of a record.Kind gives the kind's words and its detail, built from
// typed parts; a bare kind its words; anything else its text unchanged
// (nothing is cut out of an error's text).
func TestProblemDetail(t *testing.T) {
	for _, tc := range []struct {
		err    error
		typ    string
		status int
		detail string
	}{
		{record.Errorf(record.ErrNotFound, "entity %q", "did:example:nope"),
			problemTypeBase + "not_found", http.StatusNotFound, `not found: entity "did:example:nope"`},
		// A missing status list is also not found; the type names the W3C code.
		{record.Errorf(record.ErrStatusRetrieval, "no status list %q of %s", "l1", "did:example:x"),
			statusListTypeBase + "STATUS_RETRIEVAL_ERROR", http.StatusNotFound, `not found: no status list "l1" of did:example:x`},
		{record.Errorf(record.ErrRange, "index 9 of 8"),
			statusListTypeBase + "RANGE_ERROR", http.StatusBadRequest, "index 9 of 8"},
		{record.Errorf(ErrUnavailable, "node is shutting down"),
			problemTypeBase + "unavailable", http.StatusServiceUnavailable, "no leader or not ready: node is shutting down"},
		// A cause wrapped with %w stays in the detail and in the chain.
		{record.Errorf(ErrUnavailable, "%w", context.Canceled),
			problemTypeBase + "unavailable", http.StatusServiceUnavailable, "no leader or not ready: context canceled"},
		// The detail may echo the request; it stays as sent.
		{record.Errorf(record.ErrNotFound, "entity %q", "registry: not found"),
			problemTypeBase + "not_found", http.StatusNotFound, `not found: entity "registry: not found"`},
		// A bare kind gives its words.
		{record.ErrConflict, problemTypeBase + "conflict", http.StatusConflict, "conflicts with the current state"},
		{record.ErrStatusRetrieval, statusListTypeBase + "STATUS_RETRIEVAL_ERROR", http.StatusNotFound, "not found"},
		// A kind wrapped by fmt.Errorf is found by errors.Is; its text is
		// the client's as it is.
		{fmt.Errorf("%w: index 9 of 8", record.ErrRange),
			statusListTypeBase + "RANGE_ERROR", http.StatusBadRequest, "registry: RANGE_ERROR: index 9 of 8"},
		// The rejection of an operation: its code's kind and its reason.
		{(&record.Result{Code: record.CodeScope, Reason: "resource x not granted"}).Err(),
			problemTypeBase + "scope_exceeded", http.StatusForbidden, "grant exceeds the grantor's scope: resource x not granted"},
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
