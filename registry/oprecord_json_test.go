package registry

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzOpRecordJSON checks opRecord.appendJSON against json.Marshal: the
// same bytes, or, where json.Marshal fails, appendJSON says it could not.
func FuzzOpRecordJSON(f *testing.F) {
	f.Add("bafy|accredit|did:key:a,did:web:b|id", []byte("eyJhbGciOiJFZERTQSJ9.e30.sig"), int64(1_700_000_000), byte(0))
	f.Add("\xff<&>|\x00\u2028||", []byte{}, int64(253402300800), byte(1))
	f.Add("|||", []byte{0xff, 0x00, 0x10}, int64(-62135596801), byte(2))
	f.Fuzz(func(t *testing.T, text string, jws []byte, n int64, flags byte) {
		p := strings.Split(text, "|")
		field := func(i int) string {
			if i < len(p) {
				return p[i]
			}
			return ""
		}
		o := opRecord{CID: field(0), Index: uint64(n), Time: time.Unix(n, n%1_000_000_007).In(time.FixedZone("z", int(n%100_000))), Op: field(1), ID: field(3), JWS: jws}
		switch {
		case flags&1 != 0:
			o.Signers = []string{}
		case field(2) != "":
			o.Signers = strings.Split(field(2), ",")
		}
		if flags&2 != 0 {
			o.JWS = nil
		}
		want, err := json.Marshal(o)
		got, ok := o.appendJSON(nil)
		if err != nil {
			if ok {
				t.Fatalf("json.Marshal refused it (%v), appendJSON wrote %s", err, got)
			}
			return
		}
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("appendJSON (ok %t):\n%s\njson.Marshal:\n%s", ok, got, want)
		}
		// The store's encoder takes this path.
		if !bytes.Equal(mustMarshal(o), want) {
			t.Fatal("mustMarshal differs from json.Marshal")
		}
	})
}
