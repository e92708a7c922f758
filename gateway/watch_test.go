package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

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
