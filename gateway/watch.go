package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/record"
)

// Watch stream tuning.
const (
	// watchPage is how many operations one read of the change feed takes.
	watchPage = 256
	// watchWriteTimeout bounds each write to a watcher: one that stops
	// reading is dropped instead of holding its goroutine.
	watchWriteTimeout = 10 * time.Second
	// defaultMaxWatchStreams and defaultMaxWatchStreamsPerAddress are
	// Config.MaxWatchStreams and MaxWatchStreamsPerAddress when zero.
	defaultMaxWatchStreams           = 2048
	defaultMaxWatchStreamsPerAddress = 32
	// watchRetryAfter is the Retry-After of a stream refused for a bound,
	// in seconds: streams end when their clients go, not on a schedule.
	watchRetryAfter = 5
)

// watchKeepAlive is how long a stream that sent nothing waits before it
// sends a comment, so proxies and clients see the connection alive: a
// stream filtered by a framework or an entity on a busy registry sends
// nothing while the operations applied are others', as a quiet registry's
// stream does. A variable for the tests (SetWatchKeepAlive).
var watchKeepAlive atomic.Int64

func init() { watchKeepAlive.Store(int64(15 * time.Second)) }

// Watch streams refused for a bound: each holds a connection (a file
// descriptor) and a goroutine for as long as its client stays, so their
// number is bounded on the node and per client address.
var (
	ErrTooManyStreams = record.NewKind("gateway: too many watch streams from this address", "too many watch streams from this address", nil)
	ErrStreamsFull    = record.NewKind("gateway: the node serves as many watch streams as it may", "the node serves as many watch streams as it may", nil)
)

// watchSlots counts the watch streams open, in all and per client
// address (clientKey), against their bounds. Its map holds only
// addresses with a stream open, so it is bounded by the node's bound.
type watchSlots struct {
	max, perAddress int
	mu              sync.Mutex
	open            int
	byAddress       map[string]int
}

func newWatchSlots(max, perAddress int) *watchSlots {
	if max <= 0 {
		max = defaultMaxWatchStreams
	}
	if perAddress <= 0 {
		perAddress = defaultMaxWatchStreamsPerAddress
	}
	return &watchSlots{max: max, perAddress: perAddress, byAddress: map[string]int{}}
}

// take opens a slot for a stream from address, or returns why it may not:
// ErrTooManyStreams or ErrStreamsFull.
func (w *watchSlots) take(address string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.byAddress[address]; n >= w.perAddress {
		return record.Errorf(ErrTooManyStreams, "%s has %d streams open, the most one client address may (http.max_watch_streams_per_address); close one, or retry after %d s", address, n, watchRetryAfter)
	}
	if w.open >= w.max {
		return record.Errorf(ErrStreamsFull, "%d streams are open, the most this node serves (http.max_watch_streams); retry after %d s, or watch through another node", w.open, watchRetryAfter)
	}
	w.open++
	w.byAddress[address]++
	return nil
}

// release closes a slot take opened for address.
func (w *watchSlots) release(address string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.open--
	if w.byAddress[address]--; w.byAddress[address] <= 0 {
		delete(w.byAddress, address)
	}
}

// watch streams accepted operations as Server-Sent Events: every
// operation after since (default: the applied index when the stream
// opens; a browser's Last-Event-ID takes its place when it reconnects),
// then each one as it is applied, filtered by framework and entity. Each
// event is the change feed's view of one operation, with the registry
// index as its id. The stream ends when the client goes away or the node
// shuts down.
func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "since", "framework", "entity"); err != nil {
		writeError(w, r, err)
		return
	}
	q := query(r)
	since, sinceFrom := s.cfg.Registry.AppliedIndex(), ""
	for _, from := range []struct{ name, v string }{{"since", q.Get("since")}, {"Last-Event-ID", r.Header.Get("Last-Event-ID")}} {
		if from.v == "" {
			continue
		}
		n, err := strconv.ParseUint(from.v, 10, 64)
		if err != nil {
			writeError(w, r, record.Errorf(ErrBadRequest, "%s %q is not a registry index", from.name, from.v))
			return
		}
		since, sinceFrom = n, from.name
	}
	framework, entity := q.Get("framework"), q.Get("entity")
	// min_index (or consistency=linearizable) holds the stream back until
	// the node has applied that index.
	if !s.consistent(w, r) {
		return
	}
	if err := s.reachSince(r, since, sinceFrom); err != nil {
		writeError(w, r, err)
		return
	}
	address := clientKey(r)
	if err := s.watchers.take(address); err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(watchRetryAfter))
		writeError(w, r, err)
		return
	}
	defer s.watchers.release(address)

	s.metrics.watchers.Inc()
	defer s.metrics.watchers.Dec()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", cacheNone)
	h.Set("X-Accel-Buffering", "no") // reverse proxies: pass events on at once
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	keepAlive := time.Duration(watchKeepAlive.Load())
	var sent time.Time // when the stream last sent something
	send := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(watchWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		sent = time.Now()
		return rc.Flush() == nil
	}
	// quietLeft sends the keep-alive once the stream has sent nothing for
	// keepAlive, whatever it waits for (a turn, an applied operation) or
	// reads meanwhile, and returns how long until the next is due; false
	// when the client is gone.
	quietLeft := func() (time.Duration, bool) {
		if quiet := keepAlive - time.Since(sent); quiet > 0 {
			return quiet, true
		}
		return keepAlive, send([]byte(": keep-alive\n\n"))
	}
	if !send([]byte(": trustreg watch from index " + strconv.FormatUint(since, 10) + "\n\n")) {
		return
	}
	var buf bytes.Buffer
	for {
		var applied uint64
		for {
			// Each page is read in a turn (takeTurn): a stream filtered
			// by what few operations match reads page after page of the
			// log while it catches up, sending nothing. Waiting for the
			// turn also notices a client gone, and sends the keep-alive
			// when the stream has sent nothing for keepAlive.
			for turn := false; !turn; {
				quiet, ok := quietLeft()
				if !ok {
					return
				}
				tctx, tcancel := context.WithTimeout(ctx, quiet)
				turn = s.takeTurn(tctx)
				tcancel()
				if ctx.Err() != nil {
					if turn {
						s.giveTurn()
					}
					return
				}
			}
			var more bool
			var err error
			since, applied, more, err = s.readWatchPage(&buf, since, framework, entity)
			if err != nil {
				s.log.Error("watch: read the change feed", "since", since, "err", err)
				return
			}
			if buf.Len() > 0 && !send(buf.Bytes()) {
				return
			}
			if !more {
				break
			}
		}
		// Everything applied up to applied (the last view's index) has been
		// read; wait for more, or until the stream has sent nothing for
		// keepAlive, whatever was applied meanwhile.
		quiet, ok := quietLeft()
		if !ok {
			return
		}
		wctx, wcancel := context.WithTimeout(ctx, quiet)
		err := s.cfg.Node.WaitApplied(wctx, applied+1)
		wcancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			// Quiet for keepAlive: the next page's turn sends the
			// keep-alive (quietLeft).
		case err != nil:
			return
		}
	}
}

// reachSince refuses a stream from since (given as the parameter or header
// from) past everything the registry has committed: a Last-Event-ID from
// another registry or from before a restore, or a typo, for which the
// stream would wait in silence for indexes that may never come. An index
// this node has not applied but the registry has (one seen on a node
// ahead of this one) is no error: the stream opens, and sends what comes
// after it as this node applies it. When the leader cannot say what is
// committed (no quorum, no answer within max_wait), the stream opens too.
func (s *Server) reachSince(r *http.Request, since uint64, from string) error {
	if from == "" || since <= s.cfg.Registry.AppliedIndex() || since <= s.logEnd() {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.MaxWait)
	defer cancel()
	committed, err := s.cfg.Node.ReadIndex(ctx)
	if err != nil || since <= max(committed, s.logEnd()) {
		return nil
	}
	return record.Errorf(ErrBadRequest, "%s %d is past the registry's last committed index %d: an index from another registry, or from before a restore? Start from 0, or leave it out", from, since, committed)
}

// logEnd is the end of this node's raft log as it knows it (its commit
// index, or its last entry), which raft's own entries (a new leader's
// no-op, configurations) may put past the registry's last operation.
func (s *Server) logEnd() uint64 {
	st, ok := s.cfg.Node.Status().(api.NodeStatus)
	if !ok {
		return 0
	}
	return max(st.CommitIndex, st.LastLogIndex)
}

// readWatchPage reads one page of the change feed after since into buf,
// as events of the operations that concern framework and entity, in a
// turn the caller took, which it gives back however it returns. It returns the index of the last operation read (since, if
// none), the applied index of the view it read, and whether more was
// applied after the page. One view per page, closed before the page is
// sent: a slow client must not hold a snapshot (or a restore) back.
func (s *Server) readWatchPage(buf *bytes.Buffer, since uint64, framework, entity string) (last, applied uint64, more bool, err error) {
	defer s.giveTurn()
	view := s.cfg.Registry.View()
	defer view.Close()
	applied = view.Index()
	var items []record.OperationView
	if entity != "" {
		// The entity's operations only, through its history index.
		items, more, err = view.ChangesOf(entity, since, watchPage)
	} else {
		items, more, err = view.Changes(since, watchPage)
	}
	if err != nil {
		return since, applied, false, err
	}
	buf.Reset()
	for i := range items {
		v := &items[i]
		ok, err := view.Concerns(v, framework, "")
		if err != nil {
			return since, applied, false, fmt.Errorf("filter the operation at %d: %w", v.Index, err)
		}
		since = v.Index
		if !ok {
			continue
		}
		data, err := json.Marshal(v)
		if err != nil {
			return since, applied, false, fmt.Errorf("encode the operation at %d: %w", v.Index, err)
		}
		fmt.Fprintf(buf, "id: %d\nevent: operation\ndata: %s\n\n", v.Index, data)
	}
	return since, applied, more, nil
}
