package registry

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"testing"

	"github.com/trustreg/trustreg/registry/record"
)

func testDigest(i int) []byte {
	h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
	return h[:]
}

func TestSigFilterHasNoFalseNegatives(t *testing.T) {
	f := newSigFilter(0)
	const n = 200_000
	for i := range n {
		f.add(testDigest(i))
	}
	for i := range n {
		if !f.mayContain(testDigest(i)) {
			t.Fatalf("digest %d was added but the filter denies it", i)
		}
	}
	var fp int
	for i := n; i < 2*n; i++ {
		if f.mayContain(testDigest(i)) {
			fp++
		}
	}
	if fp > n/100 {
		t.Fatalf("%d false positives in %d digests never added", fp, n)
	}
	if f.saturated() {
		t.Fatalf("%d digests saturate a filter for %d", n, f.capacity)
	}
}

// TestDuplicatesFoundAfterReopenAndRestore checks that the signature
// filter is rebuilt from what is stored: a resubmission is still found
// after the state is reopened, after a snapshot is restored, and with a
// filter saturated far beyond its size.
func TestDuplicatesFoundAfterReopenAndRestore(t *testing.T) {
	f := mustChain(t)
	op := f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "audit"})
	first := f.mustAccept(op)

	f.s.Close()
	f.open()
	if r := f.apply(op); !r.Duplicate || r.Index != first.Index {
		t.Fatalf("resubmission after reopening: %+v", r)
	}

	snap := f.s.Snapshot()
	fresh, err := Open(t.TempDir(), f.raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	pr, pw := io.Pipe()
	go func() { _, err := snap.WriteTo(pw); pw.CloseWithError(err) }()
	if err := fresh.Restore(pr); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	res := fresh.ApplyBatch([]Entry{{Index: f.index + 1, Time: f.now, Data: EncodeOperation(op)}})[0]
	if !res.Duplicate || res.Index != first.Index {
		t.Fatalf("resubmission after a restore: %+v", res)
	}

	// A filter far too small answers "maybe" for everything: slower, never
	// wrong; the next accepted operation has it rebuilt to size.
	f.s.apply.sigs.Store(&sigFilter{bits: make([]uint64, 1), mask: 63, capacity: 1})
	for i := range 64 {
		f.s.apply.sigs.Load().add(testDigest(i))
	}
	if r := f.apply(op); !r.Duplicate || r.Index != first.Index {
		t.Fatalf("resubmission with a saturated filter: %+v", r)
	}
	reinstate := f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc})
	if r := f.apply(reinstate); !r.Accepted || r.Duplicate {
		t.Fatalf("a new operation with a saturated filter: %+v", r)
	}
	if f.s.apply.sigs.Load().saturated() || f.s.apply.sigs.Load().capacity < sigFilterMin {
		t.Fatalf("filter not rebuilt: capacity %d, %d signatures", f.s.apply.sigs.Load().capacity, f.s.apply.sigs.Load().count)
	}
	for _, jws := range [][]byte{op, reinstate} {
		if r := f.apply(jws); !r.Duplicate {
			t.Fatalf("resubmission after the rebuild: %+v", r)
		}
	}
}
