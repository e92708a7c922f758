package consensus

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"slices"

	"github.com/hashicorp/go-hclog"
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
type raftLogger struct {
	log     *slog.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*raftLogger)(nil)

func newRaftLogger(l *slog.Logger, name string) *raftLogger {
	return &raftLogger{log: l, name: name}
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
	sl, ok := slogLevel(level)
	if !ok || !l.log.Enabled(context.Background(), sl) {
		return
	}
	if l.name != "" {
		msg = l.name + ": " + msg
	}
	l.log.Log(context.Background(), sl, msg, hclogValues(args)...)
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
	return &raftLogger{log: l.log.With(args...), name: l.name, implied: append(l.implied[:len(l.implied):len(l.implied)], args...)}
}

func (l *raftLogger) Name() string { return l.name }

func (l *raftLogger) Named(name string) hclog.Logger {
	if l.name != "" {
		name = l.name + "." + name
	}
	return l.ResetNamed(name)
}

func (l *raftLogger) ResetNamed(name string) hclog.Logger {
	return &raftLogger{log: l.log, name: name, implied: l.implied}
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
