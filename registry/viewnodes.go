package registry

import (
	"bytes"
	"errors"
	"sync"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
)

// keptMemoryMaxBytes bounds what one kept view remembers (viewMemory):
// about 10,000 map node records, the top 13 levels of a map of a million
// records, which every proof walks through, or the records of a few
// thousand trust chains.
const keptMemoryMaxBytes = 4 << 20

// viewMemory remembers what proofs from one kept view read (kept.go): the
// state map's node records, the records decisions read and the received
// listings. A kept view's state never changes, so what was read once
// stands for every later proof from it; answers about now are all proven
// from the view at the latest checkpoint's size, and without it each
// reads its chain's records and walks the map's nodes from Pebble again
// (the larger part of a proof answer's CPU at 10k entities: trustbench
// --profile). Reads are remembered until keptMemoryMaxBytes and then only
// made: the first ones are the map's top levels and the records many
// chains share. The view it belongs to owns it; it ends with the view.
//
// What it returns is shared: the map changes no record it reads
// (smt.NodeStore), and the proof.Recorder copies the records it keeps.
type viewMemory struct {
	mu       sync.RWMutex
	nodes    map[string][]byte           // nil value: no record under the key
	records  map[decide.RecordKey][]byte // nil value: absent
	received map[[2]string][]string
	// decoded keeps the records decisions decoded (decide.Memo): a
	// proof's decision then reads each record's bytes, for the recorder,
	// without decoding them again (View.ProofMemo).
	decoded map[decide.RecordKey]any
	// values keeps the map value (SHA-256) of record bytes a proof
	// checked against the map, by map key, with the bytes hashed: the
	// same bytes (the memory's shared ones) are not hashed again.
	values map[smt.Key]hashedBytes
	bytes  int
	// head is the view's log size and roots, read once (View.head).
	head     viewHead
	headOnce sync.Once
}

// viewHead is what logHead returns.
type viewHead struct {
	size    uint64
	logRoot []byte
	mapRoot smt.Hash
	err     error
}

func newViewMemory() *viewMemory {
	return &viewMemory{nodes: map[string][]byte{}, records: map[decide.RecordKey][]byte{}, received: map[[2]string][]string{},
		decoded: map[decide.RecordKey]any{}, values: map[smt.Key]hashedBytes{}}
}

// hashedBytes is a record's bytes and their map value.
type hashedBytes struct {
	b []byte
	v smt.Value
}

// valueOf returns recordValue(b), the map value of the bytes under map
// key k, hashed once per kept view for the bytes its memory shares: a
// remembered value stands for b only when b is the very slice hashed
// (same array, same length), which no one changes.
func (v *View) valueOf(k smt.Key, b []byte) smt.Value {
	if v.mem == nil || len(b) == 0 {
		return recordValue(b)
	}
	m := v.mem
	m.mu.RLock()
	h, ok := m.values[k]
	m.mu.RUnlock()
	if ok && len(h.b) == len(b) && &h.b[0] == &b[0] {
		return h.v
	}
	val := recordValue(b)
	m.mu.Lock()
	if _, dup := m.values[k]; !dup && m.room(160) {
		m.values[k] = hashedBytes{b: b, v: val}
	}
	m.mu.Unlock()
	return val
}

// decodedCost is what one remembered decoded record is counted as
// against keptMemoryMaxBytes (a listing: per accreditation).
const decodedCost = 1024

// viewMemo is the decide.Memo of a kept view: its memory of decoded
// records. The view's state never changes, so a record decoded once
// stands for every later decision over it.
type viewMemo struct{ m *viewMemory }

// Recall implements decide.Memo.
func (vm viewMemo) Recall(k decide.RecordKey) (any, bool) {
	vm.m.mu.RLock()
	v, ok := vm.m.decoded[k]
	vm.m.mu.RUnlock()
	return v, ok
}

// Remember implements decide.Memo.
func (vm viewMemo) Remember(k decide.RecordKey, v any) {
	size := len(k.A) + len(k.B) + decodedCost
	if l, ok := v.([]*record.Accreditation); ok {
		size += len(l) * decodedCost
	}
	vm.m.mu.Lock()
	if _, dup := vm.m.decoded[k]; !dup && vm.m.room(size) {
		vm.m.decoded[k] = v
	}
	vm.m.mu.Unlock()
}

// ProofMemo returns a kept view's memory of decoded records, for a
// decision run through a proof.Recorder (proof.Recorder.Memo, which still
// records every record a remembered one stands for); nil for another
// view. What it recalls is shared: decisions only read it.
func (v *View) ProofMemo() decide.Memo {
	if v.mem == nil {
		return nil
	}
	return viewMemo{m: v.mem}
}

// head is logHead of the view's snapshot, read once for a kept view.
func (v *View) head() (size uint64, logRoot []byte, mapRoot smt.Hash, err error) {
	if v.mem == nil {
		return logHead(v.snap)
	}
	h := &v.mem.head
	v.mem.headOnce.Do(func() { h.size, h.logRoot, h.mapRoot, h.err = logHead(v.snap) })
	return h.size, bytes.Clone(h.logRoot), h.mapRoot, h.err
}

// room reports whether size more bytes fit, and counts them if so. The
// caller holds mu.
func (m *viewMemory) room(size int) bool {
	if m.bytes+size > keptMemoryMaxBytes {
		return false
	}
	m.bytes += size
	return true
}

// cachedNodes is the smt.NodeStore of a kept view: its memory over its
// snapshot.
type cachedNodes struct {
	m *viewMemory
	r smt.NodeStore
}

// GetNode implements smt.NodeStore.
func (n cachedNodes) GetNode(k []byte) ([]byte, error) {
	n.m.mu.RLock()
	v, ok := n.m.nodes[string(k)]
	n.m.mu.RUnlock()
	if ok {
		if v == nil {
			return nil, smt.ErrNodeNotFound
		}
		return v, nil
	}
	v, err := n.r.GetNode(k)
	if err != nil && !errors.Is(err, smt.ErrNodeNotFound) {
		return nil, err
	}
	n.m.mu.Lock()
	if _, dup := n.m.nodes[string(k)]; !dup && n.m.room(len(k)+len(v)+64) {
		n.m.nodes[string(k)] = v
	}
	n.m.mu.Unlock()
	return v, err
}

// PutNode implements smt.NodeStore: a view is read-only.
func (n cachedNodes) PutNode(k, v []byte) error { return errReadOnly }

// DeleteNode implements smt.NodeStore: a view is read-only.
func (n cachedNodes) DeleteNode(k []byte) error { return errReadOnly }

// cachedRecords is the decide.Records of a kept view: its memory over its
// snapshot.
type cachedRecords struct {
	m *viewMemory
	r *storeReader
}

// Record implements decide.Records.
func (c cachedRecords) Record(k decide.RecordKey) ([]byte, error) {
	c.m.mu.RLock()
	v, ok := c.m.records[k]
	c.m.mu.RUnlock()
	if ok {
		return v, nil
	}
	v, err := c.r.Record(k)
	if err != nil {
		return nil, err
	}
	c.m.mu.Lock()
	if _, dup := c.m.records[k]; !dup && c.m.room(len(k.A)+len(k.B)+len(v)+96) {
		c.m.records[k] = v
	}
	c.m.mu.Unlock()
	return v, nil
}

// Received implements decide.Records.
func (c cachedRecords) Received(subject, framework string) ([]string, error) {
	k := [2]string{subject, framework}
	c.m.mu.RLock()
	ids, ok := c.m.received[k]
	c.m.mu.RUnlock()
	if ok {
		return ids, nil
	}
	ids, err := c.r.Received(subject, framework)
	if err != nil {
		return nil, err
	}
	size := len(subject) + len(framework) + 96
	for _, id := range ids {
		size += len(id) + 16
	}
	c.m.mu.Lock()
	if _, dup := c.m.received[k]; !dup && c.m.room(size) {
		c.m.received[k] = ids
	}
	c.m.mu.Unlock()
	return ids, nil
}

var (
	_ smt.NodeStore  = cachedNodes{}
	_ decide.Records = cachedRecords{}
	_ decide.Memo    = viewMemo{}
)

// mapStore returns the node store proofs from v read: through its kept
// view's memory when it has one.
func (v *View) mapStore() smt.NodeStore {
	if v.mem != nil {
		return cachedNodes{m: v.mem, r: v.mapNodes()}
	}
	return v.mapNodes()
}

// mapNodes returns the map's node records as of v: its overlay over its
// snapshot's (journal.go).
func (v *View) mapNodes() overlayNodes {
	return overlayNodes{ov: v.ov, r: mapNodes{r: v.snap}}
}
