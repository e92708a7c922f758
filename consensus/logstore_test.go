package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

func mustNewLogStore(t *testing.T) (*LogStore, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := OpenLogStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func TestLogStoreEmpty(t *testing.T) {
	s, _ := mustNewLogStore(t)
	first, err := s.FirstIndex()
	if err != nil || first != 0 {
		t.Fatalf("FirstIndex = %d, %v; want 0", first, err)
	}
	last, err := s.LastIndex()
	if err != nil || last != 0 {
		t.Fatalf("LastIndex = %d, %v; want 0", last, err)
	}
	var l raft.Log
	if err := s.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog on empty store: %v, want raft.ErrLogNotFound", err)
	}
	// raft tolerates a missing stable key only when the text is exactly "not found".
	if _, err := s.Get([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("Get missing key: %v, want error text \"not found\"", err)
	}
	if _, err := s.GetUint64([]byte("LastVoteTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("GetUint64 missing key: %v, want error text \"not found\"", err)
	}
}

func TestLogStoreRoundTripAndDeleteRange(t *testing.T) {
	s, dir := mustNewLogStore(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 2, Type: raft.LogCommand, Data: []byte{byte(i)}, Extensions: []byte("x"), AppendedAt: at})
	}
	logs[4].Data = nil
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(&raft.Log{Index: 11, Term: 3, Type: raft.LogConfiguration}); err != nil {
		t.Fatal(err)
	}
	if appends, entries := s.AppendStats(); appends != 2 || entries != 11 {
		t.Fatalf("AppendStats = %d appends, %d entries; want 2 and 11", appends, entries)
	}
	var got raft.Log
	if err := s.GetLog(3, &got); err != nil {
		t.Fatal(err)
	}
	if got.Index != 3 || got.Term != 2 || got.Type != raft.LogCommand || !bytes.Equal(got.Data, []byte{3}) || string(got.Extensions) != "x" || !got.AppendedAt.Equal(at) {
		t.Fatalf("GetLog(3) = %+v", got)
	}
	if err := s.GetLog(5, &got); err != nil || got.Data != nil {
		t.Fatalf("GetLog(5) = %+v, %v; want empty data", got, err)
	}
	// Raft compacts the head and truncates conflicting tails.
	if err := s.DeleteRange(1, 4); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(9, 11); err != nil {
		t.Fatal(err)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 5 || last != 8 {
		t.Fatalf("after DeleteRange: first %d last %d, want 5 and 8", first, last)
	}
	if err := s.GetLog(4, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("deleted entry: %v", err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("peer")); err != nil {
		t.Fatal(err)
	}
	// Everything survives a reopen (writes are synced).
	s.Close()
	s2, err := OpenLogStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if v, err := s2.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Fatalf("CurrentTerm after reopen = %d, %v", v, err)
	}
	if v, err := s2.Get([]byte("LastVoteCand")); err != nil || string(v) != "peer" {
		t.Fatalf("LastVoteCand after reopen = %q, %v", v, err)
	}
	if last, _ := s2.LastIndex(); last != 8 {
		t.Fatalf("LastIndex after reopen = %d", last)
	}
	if err := s2.DeleteRange(0, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	if last, _ := s2.LastIndex(); last != 0 {
		t.Fatalf("LastIndex after deleting everything = %d", last)
	}
}

func TestEntryEnvelope(t *testing.T) {
	at := time.Unix(1700000000, 5).UTC()
	e := unstamp(9, stamp([]byte("cmd"), at))
	if e.Index != 9 || !e.Time.Equal(at) || string(e.Data) != "cmd" {
		t.Fatalf("unstamp = %+v", e)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an entry with an unknown envelope did not stop the node")
		}
	}()
	unstamp(10, []byte{7, 0, 0})
}

// TestLogStoreRefusesCallsAfterClose: a read index served while the node
// shuts down may look up an entry after the store is closed; it gets an
// error, where the closed Pebble database would panic.
func TestLogStoreRefusesCallsAfterClose(t *testing.T) {
	s, _ := mustNewLogStore(t)
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	checks := map[string]error{
		"GetLog":      s.GetLog(1, &l),
		"StoreLogs":   s.StoreLogs([]*raft.Log{{Index: 2, Term: 1}}),
		"DeleteRange": s.DeleteRange(1, 1),
		"Set":         s.Set([]byte("k"), []byte("v")),
	}
	_, checks["FirstIndex"] = s.FirstIndex()
	_, checks["LastIndex"] = s.LastIndex()
	_, checks["Get"] = s.Get([]byte("k"))
	for call, err := range checks {
		if !errors.Is(err, errLogStoreClosed) || !errors.Is(err, ErrShutdown) {
			t.Errorf("%s after Close: %v, want %v (which is ErrShutdown)", call, err, errLogStoreClosed)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestLogStoreKeepsWhatItReturnedAfterAPowerLoss: raft counts an entry,
// a term and a vote as durable once the store returns; on a file system
// that keeps only what was synced when the power fails, a power loss right
// after any call leaves every entry stored, every deletion and every
// stable value as the store last returned them.
func TestLogStoreKeepsWhatItReturnedAfterAPowerLoss(t *testing.T) {
	fs := vfs.NewCrashableMem()
	dir := "/raft/log"
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/raft", "/"} {
		f, err := fs.OpenDir(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(f.Sync(), f.Close()); err != nil {
			t.Fatal(err)
		}
	}
	s, err := openLogStore(dir, fs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var logs []*raft.Log
	for i := uint64(1); i <= 50; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1 + i/20, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, 300), AppendedAt: time.Unix(int64(i), 0).UTC()})
	}
	// What the store returned so far: entries first..last, the stable
	// values.
	first, last := uint64(0), uint64(0)
	stable := map[string]string{}
	powerLoss := func(after string) {
		t.Helper()
		c, err := openLogStore(dir, fs.CrashClone(vfs.CrashCloneCfg{})) // synced data only
		if err != nil {
			t.Fatalf("open after a power loss after %s: %v", after, err)
		}
		defer c.Close()
		if got, err := c.FirstIndex(); err != nil || got != first {
			t.Fatalf("power loss after %s: FirstIndex %d, %v; want %d", after, got, err, first)
		}
		if got, err := c.LastIndex(); err != nil || got != last {
			t.Fatalf("power loss after %s: LastIndex %d, %v; want %d", after, got, err, last)
		}
		for i := first; i <= last && i > 0; i++ {
			want := logs[i-1]
			var got raft.Log
			if err := c.GetLog(i, &got); err != nil {
				t.Fatalf("power loss after %s: entry %d: %v", after, i, err)
			}
			if got.Term != want.Term || !bytes.Equal(got.Data, want.Data) || !got.AppendedAt.Equal(want.AppendedAt) {
				t.Fatalf("power loss after %s: entry %d is %+v, want %+v", after, i, got, want)
			}
		}
		for k, v := range stable {
			if got, err := c.Get([]byte(k)); err != nil || string(got) != v {
				t.Fatalf("power loss after %s: stable %s = %q, %v; want %q", after, k, got, err, v)
			}
		}
	}
	for i := 0; i < len(logs); i += 7 {
		if err := s.StoreLogs(logs[i:min(i+7, len(logs))]); err != nil {
			t.Fatal(err)
		}
		first, last = 1, uint64(min(i+7, len(logs)))
		powerLoss(fmt.Sprintf("storing entries to %d", last))
	}
	if err := s.DeleteRange(1, 10); err != nil {
		t.Fatal(err)
	}
	first = 11
	powerLoss("deleting entries 1 to 10")
	if err := s.Set([]byte("CurrentTerm"), []byte("7")); err != nil {
		t.Fatal(err)
	}
	stable["CurrentTerm"] = "7"
	powerLoss("setting the term")
	if err := s.Set([]byte("LastVoteCand"), []byte("12D3KooWcandidate")); err != nil {
		t.Fatal(err)
	}
	stable["LastVoteCand"] = "12D3KooWcandidate"
	powerLoss("recording a vote")
}
