package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// TestOpPoolSignsEachRunAfresh: each run's operations are signed when the
// run starts (a full run's write part outlasts the registry's iat window,
// and operations signed at its start were refused as stale at 256
// clients), accredit colleges no earlier run did, and a run that uses them
// all is told it ran out.
func TestOpPoolSignsEachRunAfresh(t *testing.T) {
	d := &dataset{}
	for i := range 10 {
		a, err := record.GenerateKey(record.KeyEd25519)
		if err != nil {
			t.Fatal(err)
		}
		d.agencies, d.agencyAccs = append(d.agencies, a), append(d.agencyAccs, fmt.Sprintf("acc-%d", i))
		d.subs, d.subAccs = append(d.subs, a), append(d.subAccs, fmt.Sprintf("sub-acc-%d", i))
	}
	p := newOpPool("", d)
	payload := func(op []byte) (iat int64, subject string) {
		parts := strings.Split(string(op), ".")
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			IAT     int64  `json:"iat"`
			Subject string `json:"subject"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		return v.IAT, v.Subject
	}
	seen := map[string]bool{}
	for run := range 2 {
		before := time.Now().Unix()
		p.refill(1)
		if len(p.ops) != 10000 {
			t.Fatalf("run %d: %d operations, want the floor of 10,000", run, len(p.ops))
		}
		next := p.nextFor([]string{"http://a", "http://b"})
		for i := int64(1); i <= int64(len(p.ops)); i++ {
			r, ok := next(int(i), i)
			if !ok {
				t.Fatalf("run %d: request %d refused within the pool", run, i)
			}
			iat, subject := payload(r.body)
			if iat < before || iat > time.Now().Unix() {
				t.Fatalf("run %d: iat %d, want signed at the refill (from %d)", run, iat, before)
			}
			if seen[subject] {
				t.Fatalf("run %d: %s accredited twice", run, subject)
			}
			seen[subject] = true
		}
		if p.exhausted.Load() {
			t.Fatalf("run %d: exhausted within the pool", run)
		}
	}
	if _, ok := p.nextFor([]string{"http://a"})(0, int64(len(p.ops))+1); ok || !p.exhausted.Load() {
		t.Fatalf("a request past the pool: ok %v, exhausted %v; want refused and noted", ok, p.exhausted.Load())
	}
}
