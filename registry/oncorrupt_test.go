package registry

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/trustreg/trustreg/registry/decide"
)

// TestProofReadReportsCorruptState: a proof read that finds a record
// changed behind the apply's back calls Options.OnStateCorrupt with its
// ErrStateCorrupt; proof reads of sound records do not.
func TestProofReadReportsCorruptState(t *testing.T) {
	f := mustCommitScenario(t)
	f.s.Close()
	opts := stateOptions(pebbleLogger{log: slog.New(slog.DiscardHandler)})
	db, err := pebble.Open(f.dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	k := key(tableAccreditation, f.collegeAcc)
	v, c, err := db.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Replace(v, []byte(`"revoked"`), []byte(`"active"`), 1)
	c.Close()
	if bytes.Equal(altered, v) {
		t.Fatalf("the accreditation is not revoked: %s", v)
	}
	if err := db.Set(k, altered, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	opts.Cache.Unref()

	var reported []error
	s, err := Open(f.dir, f.raw, Options{OnStateCorrupt: func(err error) { reported = append(reported, err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	view := s.View()
	defer view.Close()
	if _, _, err := view.ProveRecords([]decide.RecordKey{decide.EntityKey(f.other.DID)}); err != nil || len(reported) != 0 {
		t.Fatalf("a sound record: %v, reported %v", err, reported)
	}
	if _, _, err := view.ProveRecords([]decide.RecordKey{decide.AccreditationKey(f.collegeAcc)}); !errors.Is(err, ErrStateCorrupt) {
		t.Fatalf("the altered record: %v, want ErrStateCorrupt", err)
	}
	if _, _, err := view.ProveStoreKeys([][]byte{k}); !errors.Is(err, ErrStateCorrupt) {
		t.Fatalf("the altered record by its store key: %v, want ErrStateCorrupt", err)
	}
	if len(reported) != 2 || !errors.Is(reported[0], ErrStateCorrupt) || !errors.Is(reported[1], ErrStateCorrupt) {
		t.Fatalf("reported %v, want the two reads' ErrStateCorrupt", reported)
	}
}
