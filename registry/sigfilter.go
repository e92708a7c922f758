package registry

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// sigFilter is a Bloom filter over the tables of signatures and of signed
// content: every digest stored in either (or in the batch being applied)
// is in it, so "not in the filter" proves an operation is not a
// resubmission and the duplicate check skips its lookup in Pebble. Most
// operations are new, and that lookup searched the memtable's skiplist for
// a key that was never there: about 5 % of the cluster's CPU per write.
//
// The filter may hold more than the tables (a restore that failed, a
// snapshot that replaced the state): that only costs a lookup. It must
// never hold less, or nodes could disagree about a duplicate; every path
// that stores digests feeds it: the apply (add), opening the state and
// restoring a snapshot (rebuilt from both tables). When more are
// stored than it was sized for, the apply rebuilds it twice as large from
// the batch being applied (which reads through to the committed state),
// once per doubling of the registry.
//
// The apply alone adds to it; the leader's check (Check) asks it at the
// same time. Its words are set and read atomically, and a new filter
// replaces the old one whole (State.sigs is an atomic pointer), so a
// reader sees each bit set before it asked, or not yet: one not yet set
// belongs to an entry being applied, which the apply itself decides as a
// duplicate or not. A reader never sees a bit cleared.
//
// Written here rather than taken from a Bloom filter library: its keys
// are already SHA-256 digests, so the probe positions are read from the
// digest's bytes and no hashing is needed; that is the whole filter.
type sigFilter struct {
	bits     []uint64 // read and set atomically
	mask     uint64   // bit count - 1 (a power of two)
	count    uint64   // the apply's alone
	capacity uint64
}

// Filter sizing: 16 bits per signature and 8 probes keep false positives
// near 0.1 % at capacity; room for twice the signatures stored at open,
// and at least 1 << 20.
const (
	sigFilterBitsPer = 16
	sigFilterProbes  = 8
	sigFilterMin     = 1 << 20
)

func newSigFilter(expected uint64) *sigFilter {
	capacity := max(2*expected, sigFilterMin)
	nbits := uint64(1)
	for nbits < capacity*sigFilterBitsPer {
		nbits <<= 1
	}
	return &sigFilter{bits: make([]uint64, nbits/64), mask: nbits - 1, capacity: capacity}
}

// probe returns the i-th bit position of a signature digest (double
// hashing over two 64-bit halves of the digest).
func (f *sigFilter) probe(digest []byte, i uint64) uint64 {
	h1 := binary.LittleEndian.Uint64(digest[0:8])
	h2 := binary.LittleEndian.Uint64(digest[8:16]) | 1
	return (h1 + i*h2) & f.mask
}

func (f *sigFilter) add(digest []byte) {
	for i := range uint64(sigFilterProbes) {
		p := f.probe(digest, i)
		atomic.OrUint64(&f.bits[p/64], 1<<(p%64))
	}
	f.count++
}

// mayContain reports false only for a digest never added.
func (f *sigFilter) mayContain(digest []byte) bool {
	for i := range uint64(sigFilterProbes) {
		p := f.probe(digest, i)
		if atomic.LoadUint64(&f.bits[p/64])&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

// saturated reports whether more signatures were added than the filter
// was sized for.
func (f *sigFilter) saturated() bool { return f.count > f.capacity }

// buildSigFilter reads every signature hash the state holds: once to
// count them, once to add them.
func buildSigFilter(r pebble.Reader) (*sigFilter, error) {
	var n uint64
	if err := eachSigDigest(r, func([]byte) { n++ }); err != nil {
		return nil, err
	}
	f := newSigFilter(n)
	if err := eachSigDigest(r, f.add); err != nil {
		return nil, err
	}
	return f, nil
}

// eachSigDigest calls fn with every digest of the two tables duplicates
// are found by (findDuplicate): signatures (tableSigs) and signed content
// (tableSignedContent). Their digests are SHA-256 of different inputs, so
// one filter holds both.
func eachSigDigest(r pebble.Reader, fn func(digest []byte)) error {
	for _, t := range []byte{tableSigs, tableSignedContent} {
		if err := eachDigestIn(r, t, fn); err != nil {
			return err
		}
	}
	return nil
}

func eachDigestIn(r pebble.Reader, table byte, fn func(digest []byte)) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{table}, UpperBound: []byte{table + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if k := it.Key(); len(k) == 1+sha256.Size {
			fn(k[1:])
		}
	}
	if err := it.Error(); err != nil {
		_ = it.Close() // reports the error it.Error returned
		return fmt.Errorf("read signatures: %w", err)
	}
	return it.Close()
}

// resizeSigs rebuilds a saturated filter from b, an indexed batch: the
// committed signatures and the batch's own.
func (s *applier) resizeSigs(b *pebble.Batch) {
	f, err := buildSigFilter(b)
	if err != nil {
		panic(fmt.Sprintf("registry: rebuild the signature filter: %v", err))
	}
	s.log.Info("signature filter resized", "signatures", f.count, "capacity", f.capacity)
	s.sigs.Store(f)
}
