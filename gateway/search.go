package gateway

import (
	"net/http"

	"github.com/trustreg/trustreg/registry"
)

// entities lists registered entities whose DID, name or legal name holds
// ?q=, paged; a page reads at most registry.MaxSearchScan records, so it
// may hold fewer matches than its limit and still name a next page.
func (s *Server) entities(w http.ResponseWriter, r *http.Request) {
	page, ok := s.listRequest(w, r, "q")
	if !ok {
		return
	}
	items, next, err := s.cfg.Registry.SearchEntities(query(r).Get("q"), page)
	writeListing(s, w, r, items, next, err)
}

// searchFrameworks answers GET /v1/frameworks?q=: frameworks whose id or
// name holds q.
func (s *Server) searchFrameworks(w http.ResponseWriter, r *http.Request, page registry.Page) {
	items, next, err := s.cfg.Registry.SearchFrameworks(query(r).Get("q"), page)
	writeListing(s, w, r, items, next, err)
}
