package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/record"
)

// sseEvent is one Server-Sent Event of the watch stream.
type sseEvent struct {
	id, event string
	op        record.OperationView
}

// openWatch opens /v1/watch with the query and headers given and returns
// a channel of its events, closed when the stream ends.
func (e *env) openWatch(ctx context.Context, query string, header http.Header) (<-chan sseEvent, *http.Response) {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.n.GatewayURL()+"/v1/watch"+query, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	events := make(chan sseEvent, 64)
	if resp.StatusCode != http.StatusOK {
		close(events)
		return events, resp
	}
	go func() {
		defer close(events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &ev.op); err != nil {
					ev.event = "undecodable: " + err.Error()
				}
			}
		}
	}()
	return events, resp
}

// next returns the next event, failing the test after a few seconds.
func next(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the watch stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10 s")
	}
	return sseEvent{}
}

// TestWatchStreamsOperations: /v1/watch replays the operations after
// since, then streams each one as it is applied, filtered by framework
// and by entity; a browser's Last-Event-ID resumes after the last event
// it saw; the node's shutdown ends the stream.
func TestWatchStreamsOperations(t *testing.T) {
	e := mustNewEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	all, resp := e.openWatch(ctx, "?since=0", nil)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	e.chain() // createFramework, accredit QA, accredit college
	ops := []string{record.OpCreateFramework, record.OpAccredit, record.OpAccredit}
	var ids []string
	for i, want := range ops {
		ev := next(t, all)
		if ev.event != "operation" || ev.op.Op != want || ev.id != strconv.FormatUint(ev.op.Index, 10) || ev.op.Result == nil || !ev.op.Result.Accepted {
			t.Fatalf("event %d: %+v, want an accepted %s", i, ev, want)
		}
		ids = append(ids, ev.id)
	}
	if e.n.State.AppliedIndex() == 0 {
		t.Fatal("nothing applied")
	}

	// Filters, opened after the chain: replayed from index 0.
	college, _ := e.openWatch(ctx, "?since=0&entity="+e.college.DID, nil)
	otherFW, _ := e.openWatch(ctx, "?since=0&framework=https://example.org/other", nil)
	ev := next(t, college)
	if ev.op.Op != record.OpAccredit || ev.id != ids[2] {
		t.Fatalf("the college's first event: %+v", ev)
	}
	// A revocation names the accreditation only; it is in the
	// accreditation's framework and concerns its subject and signer.
	e.mustSubmit(e.sign(e.qa, record.OpRevoke, map[string]any{"accreditation": e.colAcc}))
	if ev := next(t, college); ev.op.Op != record.OpRevoke {
		t.Fatalf("the college's second event: %+v", ev)
	}
	if ev := next(t, all); ev.op.Op != record.OpRevoke {
		t.Fatalf("fourth event: %+v", ev)
	}
	inFW, _ := e.openWatch(ctx, "?since=0&framework="+fw, nil)
	for i, want := range append(ops, record.OpRevoke) {
		if ev := next(t, inFW); ev.op.Op != want {
			t.Fatalf("framework event %d: %+v, want %s", i, ev, want)
		}
	}
	select {
	case ev := <-otherFW:
		t.Fatalf("a watch of another framework got %+v", ev)
	default:
	}

	// Without since, a stream starts at the applied index: nothing old.
	fresh, _ := e.openWatch(ctx, "", nil)
	// Last-Event-ID resumes after the event named.
	resumed, _ := e.openWatch(ctx, "", http.Header{"Last-Event-Id": {ids[1]}})
	if ev := next(t, resumed); ev.id != ids[2] {
		t.Fatalf("resumed after %s: %+v", ids[1], ev)
	}
	e.mustSubmit(e.govSign(record.OpUpdateFramework, map[string]any{"id": fw, "name": "Nursing (2026)"}))
	if ev := next(t, fresh); ev.op.Op != record.OpUpdateFramework {
		t.Fatalf("a stream opened without since: %+v", ev)
	}

	for _, q := range []string{"?since=yesterday", "?frameworks=x", "?min_index=x"} {
		if _, resp := e.openWatch(ctx, q, nil); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %d", q, resp.StatusCode)
		}
	}
	// A stream that asks for an index the node has not applied waits for
	// it (the gateway's bound is 500 ms here), then says so.
	if _, resp := e.openWatch(ctx, "?min_index=999999", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("min_index beyond the applied index: %d", resp.StatusCode)
	}

	// Six streams are open (the refused ones never were).
	if _, body := e.get("/metrics"); !strings.Contains(string(body), "\ntrustd_http_watch_streams 6\n") {
		t.Errorf("/metrics does not count six watch streams:\n%s", body)
	}

	// Shutdown ends every stream: the gateway's graceful shutdown
	// completes (a stream still open at the end of its grace period makes
	// Close report the deadline), and the streams see their end.
	if err := e.n.Close(); err != nil {
		t.Fatalf("closing the node with watchers open: %v", err)
	}
	for range all {
	}
}

// TestWatchOfAnEntityReadsItsOperationsOnly: a stream filtered by an
// entity reads that entity's operations through its history index
// (View.ChangesOf), not every operation of the log to filter them: over a
// log of some fifty operations, two of them the college's, replaying the
// college's reads two operation records (registry.State.OperationsRead),
// where the whole log would be read for the same two events.
func TestWatchOfAnEntityReadsItsOperationsOnly(t *testing.T) {
	e := mustNewEnv(t)
	e.chain() // createFramework, accredit QA, accredit college
	const others = 48
	for i := range others {
		e.mustSubmit(e.sign(e.root, record.OpAccredit, map[string]any{"framework": fw, "accreditor": e.root.DID,
			"subject": "did:web:other-" + strconv.Itoa(i) + ".example", "action": "issue", "resources": []string{nurse}, "validFrom": "2022-09-01T00:00:00Z"}))
	}
	e.mustSubmit(e.sign(e.qa, record.OpRevoke, map[string]any{"accreditation": e.colAcc}))
	logged := others + 4

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := e.n.State.OperationsRead()
	college, _ := e.openWatch(ctx, "?since=0&entity="+e.college.DID, nil)
	for _, want := range []string{record.OpAccredit, record.OpRevoke} {
		if ev := next(t, college); ev.op.Op != want {
			t.Fatalf("the college's events: %+v, want %s", ev, want)
		}
	}
	// Both events were read in one page, before it was sent.
	if read := e.n.State.OperationsRead() - before; read > 2 {
		t.Fatalf("the college's stream read %d operation records of the %d logged for its 2 operations: not through its history index", read, logged)
	}
}

// watchLines opens the watch stream at u for the test's length and
// returns its lines after the first (the stream's start note, checked),
// closed when the stream ends.
func watchLines(t *testing.T, u string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	if first := <-lines; !strings.HasPrefix(first, ": trustreg watch from index") {
		t.Fatalf("the stream began with %q", first)
	}
	return lines
}

// TestWatchKeepAliveWhileOthersOperationsApply: a stream filtered by a
// framework sends a keep-alive once it has sent nothing for the keep-alive
// time, even while other frameworks' operations are applied all along (a
// proxy with an idle timeout would cut it otherwise). Before, only a time
// without any applied operation brought one.
func TestWatchKeepAliveWhileOthersOperationsApply(t *testing.T) {
	defer gateway.SetWatchKeepAlive(300 * time.Millisecond)()
	e := mustNewEnv(t)
	e.chain()
	lines := watchLines(t, e.n.GatewayURL()+"/v1/watch?framework=https://example.org/other")
	// Write for five keep-alive times, an operation every few
	// milliseconds (bounded in count), and look for a keep-alive among
	// what the stream sent meanwhile.
	start, applied, kept := time.Now(), 0, 0
	for i := 0; i < 20000 && time.Since(start) < 1500*time.Millisecond; i++ {
		e.mustSubmit(e.sign(e.root, record.OpAccredit, map[string]any{"framework": fw, "accreditor": e.root.DID,
			"subject": "did:web:busy-" + strconv.Itoa(i) + ".example", "action": "issue", "resources": []string{nurse}, "validFrom": "2022-09-01T00:00:00Z"}))
		applied++
		for drained := false; !drained; {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("the stream ended")
				}
				switch {
				case l == ": keep-alive":
					kept++
				case l != "":
					t.Fatalf("a stream of another framework sent %q", l)
				}
			default:
				drained = true
			}
		}
	}
	if kept == 0 {
		t.Fatalf("no keep-alive in %v while %d operations of another framework were applied", time.Since(start).Round(time.Millisecond), applied)
	}
}

// TestWatchKeepAliveWhileWaitingForATurn: a stream whose page read waits
// for a turn (listings, exports and past status reads hold them) sends its
// keep-alive once it has sent nothing for the keep-alive time, and its
// events once it has the turn.
func TestWatchKeepAliveWhileWaitingForATurn(t *testing.T) {
	defer gateway.SetWatchKeepAlive(200 * time.Millisecond)()
	e := mustNewEnv(t)
	e.chain()
	g, srv := serveGateway(t, gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n, MaxWait: 200 * time.Millisecond})
	release := g.HoldTurns()
	lines := watchLines(t, srv.URL+"/v1/watch?since=0&framework="+url.QueryEscape(fw))
	kept := 0
	for deadline := time.After(2 * time.Second); deadline != nil; { // ten keep-alive times
		select {
		case l := <-lines:
			switch {
			case l == ": keep-alive":
				kept++
			case l != "":
				t.Fatalf("the stream sent %q while its page read waited for a turn", l)
			}
		case <-deadline:
			deadline = nil
		}
	}
	release()
	if kept == 0 {
		t.Fatal("no keep-alive in 2 s (keep-alive time 200 ms) while the stream waited for a turn")
	}
	for l := range lines { // the framework's operations, once the turn is free
		if strings.HasPrefix(l, "event: operation") {
			return
		}
	}
	t.Fatal("the stream ended without its events")
}

// watchFrom opens /v1/watch at base from the local address ip and returns
// the answer, its body open while the stream lasts.
func watchFrom(t *testing.T, base, ip string) *http.Response {
	t.Helper()
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Get(base + "/v1/watch")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// refusedStream checks that a watch stream was refused with status and the
// problem type code, and Retry-After.
func refusedStream(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("a stream opened, want %d %s", status, code) // its body would not end
	}
	body, _ := io.ReadAll(resp.Body)
	var p api.Problem
	_ = json.Unmarshal(body, &p)
	if resp.StatusCode != status || p.Type != "urn:trustreg:problem:"+code || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d (Retry-After %q), want %d %s: %s", resp.StatusCode, resp.Header.Get("Retry-After"), status, code, body)
	}
}

// TestWatchStreamsAreBoundedPerAddress: one client address holds at most
// 32 watch streams (http.max_watch_streams_per_address); one more is 429
// too_many_streams with Retry-After, and a stream closed frees its place.
// Streams were unbounded: each holds a connection for as long as its
// client stays (the keep-alive keeps it open), and 372 of them took a
// node with 400 file descriptors down.
func TestWatchStreamsAreBoundedPerAddress(t *testing.T) {
	e := mustNewEnv(t)
	base := e.n.GatewayURL()
	var open []*http.Response
	for i := range 32 {
		resp := watchFrom(t, base, "127.0.0.1")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
		open = append(open, resp)
	}
	refusedStream(t, watchFrom(t, base, "127.0.0.1"), http.StatusTooManyRequests, "too_many_streams")
	open[0].Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := watchFrom(t, base, "127.0.0.1")
		if resp.StatusCode == http.StatusOK {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream's place was not freed: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchStreamsAreBoundedOnTheNode: beyond MaxWatchStreams open on the
// node, from any addresses, a stream is 503 streams_full with
// Retry-After; the bound per address holds within it.
func TestWatchStreamsAreBoundedOnTheNode(t *testing.T) {
	e := mustNewEnv(t)
	g, err := gateway.New(gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n, MaxWatchStreams: 3, MaxWatchStreamsPerAddress: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	t.Cleanup(g.StopStreams)
	for _, ip := range []string{"127.0.0.1", "127.0.0.1", "127.0.0.2"} {
		if resp := watchFrom(t, srv.URL, ip); resp.StatusCode != http.StatusOK {
			t.Fatalf("a stream from %s: %d", ip, resp.StatusCode)
		}
	}
	refusedStream(t, watchFrom(t, srv.URL, "127.0.0.1"), http.StatusTooManyRequests, "too_many_streams")
	resp := watchFrom(t, srv.URL, "127.0.0.3")
	refusedStream(t, resp, http.StatusServiceUnavailable, "streams_full")
	if got := resp.Header.Get("Retry-After"); got != "5" {
		t.Fatalf("Retry-After %q, want 5", got)
	}
}
