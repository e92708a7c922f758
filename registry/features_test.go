package registry

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/record"
)

func (h *harness) applyCommand(cmd []byte) *record.Result {
	h.t.Helper()
	h.index++
	e := Entry{Index: h.index, Time: h.now, Data: cmd}
	h.entries = append(h.entries, e)
	return h.s.ApplyBatch([]Entry{e})[0]
}

// An entity with metadata.location is refused, with the same effect on the
// state as a build that does not know the field, until the cluster's level
// is raised through the log; the level never goes back and travels in
// snapshots and across a reopen.
func TestFeatureLevelGatesEntityLocation(t *testing.T) {
	h := mustNewState(t, 1, 1)
	if got := h.s.ClusterFeatureLevel(); got != FeatureLevelBase {
		t.Fatalf("a new state is at level %d, want %d", got, FeatureLevelBase)
	}
	college := mustKey(t, record.KeyEd25519)
	withLocation := h.sign(college, record.OpRegisterEntity, map[string]any{
		"id": college.DID, "name": "College", "metadata": map[string]any{"location": "Cambridge, MA, USA"},
	})
	before := h.digest()
	r := h.apply(withLocation)
	if r.Accepted || r.Code != record.CodeInvalid || !strings.Contains(r.Reason, "feature level 2") || !strings.Contains(r.Reason, "metadata.location") {
		t.Fatalf("location at level 1: %+v", r)
	}
	if h.digest() != before {
		t.Fatal("a refused operation changed the state")
	}
	// The base schema is unaffected.
	other := mustKey(t, record.KeyEd25519)
	h.mustAccept(h.sign(other, record.OpRegisterEntity, map[string]any{"id": other.DID, "name": "Other", "metadata": map[string]any{"country": "US"}}))
	// An update that adds a location is gated too.
	r = h.apply(h.sign(other, record.OpUpdateEntity, map[string]any{"id": other.DID, "metadata": map[string]any{"location": "Boston"}}))
	if r.Accepted || !strings.Contains(r.Reason, "feature level") {
		t.Fatalf("update with location at level 1: %+v", r)
	}

	r = h.applyCommand(EncodeFeatureLevel(FeatureLevelEntityLocation))
	if !r.Accepted || r.Duplicate || r.Op != OpFeatureLevel || h.s.ClusterFeatureLevel() != FeatureLevelEntityLocation {
		t.Fatalf("raise to 2: %+v, level %d", r, h.s.ClusterFeatureLevel())
	}
	// Raising to the level again, or lowering, changes nothing.
	for _, l := range []int{FeatureLevelEntityLocation, FeatureLevelBase} {
		if r := h.applyCommand(EncodeFeatureLevel(l)); !r.Duplicate || h.s.ClusterFeatureLevel() != FeatureLevelEntityLocation {
			t.Fatalf("level %d after the raise: %+v, level %d", l, r, h.s.ClusterFeatureLevel())
		}
	}
	// The same signed bytes are accepted now (the refusal kept no record).
	if r := h.mustAccept(withLocation); r.Duplicate {
		t.Fatalf("the refused operation counted as applied before: %+v", r)
	}
	e, err := h.s.Entity(college.DID)
	if err != nil || e == nil || e.Metadata == nil || e.Metadata.Location != "Cambridge, MA, USA" {
		t.Fatalf("entity after the raise: %+v, %v", e, err)
	}

	// A snapshot carries the level; so does a reopen.
	fresh, err := Open(t.TempDir(), h.raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.Restore(bytes.NewReader(snapshotBytes(t, h.s))); err != nil {
		t.Fatal(err)
	}
	if got := fresh.ClusterFeatureLevel(); got != FeatureLevelEntityLocation {
		t.Fatalf("restored level %d, want %d", got, FeatureLevelEntityLocation)
	}
	h.s.Close()
	h.open()
	if got := h.s.ClusterFeatureLevel(); got != FeatureLevelEntityLocation {
		t.Fatalf("level after reopening %d, want %d", got, FeatureLevelEntityLocation)
	}
}

// A level this build does not know stops the node instead of letting it
// apply what follows; so does a malformed level command.
func TestFeatureLevelUnknownStopsTheNode(t *testing.T) {
	h := mustNewState(t, 1, 1)
	for name, cmd := range map[string][]byte{
		"a level above the build's": {commandVersion1, commandTypeFeatureLevel, FeatureLevel + 1},
		"no level":                  {commandVersion1, commandTypeFeatureLevel},
		"two bytes":                 {commandVersion1, commandTypeFeatureLevel, 2, 0},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("applied without stopping")
				}
			}()
			h.applyCommand(cmd)
		})
	}
	if got := h.s.ClusterFeatureLevel(); got != FeatureLevelBase {
		t.Fatalf("level %d after refused commands", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("EncodeFeatureLevel of an unknown level did not panic")
		}
	}()
	EncodeFeatureLevel(FeatureLevel + 1)
}

// A state at a feature level above this build's (written by a newer build:
// a binary rolled back, a snapshot from a newer cluster) is refused on
// open and on restore, and a refused restore leaves the state empty.
func TestFeatureLevelNewerStateIsRefused(t *testing.T) {
	h := mustNewState(t, 1, 1)
	h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Health", "roots": []string{mustKey(t, record.KeyEd25519).DID}}))
	if err := h.s.db.Set(metaFeatureLevel, []byte{FeatureLevel + 1}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	newer := snapshotBytes(t, h.s)
	h.s.Close()
	want := fmt.Sprintf("feature level %d and this trustd applies up to %d", FeatureLevel+1, FeatureLevel)
	if s, err := Open(h.dir, h.raw, Options{}); err == nil || !strings.Contains(err.Error(), want) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("opening a newer state: %v", err)
	}

	fresh, err := Open(t.TempDir(), h.raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.Restore(bytes.NewReader(newer)); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("restoring a newer snapshot: %v", err)
	}
	if fresh.AppliedIndex() != 0 || fresh.ClusterFeatureLevel() != FeatureLevelBase {
		t.Fatalf("after the refused restore: index %d, level %d", fresh.AppliedIndex(), fresh.ClusterFeatureLevel())
	}
	if fw, err := fresh.Framework(fwID); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("the refused snapshot's framework is there: %+v, %v", fw, err)
	}
}
