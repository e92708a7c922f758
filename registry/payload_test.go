package registry

import (
	"errors"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/registry/record"
)

// The case: a case-variant name was applied (encoding/json
// matches names without regard to case) while readers of the signed
// payload saw another. From FeatureLevelSignedContent on it is refused at
// the apply and the state is unchanged; below it the apply decides as
// older builds do.
func TestAmbiguousPayloadRefusedFromTheLevelOn(t *testing.T) {
	h := mustNewState(t, 1, 1)
	college := mustKey(t, record.KeyEd25519)
	op := mustSignRaw(t, college, h.payload(record.OpRegisterEntity, map[string]any{"id": college.DID, "name": "Shown", "Name": "Applied"}))
	if err := h.s.PreVerify(op); !errors.Is(err, record.ErrMalformed) {
		t.Fatalf("PreVerify at level 1 = %v, want ErrMalformed", err)
	}
	h.mustRaiseLevel(FeatureLevelSignedContent)
	before := h.digest()
	if r := h.apply(op); r.Accepted || r.Code != record.CodeMalformed || !strings.Contains(r.Reason, `"/Name"`) {
		t.Fatalf("at the level: %+v, want malformed naming /Name", r)
	}
	if h.digest() != before {
		t.Fatal("a refused operation changed the state")
	}
	if e, err := h.s.Entity(college.DID); err != nil || (e != nil && e.Registered) {
		t.Fatalf("entity after the refusal: %+v, %v", e, err)
	}

	old := mustNewState(t, 1, 1) // level 1, as a cluster being upgraded
	if r := old.apply(op); !r.Accepted {
		t.Fatalf("below the level: %+v, want accepted as older builds do", r)
	}
}
