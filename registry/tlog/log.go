package tlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// hasher is the RFC 6962 SHA-256 tree hasher every hash here is made with.
var hasher = rfc6962.DefaultHasher

// rangeFactory builds compact ranges over hasher.
var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// EmptyRoot returns the root of the empty tree, SHA-256 of the empty string.
func EmptyRoot() []byte { return hasher.EmptyRoot() }

// NodeID names a node of the tree: the root of the perfect subtree over leaves
// [Index<<Level, (Index+1)<<Level). Level 0 nodes are leaf hashes.
type NodeID struct {
	Level uint8
	Index uint64
}

// NodeKeySize is the size of a NodeID's key, in bytes.
const NodeKeySize = 9

// Key returns the node's storage key: Level as one byte, then Index as a
// big-endian uint64. Keys sort by level, then by index.
func (id NodeID) Key() [NodeKeySize]byte {
	var k [NodeKeySize]byte
	k[0] = id.Level
	binary.BigEndian.PutUint64(k[1:], id.Index)
	return k
}

// NodeReader reads the stored hashes of complete subtrees.
type NodeReader interface {
	// ReadNode returns the hash stored for id, or an error wrapping
	// ErrNodeNotFound if none is.
	ReadNode(id NodeID) ([]byte, error)
}

// NodeWriter stores the hashes of complete subtrees. The registry implements
// it over the Pebble batch that carries the rest of the entry's writes, so
// the log and the state it commits to are written atomically.
type NodeWriter interface {
	WriteNode(id NodeID, hash []byte) error
}

// MemStore is an in-memory NodeReader and NodeWriter for tests and offline
// tools. It is safe for concurrent use.
type MemStore struct {
	mu    sync.RWMutex
	nodes map[NodeID][]byte
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{nodes: make(map[NodeID][]byte)} }

// ReadNode implements NodeReader.
func (s *MemStore) ReadNode(id NodeID) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, ok := s.nodes[id]
	if !ok {
		return nil, fmt.Errorf("%w: level %d index %d", ErrNodeNotFound, id.Level, id.Index)
	}
	return append([]byte(nil), h...), nil
}

// WriteNode implements NodeWriter.
func (s *MemStore) WriteNode(id NodeID, hash []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[id] = append([]byte(nil), hash...)
	return nil
}

// Len returns the number of stored nodes.
func (s *MemStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.nodes)
}

// Log appends leaf hashes to an RFC 6962 Merkle tree. It keeps only the
// compact range of the tree (at most 64 hashes: the roots of the perfect
// subtrees along its right edge) in memory and hands every complete subtree
// an append creates to a NodeWriter, so any root and proof up to its size can
// later be read back from the store (RootAt, InclusionProof,
// ConsistencyProof). A Log is safe for concurrent use; appends are
// serialised.
type Log struct {
	mu  sync.Mutex
	rng *compact.Range
}

// NewLog returns an empty log.
func NewLog() *Log { return &Log{rng: rangeFactory.NewEmptyRange(0)} }

// OpenLog returns the log of the given size whose nodes r holds, as after a
// restart: it reads the compact range's hashes from r.
func OpenLog(r NodeReader, size uint64) (*Log, error) {
	rng, err := readRange(r, size)
	if err != nil {
		return nil, fmt.Errorf("open log at size %d: %w", size, err)
	}
	return &Log{rng: rng}, nil
}

// Clone returns a log of the same size and hashes that appends apart from
// l: appending to either leaves the other as it was. It copies nothing
// (Append never changes a compact range in place, it makes the next), so a
// caller can keep a log it appended to and hand each user a clone of it
// instead of reading the range back from the store.
func (l *Log) Clone() *Log {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &Log{rng: l.rng}
}

// Size returns the number of leaves in the log.
func (l *Log) Size() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rng.End()
}

// Root returns the root hash of the log at its current size.
func (l *Log) Root() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	root, err := rootOf(l.rng)
	if err != nil {
		// The range always begins at 0: an error here is a bug.
		panic(fmt.Sprintf("tlog: root of a compact range: %v", err))
	}
	return root
}

// Append adds one leaf hash (see LeafHash) and writes the hashes of the
// complete subtrees it creates (the leaf itself and every parent it
// completes) to w. If w fails, the log is unchanged and the error is
// returned; the caller must then discard whatever w buffered.
func (l *Log) Append(w NodeWriter, leafHash []byte) error {
	if len(leafHash) != HashSize {
		return fmt.Errorf("%w: leaf hash of %d bytes", ErrHashSize, len(leafHash))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	next, err := rangeFactory.NewRange(0, l.rng.End(), cloneHashes(l.rng.Hashes()))
	if err != nil {
		panic(fmt.Sprintf("tlog: copy of a compact range: %v", err))
	}
	type node struct {
		id   NodeID
		hash []byte
	}
	var created []node
	err = next.Append(append([]byte(nil), leafHash...), func(id compact.NodeID, hash []byte) {
		created = append(created, node{NodeID{Level: uint8(id.Level), Index: id.Index}, hash})
	})
	if err != nil {
		return fmt.Errorf("append to the log at size %d: %w", l.rng.End(), err)
	}
	for _, n := range created {
		if err := w.WriteNode(n.id, n.hash); err != nil {
			return fmt.Errorf("write node (%d, %d): %w", n.id.Level, n.id.Index, err)
		}
	}
	l.rng = next
	return nil
}

// AppendLeaf encodes leaf, appends its hash as Append does, and returns the
// encoding, which the caller stores to serve entry bundles.
func (l *Log) AppendLeaf(w NodeWriter, leaf Leaf) ([]byte, error) {
	b, err := leaf.Encode()
	if err != nil {
		return nil, err
	}
	if err := l.Append(w, LeafHash(b)); err != nil {
		return nil, err
	}
	return b, nil
}

// RootAt returns the root hash of the tree of the given size, read from r.
func RootAt(r NodeReader, size uint64) ([]byte, error) {
	rng, err := readRange(r, size)
	if err != nil {
		return nil, fmt.Errorf("root at size %d: %w", size, err)
	}
	return rootOf(rng)
}

// InclusionProof returns the RFC 6962 inclusion proof (audit path) of leaf
// index in the tree of the given size, read from r. The store must hold the
// tree up to at least size.
func InclusionProof(r NodeReader, index, size uint64) ([][]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: leaf %d in a tree of size %d", ErrOutOfRange, index, size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOutOfRange, err)
	}
	return fetchProof(r, nodes)
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees
// of sizes size1 <= size2, read from r. It is empty when size1 is 0 or equal
// to size2.
func ConsistencyProof(r NodeReader, size1, size2 uint64) ([][]byte, error) {
	if size1 > size2 {
		return nil, fmt.Errorf("%w: consistency from size %d to the smaller size %d", ErrOutOfRange, size1, size2)
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOutOfRange, err)
	}
	return fetchProof(r, nodes)
}

func fetchProof(r NodeReader, nodes proof.Nodes) ([][]byte, error) {
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, err := readNode(r, NodeID{Level: uint8(id.Level), Index: id.Index})
		if err != nil {
			return nil, err
		}
		hashes[i] = h
	}
	p, err := nodes.Rehash(hashes, hasher.HashChildren)
	if err != nil {
		panic(fmt.Sprintf("tlog: rehash a proof: %v", err))
	}
	return p, nil
}

// readRange reads the compact range [0, size) from r.
func readRange(r NodeReader, size uint64) (*compact.Range, error) {
	ids := compact.RangeNodes(0, size, nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := readNode(r, NodeID{Level: uint8(id.Level), Index: id.Index})
		if err != nil {
			return nil, err
		}
		hashes[i] = h
	}
	return rangeFactory.NewRange(0, size, hashes)
}

// readNode reads one node and checks its size: a store that returns a hash
// of another size is corrupt.
func readNode(r NodeReader, id NodeID) ([]byte, error) {
	h, err := r.ReadNode(id)
	if err != nil {
		return nil, fmt.Errorf("read node (%d, %d): %w", id.Level, id.Index, err)
	}
	if len(h) != HashSize {
		return nil, fmt.Errorf("%w: node (%d, %d) stored with %d bytes", ErrHashSize, id.Level, id.Index, len(h))
	}
	return h, nil
}

func rootOf(rng *compact.Range) ([]byte, error) {
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return EmptyRoot(), nil
	}
	return bytes.Clone(root), nil // the range keeps its own hashes
}

func cloneHashes(hs [][]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = bytes.Clone(h)
	}
	return out
}
