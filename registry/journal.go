package registry

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/smt"
)

// The map journal (DESIGN.md, "The map journal"). An ApplyBatch does not
// write the state map's node records it changed into its Pebble batch:
// it writes one journal record (tableMapJournal) of the batch's map
// changes, and keeps the node records in memory, in the map overlay, a
// layer per batch over tableMapNodes. Every journalFlushEntries applied
// entries, or once the overlay holds journalFlushBytes, the batch being
// applied writes the overlay's records, each node once however many
// batches changed it, and deletes the journal records (a flush). The map's
// top levels, which every write changes, are then written once per flush
// instead of once per batch. Open replays the journal records after the
// last flush into the overlay; a clean Close flushes.
//
// The logical map (what every reader sees) is the overlay over
// tableMapNodes: a node the overlay holds (nil: deleted) is its record,
// any other is Pebble's.

// Bounds of the overlay between two flushes: applied entries (at the
// level), and the bytes of its layers' records (keys, records and about
// 64 bytes of map overhead each). The entries bound makes flushes a
// function of the log (reproducible in tests); the bytes bound caps the
// memory when batches change many nodes. Measured in DESIGN.md.
const (
	journalFlushEntries = 4096
	journalFlushBytes   = 16 << 20
)

// journalVersion1 is the first byte of a journal record.
const journalVersion1 byte = 1

// Journal record, under indexKey(tableMapJournal, index of the batch's
// last entry): journalVersion1, uvarint(entries at the level the batch
// applied), then each map change in apply order: 0x00, the 32-byte key,
// the 32-byte value (a set), or 0x01 and the 32-byte key (a delete).
// Applying the changes in order (smt.Update keeps the last change of a
// key) gives the map after the batch.
func encodeJournal(entries int, changes []smt.Change) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(changes)*(1+2*smt.Size))
	b = append(b, journalVersion1)
	b = binary.AppendUvarint(b, uint64(entries))
	for _, c := range changes {
		if c.Delete {
			b = append(b, 1)
			b = append(b, c.Key[:]...)
			continue
		}
		b = append(b, 0)
		b = append(b, c.Key[:]...)
		b = append(b, c.Value[:]...)
	}
	return b
}

// errJournal marks a journal record that does not decode.
var errJournal = errors.New("malformed map journal record")

// decodeJournal is encodeJournal's inverse.
func decodeJournal(b []byte) (entries int, changes []smt.Change, err error) {
	if len(b) < 1 || b[0] != journalVersion1 {
		return 0, nil, errJournal
	}
	n, l := binary.Uvarint(b[1:])
	if l <= 0 || n > math.MaxInt32 {
		return 0, nil, errJournal
	}
	b = b[1+l:]
	for len(b) > 0 {
		var c smt.Change
		switch {
		case b[0] == 0 && len(b) >= 1+2*smt.Size:
			copy(c.Key[:], b[1:])
			copy(c.Value[:], b[1+smt.Size:])
			b = b[1+2*smt.Size:]
		case b[0] == 1 && len(b) >= 1+smt.Size:
			copy(c.Key[:], b[1:])
			c.Delete = true
			b = b[1+smt.Size:]
		default:
			return 0, nil, errJournal
		}
		changes = append(changes, c)
	}
	return int(n), changes, nil
}

// mapOverlay is the map's node records changed since the last flush:
// immutable once published, so a view keeps the one that matches its
// Pebble snapshot however the state moves on (store.snapshot takes both
// between two commits). Its layers hold one or more batches' records,
// oldest first; a new batch's layer is merged with the layers before it
// as a binary counter carries (with), so a lookup probes at most about
// log2(batches) maps and each record is copied about as often.
type mapOverlay struct {
	layers  []*overlayLayer
	entries int // entries applied at the level since the last flush
	bytes   int // the layers' bytes
}

// overlayLayer is the records of one or more consecutive batches: nil
// for a deleted node.
type overlayLayer struct {
	nodes   map[string][]byte
	batches int
	bytes   int
}

// emptyOverlay is the overlay right after a flush.
var emptyOverlay = &mapOverlay{}

// overlayRecordBytes is what one record takes in a layer, for the bytes
// bound.
func overlayRecordBytes(k string, v []byte) int { return len(k) + len(v) + 64 }

// newOverlayLayer makes one batch's layer of nodes, which it takes.
func newOverlayLayer(nodes map[string][]byte) *overlayLayer {
	l := &overlayLayer{nodes: nodes, batches: 1}
	for k, v := range nodes {
		l.bytes += overlayRecordBytes(k, v)
	}
	return l
}

// get returns the record at node key k as the overlay holds it (nil:
// deleted), and whether it holds one.
func (o *mapOverlay) get(k []byte) ([]byte, bool) {
	if o == nil {
		return nil, false
	}
	for i := len(o.layers) - 1; i >= 0; i-- {
		if v, ok := o.layers[i].nodes[string(k)]; ok {
			return v, true
		}
	}
	return nil, false
}

// empty reports whether the overlay holds nothing.
func (o *mapOverlay) empty() bool { return o == nil || len(o.layers) == 0 }

// with returns the overlay with l, the next batch's layer of entries
// entries, on top; o is unchanged. Layers merge as a base-4 counter
// carries: four layers of as many batches each become one, so after n
// batches there are at most 3·log4(n) layers, and each record is copied
// about log4(n) times (a binary counter copied it twice as often, which
// profiles showed, for two fewer maps to probe).
func (o *mapOverlay) with(l *overlayLayer, entries int) *mapOverlay {
	if o == nil {
		o = emptyOverlay
	}
	ls := append(slices.Clone(o.layers), l)
	for n := len(ls); n >= overlayFanIn && ls[n-overlayFanIn].batches == ls[n-1].batches; n = len(ls) {
		merged := mergeLayers(ls[n-overlayFanIn:])
		ls = append(ls[:n-overlayFanIn], merged)
	}
	next := &mapOverlay{layers: ls, entries: o.entries + entries}
	for _, x := range ls {
		next.bytes += x.bytes
	}
	return next
}

// stacked returns the overlay with l on top and no layers merged: one
// about to be flushed, which merges them all once (writeMapNodes).
func (o *mapOverlay) stacked(l *overlayLayer, entries int) *mapOverlay {
	if o == nil {
		o = emptyOverlay
	}
	next := &mapOverlay{layers: append(slices.Clone(o.layers), l), entries: o.entries + entries, bytes: o.bytes + l.bytes}
	return next
}

// overlayFanIn is how many layers of equal batches merge into one.
const overlayFanIn = 4

// mergeLayers returns a new layer of the records of ls, oldest first, the
// newest of each key; the layers are unchanged (views may hold them).
func mergeLayers(ls []*overlayLayer) *overlayLayer {
	n := 0
	for _, l := range ls {
		n += len(l.nodes)
	}
	// Room for all: the deeper records of different batches are
	// different nodes, so the merge is seldom much smaller.
	m := make(map[string][]byte, n)
	out := &overlayLayer{nodes: m}
	for _, l := range ls {
		for k, v := range l.nodes {
			if old, ok := m[k]; ok {
				out.bytes -= overlayRecordBytes(k, old)
			}
			m[k] = v
			out.bytes += overlayRecordBytes(k, v)
		}
		out.batches += l.batches
	}
	return out
}

// merged returns every record of the overlay, the newest of each key.
// The result must not be changed: with one layer it is the layer's map.
func (o *mapOverlay) merged() map[string][]byte {
	if o == nil {
		return nil
	}
	switch len(o.layers) {
	case 0:
		return nil
	case 1:
		return o.layers[0].nodes
	}
	return mergeLayers(o.layers).nodes
}

// sortedKeys returns the keys of a merged record set in order.
func sortedKeys(m map[string][]byte) []string {
	return slices.Sorted(maps.Keys(m))
}

// journalEnd is past every journal key (the table byte and a u64), and
// inside the table: a range delete's end key bounds the sstable that
// holds it, and DiskUsage counts the sstable in the part of that key.
var journalEnd = append([]byte{tableMapJournal}, bytes.Repeat([]byte{0xff}, 9)...)

// writeMapNodes writes the overlay's records into b under tableMapNodes,
// in key order, and deletes every journal record: a flush. The journal's
// range delete comes after every write of the entries, which entryChanges
// has read by then (it refuses range deletes within an entry's writes).
func writeMapNodes(b *pebble.Batch, o *mapOverlay) {
	nodes := o.merged()
	key := make([]byte, 0, 1+smt.Size+1) // the batch copies the key it is given
	for _, k := range sortedKeys(nodes) {
		key = append(append(key[:0], tableMapNodes), k...)
		var err error
		if v := nodes[k]; v == nil {
			err = b.Delete(key, nil)
		} else {
			err = b.Set(key, v, nil)
		}
		if err != nil {
			panic(fmt.Sprintf("registry: batch write of a map node: %v", err))
		}
	}
	if err := b.DeleteRange([]byte{tableMapJournal}, journalEnd, nil); err != nil {
		panic(fmt.Sprintf("registry: batch delete of the map journal: %v", err))
	}
}

// overlayNodes is the map's read-only NodeStore of a view: its overlay
// over its snapshot's node records.
type overlayNodes struct {
	ov *mapOverlay
	r  mapNodes
}

// GetNode implements smt.NodeStore. A record from the overlay is shared:
// the map changes no record it reads (smt.NodeStore).
func (n overlayNodes) GetNode(k []byte) ([]byte, error) {
	if v, ok := n.ov.get(k); ok {
		if v == nil {
			return nil, smt.ErrNodeNotFound
		}
		return v, nil
	}
	return n.r.GetNode(k)
}

// PutNode implements smt.NodeStore: a view is read-only.
func (n overlayNodes) PutNode(k, v []byte) error { return errReadOnly }

// DeleteNode implements smt.NodeStore: a view is read-only.
func (n overlayNodes) DeleteNode(k []byte) error { return errReadOnly }

// replayNodes is the NodeStore the journal is replayed through at open:
// the replayed records in memory over the database's.
type replayNodes struct {
	r     pebble.Reader
	nodes map[string][]byte
}

// GetNode implements smt.NodeStore.
func (n *replayNodes) GetNode(k []byte) ([]byte, error) {
	if v, ok := n.nodes[string(k)]; ok {
		if v == nil {
			return nil, smt.ErrNodeNotFound
		}
		return v, nil
	}
	return mapNodes{r: n.r}.GetNode(k)
}

// PutNode implements smt.NodeStore.
func (n *replayNodes) PutNode(k, v []byte) error {
	n.nodes[string(k)] = v
	return nil
}

// DeleteNode implements smt.NodeStore.
func (n *replayNodes) DeleteNode(k []byte) error { return n.PutNode(k, nil) }

var (
	_ smt.NodeStore = overlayNodes{}
	_ smt.NodeStore = (*replayNodes)(nil)
)

// replayJournal returns the overlay the journal records in r make, in
// index order, over r's node records: the state's overlay at open. The
// map's root after them must be the stored root (metaMapRoot), or the
// state is corrupt.
func replayJournal(r pebble.Reader) (_ *mapOverlay, err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{tableMapJournal}, UpperBound: []byte{tableMapJournal + 1}})
	if err != nil {
		return nil, err
	}
	defer closeJoin(it, &err)
	st := &replayNodes{r: r, nodes: map[string][]byte{}}
	m := smt.New(st)
	entries, records := 0, 0
	for it.First(); it.Valid(); it.Next() {
		n, changes, err := decodeJournal(it.Value())
		if err != nil {
			return nil, fmt.Errorf("%w: journal record %x: %w", ErrStateCorrupt, it.Key(), err)
		}
		// In order, in chunks within smt.MaxChanges: a batch of many
		// entries may hold more changes than one update takes.
		for len(changes) > 0 {
			n := min(len(changes), buildChunk)
			if _, err := m.Update(changes[:n]); err != nil {
				return nil, fmt.Errorf("%w: replay journal record %x: %w", ErrStateCorrupt, it.Key(), err)
			}
			changes = changes[n:]
		}
		entries += n
		records++
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if records == 0 {
		return emptyOverlay, nil
	}
	root, err := m.Root()
	if err != nil {
		return nil, fmt.Errorf("%w: the map's root after the journal: %w", ErrStateCorrupt, err)
	}
	want, err := getHash(r, metaMapRoot)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(root[:], want) {
		return nil, fmt.Errorf("%w: the map journal's %d records give the root %x, the stored root is %x", ErrStateCorrupt, records, root, want)
	}
	l := newOverlayLayer(st.nodes)
	return &mapOverlay{layers: []*overlayLayer{l}, entries: entries, bytes: l.bytes}, nil
}

// eachMapNode calls fn with every record of the logical map (the overlay
// ov over r's tableMapNodes), in key order; k is the node key without the
// table byte.
func eachMapNode(r pebble.Reader, ov *mapOverlay, fn func(k, rec []byte) error) (err error) {
	nodes := ov.merged()
	keys := sortedKeys(nodes)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{tableMapNodes}, UpperBound: []byte{tableMapNodes + 1}})
	if err != nil {
		return err
	}
	defer closeJoin(it, &err)
	emitUpTo := func(k []byte) error { // the overlay's records before k (all: nil)
		for len(keys) > 0 && (k == nil || keys[0] < string(k)) {
			if v := nodes[keys[0]]; v != nil {
				if err := fn([]byte(keys[0]), v); err != nil {
					return err
				}
			}
			keys = keys[1:]
		}
		return nil
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[1:]
		if err := emitUpTo(k); err != nil {
			return err
		}
		if len(keys) > 0 && keys[0] == string(k) {
			continue // the overlay's, emitted or deleted next
		}
		if err := fn(k, it.Value()); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	return emitUpTo(nil)
}

// flushMapOverlay writes the overlay's records into the database and
// deletes the journal, in one synced batch, and publishes the empty
// overlay: the map is the same, its records are all in Pebble. At Close,
// with no batch being applied. With too little disk space it writes
// nothing: the journal is replayed at the next Open instead.
func (s *store) flushMapOverlay() error { return s.writeMapOverlay(pebble.Sync) }

// writeMapOverlay is flushMapOverlay, committed with opts: the apply
// flushes the overlay that reached its bounds right after the batch that
// journaled its last changes, without a sync of its own (a crash that
// loses the flush leaves the journal records it would have deleted, which
// Open replays).
func (s *store) writeMapOverlay(opts *pebble.WriteOptions) error {
	ov := s.mapOverlay.Load()
	if ov == nil || ov.empty() {
		return nil
	}
	if err := s.disk.check(); err != nil {
		// Pebble cannot take back a write that fails for want of space
		// (store.commit); the journal stays, for the next Open to replay.
		s.log.Warn("the state map's overlay is left in its journal: too little disk space to write it", "err", err)
		return nil
	}
	// Sized for every record at once: a batch that grows copies them.
	b := s.db.NewBatchWithSize(ov.bytes + 64)
	defer func() { _ = b.Close() }() // after Commit: nothing to report
	writeMapNodes(b, ov)
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.seq.Add(1)
	defer s.seq.Add(1)
	if err := b.Commit(opts); err != nil {
		return fmt.Errorf("write the map overlay: %w", err)
	}
	s.commits.add(b.CommitStats())
	s.mapOverlay.Store(emptyOverlay)
	return nil
}
