package record

import (
	"crypto/sha256"
	"testing"
)

// BenchmarkParseOperation parses a signed accredit operation such as
// trustbench writes, as every node does for every write before checking
// its signature.
func BenchmarkParseOperation(b *testing.B) {
	s := mustKey(b, KeyEd25519)
	raw, err := s.SignCompact([]byte(`{"op":"accredit","iat":1700000000,"framework":"https://bench.example/framework","accreditor":"did:web:agency-3.bench.example","subject":"did:web:college-12345.bench.example","action":"issue","resources":["https://bench.example/credentials/Degree"],"parent":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","validFrom":"2022-01-01T00:00:00Z"}`))
	if err != nil {
		b.Fatal(err)
	}
	d := sha256.Sum256(raw)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseOperationDigest(raw, d); err != nil {
			b.Fatal(err)
		}
	}
}
