package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
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
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration} {
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
		defer s.recoverHandler(route, sw, r)
		if fast == nil || !fast(sw, r) {
			// Handlers read the query with query(r): parsed on first use, once.
			r = r.WithContext(context.WithValue(r.Context(), queryKey{}, &lazyQuery{u: r.URL}))
			h(sw, r)
		}
		if sw.code == http.StatusOK {
			ok.Inc()
		} else {
			s.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		}
		duration.Observe(time.Since(start).Seconds())
	})
}

// recoverHandler turns a handler's panic into a 500 problem document (if
// nothing was sent yet) and an error log with the stack, instead of a
// connection net/http drops without an answer. The node goes on serving:
// a panic in a handler is a bug in answering one request, and the state is
// only changed through raft, never by a handler. http.ErrAbortHandler is
// net/http's own way of aborting a response and passes through.
func (s *Server) recoverHandler(route string, sw *statusWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.log.Error("handler panic", "route", route, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	s.metrics.requests.WithLabelValues(route, "500").Inc()
	if sw.wrote {
		panic(http.ErrAbortHandler) // a partial answer: cut the connection
	}
	writeProblem(sw, r, Problem{Type: problemTypeBase + "internal", Title: http.StatusText(http.StatusInternalServerError),
		Status: http.StatusInternalServerError, Detail: "the node failed while answering; the failure is logged"})
}

type queryKey struct{}

// lazyQuery parses a request's query the first time a handler asks (a
// cached trust answer never does).
type lazyQuery struct {
	u    *url.URL
	once sync.Once
	v    url.Values
}

// query returns the request's parsed query parameters, parsed at most once
// per request.
func query(r *http.Request) url.Values {
	if q, ok := r.Context().Value(queryKey{}).(*lazyQuery); ok {
		q.once.Do(func() { q.v = q.u.Query() })
		return q.v
	}
	return r.URL.Query()
}
