// Package client is a small Go client of the trustreg gateway, used by
// trustctl and the black-box tests.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/record"
)

// Client talks to one node's gateway (or admin API), or to several nodes',
// failing over between them (roundTrip says when).
type Client struct {
	// Base is the endpoint in use: the one New was given, or the one of
	// Endpoints that answered last.
	Base string
	// Endpoints, when set, are the nodes to fail over between, in order
	// (ParseEndpoints); the first request goes to Endpoints[0].
	Endpoints []string
	// Flag names the endpoints in error messages ("--server").
	Flag string
	// Identify, if set, runs once before the first request to each
	// endpoint: it may check which consortium the node belongs to. An
	// error wrapping ErrWrongNode (the node answered, and is not one to
	// ask) ends the request; any other (the node could not be asked: down,
	// hung, no answer in time) moves on to the next endpoint, as the
	// request itself was not sent.
	Identify func(ctx context.Context, base string) error
	HTTP     *http.Client
	// Token, if set, is sent as a bearer token (the admin API's).
	Token string
	// Consistency, if set, is sent as the consistency level of every read
	// that does not name its own: "linearizable" sees every write any
	// node acknowledged before the read; "local" is this node's state.
	Consistency string

	eps endpoints
}

// New returns a client of the gateway at base (http://host:port).
func New(base string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// NewFailover returns a client that fails over between endpoints
// (ParseEndpoints' answer); flag names them in error messages.
func NewFailover(endpoints []string, flag string) *Client {
	c := New(endpoints[0])
	c.Endpoints, c.Flag = endpoints, flag
	return c
}

// APIError is a problem-details answer.
type APIError struct {
	Problem api.Problem
	// Method and Path are the request's.
	Method, Path string
	// RetryAfter is the answer's Retry-After as a wait (0: none), which a
	// refusal for now (429, 503) may carry.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	code := strings.TrimPrefix(e.Problem.Type, "urn:trustreg:problem:")
	if _, w3c, ok := strings.Cut(code, "#"); ok {
		code = w3c // a status-list type URL: its fragment is the code
	}
	if strings.HasPrefix(e.Problem.Detail, strings.ReplaceAll(code, "_", " ")) {
		return fmt.Sprintf("%d %s", e.Problem.Status, e.Problem.Detail) // "404 not found: entity ..."
	}
	return fmt.Sprintf("%d %s: %s", e.Problem.Status, code, e.Problem.Detail)
}

// Submit sends a signed operation. A rejected operation returns its result
// and an *APIError.
func (c *Client) Submit(ctx context.Context, jws []byte) (*record.Result, error) {
	res, _, err := c.SubmitCounted(ctx, jws)
	return res, err
}

// SubmitCounted is Submit that also returns how many times the operation
// was sent (or about to be sent: an attempt that never reached a node
// counts too). It is more than one when an attempt's outcome was unknown
// and the operation went again, to the same node or another: a duplicate
// answer may then be to the first attempt. A duplicate answer to an
// operation sent once is to one the registry held before it was sent.
func (c *Client) SubmitCounted(ctx context.Context, jws []byte) (*record.Result, int, error) {
	ct := "application/jose"
	if t := bytes.TrimSpace(jws); len(t) > 0 && t[0] == '{' {
		ct = "application/jose+json"
	}
	// The same signed operation submitted again is idempotent: it may go
	// to another node when the first one's answer was lost.
	var res record.Result
	sent := 0
	err := c.do(ctx, true, func(base string) (*http.Request, error) {
		sent++
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/operations", bytes.NewReader(jws))
		if err == nil {
			req.Header.Set("Content-Type", ct)
		}
		return req, err
	}, &res)
	var ae *APIError
	if errors.As(err, &ae) && ae.Problem.Result != nil {
		return ae.Problem.Result, sent, err
	}
	if err != nil {
		return nil, sent, err
	}
	return &res, sent, nil
}

// Get reads path with query into out.
func (c *Client) Get(ctx context.Context, path string, query url.Values, out any) error {
	if c.Consistency != "" && !query.Has("consistency") {
		query = maps.Clone(query)
		if query == nil {
			query = url.Values{}
		}
		query.Set("consistency", c.Consistency)
	}
	u := path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return c.do(ctx, true, func(base string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, base+u, nil)
	}, out)
}

// Post sends v as JSON to path and reads the answer into out. It goes to
// another endpoint only when the node certainly did not carry it out.
func (c *Client) Post(ctx context.Context, path string, v, out any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.do(ctx, false, func(base string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}, out)
}

// Trust asks a trust question.
func (c *Client) Trust(ctx context.Context, q url.Values) (*record.Decision, error) {
	var d record.Decision
	if err := c.Get(ctx, "/v1/trust", q, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// PathID escapes an identifier for use as one path segment.
func PathID(id string) string { return url.PathEscape(id) }

// WatchEnd is what one watch stream brought before it ended.
type WatchEnd struct {
	// Last is the index of the last operation passed to fn: the since
	// Watch was given, if none.
	Last uint64
	// Opened is when the node's answer to the stream (200) arrived; zero
	// when the stream did not open (refused, or no answer).
	Opened time.Time
}

// Watch reads one watch stream (GET /v1/watch) and calls fn with each
// operation, in index order. since is the index to stream after;
// framework and entity filter, when not empty. It returns what the stream
// brought (WatchEnd), with the error that ended it: nil when the node
// ended it (it shut down), the context's when ctx ended, or fn's.
func (c *Client) Watch(ctx context.Context, since uint64, framework, entity string, fn func(record.OperationView) error) (WatchEnd, error) {
	q := url.Values{"since": {strconv.FormatUint(since, 10)}}
	if framework != "" {
		q.Set("framework", framework)
	}
	if entity != "" {
		q.Set("entity", entity)
	}
	hc := *c.HTTP
	hc.Timeout = 0 // a stream lasts as long as it is watched
	resp, err := c.roundTrip(ctx, &hc, true, func(base string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/watch?"+q.Encode(), nil)
		if err == nil {
			req.Header.Set("Accept", "text/event-stream")
		}
		return req, err
	})
	if err != nil {
		return WatchEnd{Last: since}, err
	}
	// The body is only read; closing it has nothing to report.
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return WatchEnd{Last: since}, apiError(resp.Request, resp, body)
	}
	end := WatchEnd{Last: since, Opened: time.Now()}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), record.MaxOperationSize*4)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0 && data != nil:
			var v record.OperationView
			if err := json.Unmarshal(data, &v); err != nil {
				return end, fmt.Errorf("watch: event after index %d: %w", end.Last, err)
			}
			data = nil
			if err := fn(v); err != nil {
				return end, err
			}
			end.Last = v.Index
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data, line[len("data: "):]...)
		}
	}
	if ctx.Err() != nil {
		return end, ctx.Err()
	}
	return end, sc.Err()
}

// apiError is the error of an answer that is not a success: its problem
// document, or one made of its status and body when it has none.
func apiError(req *http.Request, resp *http.Response, body []byte) *APIError {
	var p api.Problem
	if json.Unmarshal(body, &p) != nil || p.Status == 0 {
		p = api.Problem{Status: resp.StatusCode, Title: resp.Status, Detail: strings.TrimSpace(string(body))}
	}
	return &APIError{Problem: p, Method: req.Method, Path: req.URL.Path, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

// retryAfter reads a Retry-After field (RFC 9110 §10.2.3): seconds, or an
// HTTP date, as a wait from now. A field that is neither, or a date past,
// is no wait.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// do sends the request build makes (roundTrip, repeatable) and reads the
// answer into out.
func (c *Client) do(ctx context.Context, repeatable bool, build func(base string) (*http.Request, error), out any) error {
	resp, err := c.roundTrip(ctx, c.HTTP, repeatable, build)
	if err != nil {
		return err
	}
	// The body is only read; closing it has nothing to report.
	defer func() { _ = resp.Body.Close() }()
	req := resp.Request
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return apiError(req, resp, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode %s answer: %w", req.URL.Path, err)
	}
	return nil
}

// ErrFileExists is returned by Download when out exists and may not be
// replaced.
var ErrFileExists = errors.New("file exists already")

// Download saves the body of GET path to the file out and returns its size.
// The body is written to a temporary file beside out, synced, and moved to
// out only when complete, so out is never a partial body. Unless replace is
// set, an existing out is left as it is and ErrFileExists returned, both
// before the download starts and, should the file appear meanwhile, at its
// end.
func (c *Client) Download(ctx context.Context, path, out string, replace bool) (int64, error) {
	if !replace {
		if _, err := os.Lstat(out); err == nil {
			return 0, fmt.Errorf("%s: %w", out, ErrFileExists)
		}
	}
	hc := *c.HTTP
	hc.Timeout = 0 // a large state takes as long as it takes
	resp, err := c.roundTrip(ctx, &hc, true, func(base string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	})
	if err != nil {
		return 0, err
	}
	// The body is only read; closing it has nothing to report.
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return 0, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	f, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".partial-*")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	n, err := io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = place(tmp, out, replace)
	}
	if err != nil {
		// The download failed; a partial file that cannot be removed is
		// reported with that failure.
		return 0, errors.Join(err, os.Remove(tmp))
	}
	return n, nil
}

// place moves the complete file tmp to out. Without replace it links tmp
// as out, which fails if out exists, and then removes tmp; on a file
// system without hard links it checks for out and renames.
func place(tmp, out string, replace bool) error {
	if replace {
		return os.Rename(tmp, out)
	}
	err := os.Link(tmp, out)
	switch {
	case err == nil:
		return os.Remove(tmp)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s: %w", out, ErrFileExists)
	}
	if _, serr := os.Lstat(out); serr == nil {
		return fmt.Errorf("%s: %w", out, ErrFileExists)
	}
	return os.Rename(tmp, out)
}
