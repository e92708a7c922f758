package registry

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkSelfAudit audits a state of n accreditations (each an
// accreditation record and its subject's received listing: two map keys)
// with the commitment on: what a node spends checking its state at start
// and every proofs.audit_interval. Run with
// go test -run '^$' -bench SelfAudit -benchtime 1x ./registry.
func BenchmarkSelfAudit(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("accreditations=%d", n), func(b *testing.B) {
			f := mustChain(b)
			f.mustRaiseLevel(FeatureLevelCommitment)
			loadColleges(b, f, n)
			if err := f.s.db.Flush(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if err := f.s.SelfAudit(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/float64(n)*1e6, "µs/accreditation")
		})
	}
}
