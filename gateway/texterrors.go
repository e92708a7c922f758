package gateway

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/trustreg/trustreg/gateway/api"
)

// maxTextErrorBytes bounds the text of a plain error answer kept for the
// problem's detail.
const maxTextErrorBytes = 1024

// textErrors turns the plain-text error answers of a handler the gateway
// does not write (net/http/pprof) into problem documents: an answer of
// status 400 or more that is not a problem already is held back, and its
// text becomes the problem's detail. Other answers pass through.
func textErrors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &textErrorWriter{ResponseWriter: w, r: r}
		h.ServeHTTP(tw, r)
		tw.finish()
	})
}

type textErrorWriter struct {
	http.ResponseWriter
	r *http.Request
	// held is the error status held back; 0 while answers pass through.
	held    int
	passing bool // the status line went through
	detail  bytes.Buffer
}

func (w *textErrorWriter) WriteHeader(code int) {
	if w.held != 0 || w.passing {
		return
	}
	if code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
		w.held = code
		return
	}
	w.passing = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *textErrorWriter) Write(p []byte) (int, error) {
	if w.held == 0 && !w.passing {
		w.WriteHeader(http.StatusOK)
	}
	if w.held != 0 {
		w.detail.Write(p[:min(len(p), maxTextErrorBytes-w.detail.Len())])
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController the connection's own writer.
func (w *textErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *textErrorWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && w.held == 0 {
		f.Flush()
	}
}

// finish sends the held-back error as a problem document.
func (w *textErrorWriter) finish() {
	if w.held == 0 {
		return
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Disposition")
	code := "bad_request"
	switch {
	case w.held == http.StatusNotFound:
		code = "not_found"
	case w.held >= 500:
		code = "internal"
	}
	detail := strings.TrimSpace(w.detail.String())
	if detail == "" {
		detail = http.StatusText(w.held)
	}
	writeProblem(w.ResponseWriter, w.r, api.Problem{Type: problemTypeBase + code, Title: http.StatusText(w.held), Status: w.held, Detail: detail})
}
