package smt

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// benchKeys is the size of the map the benchmarks measure over:
// go test -bench . -smt.keys 1000000 for the 1M figures in DESIGN.md.
var benchKeys = flag.Int("smt.keys", 100000, "keys in the map the benchmarks measure over")

// benchMap is a map of benchKeys random keys, built once and shared by the
// benchmarks, which keep its size: they delete as many keys as they add.
type benchMap struct {
	m     *Map
	s     *MemStore
	r     *rand.Rand
	keys  []Key // present, in insertion order
	added []Key // added by a benchmark, deleted oldest first
}

var shared = map[int]*benchMap{}

// countingStore counts the calls made on a NodeStore: a measure of an
// update's cost that the machine's load does not change.
type countingStore struct {
	NodeStore
	gets, puts, deletes int
}

func (c *countingStore) GetNode(k []byte) ([]byte, error) { c.gets++; return c.NodeStore.GetNode(k) }
func (c *countingStore) PutNode(k, v []byte) error        { c.puts++; return c.NodeStore.PutNode(k, v) }
func (c *countingStore) DeleteNode(k []byte) error        { c.deletes++; return c.NodeStore.DeleteNode(k) }

func mustBenchMap(b *testing.B) *benchMap {
	b.Helper()
	n := *benchKeys
	if bm, ok := shared[n]; ok {
		return bm
	}
	bm := &benchMap{s: NewMemStore(), r: rand.New(rand.NewPCG(13, 14))}
	bm.m = New(bm.s)
	const batch = 1024
	for len(bm.keys) < n {
		ch := make([]Change, min(batch, n-len(bm.keys)))
		for i := range ch {
			ch[i] = Change{Key: randKey(bm.r), Value: randValue(bm.r)}
			bm.keys = append(bm.keys, ch[i].Key)
		}
		mustUpdate(b, bm.m, ch)
	}
	shared[n] = bm
	return bm
}

// changes returns b changes, a third each: a new key added, an existing key's
// value changed, a key added earlier deleted.
func (bm *benchMap) changes(b int) []Change {
	ch := make([]Change, b)
	for i := range ch {
		switch {
		case i%3 == 2 && len(bm.added) > 0:
			ch[i] = Change{Key: bm.added[0], Delete: true}
			bm.added = bm.added[1:]
		case i%3 == 1:
			ch[i] = Change{Key: bm.keys[bm.r.IntN(len(bm.keys))], Value: randValue(bm.r)}
		default:
			ch[i] = Change{Key: randKey(bm.r), Value: randValue(bm.r)}
			bm.added = append(bm.added, ch[i].Key)
		}
	}
	return ch
}

// BenchmarkUpdate reports the cost of one change in batches of 1, 64 and 1024
// changes, over the in-memory store.
func BenchmarkUpdate(b *testing.B) {
	bm := mustBenchMap(b)
	for _, size := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("keys=%d/batch=%d", *benchKeys, size), func(b *testing.B) {
			b.ReportAllocs()
			cs := &countingStore{NodeStore: bm.s}
			m := New(cs)
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				ch := bm.changes(size)
				b.StartTimer()
				start := cpuTime()
				if _, err := m.Update(ch); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - start
			}
			n := float64(b.N * size)
			b.ReportMetric(float64(b.Elapsed().Microseconds())/n, "µs/change")
			b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/change")
			b.ReportMetric(float64(cs.gets)/n, "gets/change")
			b.ReportMetric(float64(cs.puts+cs.deletes)/n, "writes/change")
		})
	}
}

// BenchmarkStorage reports the node records the map keeps per key.
func BenchmarkStorage(b *testing.B) {
	bm := mustBenchMap(b)
	for b.Loop() {
		if _, err := bm.m.Root(); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(len(bm.keys) + len(bm.added))
	b.ReportMetric(float64(bm.s.Len())/n, "records/key")
	b.ReportMetric(float64(bm.s.Bytes())/n, "B/key")
}

// BenchmarkProve reports proof sizes for present and absent keys, and the
// cost of making and verifying one.
func BenchmarkProve(b *testing.B) {
	bm := mustBenchMap(b)
	root, err := bm.m.Root()
	if err != nil {
		b.Fatal(err)
	}
	for _, present := range []bool{true, false} {
		b.Run(fmt.Sprintf("keys=%d/present=%v", *benchKeys, present), func(b *testing.B) {
			var total, siblings int
			for b.Loop() {
				k := randKey(bm.r)
				if present {
					k = bm.keys[bm.r.IntN(len(bm.keys))]
				}
				p, err := bm.m.Prove(k)
				if err != nil {
					b.Fatal(err)
				}
				enc, err := p.MarshalBinary()
				if err != nil {
					b.Fatal(err)
				}
				total += len(enc)
				siblings += len(p.Siblings)
			}
			b.ReportMetric(float64(total)/float64(b.N), "proof-B")
			b.ReportMetric(float64(siblings)/float64(b.N), "depth")
			_ = root
		})
	}
}

// BenchmarkVerify reports the cost of verifying an encoded presence proof.
func BenchmarkVerify(b *testing.B) {
	bm := mustBenchMap(b)
	root, err := bm.m.Root()
	if err != nil {
		b.Fatal(err)
	}
	k := bm.keys[len(bm.keys)/2]
	v, _, err := bm.m.Get(k)
	if err != nil {
		b.Fatal(err)
	}
	p, err := bm.m.Prove(k)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := p.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	start := cpuTime()
	for b.Loop() {
		if err := VerifyInclusion(root, k, v, enc); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkProveBatch reports the size of a batch proof of 15 present keys (a
// depth-3 trust chain's records) beside that of 15 single proofs.
func BenchmarkProveBatch(b *testing.B) {
	bm := mustBenchMap(b)
	const keys = 15
	b.Run(fmt.Sprintf("keys=%d/claims=%d", *benchKeys, keys), func(b *testing.B) {
		var batch, singles int
		for b.Loop() {
			ks := make([]Key, 0, keys)
			for len(ks) < keys {
				k := bm.keys[bm.r.IntN(len(bm.keys))]
				if !slices.Contains(ks, k) {
					ks = append(ks, k)
				}
			}
			_, proof, err := bm.m.ProveBatch(ks)
			if err != nil {
				b.Fatal(err)
			}
			batch += len(proof)
			for _, k := range ks {
				p, err := bm.m.Prove(k)
				if err != nil {
					b.Fatal(err)
				}
				enc, err := p.MarshalBinary()
				if err != nil {
					b.Fatal(err)
				}
				singles += len(enc)
			}
		}
		b.ReportMetric(float64(batch)/float64(b.N), "batch-B")
		b.ReportMetric(float64(singles)/float64(b.N), "singles-B")
	})
}
