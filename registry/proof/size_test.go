package proof_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"testing"

	"github.com/trustreg/trustreg/registry/proof/prooftest"
)

// maxBundleBytes is issue #32's budget for the bundle of a depth-3 chain
// with 5 cosigners.
const maxBundleBytes = 8 << 10

// TestBundleSize measures the JSON of a depth-3 chain's bundle with five
// cosigners, in a registry of growing size (state map keys and log
// leaves), and prints what each part takes. It holds the budget at 1,000
// records and leaves; past a few thousand the bundle outgrows it
// (DESIGN.md has the numbers and what dominates).
func TestBundleSize(t *testing.T) {
	sizes := []int{1_000, 10_000}
	if !testing.Short() {
		sizes = append(sizes, 100_000)
	}
	for _, n := range sizes {
		w := prooftest.New(t, prooftest.Options{Filler: n, LogPad: n})
		b := w.Bundle(collegeQuestion())
		mustVerify(t, w, b)
		raw, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		rec := 0
		for _, r := range b.Records {
			rec += base64.StdEncoding.EncodedLen(len(r.Bytes))
		}
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		if _, err := zw.Write(raw); err != nil || zw.Close() != nil {
			t.Fatal(err)
		}
		t.Logf("%7d records and leaves: bundle %5d B JSON (%d gzipped); records %d (%d B as base64), map proof %d B (%d as base64), log proof %d hashes (%d B as base64), checkpoint %d B, leaf %d B",
			n, len(raw), gz.Len(), len(b.Records), rec, len(b.MapProof), base64.StdEncoding.EncodedLen(len(b.MapProof)),
			len(b.Inclusion), base64.StdEncoding.EncodedLen(32*len(b.Inclusion)), len(b.Checkpoint), len(b.Leaf))
		if n == 1_000 && len(raw) > maxBundleBytes {
			t.Errorf("bundle of %d B at %d records, budget %d B", len(raw), n, maxBundleBytes)
		}
	}
}
