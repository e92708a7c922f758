// Command candidates measures the verifiable-map candidates that
// registry/smt/DESIGN.md compares with registry/smt: Trillian's merkle/smt
// (HStar3) and torchwood's prefix tree. It is a module of its own so that
// trustreg does not depend on either:
//
//	cd registry/smt/candidates && go run . -map trillian -n 10000
//	cd registry/smt/candidates && go run . -map torchwood -n 100000
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"time"

	"filippo.io/torchwood/prefix"
	"github.com/google/trillian/merkle/smt"
	"github.com/google/trillian/merkle/smt/node"
)

func main() {
	n := flag.Int("n", 100000, "keys in the map before measuring")
	which := flag.String("map", "trillian", "trillian or torchwood")
	flag.Parse()
	var err error
	switch *which {
	case "trillian":
		err = runTrillian(*n)
	case "torchwood":
		err = runTorchwood(*n)
	default:
		err = fmt.Errorf("unknown map %q", *which)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func randKeys(r *rand.ChaCha8, n int) [][32]byte {
	ks := make([][32]byte, n)
	for i := range ks {
		r.Read(ks[i][:])
	}
	return ks
}

// A 256-level tree with per-level empty hashes, so that a deleted leaf gives
// the same root as one never written.
type levelHasher struct{ empty [257][]byte }

func newLevelHasher() *levelHasher {
	h := &levelHasher{}
	h.empty[0] = make([]byte, 32)
	for i := 1; i <= 256; i++ {
		h.empty[i] = h.HashChildren(h.empty[i-1], h.empty[i-1])
	}
	return h
}

func (h *levelHasher) HashEmpty(_ int64, id node.ID) []byte { return h.empty[256-id.BitLen()] }
func (h *levelHasher) HashChildren(l, r []byte) []byte {
	s := sha256.New()
	s.Write([]byte{1})
	s.Write(l)
	s.Write(r)
	return s.Sum(nil)
}

type memAcc struct {
	m      map[node.ID][]byte
	gets   int // node hashes asked for
	writes int // node hashes written
}

func (a *memAcc) Get(_ context.Context, ids []node.ID) (map[node.ID][]byte, error) {
	a.gets += len(ids)
	res := make(map[node.ID][]byte, len(ids))
	for _, id := range ids {
		if h, ok := a.m[id]; ok {
			res[id] = h
		}
	}
	return res, nil
}

func (a *memAcc) Set(_ context.Context, nodes []smt.Node) error {
	a.writes += len(nodes)
	for _, n := range nodes {
		a.m[n.ID] = n.Hash
	}
	return nil
}

func leafHash(k, v [32]byte) []byte {
	s := sha256.New()
	s.Write([]byte{0})
	s.Write(k[:])
	s.Write(v[:])
	return s.Sum(nil)
}

func runTrillian(n int) error {
	ctx := context.Background()
	r := rand.NewChaCha8([32]byte{1})
	h := newLevelHasher()
	w := smt.NewWriter(0, h, 256, 0)
	acc := &memAcc{m: map[node.ID][]byte{}}
	var root []byte
	write := func(keys [][32]byte) error {
		nodes := make([]smt.Node, len(keys))
		for i, k := range keys {
			nodes[i] = smt.Node{ID: node.NewID(string(k[:]), 256), Hash: leafHash(k, k)}
		}
		if err := smt.Prepare(nodes, 256); err != nil {
			return err
		}
		top, err := w.Write(ctx, nodes, acc)
		root = top.Hash
		return err
	}
	start := time.Now()
	for done := 0; done < n; done += 1024 {
		if err := write(randKeys(r, min(1024, n-done))); err != nil {
			return err
		}
	}
	fmt.Printf("trillian: built %d keys in %v, root %x\n", n, time.Since(start), root[:4])
	var bytes int
	for id := range acc.m {
		bytes += 1 + len(id.FullBytes()) + 1 + 32 // bit length, path, last byte, hash
	}
	fmt.Printf("trillian: %d nodes stored, %.1f nodes/key, about %.0f bytes/key (key+hash, no store overhead)\n",
		len(acc.m), float64(len(acc.m))/float64(n), float64(bytes)/float64(n))
	nonEmpty := 0
	probe := randKeys(r, 100)
	for _, k := range probe {
		id := node.NewID(string(k[:]), 256)
		for d := uint(1); d <= 256; d++ {
			if _, ok := acc.m[id.Prefix(d).Sibling()]; ok {
				nonEmpty++
			}
		}
	}
	fmt.Printf("trillian: absent-key proof: 256 siblings, %.1f non-empty on average (bitmap-encoded %.0f bytes)\n",
		float64(nonEmpty)/100, 32+32*float64(nonEmpty)/100)
	for _, b := range []int{1, 64, 1024} {
		rounds := max(1, 4096/b)
		acc.gets, acc.writes = 0, 0
		start, cpu := time.Now(), cpuTime()
		for range rounds {
			if err := write(randKeys(r, b)); err != nil {
				return err
			}
		}
		el, cpuEl := time.Since(start), cpuTime()-cpu
		k := float64(rounds * b)
		fmt.Printf("trillian: batch %4d: %.1f µs/key (cpu %.1f), %.1f node reads/key, %.1f node writes/key (each written node one hash)\n",
			b, float64(el.Microseconds())/k, float64(cpuEl.Microseconds())/k, float64(acc.gets)/k, float64(acc.writes)/k)
	}
	return nil
}

func runTorchwood(n int) error {
	ctx := context.Background()
	r := rand.NewChaCha8([32]byte{1})
	hf := func(b []byte) [32]byte { return sha256.Sum256(b) }
	st := &countStorage{Storage: prefix.NewMemoryStorage()}
	if err := prefix.InitStorage(ctx, hf, st); err != nil {
		return err
	}
	t := prefix.NewTree(hf, st)
	start := time.Now()
	keys := randKeys(r, n)
	for _, k := range keys {
		if err := t.Insert(ctx, k, k); err != nil {
			return err
		}
	}
	fmt.Printf("torchwood: built %d keys in %v\n", n, time.Since(start))
	var plen, alen int
	for i := range 100 {
		_, p, err := t.Lookup(ctx, keys[i*7])
		if err != nil {
			return err
		}
		plen += len(p)
	}
	for _, k := range randKeys(r, 100) {
		_, p, err := t.Lookup(ctx, k)
		if err != nil {
			return err
		}
		alen += len(p)
	}
	// A proof node is a label (4-byte bit length, 32 bytes) and a hash.
	fmt.Printf("torchwood: present proof %.1f nodes (%.0f bytes as 68-byte label+hash), absent %.1f nodes (%.0f bytes)\n",
		float64(plen)/100, 68*float64(plen)/100, float64(alen)/100, 68*float64(alen)/100)
	fmt.Printf("torchwood: nodes stored: leaf + internal, 2 per key less one; each 36-byte label key and 140-byte value (label, two child labels, hash)\n")
	for _, b := range []int{1, 64, 1024} {
		rounds := max(1, 4096/b)
		st.loads, st.stores = 0, 0
		start, cpu := time.Now(), cpuTime()
		for range rounds {
			for _, k := range randKeys(r, b) {
				if err := t.Insert(ctx, k, k); err != nil {
					return err
				}
			}
		}
		el, cpuEl := time.Since(start), cpuTime()-cpu
		k := float64(rounds * b)
		fmt.Printf("torchwood: batch %4d: %.1f µs/key (cpu %.1f), %.1f node loads/key, %.1f node stores/key (inserted one by one; no batch API)\n",
			b, float64(el.Microseconds())/k, float64(cpuEl.Microseconds())/k, float64(st.loads)/k, float64(st.stores)/k)
	}
	return nil
}

type countStorage struct {
	prefix.Storage
	loads, stores int
}

func (c *countStorage) Load(ctx context.Context, l prefix.Label) (*prefix.Node, error) {
	c.loads++
	return c.Storage.Load(ctx, l)
}

func (c *countStorage) Store(ctx context.Context, nodes ...*prefix.Node) error {
	c.stores += len(nodes)
	return c.Storage.Store(ctx, nodes...)
}

// cpuTime returns the CPU time the process has used, which other processes on
// a shared machine inflate less than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
