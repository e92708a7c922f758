package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// ErrBadEndpoint is an endpoint that is not a node's URL.
var ErrBadEndpoint = errors.New("bad endpoint")

// maxEndpoints bounds the endpoints one client fails over between.
const maxEndpoints = 32

// ParseEndpoints reads the endpoints of a flag given once or more, each a
// URL or a comma-separated list of them: http://host:port or
// https://host:port, optionally with a path prefix (a proxy's), or a bare
// host:port, which means http://host:port. Duplicates are dropped; the
// order is kept. It returns the base URLs without a trailing slash.
func ParseEndpoints(values []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, v := range values {
		for e := range strings.SplitSeq(v, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			base, err := parseEndpoint(e)
			if err != nil {
				return nil, err
			}
			if seen[base] {
				continue
			}
			seen[base] = true
			out = append(out, base)
		}
	}
	switch {
	case len(out) == 0:
		return nil, fmt.Errorf("%w: no endpoint given", ErrBadEndpoint)
	case len(out) > maxEndpoints:
		return nil, fmt.Errorf("%w: %d endpoints, at most %d", ErrBadEndpoint, len(out), maxEndpoints)
	}
	return out, nil
}

func parseEndpoint(e string) (string, error) {
	s := e
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w %q: %w", ErrBadEndpoint, e, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%w %q: the scheme is http or https", ErrBadEndpoint, e)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%w %q: no host (write host:port or http://host:port)", ErrBadEndpoint, e)
	case u.User != nil, u.RawQuery != "", u.Fragment != "", u.Opaque != "":
		return "", fmt.Errorf("%w %q: a node's URL has no user, query or fragment", ErrBadEndpoint, e)
	}
	if p := u.Port(); p == "" && strings.HasSuffix(u.Host, ":") {
		return "", fmt.Errorf("%w %q: empty port", ErrBadEndpoint, e)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

// endpoints is the list a client fails over between: the one in use and
// which of them Identify has accepted.
type endpoints struct {
	mu         sync.Mutex
	cur        int             // index in Client.Endpoints of the endpoint in use
	identified map[string]bool // endpoints Identify accepted
}

// list returns the endpoints in the order to try them: the one in use first.
func (c *Client) list() []string {
	c.eps.mu.Lock()
	all, base, cur := c.Endpoints, c.Base, c.eps.cur
	c.eps.mu.Unlock()
	if len(all) == 0 {
		return []string{base}
	}
	out := make([]string, 0, len(all))
	for i := range all {
		out = append(out, all[(cur+i)%len(all)])
	}
	return out
}

// use makes base the endpoint in use. Base is written under the lock that
// list reads it under, so one Client may serve several goroutines.
func (c *Client) use(base string) {
	c.eps.mu.Lock()
	defer c.eps.mu.Unlock()
	for i, e := range c.Endpoints {
		if e == base {
			c.eps.cur = i
		}
	}
	c.Base = base
}

// identify runs Identify on base once.
func (c *Client) identify(ctx context.Context, base string) error {
	if c.Identify == nil {
		return nil
	}
	c.eps.mu.Lock()
	done := c.eps.identified[base]
	c.eps.mu.Unlock()
	if done {
		return nil
	}
	if err := c.Identify(ctx, base); err != nil {
		return err
	}
	c.eps.mu.Lock()
	if c.eps.identified == nil {
		c.eps.identified = map[string]bool{}
	}
	c.eps.identified[base] = true
	c.eps.mu.Unlock()
	return nil
}

// NotSent reports whether err says a request never reached a server: no
// connection could be made (refused, no route, an unknown name). Such a
// request may go to another node whatever it asked.
func NotSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// notDone reports whether a 503 answer says the node certainly did not
// carry the request out: it had no leader or was not caught up. Its other
// 503s (outcome_unknown, timeout) leave a write's fate unknown.
func notDone(p *APIError) bool {
	switch p.Problem.Type {
	case problemTypeBase + "unavailable", problemTypeBase + "not_caught_up":
		return true
	}
	return false
}

const problemTypeBase = "urn:trustreg:problem:"

// ErrWrongNode is what an Identify error wraps when the node answered and
// is not one to ask (another consortium's): the request ends there.
var ErrWrongNode = errors.New("not a node to ask")

// roundTrip sends the request build makes for each endpoint in turn until
// one answers with something other than 503 or a failed connection, and
// makes that endpoint the one in use. A request moves to the next
// endpoint when it never reached the node (NotSent), when the node
// answered 503 and certainly did not carry it out, or, when repeatable is
// set (reads, and a signed operation, whose resubmission is idempotent),
// after any failed connection or 503. Any other request whose outcome is
// unknown is never sent to another node: its error is returned.
//
// The answer's body is the caller's to read and close.
func (c *Client) roundTrip(ctx context.Context, hc *http.Client, repeatable bool, build func(base string) (*http.Request, error)) (*http.Response, error) {
	bases := c.list()
	var tried []string
	for i, base := range bases {
		last := i == len(bases)-1
		if err := c.identify(ctx, base); err != nil {
			if !last && !errors.Is(err, ErrWrongNode) && ctx.Err() == nil {
				tried = append(tried, err.Error())
				continue
			}
			return nil, also(err, tried)
		}
		req, err := build(base)
		if err != nil {
			return nil, err
		}
		if c.Token != "" {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			err = fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
			if !last && ctx.Err() == nil && (repeatable || NotSent(err)) {
				tried = append(tried, err.Error())
				continue
			}
			if NotSent(err) {
				err = fmt.Errorf("%w (is trustd running? check %s)", err, c.flag())
			}
			return nil, also(err, tried)
		}
		if resp.StatusCode == http.StatusServiceUnavailable && (!last || len(tried) > 0) {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close() // read in full above; nothing to report
			ae := apiError(req, resp, body)
			switch {
			case !last && (repeatable || notDone(ae)):
				tried = append(tried, base+": "+ae.Error())
				continue
			case last:
				return nil, also(ae, tried) // every endpoint failed
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
		}
		c.use(base)
		return resp, nil
	}
	return nil, fmt.Errorf("%w: no endpoint to ask", ErrBadEndpoint) // bases is never empty
}

// flag is the command-line flag that names the client's endpoints.
func (c *Client) flag() string {
	if c.Flag != "" {
		return c.Flag
	}
	return "the endpoint"
}

// also adds to err the errors of the endpoints tried before.
func also(err error, tried []string) error {
	if len(tried) == 0 {
		return err
	}
	return fmt.Errorf("%w (tried first: %s)", err, strings.Join(tried, "; "))
}
