package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// The registry's transparency log as a C2SP tlog-tiles log under
// logPrefix, so anyone can mirror it and audit it (docs/OPERATIONS.md,
// "Auditing the registry"):
//
//	GET /v1/log/checkpoint                  the latest cosigned checkpoint (as GET /v1/checkpoint)
//	GET /v1/log/tile/<L>/<N>[.p/<W>]        hash tiles
//	GET /v1/log/tile/entries/<N>[.p/<W>]    entry bundles: the encoded tlog.Leaf values
//	GET /v1/log/consistency?from=N&to=M     an RFC 6962 consistency proof (JSON)
//	GET /v1/log/inclusion?index=I&size=N    a leaf and its inclusion proof (JSON)
//
// Every resource is served for the tree of the latest cosigned
// checkpoint's size, not this node's own (possibly larger) log: a tile or a
// proof past the size a verifier's checkpoint covers proves nothing to it,
// and serving only what a quorum has vouched for keeps mirrors from caching
// hashes no checkpoint covers. A tile, bundle or proof past that size is
// 404; a client that holds a newer checkpoint than this node (a lagging
// follower) asks again or asks another node. A tile or bundle never
// changes, a partial one (W hashes) included: a wider one has another path.
// So all are cached for a year, as tlog-tiles asks ("this endpoint is
// immutable"); the checkpoint is no-cache. Proofs between two fixed sizes
// never change either.
const logPrefix = "/v1/log/"

// ErrBeyondCheckpoint is a log resource past the latest cosigned
// checkpoint's tree size.
var ErrBeyondCheckpoint = record.NewKind("gateway: beyond the cosigned checkpoint",
	"the log resource lies past the tree size of the latest cosigned checkpoint (GET /v1/log/checkpoint); ask for a size it covers", record.ErrNotFound)

// Bounds on the log's query parameters, in decimal digits (a uint64 has 20).
const maxLogNumberDigits = 20

// logRoutes are the tlog-tiles routes; New registers them with the others.
var logRoutes = []route{
	{"GET", logPrefix + "checkpoint", (*Server).checkpoint},
	{"GET", logPrefix + "tile/{path...}", (*Server).logTile},
	{"GET", logPrefix + "consistency", (*Server).logConsistency},
	{"GET", logPrefix + "inclusion", (*Server).logInclusion},
}

func init() { routes = append(routes, logRoutes...) }

// checkpointSize is the tree size of the latest cosigned checkpoint.
func (s *Server) checkpointSize() (uint64, error) {
	if s.cfg.Checkpoints == nil {
		return 0, ErrNoCosigners
	}
	note, err := s.cfg.Checkpoints.LatestCheckpoint()
	if err != nil {
		return 0, err
	}
	split := bytes.Index(note, []byte("\n\n"))
	if split < 0 {
		return 0, fmt.Errorf("the latest checkpoint has no signature block: %w", tlog.ErrMalformedNote)
	}
	cp, err := tlog.ParseCheckpoint(note[:split+1])
	if err != nil {
		return 0, fmt.Errorf("the latest checkpoint: %w", err)
	}
	return cp.Size, nil
}

// logView opens a view whose log covers the checkpoint's size, or answers
// with an error and returns nil.
func (s *Server) logView(w http.ResponseWriter, r *http.Request) (*registry.View, uint64) {
	size, err := s.checkpointSize()
	if err != nil {
		writeError(w, r, err)
		return nil, 0
	}
	view := s.cfg.Registry.View()
	c, err := view.Commitment()
	if err == nil && c.LogSize < size {
		err = record.Errorf(ErrNotCaughtUp, "this node's log has %d leaves, the cosigned checkpoint %d; retry, or ask another node", c.LogSize, size)
	}
	if err != nil {
		view.Close()
		writeError(w, r, logError(err))
		return nil, 0
	}
	return view, size
}

// logError maps the log's errors to the gateway's.
func logError(err error) error {
	switch {
	case errors.Is(err, tlog.ErrOutOfRange):
		return record.Errorf(ErrBeyondCheckpoint, "%v", err)
	case errors.Is(err, tlog.ErrMalformedTilePath):
		return record.Errorf(ErrBadRequest, "%v: see C2SP tlog-tiles", err)
	case errors.Is(err, registry.ErrNoCommitment):
		return record.Errorf(ErrNoCheckpoint, "%v", err)
	}
	return err
}

// logTile serves a hash tile or an entry bundle of the checkpoint's tree.
func (s *Server) logTile(w http.ResponseWriter, r *http.Request) {
	if err := checkLogParams(r); err != nil {
		writeError(w, r, err)
		return
	}
	t, err := tlog.ParseTilePath("tile/" + r.PathValue("path"))
	if err != nil {
		writeError(w, r, logError(err))
		return
	}
	view, size := s.logView(w, r)
	if view == nil {
		return
	}
	defer view.Close()
	data, err := view.Tile(t, size)
	if err != nil {
		writeError(w, r, logError(err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", cacheImmutable)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

// logNumber reads a required decimal query parameter.
func logNumber(r *http.Request, name string) (uint64, error) {
	v := query(r).Get(name)
	if v == "" {
		return 0, record.Errorf(ErrBadRequest, "%s is required", name)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || len(v) > maxLogNumberDigits {
		return 0, record.Errorf(ErrBadRequest, "%s %q is not a decimal number", name, v)
	}
	return n, nil
}

// LogConsistency is the answer of GET /v1/log/consistency.
type LogConsistency struct {
	From   uint64   `json:"from"`
	To     uint64   `json:"to"`
	Hashes [][]byte `json:"hashes"` // base64 (standard, padded), RFC 6962 order
}

// LogInclusion is the answer of GET /v1/log/inclusion.
type LogInclusion struct {
	Index  uint64   `json:"index"`
	Size   uint64   `json:"size"`
	Leaf   []byte   `json:"leaf"`   // the encoded tlog.Leaf, base64
	Hashes [][]byte `json:"hashes"` // base64, RFC 6962 order
}

// logConsistency proves that the tree of size from is a prefix of the tree
// of size to, both at most the checkpoint's size.
func (s *Server) logConsistency(w http.ResponseWriter, r *http.Request) {
	if err := checkLogParams(r, "from", "to"); err != nil {
		writeError(w, r, err)
		return
	}
	from, err := logNumber(r, "from")
	if err != nil {
		writeError(w, r, err)
		return
	}
	to, err := logNumber(r, "to")
	if err != nil {
		writeError(w, r, err)
		return
	}
	if from > to {
		writeError(w, r, record.Errorf(ErrBadRequest, "from %d is past to %d", from, to))
		return
	}
	view, size := s.logView(w, r)
	if view == nil {
		return
	}
	defer view.Close()
	if to > size {
		writeError(w, r, record.Errorf(ErrBeyondCheckpoint, "to %d, the checkpoint's size is %d", to, size))
		return
	}
	p, err := view.ConsistencyProof(from, to)
	if err != nil {
		writeError(w, r, logError(err))
		return
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, LogConsistency{From: from, To: to, Hashes: nonNil(p)}, cacheImmutable)
}

// logInclusion answers leaf index and its inclusion proof in the tree of
// the given size, at most the checkpoint's.
func (s *Server) logInclusion(w http.ResponseWriter, r *http.Request) {
	if err := checkLogParams(r, "index", "size"); err != nil {
		writeError(w, r, err)
		return
	}
	index, err := logNumber(r, "index")
	if err != nil {
		writeError(w, r, err)
		return
	}
	size, err := logNumber(r, "size")
	if err != nil {
		writeError(w, r, err)
		return
	}
	if index >= size {
		writeError(w, r, record.Errorf(ErrBadRequest, "index %d is not below size %d", index, size))
		return
	}
	view, cpSize := s.logView(w, r)
	if view == nil {
		return
	}
	defer view.Close()
	if size > cpSize {
		writeError(w, r, record.Errorf(ErrBeyondCheckpoint, "size %d, the checkpoint's size is %d", size, cpSize))
		return
	}
	leaf, err := view.Leaf(index)
	if err != nil {
		writeError(w, r, logError(err))
		return
	}
	p, err := view.InclusionProof(index, size)
	if err != nil {
		writeError(w, r, logError(err))
		return
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, LogInclusion{Index: index, Size: size, Leaf: leaf, Hashes: nonNil(p)}, cacheImmutable)
}

// nonNil makes an empty proof encode as [], not null.
func nonNil(p [][]byte) [][]byte {
	if p == nil {
		return [][]byte{}
	}
	return p
}
