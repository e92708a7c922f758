package proof_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/bits"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/proof/prooftest"
	"github.com/trustreg/trustreg/registry/tlog"
)

// maxBundleBytes is issue #32's budget for the bundle of a depth-3 chain
// with 5 cosigners.
const maxBundleBytes = 8 << 10

// budgetRecords is the registry size issue #32's budget must hold at.
const budgetRecords = 1_000_000

// maxLogLeaves is the log size the budget is held at: the log proof of a
// bundle is counted at its longest for a log of this many leaves
// (bits.Len(maxLogLeaves-1) hashes), whatever the test's own log gives.
const maxLogLeaves = 1 << 24

// growthPerDoubling is how many sibling hashes the chain's map proof is
// counted to gain each time the registry doubles, up to budgetRecords:
// one per path of its six records, and one more. Measured: 62 from 1,000
// to 1,000,000 records, 6.2 a doubling (BenchmarkBundleSize).
const growthPerDoubling = 7

// sizes is what each part of a bundle takes in one form, in bytes.
type sizes struct {
	total, records, mapProof, leaf, log, checkpoint, qa int
}

// other is what the parts leave: field names, the version, framing.
func (s sizes) other() int {
	return s.total - s.records - s.mapProof - s.leaf - s.log - s.checkpoint - s.qa
}

// measure returns the size of b in a form and of each of its parts,
// each part encoded alone in that form.
func measure(t testing.TB, b *proof.Bundle, marshal func(any) ([]byte, error)) sizes {
	t.Helper()
	n := func(v any) int {
		raw, err := marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return len(raw)
	}
	return sizes{
		total: n(b), records: n(b.Records), mapProof: n(b.MapProof), leaf: n(b.Leaf),
		log: n(b.LeafIndex) + n(b.Inclusion), checkpoint: n(b.Checkpoint), qa: n(b.Question) + n(b.Answer),
	}
}

// bundleSizes is one row of the size table: a depth-3 chain's bundle in
// a registry of n records.
type bundleSizes struct {
	n                  int
	json, cbor         sizes
	jsonGzip, cborGzip int
	// ...Worst: the same, as the bundle would be at budgetRecords with the
	// longest log proof: the log proof made longestLogHashes long and the
	// map proof growthPerDoubling hashes longer for each doubling from n
	// to budgetRecords, with random hashes (which compress no better than
	// real ones).
	jsonGzipWorst, cborGzipWorst, cborWorst int
	recordBytes, logHashes, mapGrowth       int
	longestLogHashes                        int
}

// measureBundle builds the depth-3 chain with 5 cosigners in a registry
// of n other entities and a log of about n leaves, verifies its bundle in
// every form, and measures it.
func measureBundle(tb testing.TB, n int) bundleSizes {
	tb.Helper()
	w := prooftest.New(tb, prooftest.Options{Filler: n, LogPad: n})
	b := w.Bundle(collegeQuestion())
	js, cb := mustForms(tb, b)
	jz, cz := proof.Compress(js), proof.Compress(cb)
	for _, form := range [][]byte{js, cb, jz, cz} {
		got, err := proof.ParseAny(form)
		if err == nil {
			_, err = proof.Verify(got, w.Genesis, proof.Options{Now: w.Now})
		}
		if err != nil {
			tb.Fatalf("%d records: a bundle's form of %d bytes: %v", n, len(form), err)
		}
	}
	s := bundleSizes{
		n: n, json: measure(tb, b, func(v any) ([]byte, error) { return json.Marshal(v) }),
		cbor: measure(tb, b, proof.CBORMarshal), jsonGzip: len(jz), cborGzip: len(cz),
		logHashes: len(b.Inclusion), longestLogHashes: bits.Len(maxLogLeaves - 1),
	}
	for _, r := range b.Records {
		s.recordBytes += len(r.Bytes)
	}
	for m := n; m < budgetRecords; m *= 2 {
		s.mapGrowth += growthPerDoubling
	}
	worst := *b
	worst.Inclusion = append(proof.Hashes(nil), b.Inclusion...)
	for len(worst.Inclusion) < s.longestLogHashes {
		worst.Inclusion = append(worst.Inclusion, randomBytes(tb, tlog.HashSize))
	}
	worst.MapProof = append(append([]byte(nil), b.MapProof...), randomBytes(tb, s.mapGrowth*tlog.HashSize)...)
	js, cb = mustForms(tb, &worst)
	s.jsonGzipWorst, s.cborGzipWorst, s.cborWorst = len(proof.Compress(js)), len(proof.Compress(cb)), len(cb)
	return s
}

func randomBytes(tb testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// mustForms returns b's JSON and CBOR forms.
func mustForms(tb testing.TB, b *proof.Bundle) (js, cb []byte) {
	tb.Helper()
	js, err := b.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	if cb, err = b.MarshalCBOR(); err != nil {
		tb.Fatal(err)
	}
	return js, cb
}

// table writes rows as the Markdown table of DESIGN.md's Size section.
func table(rows []bundleSizes) string {
	var sb strings.Builder
	sb.WriteString("\n| records | form | bundle | gzip | gzip, worst case at 1,000,000 | records | map proof | leaf | log proof | checkpoint | question, answer | names, framing |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		for _, f := range []struct {
			name        string
			s           sizes
			gzip, worst int
		}{{"JSON", r.json, r.jsonGzip, r.jsonGzipWorst}, {"CBOR", r.cbor, r.cborGzip, r.cborGzipWorst}} {
			s := f.s
			fmt.Fprintf(&sb, "| %d | %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n",
				r.n, f.name, s.total, f.gzip, f.worst, s.records, s.mapProof, s.leaf, s.log, s.checkpoint, s.qa, s.other())
		}
	}
	for _, r := range rows {
		fmt.Fprintf(&sb, "(%d: records %d B as stored; log proof %d hashes, worst case %d; map proof %d hashes more in the worst case; CBOR uncompressed in the worst case %d B)\n",
			r.n, r.recordBytes, r.logHashes, r.longestLogHashes, r.mapGrowth, r.cborWorst)
	}
	return sb.String()
}

// TestBundleSize holds issue #32's budget: a depth-3 chain's bundle with
// five cosigners is at most 8 KiB in its compact form (gzip of the CBOR
// form) in a registry of budgetRecords records. It builds the bundle in
// registries of 1,000 to 100,000 records (10,000 with -short), verifies
// it in every form, and holds the budget on the worst case at
// budgetRecords: the map proof counted growthPerDoubling hashes longer
// for each doubling up to it, the log proof at its longest for a log of
// maxLogLeaves. It prints what each part takes in each form; the real
// bundle at 1,000,000 comes from BenchmarkBundleSize (DESIGN.md has
// both).
func TestBundleSize(t *testing.T) {
	ns := []int{1_000, 10_000}
	if !testing.Short() {
		ns = append(ns, 100_000)
	}
	var rows []bundleSizes
	for _, n := range ns {
		s := measureBundle(t, n)
		rows = append(rows, s)
		if s.cborGzipWorst > maxBundleBytes {
			t.Errorf("%d records: the compact bundle, as at %d records with the longest log proof, takes %d B; the budget is %d B", n, budgetRecords, s.cborGzipWorst, maxBundleBytes)
		}
		if s.cbor.total >= s.json.total || s.cborGzip >= s.cbor.total {
			t.Errorf("%d records: CBOR %d B, its gzip %d B, JSON %d B: each form should be smaller than the last", n, s.cbor.total, s.cborGzip, s.json.total)
		}
	}
	t.Log(table(rows))
}

// BenchmarkBundleSize measures the bundle of TestBundleSize at 100,000
// and 1,000,000 records, too slow to build in a test (the map of
// 1,000,000 takes over a minute and 1.6 GB). Run it once:
//
//	go test -run '^$' -bench BundleSize -benchtime 1x ./registry/proof
//
// The sizes are reported as metrics (bytes of a bundle in each form) and
// as the table of DESIGN.md.
func BenchmarkBundleSize(b *testing.B) {
	for _, n := range []int{100_000, budgetRecords} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var s bundleSizes
			for b.Loop() {
				s = measureBundle(b, n)
			}
			b.ReportMetric(float64(s.json.total), "json-B")
			b.ReportMetric(float64(s.cbor.total), "cbor-B")
			b.ReportMetric(float64(s.jsonGzip), "json-gzip-B")
			b.ReportMetric(float64(s.cborGzip), "cbor-gzip-B")
			b.ReportMetric(float64(s.cborGzipWorst), "cbor-gzip-worst-B")
			b.Log(table([]bundleSizes{s}))
			if s.cborGzipWorst > maxBundleBytes {
				b.Errorf("%d records: the compact bundle, with the longest log proof, takes %d B; the budget is %d B", n, s.cborGzipWorst, maxBundleBytes)
			}
		})
	}
}
