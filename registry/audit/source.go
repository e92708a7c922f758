package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// Limits of what a source may answer, in bytes.
const (
	// maxCheckpointBytes bounds a checkpoint note (tlog.MaxNoteSize).
	maxCheckpointBytes = tlog.MaxNoteSize
	// maxTileBytes bounds a hash tile or an entry bundle: 256 entries of
	// at most 2 + MaxLeafSize bytes.
	maxTileBytes = tlog.TileWidth * (2 + tlog.MaxLeafSize)
	// maxOperationAnswerBytes bounds GET /v1/operations/{cid}: the
	// operation, its payload again and its result, JSON-escaped.
	maxOperationAnswerBytes = 8 * record.MaxOperationSize
	// fetchTimeout bounds one request to a source.
	fetchTimeout = 30 * time.Second
)

// ErrNotServed is a resource the source does not have (404, or no file).
var ErrNotServed = errors.New("audit: the source does not serve it")

// Source is where the log is read from: a node's gateway or a mirror.
type Source interface {
	// Checkpoint returns the latest cosigned checkpoint, a signed note.
	Checkpoint() ([]byte, error)
	// Tile returns a hash tile or an entry bundle.
	Tile(t tlog.TileID) ([]byte, error)
}

// HTTP reads the log and operations from a node's gateway, base its URL
// (https://node.example:8443).
type HTTP struct {
	Base   string
	Client *http.Client // nil: a client with fetchTimeout
}

func (h HTTP) get(path string, limit int64) ([]byte, error) {
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: fetchTimeout}
	}
	u := strings.TrimSuffix(h.Base, "/") + path
	resp, err := c.Get(u)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer func() { _ = resp.Body.Close() }() // read to the end or abandoned; nothing to report
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: the answer is larger than %d bytes", u, limit)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("GET %s: %w (404)", u, ErrNotServed)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 300)])))
	}
	return body, nil
}

// Checkpoint implements Source.
func (h HTTP) Checkpoint() ([]byte, error) { return h.get("/v1/log/checkpoint", maxCheckpointBytes) }

// Tile implements Source.
func (h HTTP) Tile(t tlog.TileID) ([]byte, error) { return h.get("/v1/log/"+t.Path(), maxTileBytes) }

// Operation returns the exact bytes of the accepted operation whose CID
// (text form) is c, as GET /v1/operations/{cid} serves them; it checks
// that they have that CID. An operation the registry does not keep (one
// rejected at apply) is ErrNotServed.
func (h HTTP) Operation(c string) ([]byte, error) {
	body, err := h.get("/v1/operations/"+url.PathEscape(c), maxOperationAnswerBytes)
	if err != nil {
		return nil, err
	}
	var v struct {
		CID string `json:"cid"`
		JWS string `json:"jws"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("operation %s: %w", c, err)
	}
	if v.JWS == "" {
		return nil, fmt.Errorf("operation %s: %w: the answer carries no signed bytes", c, ErrNotServed)
	}
	raw := []byte(v.JWS)
	if got := record.CIDOf(raw); got != c {
		return nil, fmt.Errorf("%w: the bytes served for operation %s have the CID %s", ErrOperationBytes, c, got)
	}
	return raw, nil
}

// Result returns the result the registry recorded for the entry at raft
// index (GET /v1/operations/{index}): for an operation rejected at apply,
// whose bytes the registry does not keep, all there is.
func (h HTTP) Result(index uint64) (*record.Result, error) {
	body, err := h.get(fmt.Sprintf("/v1/operations/%d", index), maxOperationAnswerBytes)
	if err != nil {
		return nil, err
	}
	var v struct {
		Result *record.Result `json:"result"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("result of index %d: %w", index, err)
	}
	if v.Result == nil {
		return nil, fmt.Errorf("result of index %d: %w: the answer carries none", index, ErrNotServed)
	}
	return v.Result, nil
}

// ErrOperationBytes is an operation whose served bytes are not the ones
// its CID names.
var ErrOperationBytes = errors.New("audit: operation bytes do not match their CID")

// Dir reads a mirror of the log on disk: the files checkpoint and
// tile/... at the paths of the tlog-tiles API, below Root.
type Dir struct{ Root string }

func (d Dir) read(rel string, limit int64) ([]byte, error) {
	p := filepath.Join(d.Root, filepath.FromSlash(rel))
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", p, ErrNotServed)
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read only; nothing to report
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, limit)
	}
	return b, nil
}

// Checkpoint implements Source.
func (d Dir) Checkpoint() ([]byte, error) { return d.read("checkpoint", maxCheckpointBytes) }

// Tile implements Source. A partial tile a mirror does not have is read
// from the full tile, of which it is a prefix.
func (d Dir) Tile(t tlog.TileID) ([]byte, error) {
	b, err := d.read(t.Path(), maxTileBytes)
	if !errors.Is(err, ErrNotServed) || t.Width == tlog.TileWidth {
		return b, err
	}
	full := t
	full.Width = tlog.TileWidth
	b, ferr := d.read(full.Path(), maxTileBytes)
	if ferr != nil {
		return nil, err
	}
	if t.Level != tlog.EntriesLevel {
		if len(b) < t.Width*tlog.HashSize {
			return nil, fmt.Errorf("%w: %s is short", tlog.ErrMalformedTile, full.Path())
		}
		return b[:t.Width*tlog.HashSize], nil
	}
	entries, perr := tlog.ParseBundle(b, tlog.TileWidth)
	if perr != nil {
		return nil, perr
	}
	return tlog.EncodeBundle(entries[:t.Width])
}

var (
	_ Source = HTTP{}
	_ Source = Dir{}
)
