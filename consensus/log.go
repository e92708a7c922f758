package consensus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/libp2p/go-libp2p/core/network"
)

// raftLogger is the hclog.Logger that raft, its transport and its snapshot
// store log through. Each call is one record of the node's slog logger, at
// the matching level, with raft's key/value pairs as attributes. Formatting
// through hclog's own text output instead puts a multi-line value (a libp2p
// dial error lists every address it tried) on lines of its own, and a bridge
// that reads that output line by line logs each line as a record of its own,
// the error's lines detached from the message they belong to.
//
// The level is the node's (log.level): SetLevel does nothing, and the Is*
// methods ask the slog handler, so raft skips building records that would
// be dropped.
//
// A warning or error about a peer (raft names it as peer, target,
// server-id or from) is logged once per peerRepeatEvery for each message
// and peer, with the count of the ones held back since: a member that
// cannot be reached (down, another pre-shared key, or refusing this node)
// fails every election and every retried append, and each failure was a
// record of its own, one a second or more for as long as it lasted.
type raftLogger struct {
	log     *slog.Logger
	name    string
	implied []any
	quiet   *repeats // shared by the loggers With and Named derive
}

var _ hclog.Logger = (*raftLogger)(nil)

func newRaftLogger(l *slog.Logger, name string) *raftLogger {
	return &raftLogger{log: l, name: name, quiet: newRepeats(peerRepeatEvery)}
}

// peerRepeatEvery is how often a record of the same kind about the same
// peer is logged.
const peerRepeatEvery = time.Minute

// maxRepeatsTracked bounds the memory of records about peers (peer ids
// cost an outsider nothing to make); past it the memory starts over.
const maxRepeatsTracked = 1024

// repeats lets one record of a kind through per interval and counts the
// ones it holds back.
type repeats struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	last map[string]repeat
}

type repeat struct {
	at     time.Time
	unsaid int
}

func newRepeats(every time.Duration) *repeats {
	return &repeats{every: every, now: time.Now, last: map[string]repeat{}}
}

// let reports whether the record of kind key is logged now and, if so,
// how many of its kind were held back since the last one logged.
func (r *repeats) let(key string) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	prev, seen := r.last[key]
	if seen && now.Sub(prev.at) < r.every {
		prev.unsaid++
		r.last[key] = prev
		return false, 0
	}
	if !seen && len(r.last) >= maxRepeatsTracked {
		clear(r.last)
	}
	r.last[key] = repeat{at: now}
	return true, prev.unsaid
}

// peerKeys are the keys under which raft names the peer a record is about.
var peerKeys = []string{"peer", "target", "server-id", "from"}

// aboutPeer returns the peer a record's key/value pairs name, if any.
func aboutPeer(args []any) (string, bool) {
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && slices.Contains(peerKeys, k) {
			return fmt.Sprint(args[i+1]), true
		}
	}
	return "", false
}

// slogLevel maps hclog's levels; ok is false for Off.
func slogLevel(level hclog.Level) (slog.Level, bool) {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4, true
	case hclog.Debug:
		return slog.LevelDebug, true
	case hclog.Warn:
		return slog.LevelWarn, true
	case hclog.Error:
		return slog.LevelError, true
	case hclog.Off:
		return 0, false
	default: // Info, NoLevel
		return slog.LevelInfo, true
	}
}

func (l *raftLogger) enabled(level hclog.Level) bool {
	sl, ok := slogLevel(level)
	return ok && l.log.Enabled(context.Background(), sl)
}

func (l *raftLogger) Log(level hclog.Level, msg string, args ...any) {
	if level >= hclog.Error && msg == "failed to decode incoming command" && streamCut(args) {
		// A command cut off by its stream's reset: a peer restarting or
		// shutting down, or this node doing so, resets its streams, and
		// raft sends the command again on a new one. No operator acts on it.
		level = hclog.Debug
	}
	sl, ok := slogLevel(level)
	if !ok || !l.log.Enabled(context.Background(), sl) {
		return
	}
	if l.name != "" {
		msg = l.name + ": " + msg
	}
	if p, ok := aboutPeer(args); ok && sl >= slog.LevelWarn && l.quiet != nil {
		let, unsaid := l.quiet.let(msg + "\x00" + p)
		if !let {
			return
		}
		if unsaid > 0 {
			args = append(args[:len(args):len(args)], "repeats_not_logged", unsaid)
		}
	}
	l.log.Log(context.Background(), sl, msg, hclogValues(args)...)
}

// streamCut reports whether raft's args carry an "error" that is a libp2p
// stream's reset (network.ErrReset, or its text when a decoder wrapped it
// without %w).
func streamCut(args []any) bool {
	for i := 0; i+1 < len(args); i += 2 {
		if k, _ := args[i].(string); k != "error" {
			continue
		}
		if err, ok := args[i+1].(error); ok {
			return errors.Is(err, network.ErrReset) || strings.Contains(err.Error(), network.ErrReset.Error())
		}
	}
	return false
}

// hclogValues formats the values hclog formats itself (raft logs its
// configuration as hclog.Fmt("%+v", servers)) and says Stringers by their
// String, as hclog does; other values pass as they are. args is copied only
// if one of them changes.
func hclogValues(args []any) []any {
	out, copied := args, false
	for i, v := range args {
		var s string
		switch v := v.(type) {
		case hclog.Format:
			if len(v) == 0 {
				continue
			}
			format, _ := v[0].(string)
			s = fmt.Sprintf(format, v[1:]...)
		case hclog.Hex:
			s = fmt.Sprintf("0x%x", int(v))
		case hclog.Octal:
			s = fmt.Sprintf("0%o", int(v))
		case hclog.Binary:
			s = fmt.Sprintf("0b%b", int(v))
		case hclog.Quote:
			s = string(v)
		case error:
			continue // slog's handlers say err.Error()
		case fmt.Stringer:
			// As hclog does: raft logs itself ("Node at <id> [Follower]"),
			// which slog's JSON handler would marshal field by field.
			s = v.String()
		default:
			continue
		}
		if !copied {
			out, copied = slices.Clone(args), true
		}
		out[i] = s
	}
	return out
}

func (l *raftLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *raftLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *raftLogger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *raftLogger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *raftLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *raftLogger) IsTrace() bool { return l.enabled(hclog.Trace) }
func (l *raftLogger) IsDebug() bool { return l.enabled(hclog.Debug) }
func (l *raftLogger) IsInfo() bool  { return l.enabled(hclog.Info) }
func (l *raftLogger) IsWarn() bool  { return l.enabled(hclog.Warn) }
func (l *raftLogger) IsError() bool { return l.enabled(hclog.Error) }

func (l *raftLogger) ImpliedArgs() []any { return l.implied }

func (l *raftLogger) With(args ...any) hclog.Logger {
	return &raftLogger{log: l.log.With(args...), name: l.name, implied: append(l.implied[:len(l.implied):len(l.implied)], args...), quiet: l.quiet}
}

func (l *raftLogger) Name() string { return l.name }

func (l *raftLogger) Named(name string) hclog.Logger {
	if l.name != "" {
		name = l.name + "." + name
	}
	return l.ResetNamed(name)
}

func (l *raftLogger) ResetNamed(name string) hclog.Logger {
	return &raftLogger{log: l.log, name: name, implied: l.implied, quiet: l.quiet}
}

// SetLevel does nothing: the node's log level applies (see raftLogger).
func (l *raftLogger) SetLevel(hclog.Level) {}

func (l *raftLogger) GetLevel() hclog.Level {
	for _, level := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if l.enabled(level) {
			return level
		}
	}
	return hclog.Off
}

// StandardLogger logs each line written to it as one record, at the
// forced level if opts gives one and at info otherwise.
func (l *raftLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	level := slog.LevelInfo
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		if sl, ok := slogLevel(opts.ForceLevel); ok {
			level = sl
		}
	}
	lg := l.log
	if l.name != "" {
		lg = lg.With("logger", l.name)
	}
	return slog.NewLogLogger(lg.Handler(), level)
}

func (l *raftLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return l.StandardLogger(opts).Writer()
}
