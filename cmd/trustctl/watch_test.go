package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/node"
)

// TestWatchWait: the wait before a reconnection doubles from
// watchBackoffFirst up to watchBackoffMax, is at least the node's
// Retry-After up to watchRetryAfterMax, and its jitter only adds, up to a
// quarter.
func TestWatchWait(t *testing.T) {
	least := func(int64) int64 { return 0 }
	most := func(n int64) int64 { return n - 1 }
	for _, tc := range []struct {
		n          int
		retryAfter time.Duration
		want       time.Duration // with no jitter; with the most, up to a quarter more
	}{
		{0, 0, time.Second},
		{1, 0, time.Second},
		{2, 0, 2 * time.Second},
		{5, 0, 16 * time.Second},
		{6, 0, 30 * time.Second},
		{1000, 0, 30 * time.Second},
		{1, 5 * time.Second, 5 * time.Second},
		{4, 5 * time.Second, 8 * time.Second},
		{1, time.Hour, 30 * time.Second},
	} {
		if got := watchWait(tc.n, tc.retryAfter, least); got != tc.want {
			t.Errorf("reconnection %d, Retry-After %s: wait %s, want %s", tc.n, tc.retryAfter, got, tc.want)
		}
		if got := watchWait(tc.n, tc.retryAfter, most); got != tc.want+tc.want/4 {
			t.Errorf("reconnection %d, Retry-After %s, the most jitter: wait %s, want %s", tc.n, tc.retryAfter, got, tc.want+tc.want/4)
		}
	}
}

// TestWatchWaitsForARefusedStream: a node that serves one watch stream
// (to one address, and in all) refuses a second with 429 or 503;
// trustctl watch waits the Retry-After, reconnects once the first stream
// closes and prints the operations applied meanwhile; a connection cut
// under it is resumed after the last operation it printed. Each
// operation is printed once. With --retries 0 the refusal ends the watch.
func TestWatchWaitsForARefusedStream(t *testing.T) {
	d := startDevNodeWith(t, func(c *configs.Config) {
		c.HTTP.MaxWatchStreams, c.HTTP.MaxWatchStreamsPerAddress = 1, 1
	})
	gov, rootKey := filepath.Join(d.dir, node.DevGovernanceKey), filepath.Join(d.dir, node.DevRootAccreditorKey)
	root := strings.TrimSpace(d.must("did", rootKey))
	create := func(id string) {
		d.must("-q", "framework", "create", "--id", id, "--name", "F", "--root", root, "--key", gov)
	}
	create("https://example.org/fw-before")
	// The watcher reaches the node through a proxy, whose connections the
	// test cuts. Both are on 127.0.0.1: one client address to the node.
	target, err := url.Parse(d.n.GatewayURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	t.Cleanup(proxy.Close)

	for _, tc := range []struct {
		holder string // the address of the stream that holds the node's one
		want   string // the refusal trustctl notes
	}{
		{"127.0.0.1", "429 too_many_streams"},
		{"127.0.0.2", "503 streams_full"},
	} {
		holder := mustOpenStream(t, d.n.GatewayURL(), tc.holder)
		// (A 503 on a stream is not one to read with --consistency local.)
		if _, _, err := d.ctl("watch", "--retries", "0"); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "gave up after 0 reconnections") ||
			strings.Contains(err.Error(), unavailableHint) {
			t.Fatalf("holder %s: watch --retries 0: %v, want it to give up on %s", tc.holder, err, tc.want)
		}
		w := startWatch(t, proxy.URL)
		// The first wait is the node's Retry-After (5 s), not 1 s.
		waitForText(t, w.errw, "trustctl: watch: "+tc.want, 1)
		if note := regexp.MustCompile(`; reconnecting after index \d+ in (5|6)(\.\d)?s \(1 of 10\)\n`); !note.MatchString(w.errw.String()) {
			t.Fatalf("holder %s: the note does not wait the Retry-After: %q", tc.holder, w.errw)
		}
		during := "https://example.org/fw-during-" + tc.holder
		create(during)
		holder.Body.Close()
		waitForText(t, w.out, during, 1)
		// Cut the stream: the watcher resumes after the operation it printed.
		lastIndex := strings.Fields(w.out.String())[0]
		proxy.CloseClientConnections()
		waitForText(t, w.errw, "; reconnecting after index "+lastIndex+" in ", 1)
		after := "https://example.org/fw-after-" + tc.holder
		create(after)
		waitForText(t, w.out, after, 1)
		if err := w.stop(); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(w.out.String()), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], "  "+during+"  ") || !strings.Contains(lines[1], "  "+after+"  ") {
			t.Fatalf("holder %s: the watch printed\n%s\nwant %s then %s, once each", tc.holder, w.out, during, after)
		}
	}
}

// TestWatchRetriesCountAgainAfterAHealthyStream: a stream that stayed
// open watchHealthyAfter ends a row of reconnections, so --retries 1
// outlasts three streams that each stay open and then end, and gives up
// at the first stream after them that ends at once (the second
// reconnection of its row). The node is a test server whose first three
// streams stay open for healthyHold, three times watchHealthyAfter (made
// short here), and whose next ones end as soon as they open. Without the
// rule, the watch gave up when the second stream ended.
func TestWatchRetriesCountAgainAfterAHealthyStream(t *testing.T) {
	const healthy, healthyHold = 150 * time.Millisecond, 450 * time.Millisecond
	was := watchHealthyAfter
	watchHealthyAfter = healthy
	t.Cleanup(func() { watchHealthyAfter = was })
	var streams atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/watch" || r.URL.Query().Get("since") != "7" {
			http.Error(w, "not a watch from 7", http.StatusNotFound)
			return
		}
		n := streams.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, ": trustreg watch from index 7\n\n")
		http.NewResponseController(w).Flush()
		if n <= 3 {
			select {
			case <-time.After(healthyHold):
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errw lockedBuffer
	err := run(ctx, []string{"--server", srv.URL, "watch", "--since", "7", "--retries", "1"}, nil, &out, &errw)
	if err == nil || !strings.Contains(err.Error(), "gave up after 1 reconnections in a row") || !errors.Is(err, errStreamEnded) {
		t.Fatalf("watch: %v, want it to give up after 1 reconnection in a row\n%s", err, errw.String())
	}
	if n := streams.Load(); n != 4 {
		t.Fatalf("%d streams, want 4: 3 that stayed open %s, then 1 that ended at once\n%s", n, healthyHold, errw.String())
	}
	// Each reconnection after a stream that stayed open is the first of
	// its row, after the first wait.
	if strings.Count(errw.String(), "; reconnecting after index 7 in 1") != 3 || strings.Count(errw.String(), "(1 of 1)\n") != 3 {
		t.Fatalf("want 3 reconnections, each the first of its row, after a 1-s wait:\n%s", errw.String())
	}
}

// TestWatchEndsAtOtherRefusals: a refusal that waiting does not change (a
// --since past the registry's log: 400) ends trustctl watch at once,
// without a reconnection; a negative --retries is a usage error.
func TestWatchEndsAtOtherRefusals(t *testing.T) {
	d := startDevNode(t)
	_, errw, err := d.ctl("watch", "--since", "1000000")
	if err == nil || !strings.Contains(err.Error(), "400 bad request: since 1000000 is past the registry's last committed index") || exitCode(err) != exitError {
		t.Fatalf("watch --since 1000000: %v", err)
	}
	if strings.Contains(errw, "reconnecting") {
		t.Fatalf("a 400 was retried: %q", errw)
	}
	if _, _, err := d.ctl("watch", "--retries", "-1"); !isUsage(err) || !strings.Contains(err.Error(), "--retries -1") {
		t.Fatalf("watch --retries -1: %v", err)
	}
}

// mustOpenStream opens a watch stream on the gateway at base from the
// local address ip, and waits until the node takes it (a stream closed
// just before may still hold its place for a moment).
func mustOpenStream(t *testing.T, base, ip string) *http.Response {
	t.Helper()
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := hc.Get(base + "/v1/watch")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			t.Cleanup(func() { resp.Body.Close() })
			return resp
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("a stream from %s: %d", ip, resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watcher is a trustctl watch running in the background.
type watcher struct {
	out, errw *lockedBuffer
	stop      func() error // interrupts it and returns its error
}

// startWatch runs trustctl watch against the gateway at server until its
// stop is called (or the test ends).
func startWatch(t *testing.T, server string, args ...string) watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := watcher{out: &lockedBuffer{}, errw: &lockedBuffer{}}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--server", server, "watch"}, args...), nil, w.out, w.errw)
	}()
	w.stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return fmt.Errorf("watch did not end when interrupted")
		}
	})
	t.Cleanup(func() { _ = w.stop() })
	return w
}

// waitForText waits up to 20 s (longer than two of the node's
// Retry-After) until out holds n of want.
func waitForText(t *testing.T, out *lockedBuffer, want string, n int) {
	t.Helper()
	for range 400 {
		if strings.Count(out.String(), want) >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("printed %q, want %d of %q", out.String(), n, want)
}
