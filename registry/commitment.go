package registry

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/batchrepr"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
	"github.com/trustreg/trustreg/registry/tlog"
)

// The commitment (issue #32 items 1 and 2), from FeatureLevelCommitment on.
// After every applied entry, in the batch that carries the entry's records
// and the applied index:
//
//   - the state map (registry/smt): for every record of committedTables
//     and for the genesis, map key smt.KeyOf(store key), value the SHA-256
//     of the record's exact stored bytes (the digest inside its CID); for
//     every (subject, framework) with received-index entries, map key
//     smt.KeyOf(decide.StoreKey(decide.ReceivedKey(subject, framework))),
//     value the SHA-256 of decide.EncodeReceived(ids). Its node records are
//     in tableMapNodes under the map overlay, the records changed since
//     the last flush, which the map journal (tableMapJournal) rebuilds at
//     open (journal.go); its root is in metaMapRoot.
//   - the transparency log (registry/tlog): one tlog.Leaf per applied
//     entry, accepted or rejected: the raft index, the commit time, the
//     entry's operation CID and the CID of its stored result, and the map
//     root after the entry. Its node hashes are in tableLogNodes, the
//     encoded leaves in tableLogLeaves by leaf index, its size and root in
//     metaLogSize and metaLogRoot.
//
// Both are a pure function of the log: the map of the (key, value) set the
// records make, the log of the entries in order. They travel in snapshots
// like every other table.

// committedTables are the tables whose every record the map holds, keyed by
// the record's store key. The received index (tableReceived) is committed
// as listings (receivedListing), and the genesis under metaGenesis.
var committedTables = []byte{
	tableFrameworks, tableRoots, tableEntities, tableAccreditation,
	tableRecognitions, tableStatusLists, tableListVersions, tableCosigners,
}

// buildChunk bounds the changes of one map update while the map is built
// over every stored record (smt.MaxChanges is the map's own limit).
const buildChunk = 1 << 16

// isCommitted reports whether a store key is a record the map holds under
// its own key.
func isCommitted(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	return slices.Contains(committedTables, k[0]) || bytes.Equal(k, metaGenesis)
}

// listingPrefix returns the store key of the received listing an index
// entry (tableReceived: subject 0 framework 0 id) belongs to: its bytes up
// to and including the second separator, which is
// decide.StoreKey(decide.ReceivedKey(subject, framework)).
func listingPrefix(k []byte) ([]byte, bool) {
	if len(k) == 0 || k[0] != tableReceived {
		return nil, false
	}
	first := bytes.IndexByte(k[1:], 0)
	if first < 0 {
		return nil, false
	}
	second := bytes.IndexByte(k[1+first+1:], 0)
	if second < 0 {
		return nil, false
	}
	return k[:1+first+1+second+1], true
}

// recordValue is the map value of a record's stored bytes.
func recordValue(b []byte) smt.Value { return smt.Value(sha256.Sum256(b)) }

// listingIDs reads the ids of one received listing (its store key p).
func listingIDs(r pebble.Reader, p []byte) ([]string, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return nil, err
	}
	var ids []string
	for it.First(); it.Valid(); it.Next() {
		ids = append(ids, string(it.Key()[len(p):]))
	}
	return ids, errors.Join(it.Error(), it.Close())
}

// listingReader reads the received listings of the batch being applied.
// While the apply knows every listing of the committed state (known,
// listings.go), a listing is the entry's writes over the listing as the
// batch's earlier entries left it (pend) or as committed, with no read.
// Otherwise it is read from the batch (its writes over the database's)
// with one iterator for the whole batch: SetOptions gives it new bounds and
// refreshes its view of the batch, so it sees the writes made since, at a
// fraction of a new iterator's cost.
type listingReader struct {
	b     *pebble.Batch
	it    *pebble.Iterator
	ids   []string
	known *listings            // every committed listing, or nil: read them
	pend  map[smt.Key][]string // the listings the batch's entries changed, when known
}

// change is the map change of the received listing p after the entry's
// writes to it: its value, or a delete when it is empty.
func (l *listingReader) change(p []byte, writes []listingWrite) smt.Change {
	var ids []string
	k := smt.KeyOf(p)
	if l.known != nil {
		base, ok := l.pend[k]
		if !ok {
			base = l.known.get(k)
		}
		ids = applyWrites(base, writes)
		if l.pend == nil {
			l.pend = map[smt.Key][]string{}
		}
		l.pend[k] = ids
		if verifyListings {
			if read := l.read(p); !slices.Equal(read, ids) {
				panic(fmt.Sprintf("registry: received listing %q: %q in memory, %q in the batch", p, ids, read))
			}
		}
	} else {
		ids = l.read(p)
	}
	c := smt.Change{Key: k}
	if len(ids) == 0 {
		c.Delete = true
		return c
	}
	c.Value = recordValue(decide.EncodeReceived(ids))
	return c
}

// read reads the ids of listing p from the batch; the slice is reused by
// the next read.
func (l *listingReader) read(p []byte) []string {
	p = bytes.Clone(p) // the iterator keeps its bounds until the next SetOptions
	opts := &pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)}
	if l.it == nil {
		it, err := l.b.NewIter(opts)
		if err != nil {
			panic(fmt.Sprintf("registry: read received listing %q: %v", p, err))
		}
		l.it = it
	} else {
		l.it.SetOptions(opts)
	}
	ids := l.ids[:0]
	for l.it.First(); l.it.Valid(); l.it.Next() {
		ids = append(ids, string(l.it.Key()[len(p):]))
	}
	if err := l.it.Error(); err != nil {
		panic(fmt.Sprintf("registry: read received listing %q: %v", p, err))
	}
	l.ids = ids
	return ids
}

// close closes the iterator, before the batch commits.
func (l *listingReader) close() {
	if l.it != nil {
		_ = l.it.Close() // an iterator's error was checked after each walk
		l.it = nil
	}
}

// entryChanges returns the map changes of the writes b took from byte from
// of its representation on: one per committed record and received listing
// written, with its value as b now holds it. The writes are read from the
// batch itself, so no write path of the apply can skip the map. A record's
// value at the entry's end is its last write in that range (a set, or a
// delete), so it is taken from the representation without a read of the
// batch; a listing's ids are the entry's writes to it over the listing
// before the entry (listingReader). The changes are in no particular
// order: smt.Update's result does not depend on it.
func entryChanges(b *pebble.Batch, from int, lr *listingReader) []smt.Change {
	rd := batchrepr.Reader(b.Repr()[from:])
	var changes []smt.Change
	var keys [][]byte // the store key of each record change, for the last-write lookup
	type listingWrites struct {
		p      []byte
		writes []listingWrite
	}
	var listings []listingWrites
	for {
		kind, k, v, ok, err := rd.Next()
		if err != nil {
			panic(fmt.Sprintf("registry: read the batch being applied: %v", err))
		}
		if !ok {
			break
		}
		switch kind {
		case pebble.InternalKeyKindSet, pebble.InternalKeyKindDelete, pebble.InternalKeyKindSingleDelete, pebble.InternalKeyKindDeleteSized:
		case pebble.InternalKeyKindLogData:
			continue
		default:
			// The apply writes nothing else (no range deletions, merges or
			// range keys); one would change records this walk cannot name.
			panic(fmt.Sprintf("registry: a write of kind %s in the apply's batch would bypass the commitment", kind))
		}
		if isCommitted(k) {
			c := smt.Change{Delete: kind != pebble.InternalKeyKindSet}
			if !c.Delete {
				c.Value = recordValue(v)
			}
			i := slices.IndexFunc(keys, func(x []byte) bool { return bytes.Equal(x, k) })
			if i < 0 {
				c.Key = smt.KeyOf(k)
				keys = append(keys, k)
				changes = append(changes, c)
				continue
			}
			c.Key = changes[i].Key
			changes[i] = c
		} else if p, ok := listingPrefix(k); ok {
			w := listingWrite{id: string(k[len(p):]), del: kind != pebble.InternalKeyKindSet}
			i := slices.IndexFunc(listings, func(x listingWrites) bool { return bytes.Equal(x.p, p) })
			if i < 0 {
				listings = append(listings, listingWrites{p: p})
				i = len(listings) - 1
			}
			listings[i].writes = append(listings[i].writes, w)
		}
	}
	for _, l := range listings {
		changes = append(changes, lr.change(l.p, l.writes))
	}
	return changes
}

// eachCommitted calls fn with the map key and value of every record and
// listing r holds, in store key order (the genesis first, then each table,
// the listings in the received index's place).
func eachCommitted(r pebble.Reader, fn func(storeKey []byte, v smt.Value) error) error {
	g, closer, err := r.Get(metaGenesis)
	if err != nil {
		return fmt.Errorf("read the genesis: %w", err)
	}
	gv := recordValue(g)
	_ = closer.Close() // releases the read value; nothing to report
	if err := fn(metaGenesis, gv); err != nil {
		return err
	}
	tables := slices.Sorted(slices.Values(append(slices.Clone(committedTables), tableReceived)))
	for _, t := range tables {
		if err := eachInTable(r, t, fn); err != nil {
			return err
		}
	}
	return nil
}

// eachInTable is eachCommitted for one table.
func eachInTable(r pebble.Reader, t byte, fn func([]byte, smt.Value) error) (err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{t}, UpperBound: []byte{t + 1}})
	if err != nil {
		return err
	}
	defer closeJoin(it, &err)
	if t != tableReceived {
		for it.First(); it.Valid(); it.Next() {
			if err := fn(it.Key(), recordValue(it.Value())); err != nil {
				return err
			}
		}
		return it.Error()
	}
	return eachListing(it, func(p []byte, ids []string) error {
		return fn(p, recordValue(decide.EncodeReceived(ids)))
	})
}

// eachListing calls fn with every received listing it, an iterator over
// the received index, holds: its prefix and ids in key order, one call per
// run of keys with one prefix. fn must not keep ids: the slice is reused.
func eachListing(it *pebble.Iterator, fn func(p []byte, ids []string) error) error {
	var cur []byte
	var ids []string
	emit := func() error {
		if len(ids) == 0 {
			return nil
		}
		return fn(cur, ids)
	}
	for it.First(); it.Valid(); it.Next() {
		p, ok := listingPrefix(it.Key())
		if !ok {
			return fmt.Errorf("%w: received index key %q has no listing", ErrStateCorrupt, it.Key())
		}
		if !bytes.Equal(p, cur) {
			if err := emit(); err != nil {
				return err
			}
			cur, ids = bytes.Clone(p), ids[:0]
		}
		ids = append(ids, string(it.Key()[len(p):]))
	}
	if err := it.Error(); err != nil {
		return err
	}
	return emit()
}

// buildMap builds the map over every record b holds, when the cluster's
// level reaches FeatureLevelCommitment: in chunks, since the result is the
// same however the changes are split.
func buildMap(b *pebble.Batch, m *smt.Map) smt.Hash {
	if root, err := m.Root(); err != nil || root != smt.Empty {
		panic(fmt.Sprintf("registry: the state map holds records before it is built (root %x): %v", root, err))
	}
	var changes []smt.Change
	flush := func() {
		if _, err := m.Update(changes); err != nil {
			panic(fmt.Sprintf("registry: build the state map: %v", err))
		}
		changes = changes[:0]
	}
	err := eachCommitted(b, func(k []byte, v smt.Value) error {
		changes = append(changes, smt.Change{Key: smt.KeyOf(k), Value: v})
		if len(changes) == buildChunk {
			flush()
		}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("registry: build the state map: %v", err))
	}
	flush()
	root, err := m.Root()
	if err != nil {
		panic(fmt.Sprintf("registry: build the state map: %v", err))
	}
	return root
}

// commitRun is one ApplyBatch's work on the commitment: the log, opened
// from the batch at its first entry at the level and appended to by each;
// the map's node records the batch's entries changed (nodeCache) and their
// changes; and the commitment's meta values. flush writes, before the
// batch commits, the meta values and either the batch's journal record or
// the whole overlay (journal.go), and leaves next, the overlay to publish
// with the commit.
type commitRun struct {
	db      pebble.Reader // the database b commits to
	top     *mapTop
	ov      *mapOverlay // the overlay as of the last committed batch
	log     *tlog.Log
	head    *tlog.Log // the log as the last committed batch left it (applier.logHead), or nil
	nodes   *nodeCache
	lists   listingReader
	root    smt.Hash     // the map root after the last entry committed
	changes []smt.Change // the map changes of the batch's entries, in order
	entries int          // entries at the level the batch applied
	batch   int          // entries in the batch (the node cache's size hint)
	last    uint64       // the index of the last of them
	built   bool         // an entry built the map
	next    *mapOverlay  // set by flush: the overlay once b commits
	// flushAfter, set by flush: next reached the overlay's bounds, and is
	// written to tableMapNodes once b commits (store.flushMapOverlay).
	flushAfter bool
	// the overlay's bounds (applier.flushEntries, flushBytes)
	flushEntries, flushBytes int
}

// commitEntry updates the commitment for the entry just applied to b: the
// map with the writes from byte from of b's representation on (or, when
// the entry raised the level to FeatureLevelCommitment, built over every
// record), and the log with the entry's leaf. stored is the result's
// stored bytes.
func (r *commitRun) commitEntry(b *pebble.Batch, from int, build bool, index uint64, t time.Time, data []byte, res *record.Result, stored []byte) {
	if r.nodes == nil {
		r.nodes = newNodeCache(r.db, r.ov, r.top, r.batch)
		r.lists.b = b
	}
	m := smt.New(r.nodes)
	var root smt.Hash
	var err error
	if build {
		root = buildMap(b, m)
		r.built = true
	} else {
		changes := entryChanges(b, from, &r.lists)
		if root, err = m.Update(changes); err != nil {
			panic(fmt.Sprintf("registry: entry %d: update the state map: %v", index, err))
		}
		r.changes = append(r.changes, changes...)
	}
	r.entries++
	r.last = index
	nodes := logNodes{r: b, w: b}
	if r.log == nil {
		// The log the last batch left, or, after an open or a restore, the
		// one the database holds: reading its compact range back (a Get
		// per perfect subtree on its right edge, and the size) cost a
		// batch of one entry some 30 µs.
		if r.head != nil {
			r.log = r.head.Clone()
		} else {
			size := readU64(b, metaLogSize)
			if r.log, err = tlog.OpenLog(nodes, size); err != nil {
				panic(fmt.Sprintf("registry: entry %d: open the transparency log at size %d: %v", index, size, err))
			}
		}
	}
	size := r.log.Size()
	leaf := tlog.Leaf{Index: index, CommitTime: t, MapRoot: root, Ops: []tlog.Op{{CID: opCID(data, res), ResultCID: cidBytes(stored)}}}
	enc, err := r.log.AppendLeaf(nodes, leaf)
	if err != nil {
		panic(fmt.Sprintf("registry: entry %d: append to the transparency log: %v", index, err))
	}
	mustSet(b, indexKey(tableLogLeaves, size), enc)
	r.root = root
}

// flush writes into b, the batch the run's entries were applied to, the
// commitment's meta values and the map's changes: the batch's journal
// record, or, when the overlay with the batch's layer reaches its bounds
// (or an entry built the map), every record of the overlay and the
// journal's deletion (journal.go).
func (r *commitRun) flush(b *pebble.Batch) {
	r.lists.close()
	if r.nodes != nil {
		ov := r.ov
		if ov == nil {
			ov = emptyOverlay
		}
		sized := r.entries
		if r.built {
			sized = 0 // its layer is the whole map: no measure of a batch's records
		}
		l := newOverlayLayer(r.nodes.layer(sized))
		switch {
		case r.built:
			// The layers are written merged once: no carry first.
			writeMapNodes(b, &mapOverlay{layers: append(slices.Clone(ov.layers), l)})
			r.next = emptyOverlay
		case ov.entries+r.entries >= r.flushEntries || ov.bytes+l.bytes >= r.flushBytes:
			// Journaled like any batch, then flushed in a batch of its own
			// once b commits (flushAfter): the apply's indexed batch would
			// index every record, and grow to hold them, for nothing. The
			// layers are written merged once: no carry first.
			mustSet(b, indexKey(tableMapJournal, r.last), encodeJournal(r.entries, r.changes))
			r.next = ov.stacked(l, r.entries)
			r.flushAfter = true
		default:
			mustSet(b, indexKey(tableMapJournal, r.last), encodeJournal(r.entries, r.changes))
			r.next = ov.with(l, r.entries)
		}
	}
	if r.log == nil {
		return // no entry of the batch was at the level
	}
	// The log's root is read once per batch: no leaf holds it.
	mustSet(b, metaLogSize, u64(r.log.Size()))
	mustSet(b, metaLogRoot, r.log.Root())
	mustSet(b, metaMapRoot, r.root[:])
}

// nodeCache is the map's NodeStore during one ApplyBatch: the records the
// batch's entries wrote (nil for a deleted one) in memory, the others read
// from the top cache, the map overlay as of the last committed batch, or
// the database. The records down to mapTopDepth wait in the top cache's
// pending slots (mapTop.pend), the deeper ones in nodes. The top of the
// tree changes with every entry, so keeping each record once per batch
// keeps the batch's layer from taking a copy of it per entry. The cache
// lives for one ApplyBatch: layer hands its records over to the batch's
// overlay layer just before the batch commits.
type nodeCache struct {
	r     pebble.Reader
	ov    *mapOverlay
	top   *mapTop
	nodes map[string][]byte
}

// nodeCacheHintMax bounds the records a node cache is sized for.
const nodeCacheHintMax = 1 << 16

// newNodeCache returns the node cache of one ApplyBatch of entries
// entries over db, the overlay ov and top.
func newNodeCache(db pebble.Reader, ov *mapOverlay, top *mapTop, entries int) *nodeCache {
	top.discardPending()
	// Sized for a batch of entries entries writing as many records each as
	// the last batch's did (not counting a batch that built the map, which
	// wrote all of it; at most nodeCacheHintMax): a map grown from empty
	// allocated about twice its final room, 1.3 KB a write in
	// BenchmarkApplyAccredit.
	hint := min(float64(entries)*top.perEntry, nodeCacheHintMax)
	return &nodeCache{r: db, ov: ov, top: top, nodes: make(map[string][]byte, int(hint))}
}

// GetNode implements smt.NodeStore. It returns the record the cache
// holds, not a copy: the map changes no record it reads (smt.NodeStore).
func (c *nodeCache) GetNode(k []byte) ([]byte, error) {
	i, top := topSlot(k)
	var v []byte
	var ok bool
	if top {
		v, ok = c.top.getSlot(i)
	} else {
		v, ok = c.nodes[string(k)]
	}
	if ok {
		if v == nil {
			return nil, smt.ErrNodeNotFound
		}
		return v, nil
	}
	if !top {
		if v, ok := c.top.getDeep(k); ok {
			return v, nil
		}
	}
	v, err := overlayNodes{ov: c.ov, r: mapNodes{r: c.r}}.GetNode(k)
	switch {
	case top && err == nil:
		c.top.setKnown(i, v)
	case top && errors.Is(err, smt.ErrNodeNotFound):
		c.top.setKnown(i, nil)
	case !top && err == nil:
		c.top.setDeep(k, v)
	}
	return v, err
}

// PutNode implements smt.NodeStore. It keeps v, which the map never uses
// again (smt.NodeStore).
func (c *nodeCache) PutNode(k, v []byte) error {
	if i, ok := topSlot(k); ok {
		c.top.setPending(i, v)
		return nil
	}
	c.nodes[string(k)] = v
	return nil
}

// DeleteNode implements smt.NodeStore.
func (c *nodeCache) DeleteNode(k []byte) error {
	return c.PutNode(k, nil)
}

// layer returns every record the batch wrote, for its overlay layer, and
// makes the pending top records the top cache's: b commits next, or the
// node stops. The layer and the top cache share the records, which
// nothing changes. entries is the batch's entries for the next batch's
// size hint (0: leave the hint as it is).
func (c *nodeCache) layer(entries int) map[string][]byte {
	t := c.top
	for k, v := range c.nodes { // the deeper records, before the top's join them
		t.setDeep([]byte(k), v)
	}
	key := make([]byte, 0, 1+(mapTopDepth+7)/8)
	for _, p := range t.pend {
		key = appendSlotKey(key[:0], int(p.slot))
		c.nodes[string(key)] = p.rec
		t.setKnown(int(p.slot), p.rec)
	}
	t.discardPending()
	nodes := c.nodes
	c.nodes = nil
	if entries > 0 {
		t.perEntry = float64(len(nodes)) / float64(entries)
	}
	return nodes
}

// mapTopDepth is the deepest level of the map whose node records the top
// cache keeps: at most 2^16 − 1 records of at most 130 bytes. Every
// change's path runs through these levels, and below the top cache each
// level read is a Pebble Get. Depth 18 took a follower's map reads from 35
// to 25 µs per write in a cluster after 60,000 writes, but at 1M entities
// (about 2M map keys, every level to 18 full) it held about 70 MB more
// live heap, and the node's peak RSS went over the 1 GiB budget
// (DESIGN.md, "The map's top cache").
const mapTopDepth = 15

// mapTopSlots is the number of nodes at depths 0 to mapTopDepth.
const mapTopSlots = 1<<(mapTopDepth+1) - 1

// mapTop keeps the map's committed node records down to mapTopDepth, which
// every change's path reads, in slices indexed by the node's place in the
// tree (topSlot): no hashing of keys, no allocation per record. Committed
// means the logical map, the overlay over the database's records
// (journal.go), which a flush of the overlay leaves as it was. What fills
// it: the apply's reads of the overlay and the database, and each
// batch's layer (nodeCache.layer), just before the batch commits (a
// failed commit stops the node). What invalidates it: nothing but the
// apply changes map nodes, and it changes every one through the batch's
// layer; a restore replaces the state and with it the cache (State.load).
// So it never holds a record the logical map does not, as of the last
// committed batch. The overlay does not subsume it: the overlay holds
// only what changed since the last flush, in maps by key, and the cache
// answers the apply's every top read from a slice. Besides, it holds the running batch's
// own writes at those depths (pend, the node cache's), apart from the
// committed ones: layer moves them over, and a batch that did not reach
// its flush (an apply that panicked) leaves them to the next batch's
// newNodeCache, which drops them. Only the apply uses it, from one
// goroutine at a time. TestCommitmentAfterRestoreAndRestart breaks without
// the replacement at restore, TestMapTopFollowsWrites without the layer's
// write-through, TestMapTopDropsAnUnflushedBatch without the drop.
//
// A level's slots are made when the apply first reaches it, so the cache
// takes 29 bytes a slot of the levels the map has (1.9 MB once it is 15
// levels deep), besides the records.
//
// Below mapTopDepth it keeps the committed records the apply reads or
// writes in a map by node key (deep), filled and kept the same way: by the
// apply's reads and each batch's layer, which writes through its deeper
// records (and deletes the ones it deleted) as it does the top's; a
// running batch's own deeper writes stay in the node cache. While the map
// is small that is every record below the top. Once it holds deepMax
// records it takes in no new key (a record of a key it holds is still
// replaced or deleted, so it never holds one the map does not) and the
// other reads below the top go to the overlay and the database; once it
// answers fewer than a quarter of those reads the map has outgrown it and
// it is dropped for good (mapDeepRecords). TestMapTopDeepRecords breaks
// without the write-through or the deletes, TestMapTopDeepBound without
// the bound or the drop.
type mapTop struct {
	levels [mapTopDepth + 1]topLevel
	// pend is the running batch's records (nil when deleted) in the order
	// first written, each found from its slot through its level's pendAt
	// (a sparse set: emptied by truncation, no clearing of the slots).
	pend []pendingRecord
	// deep holds committed records below mapTopDepth that the apply read
	// or wrote: every one until there are deepMax of them, then those it
	// holds; dropped for good (nil) once too few reads find their record
	// in it, until the cache is replaced.
	deep    *arenaMap[deepKey]
	deepMax int
	// Reads below the top since the last count, while deep is full, and
	// how many found their record in it; every deepProbe reads the count
	// decides (getDeep).
	deepReads, deepHits, deepProbe int
	// perEntry is the records per entry of the last batch's layer.
	perEntry float64
}

// mapDeepRecords bounds the top cache's records below mapTopDepth. Below
// the top, each record a write's path reads is one a write touched long
// ago, most likely not since the overlay's last flush: a Pebble Get into a
// just-compacted table, cold, 14–26 µs a write on a node in a grown
// benchmark cluster. Keeping every such record in memory, written through
// like the top, takes them off the apply while the map is small: 2^18
// records were about 60 MB of heap as a Go map of slices (some 230 bytes
// each with the map's own; now an arenaMap, out of the collector's way),
// enough for some 150,000 accreditations (two map keys each). Past
// that the cache keeps the records it holds and takes in no others, and
// serves the reads of those. At 1M entities the records below the top
// are about 2M, some 460 MB; a cache of 2^18 would serve about an eighth
// of the reads for its memory, so once it serves fewer than a quarter of
// mapDeepProbe reads in a row it is dropped and the reads go to Pebble
// as before.
// registry/DESIGN.md, "The map's deeper records".
const (
	mapDeepRecords = 1 << 18
	mapDeepProbe   = 1 << 16
)

// deepKey is a node key below the top cache as a map key: its length,
// then its bytes (at most 33: the depth and a 255-bit path).
type deepKey [1 + 1 + smt.Size]byte

// topLevel is the committed records of one level of the top cache, by
// the node's place in the level; nil slices until the level is reached.
type topLevel struct {
	recs  [][]byte // the committed record, nil when absent or not known
	known []bool   // recs holds the database's answer
	// pendAt is where in mapTop.pend the running batch's record of the
	// node is, if that entry of pend names this slot (pendingAt).
	pendAt []uint32
}

// pendingRecord is the running batch's record at a top slot.
type pendingRecord struct {
	slot int32
	rec  []byte
}

// newMapTop returns an empty top cache.
func newMapTop() *mapTop {
	return &mapTop{deep: newArenaMap[deepKey](), deepMax: mapDeepRecords, deepProbe: mapDeepProbe}
}

// deepKeyOf returns node key k as a deepKey, and false for a key too long
// to be one (none is).
func deepKeyOf(k []byte) (dk deepKey, ok bool) {
	if len(k) > len(dk)-1 {
		return dk, false
	}
	dk[0] = byte(len(k))
	copy(dk[1:], k)
	return dk, true
}

// getDeep returns the committed record at node key k below the top, if
// the cache holds it. While the cache is full it counts the reads and the
// ones it answered, and every deepProbe reads drops the cache for good if
// it answered fewer than a quarter of them. A record it returns stays as
// it is after a drop (the arena never changes a value in place).
func (t *mapTop) getDeep(k []byte) ([]byte, bool) {
	if t.deep == nil {
		return nil, false
	}
	dk, ok := deepKeyOf(k)
	if !ok {
		return nil, false
	}
	v, ok := t.deep.get(dk)
	if t.deep.len() >= t.deepMax {
		t.deepReads++
		if ok {
			t.deepHits++
		}
		if t.deepReads >= t.deepProbe {
			if 4*t.deepHits < t.deepReads {
				t.deep = nil
			}
			t.deepReads, t.deepHits = 0, 0
		}
	}
	return v, ok
}

// setDeep records v as the committed record at node key k, a key below
// the top (nil: none), unless the deep records were dropped. A full cache
// replaces or deletes only the records it holds: it takes in no new key.
// Its callers pass deeper keys only: GetNode on its path below the top,
// layer with the node cache's records, which PutNode keeps below the top.
func (t *mapTop) setDeep(k, v []byte) {
	if t.deep == nil {
		return
	}
	dk, ok := deepKeyOf(k)
	if !ok {
		return
	}
	if v == nil {
		t.deep.delete(dk)
		return
	}
	if t.deep.len() >= t.deepMax {
		if _, held := t.deep.get(dk); !held {
			return
		}
	}
	t.deep.set(dk, v)
}

// slotPlace returns the depth of slot i and i's place in its level.
func slotPlace(i int) (d, j int) {
	d = bits.Len(uint(i+1)) - 1
	return d, i + 1 - 1<<d
}

// slot returns the level of slot i and i's place in it, making the
// level's slots when it is first reached.
func (t *mapTop) slot(i int) (*topLevel, int) {
	d, j := slotPlace(i)
	l := &t.levels[d]
	if l.recs == nil {
		l.recs, l.known, l.pendAt = make([][]byte, 1<<d), make([]bool, 1<<d), make([]uint32, 1<<d)
	}
	return l, j
}

// pendingAt returns the place in t.pend of the running batch's record at
// slot i (at j of level l), if it wrote one.
func (t *mapTop) pendingAt(l *topLevel, j, i int) (int, bool) {
	p := int(l.pendAt[j])
	return p, p < len(t.pend) && t.pend[p].slot == int32(i)
}

// topSlot returns the index of node key k (smt's nodeKey: the depth, then
// the path's first depth bits in whole bytes, the rest zero) in the top
// cache: 2^depth − 1 plus the path's bits as a number, so slots run in
// the keys' order. ok is false below mapTopDepth or for a key of another
// length.
func topSlot(k []byte) (int, bool) {
	if len(k) == 0 || int(k[0]) > mapTopDepth {
		return 0, false
	}
	d := int(k[0])
	if len(k) != 1+(d+7)/8 {
		return 0, false
	}
	var p uint32
	for _, c := range k[1:] {
		p = p<<8 | uint32(c)
	}
	p >>= uint(8*(len(k)-1) - d)
	return 1<<d - 1 + int(p), true
}

// appendSlotKey appends the node key of slot i to b: topSlot's inverse.
func appendSlotKey(b []byte, i int) []byte {
	d, j := slotPlace(i)
	n := (d + 7) / 8
	p := uint32(j) << uint(8*n-d)
	b = append(b, byte(d))
	for j := n - 1; j >= 0; j-- {
		b = append(b, byte(p>>(8*uint(j))))
	}
	return b
}

// getSlot returns the record at slot i as the running batch sees it: its
// own write, else the committed record, and whether either is known.
func (t *mapTop) getSlot(i int) ([]byte, bool) {
	l, j := t.slot(i)
	if p, ok := t.pendingAt(l, j, i); ok {
		return t.pend[p].rec, true
	}
	return l.recs[j], l.known[j]
}

// setKnown records the database's answer for slot i: its record, or nil
// for none.
func (t *mapTop) setKnown(i int, v []byte) {
	l, j := t.slot(i)
	l.recs[j], l.known[j] = v, true
}

// get returns the committed record at node key k, and whether it is known.
func (t *mapTop) get(k []byte) ([]byte, bool) {
	i, ok := topSlot(k)
	if !ok {
		return nil, false
	}
	d, j := slotPlace(i)
	if l := &t.levels[d]; l.recs != nil {
		return l.recs[j], l.known[j]
	}
	return nil, false
}

// setPending notes the running batch's write of v at slot i (nil deletes).
func (t *mapTop) setPending(i int, v []byte) {
	l, j := t.slot(i)
	if p, ok := t.pendingAt(l, j, i); ok {
		t.pend[p].rec = v
		return
	}
	l.pendAt[j] = uint32(len(t.pend))
	t.pend = append(t.pend, pendingRecord{slot: int32(i), rec: v})
}

// discardPending drops the running batch's records: those of a batch
// that never reached its flush, or those layer handed over.
func (t *mapTop) discardPending() {
	clear(t.pend) // the list's room is kept, not the records
	t.pend = t.pend[:0]
}

// opCID is the binary CID a leaf names an entry's operation by: the CID
// its result recorded (of the signed operation's bytes), or, for a command
// that carries no operation (a feature level raise), the CID of the
// command's bytes.
func opCID(data []byte, res *record.Result) []byte {
	if res.CID == "" {
		return cidBytes(data)
	}
	c, err := cid.Decode(res.CID)
	if err != nil {
		panic(fmt.Sprintf("registry: entry %d: result names the operation %q: %v", res.Index, res.CID, err))
	}
	return c.Bytes()
}

// cidBytes is the binary CID (CIDv1, raw codec, sha2-256) of b, as
// record.CIDOf names it in text.
func cidBytes(b []byte) []byte {
	d := sha256.Sum256(b)
	mh, err := multihash.Encode(d[:], multihash.SHA2_256)
	if err != nil {
		panic(fmt.Sprintf("multihash sha2-256: %v", err)) // cannot fail for a registered hash
	}
	return cid.NewCidV1(cid.Raw, mh).Bytes()
}

// errReadOnly is a map node store's answer to a write on the read side.
var errReadOnly = errors.New("registry: the state map is read-only here")

// mapNodes is the map's NodeStore over Pebble, under tableMapNodes: over
// the batch being applied (w set), or over a view's snapshot (read-only).
type mapNodes struct {
	r pebble.Reader
	w *pebble.Batch
}

func mapNodeKey(k []byte) []byte { return append([]byte{tableMapNodes}, k...) }

// GetNode implements smt.NodeStore.
func (n mapNodes) GetNode(k []byte) ([]byte, error) {
	v, closer, err := n.r.Get(mapNodeKey(k))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, smt.ErrNodeNotFound
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(v)
	return out, closer.Close()
}

// PutNode implements smt.NodeStore.
func (n mapNodes) PutNode(k, v []byte) error {
	if n.w == nil {
		return errReadOnly
	}
	return n.w.Set(mapNodeKey(k), v, nil)
}

// DeleteNode implements smt.NodeStore.
func (n mapNodes) DeleteNode(k []byte) error {
	if n.w == nil {
		return errReadOnly
	}
	return n.w.Delete(mapNodeKey(k), nil)
}

// logNodes is the log's NodeReader and NodeWriter over Pebble, under
// tableLogNodes.
type logNodes struct {
	r pebble.Reader
	w *pebble.Batch
}

func logNodeKey(id tlog.NodeID) []byte {
	k := id.Key()
	return append([]byte{tableLogNodes}, k[:]...)
}

// ReadNode implements tlog.NodeReader.
func (n logNodes) ReadNode(id tlog.NodeID) ([]byte, error) {
	v, closer, err := n.r.Get(logNodeKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, tlog.ErrNodeNotFound
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(v)
	return out, closer.Close()
}

// WriteNode implements tlog.NodeWriter.
func (n logNodes) WriteNode(id tlog.NodeID, h []byte) error {
	if n.w == nil {
		return errReadOnly
	}
	return n.w.Set(logNodeKey(id), h, nil)
}

var (
	_ smt.NodeStore   = mapNodes{}
	_ smt.NodeStore   = (*nodeCache)(nil)
	_ tlog.NodeReader = logNodes{}
	_ tlog.NodeWriter = logNodes{}
)
