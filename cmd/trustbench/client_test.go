package main

import (
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWorkerRoundTrips(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Type", r.Header.Get("Content-Type"))
			w.WriteHeader(http.StatusCreated)
			w.Write(append([]byte(r.Method+" "+r.URL.RawQuery+" "), body...))
		case "/chunked":
			for range 3 {
				w.Write([]byte(strings.Repeat("x", 5000)))
				w.(http.Flusher).Flush()
			}
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	w := newWorker()
	defer w.close()
	ctx := context.Background()
	steps := []struct {
		r      request
		status int
	}{
		{request{method: "GET", url: srv.URL + "/echo?a=1&b=%2F"}, 201},
		{request{method: "POST", url: srv.URL + "/echo", contentType: "application/jose", body: []byte("signed")}, 201},
		{request{method: "GET", url: srv.URL + "/chunked"}, 200},
		{request{method: "GET", url: srv.URL + "/missing"}, 404},
		{request{method: "GET", url: srv.URL + "/close"}, 200},
		{request{method: "GET", url: srv.URL + "/echo"}, 201},
	}
	for _, s := range steps {
		status, err := w.do(ctx, s.r)
		if err != nil || status != s.status {
			t.Fatalf("%s %s: status %d, %v; want %d", s.r.method, s.r.url, status, err, s.status)
		}
	}
	// One connection until the server asked to close it, then a new one.
	if n := conns.Load(); n != 2 {
		t.Fatalf("connections opened: %d, want 2", n)
	}
	if _, err := w.do(ctx, request{method: "GET", url: "https://example.com/"}); err == nil {
		t.Fatal("an https URL was accepted")
	}
}

func TestWorkerRedialsAfterServerCloses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	w := newWorker()
	defer w.close()
	ctx := context.Background()
	if status, err := w.do(ctx, request{method: "GET", url: srv.URL}); err != nil || status != 200 {
		t.Fatalf("first request: %d, %v", status, err)
	}
	srv.CloseClientConnections()
	// The request on the closed connection may fail; the one after it
	// must dial anew and succeed.
	w.do(ctx, request{method: "GET", url: srv.URL})
	if status, err := w.do(ctx, request{method: "GET", url: srv.URL}); err != nil || status != 200 {
		t.Fatalf("after the server closed the connection: %d, %v", status, err)
	}
}

func TestPacedCountsQueueingFromDueTime(t *testing.T) {
	// One connection, a server that takes 20 ms per answer and 200
	// requests/s due: requests queue behind each other, and each one's
	// latency counts from when it was due, not from when it went out.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	next := func(int, int64) (request, bool) { return request{method: "GET", url: srv.URL}, true }
	s := paced(context.Background(), 1, 200, 250*time.Millisecond, srv.URL, next, func(c int) bool { return c == 200 })
	if s.Requests != 50 || s.Errors != 0 {
		t.Fatalf("requests %d, errors %d; want every one of the 50 due answered", s.Requests, s.Errors)
	}
	// The last request was due at 245 ms and answered after 50 × 20 ms.
	if s.P99 < 500 {
		t.Fatalf("p99 %.1f ms: the queueing behind a busy connection was not counted", s.P99)
	}
	if s.SendLagP99 < 400 {
		t.Fatalf("send lag p99 %.1f ms, want the requests' wait for the one connection", s.SendLagP99)
	}
}

func TestPacedWarmsEveryConnectionBeforeTheFirstRequestIsDue(t *testing.T) {
	// Eight workers, ten requests 10 ms apart: without the warm-up most
	// workers would dial when handed their first request, inside the
	// measured run, and some would never connect at all.
	var (
		mu       sync.Mutex
		opened   int
		warmed   []net.Conn
		measured []net.Conn
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		conn := r.Context().Value(connKey{}).(net.Conn)
		switch r.URL.Path {
		case "/warm":
			if len(measured) > 0 {
				t.Errorf("a warm-up request arrived after a measured one")
			}
			warmed = append(warmed, conn)
		default:
			measured = append(measured, conn)
		}
		w.Write([]byte("ok"))
	}))
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			opened++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	next := func(int, int64) (request, bool) { return request{method: "GET", url: srv.URL + "/v1/trust"}, true }
	s := paced(context.Background(), 8, 100, 100*time.Millisecond, srv.URL+"/warm", next, func(c int) bool { return c == 200 })
	if s.Requests != 10 || s.Errors != 0 {
		t.Fatalf("requests %d, errors %d; want the 10 due answered and the warm-ups not counted", s.Requests, s.Errors)
	}
	mu.Lock()
	defer mu.Unlock()
	if opened != 8 || len(warmed) != 8 {
		t.Fatalf("%d connections opened, %d warm-up requests; want one of each per worker (8)", opened, len(warmed))
	}
	for _, c := range measured {
		if !slices.Contains(warmed, c) {
			t.Fatalf("a measured request came on a connection that was not warmed: %v", c.RemoteAddr())
		}
	}
}

type connKey struct{}

func TestPacedRateLeavesTheWarmUpOut(t *testing.T) {
	// A warm-up that takes half a second before a one-second run at 50
	// requests/s: counted from the start of the warm-up the rate would be
	// at most 50/1.5 = 33 per second.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/warm" {
			time.Sleep(500 * time.Millisecond)
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	next := func(int, int64) (request, bool) { return request{method: "GET", url: srv.URL + "/v1/trust"}, true }
	s := paced(context.Background(), 4, 50, time.Second, srv.URL+"/warm", next, func(c int) bool { return c == 200 })
	if s.Requests != 50 || s.Errors != 0 {
		t.Fatalf("requests %d, errors %d; want the 50 due answered", s.Requests, s.Errors)
	}
	// The last request is due 0.98 s into the run, so 51 per second is the
	// most an honest clock gives; 40 leaves a stall of 250 ms for a busy
	// machine.
	if s.PerSecond < 40 || s.PerSecond > 51.1 {
		t.Fatalf("%.1f requests per second; want about 50, over the measured second only", s.PerSecond)
	}
}

func TestSleeperWaitsAtLeast(t *testing.T) {
	s := newSleeper()
	defer s.close()
	for _, d := range []time.Duration{0, 50 * time.Microsecond, 300 * time.Microsecond, 2 * time.Millisecond} {
		t0 := time.Now()
		s.sleep(d)
		if got := time.Since(t0); got < d {
			t.Fatalf("sleep(%v) returned after %v", d, got)
		}
	}
}

func TestParseCPUSteal(t *testing.T) {
	steal, total := parseCPUSteal([]byte("cpu  100 1 50 800 10 0 5 34 0 0\ncpu0 50 0 25 400 5 0 2 17 0 0\n"))
	if steal != 34 || total != 1000 {
		t.Fatalf("steal %d, total %d; want 34, 1000", steal, total)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 3", "cpu  a 1 50 800 10 0 5 34"} {
		if s, tot := parseCPUSteal([]byte(bad)); s != 0 || tot != 0 {
			t.Fatalf("%q: got %d/%d, want nothing", bad, s, tot)
		}
	}
}

func TestMedianOfRoundRatios(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{0.7}, 0.7},
		{[]float64{0.9, 0.62, 0.78}, 0.78},
		{[]float64{0.9, 0.6, 0.8, 0.7}, 0.75},
	} {
		in := slices.Clone(c.in)
		if got := median(in); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("median reordered its input: %v", in)
		}
	}
}
