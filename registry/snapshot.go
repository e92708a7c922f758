package registry

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/klauspost/compress/zstd"
	"github.com/trustreg/trustreg/registry/record"
)

// Snapshot stream format, version 2:
//
//	magic "TRSNAP\x00\x02", then a zstd stream of:
//	records: uvarint(len key) key uvarint(len value) value   (key never empty)
//	end:     uvarint(0), then the SHA-256 of the magic and every
//	         uncompressed byte before it
//
// Version 1 is the same without compression; Restore reads both (backups
// taken by older nodes are version 1). Records come in key order straight
// from a Pebble snapshot, so neither side ever holds the whole state in
// memory. The records are JSON and signed operations, which zstd shrinks
// about fourfold: less to send to a node catching up and less for it to
// write and read back.
var (
	snapshotMagicV1 = []byte("TRSNAP\x00\x01")
	snapshotMagic   = []byte("TRSNAP\x00\x02")
)

// maxSnapshotWindow bounds the memory a snapshot's zstd stream may ask the
// reader for.
const maxSnapshotWindow = 64 << 20

// restoreTableBytes bounds the records written into one sstable while
// restoring.
const restoreTableBytes = 256 << 20

// maxSnapshotRecord bounds one key or value in a snapshot stream.
const maxSnapshotRecord = 64 << 20

// ErrSnapshot marks a snapshot stream that cannot be restored.
var ErrSnapshot = errors.New("registry: bad snapshot")

// Snapshot is a point-in-time view of the whole state.
type Snapshot struct {
	snap *pebble.Snapshot
	ov   *mapOverlay // the map overlay that goes with snap (journal.go)
	db   *pebble.DB  // a checkpoint's database (OpenCheckpoint), closed with the snapshot
}

// Snapshot captures the state as of the last applied entry. It is cheap;
// the data is read when WriteTo streams it.
func (s *store) Snapshot() *Snapshot {
	// Make every applied entry durable before raft may compact its log up
	// to this snapshot's index (ApplyBatch commits without fsync).
	if err := s.db.LogData([]byte("snapshot"), pebble.Sync); err != nil {
		panic(fmt.Sprintf("registry: sync state before a snapshot: %v", err))
	}
	snap, ov := s.snapshotWithOverlay()
	return &Snapshot{snap: snap, ov: ov}
}

// Release frees the snapshot.
func (sn *Snapshot) Release() {
	_ = sn.snap.Close() // a snapshot holds no writes: its Close has nothing to report
	if sn.db != nil {
		_ = sn.db.Close() // read-only: nothing written to lose
	}
}

// WriteTo streams the snapshot to w.
func (sn *Snapshot) WriteTo(w io.Writer) (_ int64, err error) {
	cw := &countWriter{w: bufio.NewWriterSize(w, 256<<10)}
	h := sha256.New()
	h.Write(snapshotMagic)
	if _, err := cw.Write(snapshotMagic); err != nil {
		return cw.n, err
	}
	zw, err := zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(4<<20))
	if err != nil {
		return cw.n, err
	}
	// On an error path the stream is abandoned; the success path closes
	// zw below and checks it.
	defer func() { _ = zw.Close() }()
	out := io.MultiWriter(zw, h)
	it, err := sn.snap.NewIter(nil)
	if err != nil {
		return cw.n, err
	}
	defer closeJoin(it, &err)
	var buf [binary.MaxVarintLen64]byte
	write := func(k, v []byte) error {
		for _, part := range [][]byte{k, v} {
			n := binary.PutUvarint(buf[:], uint64(len(part)))
			if _, err := out.Write(buf[:n]); err != nil {
				return err
			}
			if _, err := out.Write(part); err != nil {
				return err
			}
		}
		return nil
	}
	// The overlay's records, by their store keys in order, go in at their
	// place among the snapshot's, over the records they replace.
	ovNodes := sn.ov.merged()
	ovKeys := sortedKeys(ovNodes)
	overlayUpTo := func(k []byte) error { // the overlay's records before k (all: nil)
		for len(ovKeys) > 0 && (k == nil || bytes.Compare(mapNodeKey([]byte(ovKeys[0])), k) < 0) {
			if v := ovNodes[ovKeys[0]]; v != nil {
				if err := write(mapNodeKey([]byte(ovKeys[0])), v); err != nil {
					return err
				}
			}
			ovKeys = ovKeys[1:]
		}
		return nil
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if bytes.Equal(k, metaRestoring) || k[0] == tableMapJournal {
			continue
		}
		if err := overlayUpTo(k); err != nil {
			return cw.n, err
		}
		if k[0] == tableMapNodes && len(ovKeys) > 0 && ovKeys[0] == string(k[1:]) {
			continue // the overlay's record, written or deleted next
		}
		if err := write(k, it.Value()); err != nil {
			return cw.n, err
		}
	}
	if err := it.Error(); err != nil {
		return cw.n, err
	}
	if err := overlayUpTo(nil); err != nil {
		return cw.n, err
	}
	if _, err := out.Write([]byte{0}); err != nil {
		return cw.n, err
	}
	if _, err := zw.Write(h.Sum(nil)); err != nil {
		return cw.n, err
	}
	if err := zw.Close(); err != nil {
		return cw.n, err
	}
	return cw.n, cw.w.(*bufio.Writer).Flush()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// hashingReader hashes every byte read through it.
type hashingReader struct {
	r *bufio.Reader
	h hash.Hash
}

func (hr *hashingReader) ReadByte() (byte, error) {
	b, err := hr.r.ReadByte()
	if err == nil {
		hr.h.Write([]byte{b})
	}
	return b, err
}

func (hr *hashingReader) readFull(p []byte) error {
	if _, err := io.ReadFull(hr.r, p); err != nil {
		return err
	}
	hr.h.Write(p)
	return nil
}

// Restore replaces the whole state with a snapshot stream, atomically for
// readers: the stream is written into sstables beside the database, and
// only once its checksum, genesis and feature level check out are they
// ingested, replacing every key of the state in one step (Pebble's
// IngestAndExcise). Until then readers see the previous state, whole, at
// its applied index; after it, the restored one. A stream that is
// corrupt, truncated or from another consortium, or a disk that fills up
// while it is written, is refused and leaves the previous state as it
// was, serving, with the restore's files removed. A node that stops
// mid-restore finds the previous state when it opens again (Open removes
// the restore's files).
//
// The swap is published as a commit is (store): no view is open across it,
// and replaced reloads what is kept in memory of the state (the caches
// first) before any reader sees the restored state.
func (s *store) restore(r io.Reader, replaced func() error) error {
	start := time.Now()
	if err := s.disk.check(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var swapErr error
	swap := func(paths []string) error {
		s.readers.Lock()
		defer s.readers.Unlock()
		s.seq.Add(1)
		defer s.seq.Add(1)
		// A Snapshot taken meanwhile takes the map overlay with its Pebble
		// snapshot (snapshotWithOverlay): both before the swap, or both after.
		s.pubMu.Lock()
		defer s.pubMu.Unlock()
		// One version edit removes every key of the previous state and adds
		// the restored ones: no reader sees a state between the two.
		all := pebble.KeyRange{Start: []byte{0x00}, End: []byte{0xff}}
		if _, err := s.db.IngestAndExcise(context.Background(), paths, nil, nil, all); err != nil {
			return fmt.Errorf("restore: ingest: %w", err)
		}
		swapErr = replaced()
		return nil
	}
	if err := s.restoreStream(r, swap); err != nil {
		if derr, full := s.disk.failed(err); full {
			err = derr
		}
		s.log.Error("snapshot restore refused; the previous state is kept", "applied_index", s.applied.Load(), "err", err)
		return err
	}
	s.notify()
	if swapErr != nil {
		return swapErr
	}
	s.log.Info("state restored from snapshot", "applied_index", s.applied.Load(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *store) restoreStream(r io.Reader, swap func(paths []string) error) error {
	tables, err := s.newRestoreTables()
	if err != nil {
		return err
	}
	defer tables.remove()
	// Reading (decompression, checksum, parsing) and writing sstables
	// (compression, filters) run side by side, in batches of about 1 MiB.
	batches := make(chan [][]byte, 8) // key, value, key, value, ...
	stop := make(chan struct{})
	var genesis, level []byte
	var readErr error
	go func() {
		defer close(batches)
		var cur [][]byte
		size := 0
		send := func() bool {
			select {
			case <-stop:
				return false
			default:
			}
			select {
			case batches <- cur:
				cur, size = nil, 0
				return true
			case <-stop:
				return false
			}
		}
		genesis, readErr = readSnapshot(r, func(k, v []byte) error {
			cur = append(cur, k, v)
			if size += len(k) + len(v); size >= 1<<20 && !send() {
				return errRestoreStopped
			}
			return nil
		})
		if readErr == nil && len(cur) > 0 {
			send()
		}
	}()
	var writeErr error
	for b := range batches {
		for i := 0; i < len(b) && writeErr == nil; i += 2 {
			if bytes.Equal(b[i], metaFeatureLevel) {
				level = b[i+1]
			}
			if writeErr = tables.set(b[i], b[i+1]); writeErr != nil {
				close(stop) // the reader stops; the loop drains what it sent
			}
		}
	}
	if writeErr != nil {
		return fmt.Errorf("restore: write: %w", writeErr)
	}
	if readErr != nil {
		return readErr
	}
	if genesis == nil {
		return fmt.Errorf("%w: holds no genesis", ErrSnapshot)
	}
	if c := record.CIDOf(genesis); c != s.genesisCID {
		return fmt.Errorf("%w: snapshot of consortium %s, this node belongs to %s", record.ErrGenesis, c, s.genesisCID)
	}
	// A snapshot at a feature level this build does not apply is refused
	// as a corrupt one is.
	if level != nil {
		if _, err := parseLevel(level); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if err := tables.finish(); err != nil {
		return fmt.Errorf("restore: write: %w", err)
	}
	return swap(tables.paths)
}

var errRestoreStopped = errors.New("restore stopped")

// readSnapshot reads a snapshot stream, handing each record to emit in key
// order, and checks its checksum at the end. It returns the genesis the
// snapshot holds. A record handed to emit is not yet verified: nothing may
// be made visible before readSnapshot returns without an error.
func readSnapshot(r io.Reader, emit func(k, v []byte) error) ([]byte, error) {
	hr := &hashingReader{r: bufio.NewReaderSize(r, 256<<10), h: sha256.New()}
	magic := make([]byte, len(snapshotMagic))
	if err := hr.readFull(magic); err != nil {
		return nil, fmt.Errorf("%w: not a trustreg snapshot: %v", ErrSnapshot, err)
	}
	switch {
	case bytes.Equal(magic, snapshotMagic):
		zr, err := zstd.NewReader(hr.r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxSnapshotWindow), zstd.WithDecoderMaxMemory(maxSnapshotWindow))
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		defer zr.Close()
		hr.r = bufio.NewReaderSize(zr, 256<<10)
	case bytes.Equal(magic, snapshotMagicV1):
	default:
		return nil, fmt.Errorf("%w: not a trustreg snapshot (version 1 or 2)", ErrSnapshot)
	}
	var genesis []byte
	var prev []byte
	for {
		klen, err := binary.ReadUvarint(hr)
		if err != nil {
			return nil, fmt.Errorf("%w: truncated: %v", ErrSnapshot, err)
		}
		if klen == 0 {
			break
		}
		if klen > maxSnapshotRecord {
			return nil, fmt.Errorf("%w: key of %d bytes", ErrSnapshot, klen)
		}
		k := make([]byte, klen)
		if err := hr.readFull(k); err != nil {
			return nil, fmt.Errorf("%w: truncated key: %v", ErrSnapshot, err)
		}
		if prev != nil && bytes.Compare(k, prev) <= 0 {
			return nil, fmt.Errorf("%w: keys out of order", ErrSnapshot)
		}
		vlen, err := binary.ReadUvarint(hr)
		if err != nil || vlen > maxSnapshotRecord {
			return nil, fmt.Errorf("%w: bad value length", ErrSnapshot)
		}
		v := make([]byte, vlen)
		if err := hr.readFull(v); err != nil {
			return nil, fmt.Errorf("%w: truncated value: %v", ErrSnapshot, err)
		}
		if bytes.Equal(k, metaRestoring) {
			return nil, fmt.Errorf("%w: holds a restore marker", ErrSnapshot)
		}
		if bytes.Equal(k, metaGenesis) {
			genesis = v
		}
		prev = k
		if err := emit(k, v); err != nil {
			return nil, err
		}
	}
	want := hr.h.Sum(nil)
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(hr.r, got); err != nil {
		return nil, fmt.Errorf("%w: missing checksum: %v", ErrSnapshot, err)
	}
	if !bytes.Equal(got, want) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrSnapshot)
	}
	return genesis, nil
}

// restoreTables writes a snapshot's records, which arrive in key order,
// straight into sstables that are ingested together once the whole stream
// has checked out: no write-ahead log, no memtable, no compaction of the
// restored data, and nothing visible before the checksum is verified.
type restoreTables struct {
	fs    vfs.FS // the database's: ingestion reads the tables through it
	dir   string
	opts  sstable.WriterOptions
	w     *sstable.Writer
	size  int
	paths []string
}

func (s *store) newRestoreTables() (*restoreTables, error) {
	fs := s.dbOpts.FS
	dir := fs.PathJoin(s.dir, "restore")
	if err := fs.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := fs.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return &restoreTables{fs: fs, dir: dir, opts: s.dbOpts.MakeWriterOptions(0, s.db.TableFormat())}, nil
}

func (t *restoreTables) set(k, v []byte) error {
	if t.w == nil {
		path := t.fs.PathJoin(t.dir, fmt.Sprintf("%06d.sst", len(t.paths)))
		f, err := t.fs.Create(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			return err
		}
		t.w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), t.opts)
		t.paths = append(t.paths, path)
		t.size = 0
	}
	if err := t.w.Set(k, v); err != nil {
		return err
	}
	t.size += len(k) + len(v)
	if t.size >= restoreTableBytes {
		return t.finish()
	}
	return nil
}

// finish closes (and syncs) the table being written.
func (t *restoreTables) finish() error {
	if t.w == nil {
		return nil
	}
	err := t.w.Close()
	t.w = nil
	return err
}

// remove deletes whatever ingestion did not take.
func (t *restoreTables) remove() {
	if t.w != nil {
		// Only on an error path: the table is abandoned, not ingested.
		_ = t.w.Close()
	}
	// What cannot be removed now is removed when the state next opens
	// (openStore clears the restore directory).
	_ = t.fs.RemoveAll(t.dir)
}

// clear empties the state and leaves a fresh genesis in it.
func (s *store) clear() error {
	b := s.db.NewBatch()
	if err := errors.Join(
		b.DeleteRange([]byte{0x00}, []byte{0xff}, nil),
		b.Set(metaGenesis, s.genesisRaw, nil),
		b.Set(metaApplied, u64(0), nil),
	); err != nil {
		return fmt.Errorf("clear state: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("clear state: %w", err)
	}
	return nil
}
