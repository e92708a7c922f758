package main

import (
	"context"
	"errors"
	"testing"
)

// errOutClosed is what failingWriter's writes return.
var errOutClosed = errors.New("stdout closed")

// failingWriter refuses every write, like a closed stdout.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errOutClosed }

// TestIdentityWriteErrorIsReturned: trustd identity fails with the write's
// error when its peer ID cannot be printed, instead of exiting 0 with
// nothing printed.
func TestIdentityWriteErrorIsReturned(t *testing.T) {
	err := run(context.Background(), []string{"identity", "--data-dir", t.TempDir()}, nil, failingWriter{}, failingWriter{})
	if !errors.Is(err, errOutClosed) {
		t.Fatalf("identity: %v, want the write's error", err)
	}
}
