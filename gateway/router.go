package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/trustreg/trustreg/gateway/api"
)

// router serves method-and-pattern routes on an http.ServeMux and answers
// every request no route takes as a problem document: 405 with an Allow
// header for a path that routes serve under other methods, 404 for any
// other. ServeMux's own answers for these are text/plain, and a catch-all
// route (which the problem 404 needs) hides its 405s: a pattern without a
// method matches every method. So the router keeps a second mux of the
// same patterns without their methods, and asks it which pattern, if any,
// the path of an unmatched request belongs to.
type router struct {
	mux *http.ServeMux
	// paths holds each route's pattern without its method; only its
	// matching is used, never its handlers.
	paths *http.ServeMux
	// allow lists the methods routes serve, by pattern, as the Allow
	// header states them.
	allow map[string][]string
	// notFound is the 404 problem's detail for a request.
	notFound func(r *http.Request) string
}

func newRouter(notFound func(r *http.Request) string) *router {
	rt := &router{mux: http.NewServeMux(), paths: http.NewServeMux(), allow: map[string][]string{}, notFound: notFound}
	rt.mux.HandleFunc("/", rt.unmatched)
	return rt
}

// handle registers h for method on pattern.
func (rt *router) handle(method, pattern string, h http.Handler) {
	rt.mux.Handle(method+" "+pattern, h)
	methods, known := rt.allow[pattern]
	if !known {
		rt.paths.Handle(pattern, http.NotFoundHandler())
	}
	methods = append(methods, method)
	if method == http.MethodGet {
		methods = append(methods, http.MethodHead) // ServeMux serves HEAD by a GET route
	}
	slices.Sort(methods)
	rt.allow[pattern] = slices.Compact(methods)
}

func (rt *router) serve(w http.ResponseWriter, r *http.Request) { rt.mux.ServeHTTP(w, r) }

// unmatched answers a request that no route takes.
func (rt *router) unmatched(w http.ResponseWriter, r *http.Request) {
	if _, pattern := rt.paths.Handler(r); pattern != "" {
		if methods, ok := rt.allow[pattern]; ok {
			allow := strings.Join(methods, ", ")
			w.Header().Set("Allow", allow)
			writeProblem(w, r, api.Problem{Type: problemTypeBase + "method_not_allowed", Title: http.StatusText(http.StatusMethodNotAllowed),
				Status: http.StatusMethodNotAllowed, Detail: fmt.Sprintf("%s is not served on %s: use %s", r.Method, r.URL.Path, allow)})
			return
		}
	}
	writeProblem(w, r, api.Problem{Type: problemTypeBase + "not_found", Title: "Not Found", Status: http.StatusNotFound, Detail: rt.notFound(r)})
}
