package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// Key prefixes of the raft database.
const (
	prefixLog    byte = 0x01 // index (u64 BE) -> encoded raft.Log
	prefixStable byte = 0x02 // key -> value
)

// errKeyNotFound is what raft expects from a StableStore for a missing key:
// raft only tolerates the error whose text is exactly "not found".
var errKeyNotFound = errors.New("not found")

// LogStore is a raft.LogStore and raft.StableStore on Pebble. Every write is
// synced: raft acknowledges entries only once they are durable.
// Calls after Close fail with an error instead of reaching the closed
// database (Pebble panics there): a read index being served may still be
// looking up entries while the node shuts down.
//
// A full disk is found before an append (StoreLogs refuses it with
// ErrDiskFull, which raft treats as a failed append: a follower rejects
// it and the leader retries later; a leader steps down), because a write
// that fails inside Pebble's commit pipeline cannot be taken back. Term,
// vote and deletions still go through: they are small, the reserve keeps
// room for them, and raft cannot survive failing to record a term.
type LogStore struct {
	db     *pebble.DB
	disk   *diskGuard
	mu     sync.RWMutex // held for reading by every call, for writing by Close
	closed bool
	// appends counts the StoreLogs calls that stored their entries (each
	// one synced batch), appended the entries they carried.
	appends, appended atomic.Uint64
}

// errLogStoreClosed is ErrShutdown: a call that reads the log while the
// node closes (a read index looking for its last command, say) ends the
// way every other call does then.
var errLogStoreClosed = fmt.Errorf("%w: raft log store is closed", ErrShutdown)

// use holds the store open for one call; the caller releases s.mu.RUnlock.
func (s *LogStore) use() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errLogStoreClosed
	}
	return nil
}

var (
	_ raft.LogStore    = (*LogStore)(nil)
	_ raft.StableStore = (*LogStore)(nil)
)

// logMemTableBytes is the raft log database's memtable size. Entries
// live from their append until a snapshot truncates them, about 10,000 to
// 18,000 entries later (raft's default trailing logs and snapshot
// threshold), and are read back mostly while young. Pebble's default of
// 4 MiB flushed them every couple of seconds under load and compacted
// them level by level before truncation dropped them: in a follower's
// CPU profile under 256 writing clients, compactions (both databases')
// took 10.5 % with the default and 4.5 % with this size.
const logMemTableBytes = 32 << 20

// OpenLogStore opens (creating if needed) the raft database in dir.
func OpenLogStore(dir string) (*LogStore, error) { return openLogStore(dir, nil) }

// openLogStore opens the raft database in dir on file system fs (nil: the
// OS's; a test gives a crashable one to lose what was not synced).
func openLogStore(dir string, fs vfs.FS) (*LogStore, error) {
	if err := roomToOpen(dir); err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{dir: dir}, MemTableSize: logMemTableBytes, FS: fs})
	if err != nil {
		if isNoSpace(err) {
			err = fmt.Errorf("%w: free space under %s: %w", ErrDiskFull, dir, err)
		}
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	return &LogStore{db: db, disk: newDiskGuard(dir, DefaultLogReserveBytes, slog.Default().With("component", "raft-log"))}, nil
}

// DiskFull returns an ErrDiskFull error while the disk under the raft log
// has less free space than its reserve (appends are refused), and nil
// otherwise.
func (s *LogStore) DiskFull() error { return s.disk.status() }

// Close closes the database. Closing twice is harmless.
func (s *LogStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

func logKey(index uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

// FirstIndex returns the first index written, or 0 for an empty log.
func (s *LogStore) FirstIndex() (uint64, error) {
	return s.edgeIndex((*pebble.Iterator).First)
}

// LastIndex returns the last index written, or 0 for an empty log.
func (s *LogStore) LastIndex() (uint64, error) {
	return s.edgeIndex((*pebble.Iterator).Last)
}

// edgeIndex returns the index of the log entry that seek (First or Last)
// positions an iterator over the log at, or 0 for an empty log.
func (s *LogStore) edgeIndex(seek func(*pebble.Iterator) bool) (uint64, error) {
	if err := s.use(); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLog}, UpperBound: []byte{prefixLog + 1}})
	if err != nil {
		return 0, err
	}
	defer closeRead(it)
	if !seek(it) {
		return 0, it.Error()
	}
	return binary.BigEndian.Uint64(it.Key()[1:]), nil
}

// GetLog reads the entry at index into out, or returns raft.ErrLogNotFound.
func (s *LogStore) GetLog(index uint64, out *raft.Log) error {
	if err := s.use(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	v, closer, err := s.db.Get(logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("read raft log %d: %w", index, err)
	}
	defer closeRead(closer)
	if err := decodeLog(v, out); err != nil {
		return fmt.Errorf("raft log %d: %w", index, err)
	}
	out.Index = index
	return nil
}

// StoreLog stores one entry.
func (s *LogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores entries in one synced batch.
func (s *LogStore) StoreLogs(logs []*raft.Log) error {
	if err := s.use(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	b := s.db.NewBatch()
	defer closeBatch(b)
	for _, l := range logs {
		if err := b.Set(logKey(l.Index), encodeLog(l), nil); err != nil {
			return err
		}
	}
	if err := s.disk.checkWrite(uint64(b.Len())); err != nil {
		return fmt.Errorf("store raft logs: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store raft logs: %w", s.disk.failed(err))
	}
	s.appends.Add(1)
	s.appended.Add(uint64(len(logs)))
	return nil
}

// AppendStats reports how many synced appends this store made and how many
// entries they carried: on a leader, the batches raft's loop gathered from
// the writes handed to it; on a follower, one per append request that
// carried new entries.
func (s *LogStore) AppendStats() (appends, entries uint64) {
	return s.appends.Load(), s.appended.Load()
}

// DeleteRange deletes entries min..max inclusive.
func (s *LogStore) DeleteRange(min, max uint64) error {
	if err := s.use(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	b := s.db.NewBatch()
	defer closeBatch(b)
	end := []byte{prefixLog + 1}
	if max < ^uint64(0) {
		end = logKey(max + 1)
	}
	if err := b.DeleteRange(logKey(min), end, nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("delete raft logs %d..%d: %w", min, max, err)
	}
	return nil
}

func stableKey(k []byte) []byte { return append([]byte{prefixStable}, k...) }

// Set stores a stable value.
func (s *LogStore) Set(k, v []byte) error {
	if err := s.use(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.db.Set(stableKey(k), v, pebble.Sync); err != nil {
		return fmt.Errorf("raft stable store: %w", err)
	}
	return nil
}

// Get reads a stable value; a missing key is an error with the text
// "not found", as raft requires.
func (s *LogStore) Get(k []byte) ([]byte, error) {
	if err := s.use(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	v, closer, err := s.db.Get(stableKey(k))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errKeyNotFound
	}
	if err != nil {
		return nil, err
	}
	defer closeRead(closer)
	return append([]byte(nil), v...), nil
}

// SetUint64 stores a stable number.
func (s *LogStore) SetUint64(k []byte, v uint64) error {
	return s.Set(k, binary.BigEndian.AppendUint64(nil, v))
}

// GetUint64 reads a stable number.
func (s *LogStore) GetUint64(k []byte) (uint64, error) {
	v, err := s.Get(k)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raft stable key %q holds %d bytes, want 8", k, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Log encoding, version 1: term u64, type u8, appendedAt (unix ns) i64,
// uvarint len + data, uvarint len + extensions.
const logEncodingV1 byte = 1

func encodeLog(l *raft.Log) []byte {
	b := make([]byte, 0, 1+8+1+8+2*binary.MaxVarintLen64+len(l.Data)+len(l.Extensions))
	b = append(b, logEncodingV1)
	b = binary.BigEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	return append(b, l.Extensions...)
}

func decodeLog(b []byte, l *raft.Log) error {
	if len(b) < 18 || b[0] != logEncodingV1 {
		return errors.New("unknown log encoding")
	}
	l.Term = binary.BigEndian.Uint64(b[1:9])
	l.Type = raft.LogType(b[9])
	if at := int64(binary.BigEndian.Uint64(b[10:18])); at != 0 {
		l.AppendedAt = time.Unix(0, at)
	} else {
		l.AppendedAt = time.Time{}
	}
	rest := b[18:]
	var err error
	if l.Data, rest, err = readBytes(rest); err != nil {
		return err
	}
	if l.Extensions, rest, err = readBytes(rest); err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("trailing bytes")
	}
	return nil
}

func readBytes(b []byte) ([]byte, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, errors.New("truncated")
	}
	if n == 0 {
		return nil, b[k:], nil
	}
	return append([]byte(nil), b[k:k+int(n)]...), b[k+int(n):], nil
}

// quietPebble keeps Pebble's informational chatter out of the node's log;
// errors go to the standard logger (the log store has no logger of its
// own, and a failing raft log must not go unseen). A fatal error that is a
// full disk (one that got past the reserve check) ends the process with
// one clear line instead of a panic's stack trace: what raft acknowledged
// is synced, and a restart finds the full disk before it writes.
type quietPebble struct{ dir string }

func (quietPebble) Infof(string, ...any) {}
func (quietPebble) Errorf(format string, args ...any) {
	slog.Error(fmt.Sprintf(format, args...), "component", "raft-log")
}
func (q quietPebble) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, a := range args {
		if err, ok := a.(error); ok && isNoSpace(err) {
			slog.Error("disk full: the raft log cannot go on writing; free space under the data directory and start trustd again", "component", "raft-log", "dir", q.dir, "err", msg)
			fatalExit()
		}
	}
	panic(msg)
}

// fatalExit ends the process after Pebble met a full disk where it cannot
// go on; a test replaces it.
var fatalExit = func() { os.Exit(1) }

// closeRead closes what a read used (an iterator, the value of a Get):
// the read returned its own error (an iterator's Error), so the close's
// adds nothing and is discarded.
func closeRead(c io.Closer) { _ = c.Close() }

// closeBatch releases a batch. Its writes' errors come from Commit; Close
// only returns the batch to its pool, so its error is discarded.
func closeBatch(b *pebble.Batch) { _ = b.Close() }
