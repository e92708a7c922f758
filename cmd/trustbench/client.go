package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// requestTimeout bounds one request of the load generator.
const requestTimeout = 30 * time.Second

// worker is one load-generator worker's HTTP/1.1 client: one keep-alive
// connection per host, used by this worker alone, the request written in
// one buffered write and the answer parsed by net/http's ReadResponse.
//
// net/http's Transport hands every request to two goroutines of the
// connection and back. On two cores shared with the servers, at 9,000
// requests/s to the bare handler, it cost the generator ≈ 90 µs of CPU per
// request and measured p99 6.7 and 34 ms (two runs); this client ≈ 58 µs
// and 2.3 and 1.7 ms. Like wrk, it only sends, reads and measures, and
// every system compared is driven by it.
type worker struct {
	conns map[string]*workerConn
	urls  map[string]*target
}

type workerConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// target is a request URL split once into what the request line needs.
type target struct {
	host, uri string
}

func newWorker() *worker {
	return &worker{conns: map[string]*workerConn{}, urls: map[string]*target{}}
}

func (w *worker) target(raw string) (*target, error) {
	if t, ok := w.urls[raw]; ok {
		return t, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("%s: only http URLs are measured", raw)
	}
	t := &target{host: u.Host, uri: u.RequestURI()}
	if len(w.urls) < 1<<16 {
		w.urls[raw] = t
	}
	return t, nil
}

// do sends r and reads its answer, returning the status code. The request
// ends at ctx's deadline or after requestTimeout, whichever comes first.
// After an error the connection is closed; the next request dials anew.
func (w *worker) do(ctx context.Context, r request) (int, error) {
	t, err := w.target(r.url)
	if err != nil {
		return 0, err
	}
	wc, err := w.conn(ctx, t.host)
	if err != nil {
		return 0, err
	}
	status, keep, err := wc.roundTrip(ctx, t, r)
	if err != nil || !keep {
		// A failed or finished connection is dropped; the request's
		// outcome is err, and closing it can lose nothing more.
		_ = wc.c.Close()
		delete(w.conns, t.host)
	}
	return status, err
}

func (w *worker) conn(ctx context.Context, host string) (*workerConn, error) {
	if wc, ok := w.conns[host]; ok {
		return wc, nil
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	wc := &workerConn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 8<<10)}
	w.conns[host] = wc
	return wc, nil
}

func (wc *workerConn) roundTrip(ctx context.Context, t *target, r request) (status int, keep bool, err error) {
	deadline := time.Now().Add(requestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := wc.c.SetDeadline(deadline); err != nil {
		return 0, false, err
	}
	// A bufio.Writer keeps its first error and returns it from Flush, so
	// the writes are checked there.
	bw := wc.bw
	_, _ = bw.WriteString(r.method)
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(t.uri)
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(t.host)
	_, _ = bw.WriteString("\r\n")
	if r.contentType != "" {
		_, _ = bw.WriteString("Content-Type: ")
		_, _ = bw.WriteString(r.contentType)
		_, _ = bw.WriteString("\r\n")
	}
	if r.body != nil || r.method == http.MethodPost || r.method == http.MethodPut {
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.WriteString(strconv.Itoa(len(r.body)))
		_, _ = bw.WriteString("\r\n")
	}
	_, _ = bw.WriteString("\r\n")
	_, _ = bw.Write(r.body)
	if err := bw.Flush(); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(wc.br, nil)
	if err != nil {
		return 0, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	closeRead(resp.Body)
	if err != nil {
		return 0, false, err
	}
	return resp.StatusCode, !resp.Close, nil
}

// close closes the worker's connections.
func (w *worker) close() {
	for _, wc := range w.conns {
		_ = wc.c.Close() // every request on it has completed
	}
}
