package gateway_test

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"

	"github.com/trustreg/trustreg/registry/tlog"
)

// logCheckpoint reads the tree size of e's latest cosigned checkpoint from
// GET /v1/log/checkpoint.
func logCheckpoint(t *testing.T, e *env) tlog.Checkpoint {
	t.Helper()
	checkpointStatus(t, e)
	resp, raw := e.get("/v1/log/checkpoint")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/log/checkpoint: %d %s", resp.StatusCode, raw)
	}
	split := bytes.Index(raw, []byte("\n\n"))
	if split < 0 {
		t.Fatalf("GET /v1/log/checkpoint: no signatures in %q", raw)
	}
	cp, err := tlog.ParseCheckpoint(raw[:split+1])
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// logSize is logCheckpoint's size in decimal.
func logSize(t *testing.T, e *env) string {
	return strconv.FormatUint(logCheckpoint(t, e).Size, 10)
}

// logTilePath is the path below tile/ of the first tile of level 0 (level
// -1: the first entry bundle) in e's checkpoint's tree.
func logTilePath(t *testing.T, e *env, level int) string {
	t.Helper()
	size := logCheckpoint(t, e).Size
	id := tlog.TileID{Level: level, Width: int(min(size, tlog.TileWidth))}
	return id.Path()[len("tile/"):]
}
