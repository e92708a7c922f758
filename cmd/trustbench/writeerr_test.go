package main

import (
	"bytes"
	"errors"
	"testing"
)

// errWANLine is what wanFailWriter returns for the --rtt figures.
var errWANLine = errors.New("write refused")

// wanFailWriter refuses the writes of the --rtt figures and takes the rest.
type wanFailWriter struct{ bytes.Buffer }

func (w *wanFailWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("Across regions")) {
		return 0, errWANLine
	}
	return w.Buffer.Write(p)
}

// TestPrintReportReturnsWANWriteError: a write of the --rtt figures that
// fails makes printReport return its error, as every other line's does.
func TestPrintReportReturnsWANWriteError(t *testing.T) {
	rep := &report{Mode: "rtt", WAN: []wanResult{{RTTMS: 100, OneWayMS: 50, TimingMS: 1000}}}
	if err := printReport(&wanFailWriter{}, rep); !errors.Is(err, errWANLine) {
		t.Fatalf("printReport: %v, want the write's error", err)
	}
}
