package record

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// accreditationFromFuzz builds an accreditation whose fields come from
// text (split on '|') and n: strings with any bytes, nil and empty lists,
// times in any zone and at the edges json.Marshal refuses.
func accreditationFromFuzz(text string, n int64, flags byte) *Accreditation {
	f := strings.Split(text, "|")
	field := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	list := func(i int, bit byte) []string {
		switch {
		case flags&bit == 0:
			return nil
		case field(i) == "":
			return []string{}
		}
		return strings.Split(field(i), ",")
	}
	zone := time.FixedZone("z", int(n%100_000)) // offsets up to a day and more
	at := time.Unix(n, n%1_000_000_007).In(zone)
	a := &Accreditation{
		ID: field(0), Framework: field(1), Accreditor: field(2), Subject: field(3), Action: field(4),
		Resources: list(5, 1), Jurisdictions: list(6, 2), ValidFrom: at, Parent: field(7),
		Evidence: list(8, 4), Depth: int(n % 7), CreatedIndex: uint64(n), CreatedAt: at.UTC(),
	}
	if flags&8 != 0 {
		u := at.Add(time.Duration(n) * time.Hour)
		a.ValidUntil = &u
	}
	if flags&16 != 0 {
		a.Events = []StatusEvent{}
	}
	for i := range int(flags >> 5) {
		a.Events = append(a.Events, StatusEvent{Status: field(9 + i), EffectiveAt: at.AddDate(i*3000, 0, 0), Reason: field(12 + i), Index: uint64(i), Operation: field(15)})
	}
	return a
}

// FuzzAccreditationJSON checks AppendJSON against json.Marshal: the same
// bytes, or, where json.Marshal fails, AppendJSON says it could not.
func FuzzAccreditationJSON(f *testing.F) {
	f.Add("bafy|https://fw.example|did:key:z6Mk|did:web:c.example|issue|r1,r2|US|parent|e1|active|suspended|revoked|why|<&>|\u2028|op", int64(1_700_000_000), byte(0xff))
	f.Add("\xff\xfe|\"quoted\\\"|\t\n\r\b\f|\x00\x1f|a<b>c&d|||||||||||", int64(-62135596800), byte(0))
	f.Add("||||||||||||||||", int64(253402300800), byte(0x3f))
	f.Add("a|b|c|d|e|||||x|y|z", int64(-1), byte(0xe8))
	f.Fuzz(func(t *testing.T, text string, n int64, flags byte) {
		a := accreditationFromFuzz(text, n, flags)
		got, ok := a.AppendJSON(nil)
		sameAsMarshal(t, a, got, ok)
	})
}

// sameAsMarshal fails t unless got, what an AppendJSON wrote for v, is
// json.Marshal's encoding of v, or json.Marshal refuses v and ok is false.
func sameAsMarshal(t *testing.T, v any, got []byte, ok bool) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		if ok {
			t.Fatalf("json.Marshal refused it (%v), AppendJSON wrote %s", err, got)
		}
		return
	}
	if !ok || !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON (ok %t):\n%s\njson.Marshal:\n%s", ok, got, want)
	}
}

// TestAccreditationJSONRefusesWhatMarshalRefuses: a year past 9999 and an
// offset of a day are refused by both.
func TestAccreditationJSONRefusesWhatMarshalRefuses(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("day", 24*3600)),
	} {
		a := &Accreditation{ValidFrom: time.Unix(0, 0).UTC(), CreatedAt: time.Unix(0, 0).UTC(), Events: []StatusEvent{{EffectiveAt: at}}}
		if _, err := json.Marshal(a); err == nil {
			t.Fatalf("json.Marshal took %v", at)
		}
		if _, ok := a.AppendJSON(nil); ok {
			t.Fatalf("AppendJSON took %v", at)
		}
	}
}

// BenchmarkAccreditationJSON is an accredit's record encoded each way.
func BenchmarkAccreditationJSON(b *testing.B) {
	from := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &Accreditation{ID: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", Framework: "https://bench.example/frameworks/health",
		Accreditor: "did:web:sub-agency-1.bench.example", Subject: "did:web:college-1.bench.example", Action: ActionIssue,
		Resources: []string{"https://bench.example/credentials/Nursing"}, ValidFrom: from, Parent: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zz",
		Depth: 3, CreatedIndex: 123456, CreatedAt: from.Add(time.Hour),
		Events: []StatusEvent{{Status: StatusActive, EffectiveAt: from, Index: 123456, Operation: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"}}}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := a.AppendJSON(make([]byte, 0, 1024)); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(a); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzResultJSON checks Result.AppendJSON against json.Marshal.
func FuzzResultJSON(f *testing.F) {
	f.Add("bafy|accredit|did:key:a,did:web:b|id|bad_signature|signature 0 <does not> verify & \u2028", int64(1_700_000_000), byte(0xff))
	f.Add("\xff|\x00|||\"|\\", int64(253402300800), byte(0))
	f.Add("|||||", int64(-1), byte(1))
	f.Fuzz(func(t *testing.T, text string, n int64, flags byte) {
		p := strings.Split(text, "|")
		field := func(i int) string {
			if i < len(p) {
				return p[i]
			}
			return ""
		}
		r := &Result{Index: uint64(n), Time: time.Unix(n, n%1_000_000_007).In(time.FixedZone("z", int(n%100_000))), CID: field(0), Op: field(1),
			Accepted: flags&1 != 0, Duplicate: flags&2 != 0, ID: field(3), Code: field(4), Reason: field(5)}
		switch {
		case flags&4 != 0:
			r.Signers = []string{}
		case field(2) != "":
			r.Signers = strings.Split(field(2), ",")
		}
		got, ok := r.AppendJSON(nil)
		sameAsMarshal(t, r, got, ok)
	})
}
