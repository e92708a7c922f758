package consensus

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

func TestAppendFork(t *testing.T) {
	// This node applied up to 10; its log holds terms 2 up to 9 and 3 from
	// 10 on, and nothing below 5.
	terms := map[uint64]uint64{5: 2, 6: 2, 7: 2, 8: 2, 9: 2, 10: 3, 11: 3}
	termAt := func(i uint64) (uint64, bool) { t, ok := terms[i]; return t, ok }
	entries := func(from uint64, ts ...uint64) []*raft.Log {
		var ls []*raft.Log
		for i, t := range ts {
			ls = append(ls, &raft.Log{Index: from + uint64(i), Term: t})
		}
		return ls
	}
	cases := []struct {
		name string
		ae   raft.AppendEntriesRequest
		from uint64 // 0: no fork
	}{
		{"agrees at the applied index", raft.AppendEntriesRequest{Term: 3, PrevLogEntry: 10, PrevLogTerm: 3, Entries: entries(11, 3, 4)}, 0},
		{"differs at the applied index", raft.AppendEntriesRequest{Term: 4, PrevLogEntry: 10, PrevLogTerm: 2}, 10},
		{"differs below it", raft.AppendEntriesRequest{Term: 4, PrevLogEntry: 6, PrevLogTerm: 1, Entries: entries(7, 2)}, 6},
		{"an entry it applied differs", raft.AppendEntriesRequest{Term: 4, PrevLogEntry: 8, PrevLogTerm: 2, Entries: entries(9, 2, 4, 4)}, 10},
		{"differs past what it applied only", raft.AppendEntriesRequest{Term: 4, PrevLogEntry: 10, PrevLogTerm: 3, Entries: entries(11, 4)}, 0},
		{"starts past what it applied", raft.AppendEntriesRequest{Term: 4, PrevLogEntry: 11, PrevLogTerm: 4}, 0},
		{"a deposed leader's", raft.AppendEntriesRequest{Term: 2, PrevLogEntry: 9, PrevLogTerm: 2, Entries: entries(10, 2)}, 0},
		{"below what it knows", raft.AppendEntriesRequest{Term: 4, PrevLogEntry: 3, PrevLogTerm: 1, Entries: entries(4, 1)}, 0},
		{"from the start", raft.AppendEntriesRequest{Term: 4, Entries: entries(1, 1, 1, 1, 1, 1)}, 5},
	}
	for _, tc := range cases {
		e := appendFork(&tc.ae, 3, 10, termAt)
		switch {
		case tc.from == 0 && e != nil:
			t.Errorf("%s: fork %v", tc.name, e)
		case tc.from != 0 && (e == nil || e.From != tc.from || e.Applied != 10):
			t.Errorf("%s: %v, want a fork from %d", tc.name, e, tc.from)
		}
	}
}

func TestForkGuardRefusesReplacingAppliedEntries(t *testing.T) {
	s, err := OpenLogStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	putLogs(t, s, 1, 1, 20)
	var found []*ForkError
	var snapEnd uint64
	g := forkGuard{LogStore: s, applied: func() uint64 { return 15 }, snapshotEnd: func() uint64 { return snapEnd }, found: func(e *ForkError) { found = append(found, e) }}
	// Compaction: a prefix, at or below the applied index.
	if err := g.DeleteRange(1, 12); err != nil {
		t.Fatal(err)
	}
	// A conflict past the applied index.
	if err := g.DeleteRange(16, 20); err != nil {
		t.Fatal(err)
	}
	if len(found) != 0 {
		t.Fatalf("forks found in a compaction and a truncation past the applied index: %v", found)
	}
	putLogs(t, s, 1, 16, 20)
	err = g.DeleteRange(15, 20)
	var fe *ForkError
	if !errors.As(err, &fe) || !errors.Is(err, ErrForked) || fe.From != 15 || fe.Applied != 15 || len(found) != 1 || found[0] != fe {
		t.Fatalf("replacing an applied entry: %v (found %v)", err, found)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 13 || last != 20 {
		t.Fatalf("log holds %d..%d after the refusal, want 13..20", first, last)
	}
	// Entries at or below the newest snapshot are not what the state was
	// applied from (a snapshot installed over a stale log): deleting them
	// is no fork.
	snapEnd = 15
	if err := g.DeleteRange(14, 20); err != nil || len(found) != 1 {
		t.Fatalf("deleting entries up to the snapshot's and past the applied index: %v (found %v)", err, found)
	}
}

func TestDropStaleBelow(t *testing.T) {
	s, err := OpenLogStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bounds := func() (uint64, uint64) {
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		return first, last
	}
	// A follower whose log runs past the snapshot, its entry there the
	// snapshot's: only what lies below goes.
	putLogs(t, s, 3, 1, 30)
	if err := dropStaleBelow(s, 20, 3); err != nil {
		t.Fatal(err)
	}
	if first, last := bounds(); first != 20 || last != 30 {
		t.Fatalf("log %d..%d, want 20..30", first, last)
	}
	// A deposed leader's stale entry at the snapshot's index goes too.
	if err := dropStaleBelow(s, 25, 4); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if first, last := bounds(); first != 26 || last != 30 || s.GetLog(25, &l) == nil {
		t.Fatalf("log %d..%d (entry 25 kept: %v), want 26..30", first, last, s.GetLog(25, &l) == nil)
	}
	// A log that ends below the snapshot is emptied; an empty one stays so.
	if err := dropStaleBelow(s, 40, 4); err != nil {
		t.Fatal(err)
	}
	if first, last := bounds(); first != 0 || last != 0 {
		t.Fatalf("log %d..%d, want empty", first, last)
	}
	if err := dropStaleBelow(s, 40, 4); err != nil {
		t.Fatal(err)
	}
}

// putLogs stores command entries from..to of term into s.
func putLogs(t *testing.T, s *LogStore, term, from, to uint64) {
	t.Helper()
	var ls []*raft.Log
	for i := from; i <= to; i++ {
		ls = append(ls, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte{byte(i)}})
	}
	if err := s.StoreLogs(ls); err != nil {
		t.Fatal(err)
	}
}
