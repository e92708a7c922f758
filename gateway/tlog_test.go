package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/trustreg/trustreg/registry/tlog"
)

// httpTiles is golang.org/x/mod/sumdb/tlog's TileReader over a node's
// C2SP tlog-tiles API: an outside client of our tiles. x/mod names a tile
// tile/<H>/<L>/<N>; C2SP fixes H at 8 and leaves it out of the path.
type httpTiles struct {
	t    *testing.T
	base string // ends in /v1/log/
}

func (h httpTiles) Height() int { return tlog.TileHeight }

func (h httpTiles) ReadTiles(tiles []xtlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, x := range tiles {
		if x.H != tlog.TileHeight {
			return nil, fmt.Errorf("tile height %d", x.H)
		}
		id := tlog.TileID{Level: x.L, Index: uint64(x.N), Width: x.W}
		if x.L == -1 {
			id.Level = tlog.EntriesLevel
		}
		resp, err := http.Get(h.base + id.Path())
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %s", id.Path(), resp.StatusCode, body)
		}
		out[i] = body
	}
	return out, nil
}

func (h httpTiles) SaveTiles([]xtlog.Tile, [][]byte) {}

// TestLogTilesVerifyWithXModTlog reads the log's tiles over HTTP with
// x/mod's tlog client, which checks every tile it reads against the
// checkpoint's root, and proves each leaf of the entry bundle included in
// the checkpoint's tree.
func TestLogTilesVerifyWithXModTlog(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	cp := logCheckpoint(t, e)
	if cp.Size < 3 {
		t.Fatalf("checkpoint size %d: want the chain's entries in the log", cp.Size)
	}
	base := e.n.GatewayURL() + "/v1/log/"
	tree := xtlog.Tree{N: int64(cp.Size), Hash: xtlog.Hash(cp.Hash)}
	thr := xtlog.TileHashReader(tree, httpTiles{t: t, base: base})

	// The entry bundle: the leaves, each proven into the tree.
	bundle := tlog.TileID{Level: tlog.EntriesLevel, Width: int(min(cp.Size, tlog.TileWidth))}
	resp, raw := e.get("/v1/log/" + bundle.Path())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", bundle.Path(), resp.StatusCode, raw)
	}
	leaves, err := tlog.ParseBundle(raw, bundle.Width)
	if err != nil {
		t.Fatal(err)
	}
	for i, leaf := range leaves {
		if _, err := tlog.DecodeLeaf(leaf); err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
		p, err := xtlog.ProveRecord(tree.N, int64(i), thr)
		if err != nil {
			t.Fatalf("x/mod ProveRecord of leaf %d over our tiles: %v", i, err)
		}
		if err := xtlog.CheckRecord(p, tree.N, tree.Hash, int64(i), xtlog.RecordHash(leaf)); err != nil {
			t.Fatalf("leaf %d is not in the checkpoint's tree by x/mod: %v", i, err)
		}
	}

	// Caching: tiles never change (a wider partial tile has another
	// path); the checkpoint does.
	tile := tlog.TileID{Level: 0, Width: bundle.Width}
	for _, p := range []string{tile.Path(), bundle.Path()} {
		resp, _ = e.get("/v1/log/" + p)
		if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != http.StatusOK || !strings.Contains(cc, "immutable") || resp.Header.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("GET %s: %d Cache-Control %q Content-Type %q, want 200 immutable octet-stream", p, resp.StatusCode, cc, resp.Header.Get("Content-Type"))
		}
	}
	if resp, _ = e.get("/v1/log/checkpoint"); resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("GET /v1/log/checkpoint: Cache-Control %q Content-Type %q", resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"))
	}
	// Past the checkpoint: 404, for tiles, bundles and proofs alike.
	past := []string{
		tlog.TileID{Level: 0, Index: 1, Width: tlog.TileWidth}.Path(),
		tlog.TileID{Level: tlog.EntriesLevel, Width: bundle.Width + 1}.Path(),
		fmt.Sprintf("consistency?from=1&to=%d", cp.Size+1),
		fmt.Sprintf("inclusion?index=0&size=%d", cp.Size+1),
	}
	if cp.Size < tlog.TileWidth-1 {
		for _, p := range past {
			if resp, body := e.get("/v1/log/" + p); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET /v1/log/%s: %d %s, want 404", p, resp.StatusCode, body)
			}
		}
	}
	if resp, body := e.get("/v1/log/tile/0/000.p/0"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Header.Get("Content-Type"), "problem") {
		t.Errorf("GET tile/0/000.p/0: %d %s, want a 400 problem", resp.StatusCode, body)
	}

	// The JSON proofs verify against the checkpoint's root.
	var inc struct {
		Index, Size uint64
		Leaf        []byte
		Hashes      [][]byte
	}
	last := cp.Size - 1
	e.tirGet(fmt.Sprintf("%s/v1/log/inclusion?index=%d&size=%d", e.n.GatewayURL(), last, cp.Size), &inc)
	if err := tlog.VerifyInclusion(last, cp.Size, tlog.LeafHash(inc.Leaf), inc.Hashes, cp.Hash[:]); err != nil {
		t.Fatalf("inclusion proof of the last leaf: %v", err)
	}
	var cons struct {
		From, To uint64
		Hashes   [][]byte
	}
	e.tirGet(fmt.Sprintf("%s/v1/log/consistency?from=1&to=%d", e.n.GatewayURL(), cp.Size), &cons)
	if err := tlog.VerifyConsistency(1, cp.Size, cons.Hashes, tlog.LeafHash(leaves[0]), cp.Hash[:]); err != nil {
		t.Fatalf("consistency proof from 1: %v", err)
	}
}
