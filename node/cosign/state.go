package cosign

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/trustreg/trustreg/registry/tlog"
)

// StateFile is the name, in the data directory, of the file that keeps the
// last checkpoint this node cosigned.
const StateFile = "cosigned"

// stateHeader starts the file. The file is, exactly:
//
//	trustreg cosigned v1\n
//	time <Unix seconds of the cosignature, decimal>\n
//	<the checkpoint text: origin, size and root lines>
const stateHeader = "trustreg cosigned v1\n"

// FileState is a tlog.CosignerState kept in one small file of the node's
// data directory, not in the replicated state: what a member cosigned is its
// own promise, and must survive a restore of the state from a snapshot or a
// backup. Each record replaces the file atomically (a temporary file in the
// same directory, synced, renamed over it, and the directory synced), so a
// crash leaves the old record or the new one. A file that cannot be read
// is an error, never "nothing cosigned yet": a member that forgot what it
// cosigned could cosign a fork.
type FileState struct {
	mu   sync.Mutex
	path string
}

var _ tlog.CosignerState = (*FileState)(nil)

// NewFileState returns the state kept at path.
func NewFileState(path string) *FileState { return &FileState{path: path} }

// LastCosigned implements tlog.CosignerState.
func (s *FileState) LastCosigned() (tlog.Cosigned, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return tlog.Cosigned{}, false, nil
	}
	if err != nil {
		return tlog.Cosigned{}, false, fmt.Errorf("read %s: %w", s.path, err)
	}
	c, err := parseState(raw)
	if err != nil {
		return tlog.Cosigned{}, false, fmt.Errorf("%s: %w (the file records the last checkpoint this node cosigned; restore it from a backup rather than delete it)", s.path, err)
	}
	return c, true, nil
}

// StoreCosigned implements tlog.CosignerState.
func (s *FileState) StoreCosigned(c tlog.Cosigned) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return writeAtomic(s.path, encodeState(c))
}

func encodeState(c tlog.Cosigned) []byte {
	var b bytes.Buffer
	b.WriteString(stateHeader)
	b.WriteString("time " + strconv.FormatInt(c.Time.Unix(), 10) + "\n")
	b.Write(c.Checkpoint.Marshal())
	return b.Bytes()
}

func parseState(raw []byte) (tlog.Cosigned, error) {
	rest, ok := bytes.CutPrefix(raw, []byte(stateHeader))
	if !ok {
		return tlog.Cosigned{}, errors.New("not a cosigned-checkpoint record (bad first line)")
	}
	line, rest, ok := bytes.Cut(rest, []byte("\n"))
	num, ok2 := bytes.CutPrefix(line, []byte("time "))
	if !ok || !ok2 {
		return tlog.Cosigned{}, errors.New("no time line")
	}
	sec, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || sec < 0 {
		return tlog.Cosigned{}, fmt.Errorf("time %q is not Unix seconds", num)
	}
	cp, err := tlog.ParseCheckpoint(rest)
	if err != nil {
		return tlog.Cosigned{}, err
	}
	return tlog.Cosigned{Checkpoint: cp, Time: time.Unix(sec, 0).UTC()}, nil
}

// writeAtomic replaces path with data: a synced temporary file renamed over
// it, then the directory synced so the rename itself is durable.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
