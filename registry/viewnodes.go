package registry

import (
	"errors"
	"sync"

	"github.com/trustreg/trustreg/registry/smt"
)

// keptNodesMaxBytes bounds the map node records one kept view remembers
// (viewNodes): about 10,000 records, the top 13 levels of a map of a
// million records, which every proof walks through.
const keptNodesMaxBytes = 2 << 20

// viewNodes remembers the state map's node records that proofs from one
// kept view read (kept.go). A kept view's state never changes, so a record
// read once stands for every later proof from it; proofs of answers about
// now all walk the map at the latest checkpoint's size from the same root,
// and without it each walk reads its nodes from Pebble again (the largest
// part of a proof answer's CPU at 10k entities: trustbench --profile).
// Records are remembered until keptNodesMaxBytes and then only read: the
// first ones read are the top levels, which every walk shares. The view
// it belongs to owns it; it ends with the view.
type viewNodes struct {
	mu    sync.RWMutex
	recs  map[string][]byte // nil value: no record under the key
	bytes int
}

func newViewNodes() *viewNodes { return &viewNodes{recs: map[string][]byte{}} }

// cachedNodes is the smt.NodeStore of a kept view: its viewNodes over
// its snapshot.
type cachedNodes struct {
	c *viewNodes
	r mapNodes
}

// GetNode implements smt.NodeStore. The record returned is shared: the
// map changes no record it reads (smt.NodeStore).
func (n cachedNodes) GetNode(k []byte) ([]byte, error) {
	n.c.mu.RLock()
	v, ok := n.c.recs[string(k)]
	n.c.mu.RUnlock()
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
	n.c.mu.Lock()
	if size := len(k) + len(v) + 64; n.c.bytes+size <= keptNodesMaxBytes {
		if _, dup := n.c.recs[string(k)]; !dup {
			n.c.recs[string(k)] = v
			n.c.bytes += size
		}
	}
	n.c.mu.Unlock()
	return v, err
}

// PutNode implements smt.NodeStore: a view is read-only.
func (n cachedNodes) PutNode(k, v []byte) error { return errReadOnly }

// DeleteNode implements smt.NodeStore: a view is read-only.
func (n cachedNodes) DeleteNode(k []byte) error { return errReadOnly }

var _ smt.NodeStore = cachedNodes{}

// mapStore returns the node store proofs from v read: through its kept
// view's node memory when it has one.
func (v *View) mapStore() smt.NodeStore {
	if v.nodes != nil {
		return cachedNodes{c: v.nodes, r: mapNodes{r: v.snap}}
	}
	return mapNodes{r: v.snap}
}
