package consensus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/libp2p/go-libp2p/core/network"
)

func jsonRecords(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not one JSON record per line: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestRaftLoggerOneRecordPerCall: a raft log call with a multi-line error
// is one record with the error as an attribute, at raft's level, and
// records under the node's level are dropped before they are built.
func TestRaftLoggerOneRecordPerCall(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "raft")
	var l hclog.Logger = newRaftLogger(base, "raft")

	dial := errors.New("failed to dial: all dials failed\n  * [/ip4/127.0.0.1/tcp/4093] connection refused\n  * [/ip4/127.0.0.1/udp/4093/quic-v1] context deadline exceeded")
	l.Error("failed to make requestVote RPC", "target", "{Voter A A}", "error", dial, "term", 3)
	l.Debug("dropped at info", "x", 1)
	l.Trace("dropped at info")
	l.Named("snap").With("peer", "B").Warn("slow")
	l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}).Print("from a standard logger")
	args := []any{"servers", hclog.Fmt("%+v", []struct{ ID string }{{"A"}}), "mask", hclog.Hex(255), "node", stringer{}}
	l.Info("initial configuration", args...)

	recs := jsonRecords(t, &buf)
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4:\n%s", len(recs), buf.String())
	}
	r := recs[0]
	if r["level"] != "ERROR" || r["msg"] != "raft: failed to make requestVote RPC" || r["error"] != dial.Error() ||
		r["target"] != "{Voter A A}" || r["term"] != float64(3) || r["component"] != "raft" {
		t.Errorf("error record: %v", r)
	}
	if r := recs[1]; r["level"] != "WARN" || r["msg"] != "raft.snap: slow" || r["peer"] != "B" {
		t.Errorf("named record: %v", r)
	}
	if r := recs[2]; r["level"] != "ERROR" || r["msg"] != "from a standard logger" || r["logger"] != "raft" {
		t.Errorf("standard logger record: %v", r)
	}
	// hclog's own value types are formatted as hclog formats them, and the
	// caller's arguments are left as they were.
	if r := recs[3]; r["servers"] != "[{ID:A}]" || r["mask"] != "0xff" || r["node"] != "Node at A [Follower]" {
		t.Errorf("formatted values: %v", r)
	}
	if _, ok := args[1].(hclog.Format); !ok {
		t.Errorf("the caller's arguments were changed: %v", args)
	}
	if l.IsDebug() || l.IsTrace() || !l.IsInfo() || !l.IsError() || l.GetLevel() != hclog.Info {
		t.Errorf("levels at info: debug %v trace %v info %v error %v level %v", l.IsDebug(), l.IsTrace(), l.IsInfo(), l.IsError(), l.GetLevel())
	}
	w := l.With("a", 1)
	w2 := w.With("b", 2)
	w.With("c", 3)
	if got := w2.ImpliedArgs(); len(got) != 4 || got[3] != 2 {
		t.Errorf("implied args %v", got)
	}

	// At debug, raft's debug records come through.
	buf.Reset()
	dl := newRaftLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), "raft")
	dl.Debug("kept at debug")
	dl.Trace("still dropped")
	if recs := jsonRecords(t, &buf); len(recs) != 1 || recs[0]["msg"] != "raft: kept at debug" || !dl.IsDebug() {
		t.Errorf("at debug: %v", recs)
	}
}

// stringer is a value with exported fields that logs by its String, as
// raft logs itself.
type stringer struct{ Restored bool }

func (stringer) String() string { return "Node at A [Follower]" }

// TestStreamResetIsNoError: raft's "failed to decode incoming command" for
// a stream that was reset (a peer restarting or shutting down) is logged
// at debug, not as an error; the same message for any other error stays an
// error.
func TestStreamResetIsNoError(t *testing.T) {
	var buf bytes.Buffer
	l := newRaftLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), "raft-net")
	l.Error("failed to decode incoming command", "error", network.ErrReset)
	l.Error("failed to decode incoming command", "error", fmt.Errorf("read: %v", network.ErrReset))
	l.Error("failed to decode incoming command", "error", errors.New("msgpack decode error [pos 3]: invalid container type"))
	recs := jsonRecords(t, &buf)
	if len(recs) != 1 || recs[0]["level"] != "ERROR" || !strings.Contains(recs[0]["error"].(string), "msgpack") {
		t.Fatalf("records at info: %v", recs)
	}
}
