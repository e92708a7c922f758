package record

import (
	"context"
	"errors"
	"testing"
)

// TestErrorfKeepsKindAndCause: an Error is its kind (and the kind's
// parent) for errors.Is, keeps a cause wrapped with %w, has the Go text
// with the package's name, and gives a client the kind's words and the
// detail.
func TestErrorfKeepsKindAndCause(t *testing.T) {
	err := Errorf(ErrStatusRetrieval, "list %q: %w", "l1", context.Canceled)
	for _, target := range []error{ErrStatusRetrieval, ErrNotFound, context.Canceled} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%q, %q) = false", err, target)
		}
	}
	if errors.Is(err, ErrConflict) {
		t.Errorf("%q is ErrConflict", err)
	}
	if got, want := err.Error(), `registry: STATUS_RETRIEVAL_ERROR: list "l1": context canceled`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Public() != `not found: list "l1": context canceled` {
		t.Fatalf("Public() of %q: %+v", err, e)
	}
	if e := Errorf(ErrRange, "index 9 of 8").(*Error); e.Public() != "index 9 of 8" {
		t.Errorf("a kind without words: Public() = %q", e.Public())
	}
	// No cause: the chain is the kind alone.
	if e := Errorf(ErrConflict, "%s", "x").(*Error); len(e.Unwrap()) != 1 {
		t.Errorf("Unwrap() = %v, want the kind alone", e.Unwrap())
	}
	// A rejection's result maps back to its code's kind.
	if r := (&Result{Code: CodeIATWindow, Reason: "too old"}); !errors.Is(r.Err(), ErrIATWindow) || r.Err().(*Error).Detail != "too old" {
		t.Errorf("Result.Err() = %v", r.Err())
	}
}
