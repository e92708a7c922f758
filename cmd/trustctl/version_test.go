package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/trustreg/trustreg/version"
)

// TestVersionFlag: trustctl --version prints its build and asks no server.
func TestVersionFlag(t *testing.T) {
	var out, errw bytes.Buffer
	err := run(context.Background(), []string{"--server", "http://127.0.0.1:1", "--version"}, nil, &out, &errw)
	if err != nil {
		t.Fatalf("trustctl --version: %v\n%s", err, errw.String())
	}
	if want := "trustctl version " + version.Get().String() + "\n"; out.String() != want {
		t.Errorf("trustctl --version printed %q, want %q", out.String(), want)
	}
}
