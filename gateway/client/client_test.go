package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway/api"
)

func TestAPIErrorNamesTheCode(t *testing.T) {
	for _, tc := range []struct {
		typ, detail, want string
	}{
		{"urn:trustreg:problem:not_found", `entity "did:example:a"`, `404 not_found: entity "did:example:a"`},
		// A detail that starts with the code in words does not repeat it.
		{"urn:trustreg:problem:not_found", `not found: entity "did:example:a"`, `404 not found: entity "did:example:a"`},
		{"urn:trustreg:problem:bad_query", `bad query: at "x"`, `404 bad query: at "x"`},
		{"https://www.w3.org/ns/credentials/status-list#STATUS_RETRIEVAL_ERROR", `not found: list "l"`, `404 STATUS_RETRIEVAL_ERROR: not found: list "l"`},
		{"about:blank", `entity "did:example:a"`, `404 about:blank: entity "did:example:a"`},
	} {
		e := &APIError{Problem: api.Problem{Type: tc.typ, Status: 404, Detail: tc.detail}}
		if got := e.Error(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.typ, got, tc.want)
		}
	}
}

// TestConsistencyIsSent: a client with a consistency level sends it with
// every read that names none, and leaves a read's own level alone.
func TestConsistencyIsSent(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c := New(srv.URL)
	var out map[string]any
	own := url.Values{"consistency": {"local"}}
	for _, q := range []url.Values{nil, {"framework": {"f"}}, own} {
		if err := c.Get(context.Background(), "/v1/x", q, &out); err != nil {
			t.Fatal(err)
		}
	}
	c.Consistency = "linearizable"
	for _, q := range []url.Values{nil, {"framework": {"f"}}, own} {
		if err := c.Get(context.Background(), "/v1/x", q, &out); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"", "framework=f", "consistency=local", "consistency=linearizable", "consistency=linearizable&framework=f", "consistency=local"}
	if !slices.Equal(got, want) {
		t.Fatalf("queries sent %q, want %q", got, want)
	}
	if len(own) != 1 || own.Get("consistency") != "local" {
		t.Fatalf("the caller's query was changed: %v", own)
	}
}

// TestRetryAfter: Retry-After is read as seconds or as an HTTP date;
// anything else, or a date past, is no wait.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		field string
		want  time.Duration
	}{
		{"", 0},
		{"5", 5 * time.Second},
		{"0", 0},
		{"-1", 0},
		{"1.5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(tc.field, now); got != tc.want {
			t.Errorf("Retry-After %q: %s, want %s", tc.field, got, tc.want)
		}
	}
}
