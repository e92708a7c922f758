package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/record"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	watchers prometheus.Gauge
	// writesLimited counts writes refused by a per-client limit, by what
	// refused them: address, signer or size.
	writesLimited *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustd", Subsystem: "http", Name: "requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "trustd", Subsystem: "http", Name: "request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "trustd", Subsystem: "http", Name: "watch_streams", Help: "Watch streams (GET /v1/watch) open.",
		}),
		writesLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustd", Subsystem: "http", Name: "writes_limited_total",
			Help: "Writes (POST /v1/operations) refused by a limit: by=address or signer (429, the rate of a client address or a signer), size (413, the body).",
		}, []string{"by"}),
	}
	for _, by := range []string{limitedByAddress, limitedBySigner, limitedBySize} {
		m.writesLimited.WithLabelValues(by)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.watchers, m.writesLimited} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool // the status line is sent
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController the connection's own writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// instrument counts and times the route's requests. fast, if not nil, is
// tried first and answers what it can (a cached trust answer) before the
// request gets the per-request context that handlers read their query
// through: that copy of the request is most of what a cached answer would
// otherwise allocate.
func (s *Server) instrument(route string, fast func(http.ResponseWriter, *http.Request) bool, h http.HandlerFunc) http.Handler {
	// The series most requests land in, resolved once.
	ok := s.metrics.requests.WithLabelValues(route, "200")
	duration := s.metrics.duration.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					s.metrics.requests.WithLabelValues(route, "500").Inc()
				}
				answerPanic(s.log, v, route, sw, r)
			}
		}()
		if fast == nil || !fast(sw, r) {
			// Handlers read the query with query(r): parsed on first use,
			// once. A query that does not parse whole is refused here, so
			// no handler answers a question it was not asked (url.Values
			// drops a parameter that does not decode, and keeps the first
			// of two).
			lq := &lazyQuery{u: r.URL}
			if _, err := lq.parse(); err != nil {
				writeError(sw, r, err)
			} else {
				h(sw, r.WithContext(context.WithValue(r.Context(), queryKey{}, lq)))
			}
		}
		if sw.code == http.StatusOK {
			ok.Inc()
		} else {
			s.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		}
		duration.Observe(time.Since(start).Seconds())
	})
}

// answerPanic answers a request whose handler panicked with v: an error
// log with the stack, and a 500 problem document if nothing was sent yet.
// If part of the answer was sent, it cuts the connection instead, so a
// truncated body never passes for a whole one. The node goes on serving:
// a panic in a handler is a bug in answering one request, and handlers
// change the state only through raft. net/http's own http.ErrAbortHandler
// passes through. The caller's deferred function calls recover.
func answerPanic(log *slog.Logger, v any, route string, sw *statusWriter, r *http.Request) {
	if v == http.ErrAbortHandler {
		panic(v)
	}
	log.Error("handler panic", "route", route, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if sw.wrote {
		panic(http.ErrAbortHandler)
	}
	writeProblem(sw, r, api.Problem{Type: problemTypeBase + "internal", Title: http.StatusText(http.StatusInternalServerError),
		Status: http.StatusInternalServerError, Detail: "the node failed while answering; the failure is logged"})
}

type queryKey struct{}

// lazyQuery parses a request's query once (a cached trust answer never
// does: the cache holds only answers to queries that parsed).
type lazyQuery struct {
	u    *url.URL
	once sync.Once
	v    url.Values
	err  error
}

// parse returns the query's parameters, or why the query is refused
// (parseQuery).
func (q *lazyQuery) parse() (url.Values, error) {
	q.once.Do(func() { q.v, q.err = parseQuery(q.u.RawQuery) })
	return q.v, q.err
}

// query returns the request's parsed query parameters, parsed at most once
// per request. The instrumented handlers run only for queries that parse
// (instrument refuses the others).
func query(r *http.Request) url.Values {
	if q, ok := r.Context().Value(queryKey{}).(*lazyQuery); ok {
		v, _ := q.parse()
		return v
	}
	return r.URL.Query()
}

// parseQuery reads a query string as url.ParseQuery does (parameters
// separated by &, name and value percent-decoded), refusing what that
// would read only in part: a name or value that does not decode (a bad
// percent escape), a semicolon (which it takes for an error and skips the
// parameter), and a parameter given more than once (url.Values.Get keeps
// the first). No trustreg route takes a parameter twice. An empty
// parameter ("a=1&&b=2") is skipped, as url.ParseQuery skips it.
func parseQuery(raw string) (url.Values, error) {
	v := url.Values{}
	var twice string // the first parameter given more than once
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		if strings.Contains(part, ";") {
			return nil, record.Errorf(ErrBadRequest, "query parameter %q holds a semicolon: parameters are separated by & and a semicolon in a value is written %%3B", part)
		}
		k, val, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return nil, record.Errorf(ErrBadRequest, "query parameter name %q does not decode: %v", k, err)
		}
		value, err := url.QueryUnescape(val)
		if err != nil {
			return nil, record.Errorf(ErrBadRequest, "query parameter %q: its value does not decode: %v", name, err)
		}
		if v[name] = append(v[name], value); len(v[name]) == 2 && twice == "" {
			twice = name
		}
	}
	if twice != "" {
		return nil, record.Errorf(ErrBadRequest, "parameter %q given %d times", twice, len(v[twice]))
	}
	return v, nil
}
