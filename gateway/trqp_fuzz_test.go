package gateway

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzParseTRQPContext: any context a client sends is refused as a bad
// request, or yields an echo that is itself a TRQP context (an object of
// strings, no blank time) and the time it names.
func FuzzParseTRQPContext(f *testing.F) {
	for _, s := range []string{
		`{"time":"2024-06-01T00:00:00Z","locator":"x"}`, `{"time":""}`, `{"time":" "}`, `null`, `{}`,
		`{"n":5}`, `{"time":null}`, `[1]`, `"x"`, `{"a":"b","a":"c"}`, `{"time":"2021-01-01T02:00:00+02:00"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		echo, at, err := parseContext(raw)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
			return
		}
		if echo == nil {
			return
		}
		var ctx map[string]string
		if err := json.Unmarshal(echo, &ctx); err != nil || len(ctx) == 0 {
			t.Fatalf("echo %s is not a non-empty object of strings: %v", echo, err)
		}
		v, ok := ctx["time"]
		if ok && strings.TrimSpace(v) == "" {
			t.Fatalf("echo %s keeps a blank time", echo)
		}
		if ok == at.IsZero() {
			t.Fatalf("echo %s and time %v disagree", echo, at)
		}
		again, at2, err := parseContext(echo)
		if err != nil || string(again) != string(echo) || !at2.Equal(at) {
			t.Fatalf("the echo %s does not parse to itself: %s %v %v", echo, again, at2, err)
		}
	})
}
