package smt

import (
	"errors"
	"maps"
	"slices"
)

// ErrNodeNotFound is returned by a NodeStore's GetNode for a key it does not
// hold.
var ErrNodeNotFound = errors.New("smt: node not found")

// NodeStore holds the map's node records. The registry backs it with its Pebble
// batch (under a table prefix of its own), so the records change in the same
// batch as the registry's records; a GetNode must see the PutNode and
// DeleteNode calls made before it on the same store. Keys are at most 33 bytes
// and values at most 130 bytes. The map keeps no slice it passes in or gets
// back, so the store may reuse them after the call returns. The map never
// changes a record GetNode returns, so a store may return one it holds, and
// never uses a key or record again after passing it to PutNode or
// DeleteNode, so a store may keep them without a copy. A key passed to
// GetNode is the map's, which reuses it: a store keeps a copy if any.
type NodeStore interface {
	// GetNode returns the record at key, or an error wrapping ErrNodeNotFound.
	GetNode(key []byte) ([]byte, error)
	// PutNode sets the record at key.
	PutNode(key, value []byte) error
	// DeleteNode removes the record at key; it is called only for keys the
	// store holds.
	DeleteNode(key []byte) error
}

// MemStore is a NodeStore in memory, for tests and tools. It is not safe for
// concurrent use.
type MemStore struct {
	nodes map[string][]byte
}

var _ NodeStore = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{nodes: make(map[string][]byte)}
}

// GetNode implements NodeStore.
func (s *MemStore) GetNode(key []byte) ([]byte, error) {
	v, ok := s.nodes[string(key)]
	if !ok {
		return nil, ErrNodeNotFound
	}
	return slices.Clone(v), nil
}

// PutNode implements NodeStore.
func (s *MemStore) PutNode(key, value []byte) error {
	s.nodes[string(key)] = slices.Clone(value)
	return nil
}

// DeleteNode implements NodeStore.
func (s *MemStore) DeleteNode(key []byte) error {
	delete(s.nodes, string(key))
	return nil
}

// Len returns the number of records held.
func (s *MemStore) Len() int { return len(s.nodes) }

// Bytes returns the total length of the keys and values held.
func (s *MemStore) Bytes() int {
	n := 0
	for k, v := range s.nodes {
		n += len(k) + len(v)
	}
	return n
}

// Equal reports whether s and o hold the same records.
func (s *MemStore) Equal(o *MemStore) bool {
	return maps.EqualFunc(s.nodes, o.nodes, func(a, b []byte) bool { return string(a) == string(b) })
}
