package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trustreg/trustreg/gateway/api"
)

func TestParseEndpoints(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{[]string{"127.0.0.1:8080"}, []string{"http://127.0.0.1:8080"}},
		{[]string{"http://a:1/"}, []string{"http://a:1"}},
		{[]string{"https://a.example"}, []string{"https://a.example"}},
		{[]string{"[::1]:8080"}, []string{"http://[::1]:8080"}},
		{[]string{"a:1, b:2", "http://c:3/proxy/"}, []string{"http://a:1", "http://b:2", "http://c:3/proxy"}},
		{[]string{"a:1,a:1", "http://a:1"}, []string{"http://a:1"}},
		{[]string{"a:1,,"}, []string{"http://a:1"}},
	} {
		got, err := ParseEndpoints(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseEndpoints(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range [][]string{
		nil, {""}, {" , "}, {"ftp://a:1"}, {"http://"}, {"http://a:1?x=1"}, {"http://u:p@a:1"}, {"a:"}, {"http://a:1#f"}, {"http://a:port"},
	} {
		if got, err := ParseEndpoints(in); !errors.Is(err, ErrBadEndpoint) {
			t.Errorf("ParseEndpoints(%q) = %q, %v; want ErrBadEndpoint", in, got, err)
		}
	}
}

// closedURL is the URL of a server that is no longer listening.
func closedURL(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

// problemServer answers every request with a 503 problem of type typ and
// counts the requests.
func problemServer(t *testing.T, typ string, n *atomic.Int32) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(api.Problem{Type: problemTypeBase + typ, Status: 503, Detail: typ})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestFailover(t *testing.T) {
	var good, unavailable, unknown atomic.Int32
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		good.Add(1)
		_, _ = w.Write([]byte(`{"genesis":"g"}`))
	}))
	defer ok.Close()
	down := closedURL(t)
	noLeader := problemServer(t, "unavailable", &unavailable)
	lost := problemServer(t, "outcome_unknown", &unknown)
	ctx := context.Background()

	// A read moves past a node that is down and one without a leader, and
	// the node that answered stays in use.
	c := NewFailover([]string{down, noLeader, ok.URL}, "--server")
	var out map[string]string
	if err := c.Get(ctx, "/v1/status", nil, &out); err != nil || out["genesis"] != "g" {
		t.Fatalf("read: %v %v", out, err)
	}
	if c.Base != ok.URL || unavailable.Load() != 1 {
		t.Fatalf("in use %s after %d 503s", c.Base, unavailable.Load())
	}
	if err := c.Get(ctx, "/v1/status", nil, &out); err != nil || unavailable.Load() != 1 {
		t.Fatalf("second read went back to the first endpoints: %v (%d 503s)", err, unavailable.Load())
	}

	// A write whose outcome is unknown is not sent to another node...
	c = NewFailover([]string{lost, ok.URL}, "--admin")
	before := good.Load()
	var ae *APIError
	if err := c.Post(ctx, "/admin/v1/cluster/remove", map[string]string{"id": "x"}, nil); !errors.As(err, &ae) || ae.Problem.Status != 503 {
		t.Fatalf("write with an unknown outcome: %v, want its 503", err)
	}
	if good.Load() != before {
		t.Fatal("a write whose outcome is unknown was sent to another node")
	}
	// ...but one the node did not carry out, or that never left, is.
	c = NewFailover([]string{down, noLeader, ok.URL}, "--admin")
	if err := c.Post(ctx, "/admin/v1/cluster/remove", map[string]string{"id": "x"}, nil); err != nil || good.Load() != before+1 {
		t.Fatalf("write refused for want of a leader: %v", err)
	}
	// A signed operation is resubmitted after an unknown outcome: the
	// same operation submitted twice is applied once.
	c = NewFailover([]string{lost, ok.URL}, "--server")
	if _, err := c.Submit(ctx, []byte("a.b.c")); err != nil || good.Load() != before+2 {
		t.Fatalf("submit after an unknown outcome: %v", err)
	}

	// Every node without a leader: the last 503, with the others tried.
	c = NewFailover([]string{down, noLeader}, "--server")
	if err := c.Get(ctx, "/v1/status", nil, nil); !errors.As(err, &ae) || ae.Problem.Status != 503 || !strings.Contains(err.Error(), down) {
		t.Fatalf("no leader anywhere: %v, want the 503 and the node tried first", err)
	}

	// No endpoint answers: the error names the flag and every endpoint.
	c = NewFailover([]string{down, closedURL(t)}, "--server")
	err := c.Get(ctx, "/v1/status", nil, nil)
	if !NotSent(err) {
		t.Fatalf("no node: %v, want a connection error", err)
	}
	t.Log(err)
}

func TestIdentifyRefusesANode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{}`)) }))
	defer srv.Close()
	errForeign := errors.New("another consortium")
	var asked []string
	c := NewFailover([]string{closedURL(t), srv.URL}, "--server")
	c.Identify = func(ctx context.Context, base string) error {
		asked = append(asked, base)
		if base == srv.URL {
			return errForeign
		}
		return New(base).Get(ctx, "/v1/status", nil, nil)
	}
	if err := c.Get(context.Background(), "/v1/x", nil, nil); !errors.Is(err, errForeign) {
		t.Fatalf("%v, want the refusal", err)
	}
	if len(asked) != 2 {
		t.Fatalf("identified %q", asked)
	}
}

// TestSubmitCountedCountsResends: an operation whose first attempt's
// outcome was unknown (a 503 outcome_unknown) goes to the next node and
// is counted twice, so a duplicate answer from there may be to the first
// attempt; an operation answered at once is counted once.
func TestSubmitCountedCountsResends(t *testing.T) {
	var unknown, answered atomic.Int32
	lost := problemServer(t, "outcome_unknown", &unknown)
	dup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		answered.Add(1)
		_, _ = w.Write([]byte(`{"index":7,"accepted":true,"duplicate":true}`))
	}))
	defer dup.Close()
	ctx := context.Background()
	res, sent, err := NewFailover([]string{lost, dup.URL}, "--server").SubmitCounted(ctx, []byte("a.b.c"))
	if err != nil || !res.Duplicate || sent != 2 || unknown.Load() != 1 || answered.Load() != 1 {
		t.Fatalf("after an unknown outcome: %+v, sent %d, %v (503s %d, answers %d)", res, sent, err, unknown.Load(), answered.Load())
	}
	res, sent, err = NewFailover([]string{dup.URL}, "--server").SubmitCounted(ctx, []byte("a.b.c"))
	if err != nil || !res.Duplicate || sent != 1 {
		t.Fatalf("answered at once: %+v, sent %d, %v", res, sent, err)
	}
}

// TestIdentifyFailureMovesOn: an endpoint whose Identify could not ask it
// (a hung node's status read timing out) is passed over for the next, as
// the request itself was not sent; one that answered as a node not to ask
// (ErrWrongNode) ends the request there.
func TestIdentifyFailureMovesOn(t *testing.T) {
	var served atomic.Int32
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		_, _ = w.Write([]byte(`{"genesis":"g"}`))
	}))
	defer ok.Close()
	first := closedURL(t)
	for _, tc := range []struct {
		name     string
		identify error
		wantErr  bool
	}{
		{"not asked in time", context.DeadlineExceeded, false},
		{"another consortium", fmt.Errorf("answers for genesis h: %w", ErrWrongNode), true},
	} {
		served.Store(0)
		c := NewFailover([]string{first, ok.URL}, "--server")
		c.Identify = func(_ context.Context, base string) error {
			if base == first {
				return tc.identify
			}
			return nil
		}
		var out map[string]string
		err := c.Get(context.Background(), "/v1/status", nil, &out)
		if tc.wantErr != (err != nil) || tc.wantErr != (served.Load() == 0) {
			t.Fatalf("%s: %v, the next endpoint asked %d times", tc.name, err, served.Load())
		}
		if tc.wantErr && !errors.Is(err, ErrWrongNode) {
			t.Fatalf("%s: %v, want ErrWrongNode", tc.name, err)
		}
	}
}
