package consensus

import (
	"bytes"
	"context"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// hclogWriter carries raft's hclog output into the node's slog logger, one
// record per line, at the level hclog printed.
type hclogWriter struct {
	log *slog.Logger
}

func (w *hclogWriter) hclog(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:        name,
		Level:       hclog.Info,
		Output:      w,
		DisableTime: true,
	})
}

func (w *hclogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		s := string(line)
		level := slog.LevelInfo
		for prefix, l := range map[string]slog.Level{"[ERROR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[DEBUG]": slog.LevelDebug, "[TRACE]": slog.LevelDebug, "[INFO]": slog.LevelInfo} {
			if rest, ok := strings.CutPrefix(s, prefix); ok {
				level, s = l, strings.TrimSpace(rest)
				break
			}
		}
		w.log.Log(context.Background(), level, s)
	}
	return len(p), nil
}
