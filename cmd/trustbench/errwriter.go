package main

import (
	"fmt"
	"io"
)

// errWriter prints to w until the first write fails and keeps that
// error; later prints do nothing. A report printer writes through one
// and checks err once at the end.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func (e *errWriter) println(args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintln(e.w, args...)
	}
}

// closeRead closes c, which was only read (a response body, a file read
// or a listener probed): its error loses no data, so it is discarded.
func closeRead(c io.Closer) { _ = c.Close() }
