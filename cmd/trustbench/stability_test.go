package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseTimings(t *testing.T) {
	got, err := parseTimings("500ms, 1s,2s")
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}
	if len(got) != len(want) {
		t.Fatalf("parseTimings: %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("parseTimings: %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"", "0", "1", "-1s", "1s,x"} {
		if _, err := parseTimings(bad); err == nil {
			t.Errorf("parseTimings(%q) accepted", bad)
		}
	}
}

func TestLongestGapIsBetweenAcknowledgements(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	// Out of order, as writes finish; the 700 ms before the first is a
	// write's latency, not a stall.
	acked := []time.Time{at(900), at(700), at(3400), at(1000)}
	if g := longestGap(start, at(3500), acked); g != 2400*time.Millisecond {
		t.Fatalf("longestGap: %s, want 2.4s (1000 ms to 3400 ms)", g)
	}
	if g := longestGap(start, at(5000), []time.Time{at(700)}); g != 5*time.Second {
		t.Fatalf("longestGap with one write acknowledged: %s, want the whole run", g)
	}
}

func TestRaftRisesCountTheBusiestVoterAndTheHighestTerm(t *testing.T) {
	before := []raftReading{{leaderChanges: 1, term: 2}, {leaderChanges: 1, term: 2}, {leaderChanges: 2, term: 3}}
	after := []raftReading{{leaderChanges: 3, term: 5}, {leaderChanges: 2, term: 5}, {leaderChanges: 2, term: 6}}
	if l, e := raftRises(before, after); l != 2 || e != 3 {
		t.Fatalf("raftRises: %d leader changes, %d elections; want 2 and 3", l, e)
	}
	// A voter restarted during the run counts from 0: no wrap-around.
	if l, e := raftRises(before, []raftReading{{0, 2}, {0, 2}, {0, 3}}); l != 0 || e != 0 {
		t.Fatalf("raftRises after counters fell: %d, %d; want 0, 0", l, e)
	}
}

func TestStabilityNeedsTheRTTCluster(t *testing.T) {
	for _, args := range [][]string{
		{"--stability", "10s"},
		{"--rtt", "300ms", "--stability", "10s", "--rtt-raft-timing", "0"},
		{"--rtt", "300ms", "--stability", "10s", "--stability-rate", "-1"},
		{"--rtt", "300ms", "--jitter", "-1ms"},
	} {
		var out strings.Builder
		if err := run(t.Context(), args, &out); err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
}
