package smt

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// MaxChanges is the most changes one Update takes.
const MaxChanges = 1 << 20

// ErrTooManyChanges is returned by Update for a batch over MaxChanges.
var ErrTooManyChanges = errors.New("smt: too many changes in one update")

// Change sets Key to Value, or removes Key when Delete is true.
type Change struct {
	Key    Key
	Value  Value
	Delete bool
}

// Map is a sparse Merkle map over a NodeStore. It caches nothing: every call
// reads the store, so a Map may be made for each batch. Update must not run
// concurrently with any other call on the same store; reads (Root, Get, Prove)
// may run concurrently with each other where the store allows it.
type Map struct {
	store NodeStore
	key   []byte // Update's scratch buffer for the keys it reads nodes by
}

// New returns the map held in s (an empty store holds the empty map).
func New(s NodeStore) *Map {
	return &Map{store: s}
}

// Root returns the map's root hash.
func (m *Map) Root() (Hash, error) {
	root, err := loadRoot(m.store)
	if err != nil {
		return Hash{}, err
	}
	return root.digest(), nil
}

// Update applies changes and returns the new root. A later change to a key
// overrides an earlier one in the same slice; deleting an absent key changes
// nothing. The result depends only on the resulting (key, value) set, not on
// the order of changes or how they are split into updates. A store error
// leaves the store part-written: the caller discards the batch it was writing.
func (m *Map) Update(changes []Change) (Hash, error) {
	if len(changes) > MaxChanges {
		return Hash{}, fmt.Errorf("%w: %d, at most %d", ErrTooManyChanges, len(changes), MaxChanges)
	}
	ch := normalize(changes)
	root, err := loadRoot(m.store)
	if err != nil {
		return Hash{}, err
	}
	var zero Key
	top, err := m.update(0, &zero, root, ch)
	if err != nil {
		return Hash{}, err
	}
	if top.kind == kindLeaf && (root.kind != kindLeaf || root.key != top.key || root.value != top.value) {
		if err := m.store.PutNode(nodeKey(0, &zero), encodeRootLeaf(&top)); err != nil {
			return Hash{}, fmt.Errorf("write root: %w", err)
		}
	}
	if top.kind == kindEmpty && root.kind == kindLeaf {
		if err := m.store.DeleteNode(nodeKey(0, &zero)); err != nil {
			return Hash{}, fmt.Errorf("delete root: %w", err)
		}
	}
	return top.digest(), nil
}

// normalize returns the changes sorted by key, the last change to each key
// kept.
func normalize(changes []Change) []Change {
	ch := slices.Clone(changes)
	slices.SortStableFunc(ch, func(a, b Change) int { return cmp.Compare(string(a.Key[:]), string(b.Key[:])) })
	out := ch[:0]
	for i := range ch {
		if i+1 < len(ch) && ch[i+1].Key == ch[i].Key {
			continue
		}
		out = append(out, ch[i])
	}
	return out
}

// split returns the index of the first change whose key has bit d set (the
// changes are sorted and share their first d bits).
func split(ch []Change, d int) int {
	i, _ := slices.BinarySearchFunc(ch, 1, func(c Change, _ int) int {
		return cmp.Compare(bit(&c.Key, d), 1)
	})
	return i
}

// update applies ch (sorted, unique, all on path's first d bits) to cur, the
// subtree at depth d on path, and returns the new subtree.
func (m *Map) update(d int, path *Key, cur node, ch []Change) (node, error) {
	if len(ch) == 0 {
		return cur, nil
	}
	switch cur.kind {
	case kindEmpty:
		return m.build(d, path, sets(ch, nil))
	case kindLeaf:
		return m.build(d, path, sets(ch, &cur))
	}
	m.key = appendNodeKey(m.key[:0], d, path)
	l, r, err := loadInnerAt(m.store, m.key, d, path)
	if err != nil {
		return node{}, err
	}
	i := split(ch, d)
	if l, err = m.update(d+1, &ch[0].Key, l, ch[:i]); err != nil {
		return node{}, err
	}
	if r, err = m.update(d+1, &ch[len(ch)-1].Key, r, ch[i:]); err != nil {
		return node{}, err
	}
	return m.join(d, path, &l, &r, true)
}

// sets returns the keys ch leaves in a subtree that held only the leaf old (or
// nothing, when old is nil), as changes sorted by key.
func sets(ch []Change, old *node) []Change {
	out := make([]Change, 0, len(ch)+1)
	placed := old == nil
	for _, c := range ch {
		if !placed && string(old.key[:]) <= string(c.Key[:]) {
			placed = true
			if old.key != c.Key {
				out = append(out, Change{Key: old.key, Value: old.value})
			}
		}
		if !c.Delete {
			out = append(out, c)
		}
	}
	if !placed {
		out = append(out, Change{Key: old.key, Value: old.value})
	}
	return out
}

// build writes the subtree at depth d on path that holds exactly the keys of
// ch (sorted, unique, none deleted), where nothing was stored before.
func (m *Map) build(d int, path *Key, ch []Change) (node, error) {
	switch len(ch) {
	case 0:
		return node{kind: kindEmpty}, nil
	case 1:
		return node{kind: kindLeaf, key: ch[0].Key, value: ch[0].Value}, nil
	}
	if d > maxInnerDepth {
		// Unreachable: two distinct keys part at bit 255 at the latest.
		panic("smt: two changes to one key reached the bottom of the tree")
	}
	i := split(ch, d)
	l, err := m.build(d+1, &ch[0].Key, ch[:i])
	if err != nil {
		return node{}, err
	}
	r, err := m.build(d+1, &ch[len(ch)-1].Key, ch[i:])
	if err != nil {
		return node{}, err
	}
	return m.join(d, path, &l, &r, false)
}

// join makes the subtree at depth d on path from its new children l and r,
// writing its record, or deleting it (when stored says there was one) where
// the subtree is now empty or a single leaf.
func (m *Map) join(d int, path *Key, l, r *node, stored bool) (node, error) {
	var n node
	switch {
	case l.kind == kindEmpty && r.kind != kindInner:
		n = *r
	case r.kind == kindEmpty && l.kind != kindInner:
		n = *l
	default:
		if err := m.store.PutNode(nodeKey(d, path), encodeInner(l, r)); err != nil {
			return node{}, fmt.Errorf("write node at depth %d: %w", d, err)
		}
		return node{kind: kindInner, hash: InnerHash(l.digest(), r.digest())}, nil
	}
	if stored && (d != 0 || n.kind != kindLeaf) {
		if err := m.store.DeleteNode(nodeKey(d, path)); err != nil {
			return node{}, fmt.Errorf("delete node at depth %d: %w", d, err)
		}
	}
	return n, nil
}

// Get returns the value of k, and whether k is present.
func (m *Map) Get(k Key) (Value, bool, error) {
	p, v, err := m.prove(k)
	if err != nil {
		return Value{}, false, err
	}
	return v, p.Kind == Present, nil
}
