package main

import (
	"fmt"
	"io"
)

// errWriter writes to w until a write fails and keeps that first error;
// later writes do nothing. Text is written through one and its err
// checked once at the end.
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
