package gateway

import (
	"net/http"

	"github.com/trustreg/trustreg/registry"
)

// entities lists registered entities whose DID, name or legal name holds
// ?q=, paged; a page reads at most registry.MaxPageScan records, so it
// may hold fewer matches than its limit and still name a next page.
func (s *Server) entities(w http.ResponseWriter, r *http.Request) {
	page, ok := s.listRequest(w, r, "q")
	if !ok {
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	items, next, err := view.SearchEntities(query(r).Get("q"), page)
	writeListing(s, w, r, view, items, next, err)
}

// searchFrameworks answers GET /v1/frameworks?q=: frameworks whose id or
// name holds q.
func (s *Server) searchFrameworks(w http.ResponseWriter, r *http.Request, view *registry.View, page registry.Page) {
	items, next, err := view.SearchFrameworks(query(r).Get("q"), page)
	writeListing(s, w, r, view, items, next, err)
}
