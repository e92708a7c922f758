package smt

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// flushStore is a NodeStore that notes which node keys an ApplyBatch's
// entries wrote, as the registry's node cache does before it writes each
// once into the Pebble batch.
type flushStore struct {
	nodes map[string][]byte
	dirty map[string]bool
}

func (s *flushStore) GetNode(k []byte) ([]byte, error) {
	v, ok := s.nodes[string(k)]
	if !ok {
		return nil, ErrNodeNotFound
	}
	return v, nil
}

func (s *flushStore) PutNode(k, v []byte) error {
	s.nodes[string(k)], s.dirty[string(k)] = v, true
	return nil
}

func (s *flushStore) DeleteNode(k []byte) error {
	delete(s.nodes, string(k))
	s.dirty[string(k)] = true
	return nil
}

// tileRecords returns the key of the tile of height h that holds node key
// k (the node key of its top node, at a depth that is a multiple of h),
// and the keys of the node records stored in it.
func (s *flushStore) tileRecords(k string, h int) (string, []string) {
	d := int(k[0])
	var path Key
	copy(path[:], k[1:])
	top := d / h * h
	var recs []string
	var walk func(depth int, p Key)
	walk = func(depth int, p Key) {
		if depth >= top+h || depth > maxInnerDepth {
			return
		}
		nk := string(nodeKey(depth, &p))
		if _, ok := s.nodes[nk]; !ok {
			return
		}
		recs = append(recs, nk)
		for side := range 2 {
			q := p
			q[depth/8] = q[depth/8]&^(0x80>>uint(depth%8)) | byte(side<<7)>>uint(depth%8)
			walk(depth+1, q)
		}
	}
	walk(top, path)
	return string(nodeKey(top, &path)), recs
}

// BenchmarkLayoutCount counts what the map's node records cost a write in
// storage, as the registry's BenchmarkApplyAccredit writes them (batches of
// 64 entries, two new keys each, each node record written once per batch),
// under the stored layout (one record per inner node) and under three
// layouts it could have: a tile of 2 or 4 levels holding its nodes'
// records whole, and a tile of 2 levels holding its four grandchildren
// only (its middle hashes recomputed on reading). Keys and bytes include
// the registry's table byte; a tile adds a byte of presence bits and a
// length byte per record. It counts, so the machine's load does not
// change it; it measures once, whatever b.N:
//
//	go test -run '^$' -bench BenchmarkLayoutCount -benchtime 1x ./registry/smt
func BenchmarkLayoutCount(b *testing.B) {
	const before, batches, entries, perEntry = 19200, 50, 64, 2
	r := rand.New(rand.NewPCG(1, 2))
	s := &flushStore{nodes: map[string][]byte{}, dirty: map[string]bool{}}
	m := New(s)
	ch := make([]Change, before)
	for i := range ch {
		ch[i] = Change{Key: randKey(r), Value: randValue(r)}
	}
	mustUpdate(b, m, ch)
	layouts := []string{"node", "tile2", "tile4", "tile2-grandchildren"}
	keys, bytes := map[string]int{}, map[string]int{}
	writes := 0
	for range batches {
		clear(s.dirty)
		for range entries {
			ch = ch[:0]
			for range perEntry {
				ch = append(ch, Change{Key: randKey(r), Value: randValue(r)})
			}
			mustUpdate(b, m, ch)
			writes++
		}
		for k := range s.dirty {
			keys["node"]++
			bytes["node"] += 1 + len(k) + len(s.nodes[k])
		}
		for _, h := range []int{2, 4} {
			seen := map[string]bool{}
			for k := range s.dirty {
				top, recs := s.tileRecords(k, h)
				if seen[top] {
					continue
				}
				seen[top] = true
				name := fmt.Sprintf("tile%d", h)
				keys[name]++
				bytes[name] += 1 + len(top) + 1
				for _, rk := range recs {
					bytes[name] += 1 + len(s.nodes[rk])
				}
				if h != 2 {
					continue
				}
				keys["tile2-grandchildren"]++
				bytes["tile2-grandchildren"] += 1 + len(top) + 2 // the four grandchildren's kinds
				for _, rk := range recs {
					rec := s.nodes[rk]
					if rk[0] != top[0] {
						bytes["tile2-grandchildren"] += len(rec) - 2 // a middle node's children
						continue
					}
					for _, kind := range []byte{rec[1] >> 4, rec[1] & 0x0f} {
						if kind == kindLeaf { // a leaf child of the top node is kept whole
							bytes["tile2-grandchildren"] += leafChildLen
						}
					}
				}
			}
		}
	}
	for b.Loop() {
	}
	for _, l := range layouts {
		b.ReportMetric(float64(keys[l])/float64(writes), l+"-records/write")
		b.ReportMetric(float64(bytes[l])/float64(writes), l+"-B/write")
	}
}
