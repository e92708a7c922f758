package gateway

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

func encodingJSON(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAppendDecisionMatchesEncodingJSON(t *testing.T) {
	until := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []*record.Decision{
		{Entity: "did:web:a.example", Framework: "https://x.example/f", Action: "issue", Reason: "never_authorized", Chain: []record.Link{}, At: time.Date(2025, 6, 1, 12, 30, 0, 123456789, time.UTC), Index: 7},
		{Entity: "did:key:z6Mk\"quote\\back\n<tag>&\u2028\x01é\xff", Framework: "f", Action: "accredit", Resource: "https://x.example/R",
			Authorized: true, Reason: "active", Root: "did:key:root", At: time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)), Index: 1 << 40,
			Chain: []record.Link{
				{Accreditation: "bafk1", Accreditor: "did:a", Subject: "did:b", Action: "issue", Resources: []string{"*", "r\t2"}, Jurisdictions: []string{"US"},
					ValidFrom: time.Date(2022, 9, 1, 0, 0, 0, 0, time.UTC), ValidUntil: &until, Status: "active"},
				{Accreditation: "bafk2", Accreditor: "did:r", Subject: "did:a", Action: "accredit", ValidFrom: time.Time{}, Status: "revoked"},
			}},
	}
	for i, d := range cases {
		got := appendDecision(nil, d)
		want := encodingJSON(t, d)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\\n\r\t\b\f\x00\x1f", "é\u2028\u2029", "\xff\xfe", "<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := append(appendString(nil, s), '\n')
		if want := encodingJSON(t, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, encoding/json %s", s, got, want)
		}
	})
}
