package record

import (
	"crypto/sha256"
	"strings"
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

// BenchmarkParseOperationNumbers parses a registerEntity whose key holds an
// extra member of some 250 KiB of numbers, each within a float64's range:
// what anyone who can reach a gateway can make a node check before any
// signature. Numbers a float64 reads only through strconv.ParseFloat's
// exact, slow path (subnormals; numbers near the midpoint of the two
// largest float64 values) must cost about what plain ones do; those
// ParseFloat is still asked about (an integer part of 902 digits,
// parseFloatInexact) cost it per byte about what plain ones do.
func BenchmarkParseOperationNumbers(b *testing.B) {
	s := mustKey(b, KeyEd25519)
	jwk, err := s.PublicJWK()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []string{"1.5", "1e-320", "1.797693134862315608353e308", "17" + strings.Repeat("0", 900) + "e-593"} {
		b.Run(n[:min(len(n), 27)], func(b *testing.B) {
			var list strings.Builder
			for list.Len() < 250<<10 {
				if list.Len() > 0 {
					list.WriteByte(',')
				}
				list.WriteString(n)
			}
			payload := `{"op":"registerEntity","iat":1,"id":"` + s.DID + `","name":"C","keys":[` +
				strings.TrimSuffix(string(jwk), "}") + `,"zz":[` + list.String() + `]}]}`
			raw := mustSignRaw(b, s, []byte(payload))
			d := sha256.Sum256(raw)
			for b.Loop() {
				op, err := ParseOperationDigest(raw, d)
				if err != nil || op.CheckErr() != nil {
					b.Fatalf("%v %v", err, op.CheckErr())
				}
			}
		})
	}
}
