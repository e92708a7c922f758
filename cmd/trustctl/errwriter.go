package main

import (
	"fmt"
	"io"
)

// errWriter writes to w until a write fails and keeps that first error;
// later writes do nothing and return it. Text output is written through
// one and its err checked once at the end.
type errWriter struct {
	w   io.Writer
	err error
}

// Write writes p to the underlying writer unless an earlier write failed.
func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// printf and println keep a write's error in e.err.
func (e *errWriter) printf(format string, args ...any) { _, _ = fmt.Fprintf(e, format, args...) }
func (e *errWriter) println(args ...any)               { _, _ = fmt.Fprintln(e, args...) }

// printText is a.print with the human form written through an errWriter:
// it returns the first error of either form.
func (a *app) printText(v any, human func(w *errWriter)) error {
	ew := &errWriter{}
	if err := a.print(v, func(w io.Writer) { ew.w = w; human(ew) }); err != nil {
		return err
	}
	return ew.err
}

// note writes a progress message to stderr. A message stderr does not
// take has nowhere else to be reported, and the command's result does not
// depend on it, so the write's error is discarded.
func (a *app) note(format string, args ...any) { _, _ = fmt.Fprintf(a.errw, format, args...) }
