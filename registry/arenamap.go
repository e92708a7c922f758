package registry

import (
	"encoding/binary"
	"fmt"
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
// the map moves on. The arena is chunks: a full chunk stays where it is and
// the next value goes into a new one, so growing copies nothing, and the
// chunks are of a few sizes the Go heap can hand out again once collected
// (arenaMin doubling to arenaChunk). A single arena grown by append was
// copied whole each time it grew by a quarter, into memory that was new to
// the process every time: in a follower under load about a third of its
// minor page faults were this cache's, the apply goroutine stalled on them
// (a page touched first costs some 12 µs of CPU on the benchmark machine).
// The arena is compacted (its live values copied into new chunks) when a
// chunk is full and more than half of what the chunks hold is values no
// key reaches any more, so it holds at most about twice the live values.
// Not safe for concurrent use.
type arenaMap[K comparable] struct {
	index  map[K]uint32 // the value's place: chunk<<chunkBits | offset
	chunks [][]byte     // filled in order; a value never spans two
	used   int          // the bytes the chunks hold, live or not
	live   int          // the chunks' bytes that index reaches
	// compactions counts the compactions, for tests.
	compactions int
}

const (
	// arenaMin is the first chunk's room; each next chunk has twice the
	// room of the one before, up to arenaChunk.
	arenaMin = 64 << 10
	// chunkBits is the bits of a place that are the offset in its chunk.
	chunkBits  = 20
	arenaChunk = 1 << chunkBits
	// maxChunks bounds the chunks a place can name.
	maxChunks = 1 << (32 - chunkBits)
)

func newArenaMap[K comparable]() *arenaMap[K] {
	return &arenaMap[K]{index: map[K]uint32{}}
}

// len returns the number of keys held.
func (m *arenaMap[K]) len() int { return len(m.index) }

// get returns the value at k, if held. It shares the arena's bytes, with
// no room to append into them.
func (m *arenaMap[K]) get(k K) ([]byte, bool) {
	place, ok := m.index[k]
	if !ok {
		return nil, false
	}
	v, _ := m.value(place)
	return v, true
}

// value returns the value at place, and the bytes it takes there with its
// length.
func (m *arenaMap[K]) value(place uint32) ([]byte, int) {
	return valueIn(m.chunks, place)
}

// valueIn is value in chunks.
func valueIn(chunks [][]byte, place uint32) ([]byte, int) {
	c := chunks[place>>chunkBits]
	off := int(place & (arenaChunk - 1))
	n, l := binary.Uvarint(c[off:])
	s := off + l
	e := s + int(n)
	return c[s:e:e], l + int(n)
}

// set makes v (copied) the value at k.
func (m *arenaMap[K]) set(k K, v []byte) {
	m.delete(k)
	need := binary.MaxVarintLen32 + len(v)
	if !m.fits(need) && m.used-m.live > m.live {
		m.compact()
	}
	m.index[k] = m.append(v)
}

// fits says whether a value of need bytes with its length fits in the last
// chunk.
func (m *arenaMap[K]) fits(need int) bool {
	if len(m.chunks) == 0 {
		return false
	}
	c := m.chunks[len(m.chunks)-1]
	return len(c)+need <= cap(c)
}

// append puts v after the values held, in a new chunk if the last has no
// room, and returns its place.
func (m *arenaMap[K]) append(v []byte) uint32 {
	need := binary.MaxVarintLen32 + len(v)
	if !m.fits(need) {
		if len(m.chunks) == maxChunks {
			panic(fmt.Sprintf("registry: an arena map of %d chunks has no room for %d bytes more", len(m.chunks), len(v)))
		}
		size := arenaMin
		if n := len(m.chunks); n > 0 {
			size = min(2*cap(m.chunks[n-1]), arenaChunk)
		}
		// A value too long for a chunk has one of its own; it starts at
		// offset 0, so its place still fits.
		m.chunks = append(m.chunks, make([]byte, 0, max(size, need)))
	}
	i := len(m.chunks) - 1
	c := m.chunks[i]
	off := len(c)
	c = binary.AppendUvarint(c, uint64(len(v)))
	c = append(c, v...)
	m.chunks[i] = c
	m.used += len(c) - off
	m.live += len(c) - off
	return uint32(i)<<chunkBits | uint32(off)
}

// delete forgets the value at k, if held.
func (m *arenaMap[K]) delete(k K) {
	if place, ok := m.index[k]; ok {
		_, n := m.value(place)
		m.live -= n
		delete(m.index, k)
	}
}

// compact copies the live values into new chunks. Values returned before
// keep the old chunks' bytes, which nothing changes; the old chunks are
// the collector's once no such value is held.
func (m *arenaMap[K]) compact() {
	old := m.chunks
	m.chunks, m.used, m.live = nil, 0, 0
	for k, place := range m.index {
		v, _ := valueIn(old, place)
		m.index[k] = m.append(v)
	}
	m.compactions++
}

// each calls fn with every key and value held, in no order.
func (m *arenaMap[K]) each(fn func(k K, v []byte)) {
	for k, off := range m.index {
		v, _ := m.value(off)
		fn(k, v)
	}
}
