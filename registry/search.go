package registry

import (
	"strings"
	"unicode/utf8"

	"github.com/trustreg/trustreg/registry/record"
)

// Listing limits. A search reads records in key order and keeps those that
// match; it is paged like every listing, and like every listing stops after
// MaxPageScan records (View.scan), so no request reads a whole table: a
// page may then hold fewer matches than asked for (even none) and still
// name a next page, where the scan goes on.
const (
	MaxSearchQuery = 200   // bytes of the search text
	MaxPageScan    = 10000 // records one page of a listing reads at most
	// MaxExportScan bounds the accreditations one DCC export reads: an
	// export is one document, fetched now and then, so it may read more
	// than a page (about 33 µs an accreditation: some 1.7 s at the bound).
	MaxExportScan = 50000
)

// SearchEntities lists registered entities, in DID order, whose DID, name
// or legal name holds q, compared without regard to case. An empty q lists
// every registered entity.
func (v *View) SearchEntities(q string, page Page) ([]record.Entity, string, error) {
	needle, err := searchText(q)
	if err != nil {
		return nil, "", err
	}
	out := []record.Entity{}
	next, err := v.scan([]byte{tableEntities}, page, func(_, v []byte) (bool, error) {
		var e record.Entity
		if err := decodeRecord(v, &e); err != nil {
			return false, err
		}
		legal := ""
		if e.Metadata != nil {
			legal = e.Metadata.LegalName
		}
		if !matches(needle, e.ID, e.Name, legal) {
			return false, nil
		}
		out = append(out, e)
		return true, nil
	})
	return out, next, err
}

// SearchFrameworks lists frameworks, in id order, whose id or name holds
// q, compared without regard to case. An empty q lists every framework.
func (v *View) SearchFrameworks(q string, page Page) ([]record.Framework, string, error) {
	needle, err := searchText(q)
	if err != nil {
		return nil, "", err
	}
	out := []record.Framework{}
	next, err := v.scan([]byte{tableFrameworks}, page, func(_, v []byte) (bool, error) {
		var f record.Framework
		if err := decodeRecord(v, &f); err != nil {
			return false, err
		}
		if !matches(needle, f.ID, f.Name) {
			return false, nil
		}
		out = append(out, f)
		return true, nil
	})
	return out, next, err
}

// searchText checks and folds a search text.
func searchText(q string) (string, error) {
	if len(q) > MaxSearchQuery {
		return "", record.Errorf(record.ErrBadQuery, "search text of %d bytes is longer than %d: search for part of a name or DID", len(q), MaxSearchQuery)
	}
	if !utf8.ValidString(q) {
		return "", record.Errorf(record.ErrBadQuery, "search text is not UTF-8")
	}
	return strings.ToLower(strings.TrimSpace(q)), nil
}

// matches reports whether any of fields holds the folded needle.
func matches(needle string, fields ...string) bool {
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), needle) {
			return true
		}
	}
	return false
}
