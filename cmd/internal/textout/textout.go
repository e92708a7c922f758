package textout

import (
	"fmt"
	"io"
)

// Writer writes to W until a write fails and keeps that first error in
// Err; later writes do nothing and return it. Text is written through one
// and its Err checked once at the end.
type Writer struct {
	W   io.Writer
	Err error
	// Escaped writes text through Escape: for text that carries
	// strings from elsewhere (a node's answers, a proof bundle).
	Escaped bool
}

// Write writes p to W unless an earlier write failed.
func (e *Writer) Write(p []byte) (int, error) {
	if e.Err != nil {
		return 0, e.Err
	}
	if e.Escaped {
		if s := Escape(string(p)); s != string(p) {
			if _, err := io.WriteString(e.W, s); err != nil {
				e.Err = err
				return 0, err
			}
			return len(p), nil
		}
	}
	n, err := e.W.Write(p)
	e.Err = err
	return n, err
}

// Printf formats like fmt.Fprintf; a write's error is kept in e.Err.
func (e *Writer) Printf(format string, args ...any) { _, _ = fmt.Fprintf(e, format, args...) }

// Println formats like fmt.Fprintln; a write's error is kept in e.Err.
func (e *Writer) Println(args ...any) { _, _ = fmt.Fprintln(e, args...) }
