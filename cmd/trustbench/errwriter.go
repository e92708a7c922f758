package main

import (
	"io"

	"github.com/trustreg/trustreg/cmd/internal/textout"
)

// errWriter prints to W until the first write fails and keeps that error
// in Err (textout.Writer). A report printer writes through one and checks
// Err once at the end.
type errWriter = textout.Writer

// closeRead closes c, which was only read (a response body, a file read
// or a listener probed): its error loses no data, so it is discarded.
func closeRead(c io.Closer) { _ = c.Close() }
