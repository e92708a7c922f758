package registry

import (
	"encoding/binary"
	"fmt"
	"math"
)

// arenaMap is a map from fixed-size keys to byte strings in memory the
// garbage collector does not scan: the values in one arena, each after
// its length, and an index from key to the value's place in it, a map
// with no pointers in its keys or values. The apply keeps two large
// caches in it (the map's deep records, the received listings): held as
// Go maps of slices and strings they were some 500,000 objects at
// 100,000 accreditations for every collection to mark, and a full
// collection took 72–78 ms of CPU, 15–27 ms with them in arena maps
// (BenchmarkCollection; DESIGN.md, "The apply's caches out of the
// collector's way").
//
// A value is never changed in the arena: a new one for the same key goes
// after the others, and a returned value stays valid and unchanged however
// the map moves on. The arena is compacted (its live values copied into a
// new one) when it is full and more than half of it is values no key
// reaches any more, so it holds at most about twice the live values. Not
// safe for concurrent use.
type arenaMap[K comparable] struct {
	index map[K]uint32 // the value's place in arena
	arena []byte
	live  int // the arena's bytes that index reaches
}

// arenaMin is the least room a new arena is made with.
const arenaMin = 64 << 10

func newArenaMap[K comparable]() *arenaMap[K] {
	return &arenaMap[K]{index: map[K]uint32{}}
}

// len returns the number of keys held.
func (m *arenaMap[K]) len() int { return len(m.index) }

// get returns the value at k, if held. It shares the arena's bytes, with
// no room to append into them.
func (m *arenaMap[K]) get(k K) ([]byte, bool) {
	off, ok := m.index[k]
	if !ok {
		return nil, false
	}
	v, _ := m.value(off)
	return v, true
}

// value returns the value at place off of the arena, and the bytes it
// takes there with its length.
func (m *arenaMap[K]) value(off uint32) ([]byte, int) {
	n, l := binary.Uvarint(m.arena[off:])
	s := int(off) + l
	e := s + int(n)
	return m.arena[s:e:e], l + int(n)
}

// set makes v (copied) the value at k.
func (m *arenaMap[K]) set(k K, v []byte) {
	m.delete(k)
	need := binary.MaxVarintLen32 + len(v)
	if len(m.arena)+need > cap(m.arena) && len(m.arena)-m.live > m.live {
		m.compact(need)
	}
	if uint64(len(m.arena))+uint64(need) > math.MaxUint32 {
		panic(fmt.Sprintf("registry: an arena map of %d bytes has no room for %d more", len(m.arena), len(v)))
	}
	off := uint32(len(m.arena))
	m.arena = binary.AppendUvarint(m.arena, uint64(len(v)))
	m.arena = append(m.arena, v...)
	m.index[k] = off
	m.live += len(m.arena) - int(off)
}

// delete forgets the value at k, if held.
func (m *arenaMap[K]) delete(k K) {
	if off, ok := m.index[k]; ok {
		_, n := m.value(off)
		m.live -= n
		delete(m.index, k)
	}
}

// compact copies the live values into a new arena with room for twice
// them and need bytes more. Values returned before keep the old arena's
// bytes, which nothing changes.
func (m *arenaMap[K]) compact(need int) {
	arena := make([]byte, 0, max(2*m.live+need, arenaMin))
	for k, off := range m.index {
		v, _ := m.value(off)
		m.index[k] = uint32(len(arena))
		arena = binary.AppendUvarint(arena, uint64(len(v)))
		arena = append(arena, v...)
	}
	m.arena = arena
}

// each calls fn with every key and value held, in no order.
func (m *arenaMap[K]) each(fn func(k K, v []byte)) {
	for k, off := range m.index {
		v, _ := m.value(off)
		fn(k, v)
	}
}
