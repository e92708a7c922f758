package node

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSharedKeyFileIsWarnedOf: a node key readable by other users gets a
// warning naming the file and its mode; one only its owner reads gets none.
func TestSharedKeyFileIsWarnedOf(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{{0o644, true}, {0o640, true}, {0o600, false}, {0o400, false}} {
		file := filepath.Join(t.TempDir(), "node.key")
		if err := os.WriteFile(file, []byte("k"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, tc.mode); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		warnIfShared(slog.New(slog.NewTextHandler(&buf, nil)), file)
		got := strings.Contains(buf.String(), "level=WARN") && strings.Contains(buf.String(), "chmod 600") && strings.Contains(buf.String(), file)
		if got != tc.warn || !tc.warn && buf.Len() != 0 {
			t.Errorf("mode %#o: logged %q, want a warning: %v", tc.mode, buf.String(), tc.warn)
		}
	}
}
