package gateway

import (
	"embed"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/trustreg/trustreg/gateway/api"
)

// explorerFiles is the registry explorer: a page, its script and its
// style sheet, served from the binary so it works with no network beyond
// the node (no CDN, no fonts). The page calls the JSON API below from the
// browser, as any other web page may.
//
//go:embed explorer
var explorerFiles embed.FS

// explorerAsset is one embedded file with the header values it is served
// with, made once.
type explorerAsset struct {
	body        []byte
	contentType []string
	etag        string
	etagHdr     []string
}

// explorerCSP lets the explorer's page load its own script and style and
// call its own gateway, and nothing else: no inline script, no other
// origin, no framing.
var explorerCSP = []string{"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"}

// explorerTypes are the media types of the explorer's files.
var explorerTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// loadExplorer reads the embedded files once.
func loadExplorer() (map[string]*explorerAsset, error) {
	out := map[string]*explorerAsset{}
	entries, err := explorerFiles.ReadDir("explorer")
	if err != nil {
		return nil, fmt.Errorf("explorer: %w", err)
	}
	for _, e := range entries {
		ct, ok := explorerTypes[path.Ext(e.Name())]
		if !ok || e.IsDir() {
			continue
		}
		b, err := explorerFiles.ReadFile("explorer/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("explorer: %w", err)
		}
		tag := etagOf(b)
		out[e.Name()] = &explorerAsset{body: b, contentType: []string{ct}, etag: tag, etagHdr: []string{tag}}
	}
	if out["index.html"] == nil {
		return nil, fmt.Errorf("explorer: index.html is not embedded")
	}
	return out, nil
}

// registerExplorer serves the explorer: its page on GET / and its files
// under /explorer/. They follow the gateway's rules for every answer: CORS
// (ServeHTTP), an ETag with 304 on If-None-Match, and a short
// Cache-Control, so a node upgraded to a new explorer serves it within
// seconds while a browser revalidates cheaply.
func (s *Server) registerExplorer() error {
	assets, err := loadExplorer()
	if err != nil {
		return err
	}
	page := assets["index.html"]
	s.routes.handle(http.MethodGet, "/{$}", s.instrument("/", nil, func(w http.ResponseWriter, r *http.Request) {
		page.write(w, r)
	}))
	s.routes.handle(http.MethodGet, "/explorer/{file}", s.instrument("/explorer/{file}", nil, func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		a, ok := assets[name]
		if !ok || strings.HasSuffix(name, ".html") {
			writeProblem(w, r, api.Problem{Type: problemTypeBase + "not_found", Title: "Not Found", Status: http.StatusNotFound,
				Detail: fmt.Sprintf("no explorer file %q: the explorer is at /", name)})
			return
		}
		a.write(w, r)
	}))
	return nil
}

func (a *explorerAsset) write(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = a.contentType
	h["Etag"] = a.etagHdr
	h["Cache-Control"] = []string{cacheShort}
	h["Content-Security-Policy"] = explorerCSP
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Referrer-Policy"] = []string{"no-referrer"}
	if noneMatch(r.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(a.body)
}
