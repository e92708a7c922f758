package gateway

import (
	"errors"
	"net/url"
	"testing"
)

func FuzzParseQuestion(f *testing.F) {
	for _, s := range []string{
		"entity=did:web:a.example&framework=https://x.example/f&resource=https://x.example/R",
		"entity=did:key:z6Mk&framework=f&action=accredit&at=2025-01-01&as_of=7",
		"entity=a&framework=b&at=2025-01-01T10:00:00Z&as_of=0",
		"entity=a&entity=b&framework=c", "at=yesterday", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuestion(v)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
			return
		}
		if q.Entity == "" || q.Framework == "" || q.Action == "" {
			t.Fatalf("accepted an incomplete question %+v", q)
		}
	})
}
