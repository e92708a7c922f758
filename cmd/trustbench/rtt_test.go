package main

import (
	"testing"
	"time"
)

func TestParseRTTs(t *testing.T) {
	got, err := parseRTTs("0, 100ms,300ms")
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond}
	if len(got) != len(want) {
		t.Fatalf("parseRTTs: %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("parseRTTs: %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"", "150", "-1s", "100ms,x"} {
		if _, err := parseRTTs(bad); err == nil {
			t.Errorf("parseRTTs(%q) accepted", bad)
		}
	}
}

func TestLatencyOf(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := latencyOf("x", ds)
	if l.N != 100 || l.P50MS != 51 || l.P99MS != 100 {
		t.Fatalf("latencyOf 1..100 ms: %+v, want n 100, p50 51, p99 100", l)
	}
	if l := latencyOf("none", nil); l.N != 0 || l.P99MS != 0 {
		t.Fatalf("latencyOf nothing: %+v", l)
	}
}
