package main

import (
	"fmt"
	"io"

	"github.com/trustreg/trustreg/cmd/internal/textout"
)

// errWriter writes to W until a write fails and keeps that first error in
// Err (textout.Writer).
type errWriter = textout.Writer

// printText is a.print with the human form written through an errWriter,
// escaped (textout.Escape: the text carries strings of a node's answers
// or a bundle's, which must not drive the terminal or hide in it): it
// returns the first error of either form.
func (a *app) printText(v any, human func(w *errWriter)) error {
	ew := &errWriter{Escaped: true}
	if err := a.print(v, func(w io.Writer) { ew.W = w; human(ew) }); err != nil {
		return err
	}
	return ew.Err
}

// note writes a progress message to stderr. A message stderr does not
// take has nowhere else to be reported, and the command's result does not
// depend on it, so the write's error is discarded.
func (a *app) note(format string, args ...any) { _, _ = fmt.Fprintf(a.errw, format, args...) }
