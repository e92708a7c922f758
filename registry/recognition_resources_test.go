package registry

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// From FeatureLevelRecognitionResources a recognition's resources are
// read as its status is: those of the recognize in force at the time
// asked, as recorded by the index asked about. A widening scheduled for
// next year does not answer now, a narrowing does not reach back, and an
// answer as of an earlier index reads the resources recorded by then.
// Below the level a recognize's resources replaced the recognition's for
// every time and index, and the record keeps none of them.
func TestRecognitionResourcesAsOfTimeAndIndex(t *testing.T) {
	const other = "https://example.org/frameworks/other"
	for _, level := range []int{FeatureLevelRecognitionResources - 1, FeatureLevelRecognitionResources} {
		t.Run(fmt.Sprintf("level=%d", level), func(t *testing.T) {
			f := mustChain(t)
			f.mustRaiseLevel(level)
			bitemporal := level >= FeatureLevelRecognitionResources
			f.tick()
			both := f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other, "resources": []string{nursing, pharmacy}}))
			f.tick()
			nurses := f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other, "resources": []string{nursing}}))
			f.tick()
			widen := f.now.AddDate(1, 0, 0)
			f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other,
				"resources": []string{nursing, pharmacy, "https://example.org/credentials/Midwife"}, "effectiveAt": widen.Format(time.RFC3339)}))
			f.tick()
			ask := func(resource string, at time.Time, asOf uint64) string {
				return f.recognitionReason(other, resource, at, asOf)
			}
			for _, tc := range []struct {
				what, resource string
				at             time.Time
				asOf           uint64
				want, before   string // at the level, and below it
			}{
				{"pharmacy now", pharmacy, f.now, 0, decide.ReasonNeverRecognized, record.ReasonActive},
				{"midwives now, widened next year", "https://example.org/credentials/Midwife", f.now, 0, decide.ReasonNeverRecognized, record.ReasonActive},
				{"midwives after the widening", "https://example.org/credentials/Midwife", widen.Add(time.Hour), 0, record.ReasonActive, record.ReasonActive},
				{"nurses now", nursing, f.now, 0, record.ReasonActive, record.ReasonActive},
				{"pharmacy as of the first recognize", pharmacy, f.now, both.Index, record.ReasonActive, record.ReasonActive},
				{"pharmacy as of the narrowing", pharmacy, f.now, nurses.Index, decide.ReasonNeverRecognized, record.ReasonActive},
				{"midwives as of the first recognize", "https://example.org/credentials/Midwife", f.now, both.Index, decide.ReasonNeverRecognized, record.ReasonActive},
			} {
				want := tc.before
				if bitemporal {
					want = tc.want
				}
				if got := ask(tc.resource, tc.at, tc.asOf); got != want {
					t.Errorf("%s: %s, want %s", tc.what, got, want)
				}
			}
			rec := f.storedRecognition(other)
			if !bitemporal {
				if len(rec.ResourceChanges) != 0 {
					t.Fatalf("below the level the record keeps resource changes: %+v", rec.ResourceChanges)
				}
				return
			}
			if len(rec.ResourceChanges) != 3 || rec.ResourceChanges[0].Index != both.Index || !slices.Equal(rec.ResourceChanges[1].Resources, []string{nursing}) {
				t.Fatalf("resource changes %+v", rec.ResourceChanges)
			}
			// "Already recognizes for these resources" is judged by the
			// resources in force at the change's effectiveAt.
			if r := f.apply(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other, "resources": []string{nursing}})); r.Accepted {
				t.Fatal("a recognize for the resources in force now was taken")
			}
			f.tick()
			f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other, "resources": []string{nursing, pharmacy},
				"effectiveAt": f.now.AddDate(0, 6, 0).Format(time.RFC3339)}))
		})
	}
}

// A recognition recorded before the level keeps, at its first recognize
// from the level on, the resources it held, from the index of the
// recognize that set them: answers as of that index still read them.
func TestRecognitionResourcesRecordedBeforeTheLevel(t *testing.T) {
	const other = "https://example.org/frameworks/other"
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelRecognitionResources - 1)
	f.tick()
	first := f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other, "resources": []string{nursing}}))
	f.tick()
	set := f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other, "resources": []string{nursing, pharmacy}}))
	f.tick()
	f.mustAccept(f.govSign(record.OpUnrecognize, map[string]any{"framework": fwID, "recognized": other}))
	f.tick()
	f.mustRaiseLevel(FeatureLevelRecognitionResources)
	f.tick()
	again := f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other, "resources": []string{nursing}}))
	rec := f.storedRecognition(other)
	want := []record.ResourceChange{{Index: set.Index, Resources: []string{nursing, pharmacy}}, {Index: again.Index, Resources: []string{nursing}}}
	if len(rec.ResourceChanges) != 2 || rec.ResourceChanges[0].Index != want[0].Index || !slices.Equal(rec.ResourceChanges[0].Resources, want[0].Resources) ||
		rec.ResourceChanges[1].Index != want[1].Index || !slices.Equal(rec.ResourceChanges[1].Resources, want[1].Resources) {
		t.Fatalf("resource changes %+v, want %+v", rec.ResourceChanges, want)
	}
	for _, tc := range []struct {
		asOf uint64
		want string
	}{{set.Index, record.ReasonActive}, {again.Index - 1, record.ReasonRevoked}, {again.Index, decide.ReasonNeverRecognized}, {first.Index, record.ReasonActive}} {
		got := f.recognitionReason(other, pharmacy, f.now, tc.asOf)
		// As of the first recognize, recorded before the level and not the
		// one that set the resources kept, those held at the level stand
		// in (its own, nursing only, were not kept).
		if got != tc.want {
			t.Errorf("pharmacy as of %d: %s, want %s", tc.asOf, got, tc.want)
		}
	}
}

// recognitionReason answers whether the chain framework recognizes other
// for resource at time at as of index asOf (0: the latest), by its reason.
func (f *chainFixture) recognitionReason(other, resource string, at time.Time, asOf uint64) string {
	f.t.Helper()
	d, err := f.s.DecideRecognition(decide.RecognitionQuestion{Framework: fwID, Recognized: other, Resource: resource, At: at, AsOf: asOf}, f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	return d.Reason
}

// storedRecognition reads the chain framework's recognition of other.
func (f *chainFixture) storedRecognition(other string) record.Recognition {
	f.t.Helper()
	var rec record.Recognition
	if ok, err := getJSON(f.s.db, key(tableRecognitions, fwID, other), &rec); err != nil || !ok {
		f.t.Fatalf("the recognition of %s: %v, %v", other, ok, err)
	}
	return rec
}

// A change recorded from the level on never reaches back over what was
// recorded before it: a widening scheduled two years ahead leaves answers
// about a time a recognize from before the level was in force, and as of
// its index, as they were (the resources held at the level stand in for
// its own), and so does the apply's "already recognizes" judged then. An
// unrecognize in force reads the resources it withdrew, not those of a
// recognize scheduled after it.
func TestRecognitionResourcesScheduledChangesDoNotReachBack(t *testing.T) {
	const other, midwife = "https://example.org/frameworks/other", "https://example.org/credentials/Midwife"
	f := mustChain(t)
	ask := func(resource string, at time.Time, asOf uint64) string {
		return f.recognitionReason(other, resource, at, asOf)
	}
	f.mustRaiseLevel(FeatureLevelRecognitionResources - 1)
	f.tick()
	first := f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other, "resources": []string{nursing}}))
	between := f.now.Add(30 * time.Second) // the first in force, the second not yet
	f.tick()
	f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other, "resources": []string{nursing, pharmacy}}))
	f.tick()
	f.mustRaiseLevel(FeatureLevelRecognitionResources)
	f.tick()
	beforePast, beforeOld := ask(midwife, between, 0), ask(midwife, f.now, first.Index)
	f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other,
		"resources": []string{nursing, pharmacy, midwife}, "effectiveAt": f.now.AddDate(2, 0, 0).Format(time.RFC3339)}))
	f.tick()
	if past, old := ask(midwife, between, 0), ask(midwife, f.now, first.Index); past != beforePast || old != beforeOld || past != decide.ReasonNeverRecognized {
		t.Errorf("midwives while the first recognize was in force: %s before the scheduled widening, %s after; as of its index %s, %s (want %s)",
			beforePast, past, beforeOld, old, decide.ReasonNeverRecognized)
	}
	f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other,
		"resources": []string{nursing, pharmacy, midwife}, "effectiveAt": between.Format(time.RFC3339)}))
	f.tick()

	f = mustChain(t) // ask reads this one from here on
	f.mustRaiseLevel(FeatureLevelRecognitionResources)
	f.tick()
	f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other, "resources": []string{nursing, pharmacy}}))
	f.tick()
	f.mustAccept(f.govSign(record.OpUnrecognize, map[string]any{"framework": fwID, "recognized": other, "effectiveAt": f.now.AddDate(1, 0, 0).Format(time.RFC3339)}))
	f.tick()
	f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other, "resources": []string{nursing}, "effectiveAt": f.now.AddDate(2, 0, 0).Format(time.RFC3339)}))
	if got := ask(pharmacy, f.now.AddDate(1, 6, 0), 0); got != record.ReasonRevoked {
		t.Errorf("pharmacy while the unrecognize is in force: %s, want %s", got, record.ReasonRevoked)
	}
	if got := ask(pharmacy, f.now.AddDate(2, 6, 0), 0); got != decide.ReasonNeverRecognized {
		t.Errorf("pharmacy after the narrowed recognize: %s, want %s", got, decide.ReasonNeverRecognized)
	}
}
