package registry

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
)

// topKey returns the map's node key at depth d whose path starts with the
// d bits of p (smt's nodeKey, written out here so the test does not share
// the code it checks).
func topKey(d int, p uint32) []byte {
	n := (d + 7) / 8
	k := []byte{byte(d)}
	v := p << uint(8*n-d)
	for i := n - 1; i >= 0; i-- {
		k = append(k, byte(v>>(8*uint(i))))
	}
	return k
}

// Every node key down to mapTopDepth has a slot of its own, and the slots
// run in the keys' order; deeper keys and keys of the wrong length have
// none.
func TestTopSlot(t *testing.T) {
	var prev []byte
	want := 0
	for d := 0; d <= mapTopDepth; d++ {
		for p := uint32(0); p < 1<<d; p++ {
			k := topKey(d, p)
			i, ok := topSlot(k)
			if !ok || i != want {
				t.Fatalf("topSlot(%x) = %d, %v; want %d", k, i, ok, want)
			}
			if back := appendSlotKey(nil, i); !bytes.Equal(back, k) {
				t.Fatalf("appendSlotKey(%d) = %x, want %x", i, back, k)
			}
			if prev != nil && bytes.Compare(prev, k) >= 0 {
				t.Fatalf("key %x after %x", k, prev)
			}
			prev, want = k, want+1
		}
	}
	if want != mapTopSlots {
		t.Fatalf("%d slots, mapTopSlots is %d", want, mapTopSlots)
	}
	for _, k := range [][]byte{nil, topKey(mapTopDepth+1, 0), {3}, {3, 0, 0}, {9, 0x80}} {
		if i, ok := topSlot(k); ok {
			t.Fatalf("topSlot(%x) = %d, want none", k, i)
		}
	}
}

// The top cache follows the apply's writes: batch after batch, every
// record it holds is the map's (the overlay over the database), and the
// map the apply leaves equals one rebuilt from the records. Without the
// layer's write-through the cache keeps a batch's old records and the
// next batch computes its roots from them.
func TestMapTopFollowsWrites(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelCommitment)
	for round := range 4 {
		applyColleges(t, f, round, 3, 20)
		top := f.s.apply.mapTop.Load()
		held := 0
		for d := 0; d <= mapTopDepth; d++ {
			for p := uint32(0); p < 1<<d; p++ {
				k := topKey(d, p)
				got, ok := top.get(k)
				if !ok {
					continue
				}
				held++
				want, err := (overlayNodes{ov: f.s.mapOverlay.Load(), r: mapNodes{r: f.s.db}}).GetNode(k)
				if err != nil {
					want = nil
				}
				if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
					t.Fatalf("round %d: the top cache holds %x at %x, the database %x", round, got, k, want)
				}
			}
		}
		if held == 0 {
			t.Fatalf("round %d: the top cache holds nothing", round)
		}
		checkRebuild(t, f.s, "a round of colleges")
	}
}

// A batch that wrote map nodes and never reached its flush (an apply that
// panicked; the node stops, a test may go on) leaves nothing the next
// batch reads: its writes at the top wait apart from the committed records
// and the next batch's node cache drops them.
func TestMapTopDropsAnUnflushedBatch(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelCommitment)
	applyColleges(t, f, 0, 1, 8)
	top := f.s.apply.mapTop.Load()
	c := newNodeCache(f.s.db, f.s.mapOverlay.Load(), top, 1)
	root := topKey(0, 0)
	if err := c.DeleteNode(root); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetNode(root); !errors.Is(err, smt.ErrNodeNotFound) {
		t.Fatalf("the batch reads its own delete of the root: %v", err)
	}
	if v, ok := top.get(root); !ok || v == nil {
		t.Fatalf("the committed root record is gone from the top cache (%x, %v)", v, ok)
	}
	applyColleges(t, f, 1, 2, 8)
	checkRebuild(t, f.s, "after an unflushed batch")
}

// applyColleges accredits batches × n new colleges (named by round) under
// the fixture's QA agency, in batches of n.
func applyColleges(t *testing.T, f *chainFixture, round, batches, n int) {
	t.Helper()
	for b := range batches {
		entries := make([]Entry, 0, n)
		for i := range n {
			op := f.sign(f.qa, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.qa.DID, "subject": fmt.Sprintf("did:web:college-%d-%d-%d.example", round, b, i),
				"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
			})
			f.index++
			entries = append(entries, Entry{Index: f.index, Time: f.now.Add(time.Duration(f.index) * time.Microsecond), Data: EncodeOperation(op)})
		}
		for _, r := range f.s.ApplyBatch(entries) {
			if !r.Accepted {
				t.Fatal(r.Reason)
			}
		}
	}
}

// TestMapTopPendingSlots checks the running batch's top records: a
// batch's own write is what it reads back, a later write to the slot
// replaces it, a deletion reads as a known absence, and once the batch is
// dropped or handed over its writes are gone even where a later batch's
// write took their place in the list.
func TestMapTopPendingSlots(t *testing.T) {
	top := newMapTop()
	committed := []byte("committed")
	top.setKnown(5, committed)
	top.setPending(5, []byte("a"))
	top.setPending(9, []byte("b"))
	top.setPending(5, []byte("a2"))
	top.setPending(2, nil)
	for _, c := range []struct {
		slot  int
		want  []byte
		known bool
	}{{5, []byte("a2"), true}, {9, []byte("b"), true}, {2, nil, true}, {3, nil, false}} {
		if v, ok := top.getSlot(c.slot); ok != c.known || !bytes.Equal(v, c.want) {
			t.Fatalf("slot %d in the batch: %q, %v; want %q, %v", c.slot, v, ok, c.want, c.known)
		}
	}
	if len(top.pend) != 3 {
		t.Fatalf("%d pending records for three slots", len(top.pend))
	}
	top.discardPending()
	// The next batch's writes take the places in the list that slots 5
	// and 9 had; slot 2's place is past the list's end.
	top.setPending(9, []byte("c"))
	top.setPending(1, []byte("d"))
	if v, ok := top.getSlot(5); !ok || !bytes.Equal(v, committed) {
		t.Fatalf("slot 5 after the batch was dropped: %q, %v; want the committed record", v, ok)
	}
	if v, ok := top.getSlot(2); ok || v != nil {
		t.Fatalf("slot 2 after the batch was dropped: %q, %v; want unknown", v, ok)
	}
	if v, _ := top.getSlot(9); !bytes.Equal(v, []byte("c")) {
		t.Fatalf("slot 9 in the next batch: %q, want %q", v, "c")
	}
}

// The top cache's slots at every depth down to mapTopDepth hold what they
// were given, apart from the running batch's writes, and a level's slots
// are made only when the cache first reaches it.
func TestMapTopLevels(t *testing.T) {
	top := newMapTop()
	for d := 0; d <= mapTopDepth; d++ {
		if top.levels[d].recs != nil {
			t.Fatalf("level %d made before it was reached", d)
		}
	}
	last := topKey(mapTopDepth, 1<<mapTopDepth-1)
	deep, ok := topSlot(last)
	if !ok {
		t.Fatalf("no slot for %x", last)
	}
	if _, known := top.getSlot(deep); known {
		t.Fatal("an empty cache knows the last slot")
	}
	if top.levels[mapTopDepth].recs == nil || top.levels[mapTopDepth-1].recs != nil {
		t.Fatal("reading the deepest slot made other levels than its own")
	}
	rec := []byte{1, 2, 3}
	top.setKnown(deep, rec)
	if got, known := top.get(last); !known || !bytes.Equal(got, rec) {
		t.Fatalf("get(%x) = %x, %v; want %x", last, got, known, rec)
	}
	// A batch's write shadows the committed record until dropped.
	top.setPending(deep, nil)
	if got, known := top.getSlot(deep); !known || got != nil {
		t.Fatalf("the batch's delete reads as %x, %v", got, known)
	}
	if got, _ := top.get(last); !bytes.Equal(got, rec) {
		t.Fatalf("the batch's delete reached the committed record: %x", got)
	}
	top.discardPending()
	if got, known := top.getSlot(deep); !known || !bytes.Equal(got, rec) {
		t.Fatalf("after the drop the slot reads %x, %v; want %x", got, known, rec)
	}
	// Known absent is not unknown.
	root, _ := topSlot(topKey(0, 0))
	top.setKnown(root, nil)
	if got, known := top.getSlot(root); !known || got != nil {
		t.Fatalf("a known absent root reads %x, %v", got, known)
	}
	if _, known := top.get(topKey(mapTopDepth, 0)); known {
		t.Fatal("a slot never set is known")
	}
}

// The top cache's records below mapTopDepth follow the apply's writes as
// the top's do: batch after batch, through overlay flushes into the
// database, every deep record it holds is the map's, and the roots equal
// a map in memory given the same changes. Keys that share their first 30
// bytes put most of the map's records far below the top, which a map of
// SHA-256 keys reaches only at tens of thousands of keys. Without the
// layer's write-through the cache keeps a record a batch replaced, and a
// later batch computes a wrong root from it. At a bound of 100 the cache
// fills and goes on holding what it holds, the map's records still.
func TestMapTopDeepRecords(t *testing.T) {
	for _, bound := range []int{mapDeepRecords, 100} {
		t.Run(fmt.Sprint("bound=", bound), func(t *testing.T) {
			db, err := pebble.Open(t.TempDir(), stateOptions(pebbleLogger{log: slog.New(slog.DiscardHandler)}))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = db.Close() }()
			rng := rand.New(rand.NewPCG(7, uint64(bound)))
			pool := make([]smt.Key, 64)
			for i := range pool {
				pool[i][0] = 0x5a // the first 30 bytes in common
				pool[i][30], pool[i][31] = byte(rng.Uint32()), byte(rng.Uint32())
				if i%8 == 0 { // and some anywhere
					for j := range pool[i] {
						pool[i][j] = byte(rng.Uint32())
					}
				}
			}
			top := newMapTop()
			top.deepMax = bound
			ref := smt.New(smt.NewMemStore())
			ov := emptyOverlay
			held := 0
			for batch := range 30 {
				c := newNodeCache(db, ov, top, 3)
				m := smt.New(c)
				for range 3 { // entries
					var changes []smt.Change
					for range 1 + rng.IntN(6) {
						ch := smt.Change{Key: pool[rng.IntN(len(pool))], Delete: rng.IntN(4) == 0}
						if !ch.Delete {
							ch.Value[0], ch.Value[1] = byte(batch), byte(rng.Uint32())
						}
						changes = append(changes, ch)
					}
					got, err := m.Update(changes)
					if err != nil {
						t.Fatal(err)
					}
					want, err := ref.Update(changes)
					if err != nil {
						t.Fatal(err)
					}
					if got != want {
						t.Fatalf("batch %d: root %x, the map in memory's %x", batch, got, want)
					}
				}
				ov = ov.with(newOverlayLayer(c.layer(3)), 3)
				if batch%7 == 6 { // a flush into the database
					b := db.NewBatch()
					writeMapNodes(b, ov)
					if err := b.Commit(pebble.NoSync); err != nil {
						t.Fatal(err)
					}
					ov = emptyOverlay
				}
				if top.deep != nil {
					top.deep.each(func(dk deepKey, got []byte) {
						k := dk[1 : 1+int(dk[0])]
						if _, isTop := topSlot(k); isTop {
							t.Fatalf("batch %d: a top key %x among the deep records", batch, k)
						}
						want, err := (overlayNodes{ov: ov, r: mapNodes{r: db}}).GetNode(k)
						if err != nil || !bytes.Equal(got, want) {
							t.Fatalf("batch %d: the cache holds %x at %x, the map %x (%v)", batch, got, k, want, err)
						}
					})
					held = max(held, top.deep.len())
				}
			}
			switch {
			case top.deep == nil || held == 0:
				t.Fatalf("the deep records were dropped or never held (at most %d)", held)
			case held > bound:
				t.Fatalf("%d deep records held past the bound %d", held, bound)
			case bound < mapDeepRecords && held < bound:
				t.Fatalf("%d deep records held, never the bound %d", held, bound)
			}
		})
	}
}

// A full deep cache takes in no new key but replaces and deletes the
// records it holds, and a delete makes room for one; while full, every
// deepProbe reads below the top decide whether it is kept (a quarter or
// more of them found their record) or dropped for good. Without the bound
// it grows past deepMax; without the drop it is never dropped; dropping at
// the first probe drops the kept one.
func TestMapTopDeepBound(t *testing.T) {
	key := func(i int) []byte { return []byte{20, byte(i >> 8), byte(i), 0} } // depth 20: below the top
	rec := func(i, v int) []byte { return []byte{1, 0x22, byte(i), byte(v)} }
	top := newMapTop()
	top.deepMax, top.deepProbe = 4, 8
	for i := range 6 {
		top.setDeep(key(i), rec(i, 0))
	}
	if top.deep.len() != 4 {
		t.Fatalf("%d records held at a bound of 4", top.deep.len())
	}
	for i := range 6 {
		v, ok := top.deep.get(mustDeepKey(t, key(i)))
		if ok != (i < 4) || ok && !bytes.Equal(v, rec(i, 0)) {
			t.Fatalf("record %d: %x, %v", i, v, ok)
		}
	}
	top.setDeep(key(1), rec(1, 1)) // held: replaced
	top.setDeep(key(2), nil)       // held: deleted, which makes room
	top.setDeep(key(5), rec(5, 1))
	top.setDeep(key(4), rec(4, 1)) // full again: not taken in
	for i, want := range [][]byte{rec(0, 0), rec(1, 1), nil, rec(3, 0), nil, rec(5, 1)} {
		v, ok := top.deep.get(mustDeepKey(t, key(i)))
		if ok != (want != nil) || !bytes.Equal(v, want) {
			t.Fatalf("record %d: %x, %v, want %x", i, v, ok, want)
		}
	}
	// Reads while full: two of eight found (a quarter) keeps it, and the
	// count starts again; one of eight drops it.
	reads := func(hits int) {
		for j := range 8 {
			i := 4 // not held
			if j < hits {
				i = 0
			}
			top.getDeep(key(i))
		}
	}
	reads(2)
	if top.deep == nil {
		t.Fatal("dropped with a quarter of the reads found")
	}
	reads(1)
	if top.deep != nil {
		t.Fatal("kept with an eighth of the reads found")
	}
	if v, ok := top.getDeep(key(0)); ok || v != nil {
		t.Fatalf("a dropped cache answered %x", v)
	}
	top.setDeep(key(0), rec(0, 2)) // dropped for good
	if top.deep != nil {
		t.Fatal("a dropped cache came back")
	}
}

func mustDeepKey(t *testing.T, k []byte) deepKey {
	t.Helper()
	dk, ok := deepKeyOf(k)
	if !ok {
		t.Fatalf("no deep key for %x", k)
	}
	return dk
}

// An arena map keeps every value as set, through compactions, and a value
// returned before a later set, delete or compaction keeps its bytes; the
// arena stays within about twice the live values (and its least size)
// after compacting.
func TestArenaMap(t *testing.T) {
	d := newArenaMap[deepKey]()
	ref := map[deepKey][]byte{}
	type seen struct {
		v, want []byte
	}
	var returned []seen
	rng := rand.New(rand.NewPCG(3, 9))
	keys := make([]deepKey, 500)
	for i := range keys {
		keys[i], _ = deepKeyOf([]byte{byte(16 + i%200), byte(i), byte(i >> 8), 0xa5})
	}
	for step := range 40000 {
		dk := keys[rng.IntN(len(keys))]
		before := d.compactions
		switch rng.IntN(10) {
		case 0:
			d.delete(dk)
			delete(ref, dk)
		default:
			v := make([]byte, rng.IntN(300))
			for i := range v {
				v[i] = byte(rng.Uint32())
			}
			ref[dk] = slices.Clone(v)
			d.set(dk, v)
			clear(v) // the cache holds a copy
		}
		if d.compactions != before {
			// Chunks doubling from arenaMin hold at most twice the live
			// values and the first chunk; each chunk may end in room too
			// short for the next value.
			if bound := 2*d.live + arenaMin + len(d.chunks)*(300+binary.MaxVarintLen32); d.held() > bound {
				t.Fatalf("step %d: compacted into %d bytes for %d live (bound %d)", step, d.held(), d.live, bound)
			}
		}
		if d.used-d.live > d.live+d.held()/2+arenaMin {
			t.Fatalf("step %d: %d bytes dead for %d live: not compacted", step, d.used-d.live, d.live)
		}
		if v, ok := d.get(keys[rng.IntN(len(keys))]); ok && cap(v) != len(v) {
			t.Fatalf("step %d: a value with room to append into the arena", step)
		} else if ok && len(returned) < 2000 {
			returned = append(returned, seen{v: v, want: slices.Clone(v)})
		}
		if step%997 == 0 || step == 39999 {
			if d.len() != len(ref) {
				t.Fatalf("step %d: %d records held, want %d", step, d.len(), len(ref))
			}
			live := 0
			for k, want := range ref {
				got, ok := d.get(k)
				if !ok || !bytes.Equal(got, want) {
					t.Fatalf("step %d: record %x is %x (%v), want %x", step, k, got, ok, want)
				}
				live += len(binary.AppendUvarint(nil, uint64(len(want)))) + len(want)
			}
			if live != d.live {
				t.Fatalf("step %d: %d live bytes counted, %d held", step, d.live, live)
			}
			for i, r := range returned {
				if !bytes.Equal(r.v, r.want) {
					t.Fatalf("step %d: a record returned earlier (%d) changed", step, i)
				}
			}
		}
	}
	if d.compactions < 3 {
		t.Fatalf("only %d compactions: the test does not cover them", d.compactions)
	}
	if len(d.chunks) < 2 {
		t.Fatalf("%d chunks: the test does not cover values in several", len(d.chunks))
	}
}

// A value longer than a chunk gets a chunk of its own, and values around
// it keep theirs; chunks double from arenaMin to arenaChunk; growing the
// arena moves no value (a value returned before shares its chunk still).
func TestArenaMapChunks(t *testing.T) {
	d := newArenaMap[deepKey]()
	key := func(i int) deepKey {
		k, _ := deepKeyOf([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		return k
	}
	small := bytes.Repeat([]byte{7}, 1000)
	d.set(key(0), small)
	first, _ := d.get(key(0))
	big := make([]byte, 3*arenaChunk)
	for i := range big {
		big[i] = byte(i * 31)
	}
	d.set(key(1), big)
	d.set(key(2), small)
	for i := 3; i < 3000; i++ {
		d.set(key(i), small)
	}
	if got, ok := d.get(key(1)); !ok || !bytes.Equal(got, big) {
		t.Fatal("the long value changed")
	}
	for i := 0; i < 3000; i++ {
		if i == 1 {
			continue
		}
		if got, ok := d.get(key(i)); !ok || !bytes.Equal(got, small) {
			t.Fatalf("value %d changed", i)
		}
	}
	if got, _ := d.get(key(0)); &got[0] != &first[0] {
		t.Fatal("growing the arena moved a value")
	}
	if d.compactions != 0 {
		t.Fatalf("%d compactions with nothing dead", d.compactions)
	}
	// The long value's chunk comes second: after it, whole chunks.
	if cap(d.chunks[1]) != binary.MaxVarintLen32+len(big) {
		t.Fatalf("chunk 1: %d bytes of room, the long value needs %d", cap(d.chunks[1]), binary.MaxVarintLen32+len(big))
	}
	if cap(d.chunks[0]) != arenaMin || cap(d.chunks[2]) != arenaChunk {
		t.Fatalf("chunks 0 and 2: %d and %d bytes of room, want %d and %d", cap(d.chunks[0]), cap(d.chunks[2]), arenaMin, arenaChunk)
	}
	// Without a long value, chunks double from arenaMin.
	e := newArenaMap[deepKey]()
	for i := range 3000 {
		e.set(key(i), small)
	}
	want := arenaMin
	for i, c := range e.chunks {
		if cap(c) != want {
			t.Fatalf("chunk %d: %d bytes of room, want %d", i, cap(c), want)
		}
		want = min(2*want, arenaChunk)
	}
	if want != arenaChunk {
		t.Fatalf("chunks grew to %d only, the test does not reach arenaChunk", want)
	}
}

// Compactions keep a long value (a chunk of its own) and the values in
// whole chunks, places past the first chunk among them; a long value
// returned before a compaction, then replaced, keeps its bytes.
func TestArenaMapCompactsLongValues(t *testing.T) {
	d := newArenaMap[deepKey]()
	key := func(i int) deepKey {
		k, _ := deepKeyOf([]byte{0xee, byte(i), byte(i >> 8), byte(i >> 16)})
		return k
	}
	long := func(seed byte) []byte {
		v := make([]byte, arenaChunk+arenaChunk/3)
		for i := range v {
			v[i] = byte(i) ^ seed
		}
		return v
	}
	d.set(key(0), long(1))
	held, _ := d.get(key(0))
	want := slices.Clone(held)
	rng := rand.New(rand.NewPCG(5, 7))
	ref := map[deepKey][]byte{key(0): long(1)}
	for step := range 60000 {
		k := key(1 + rng.IntN(2000))
		v := make([]byte, 100+rng.IntN(400))
		for i := range v {
			v[i] = byte(rng.Uint32())
		}
		d.set(k, v)
		ref[k] = v
		if step == 30000 {
			d.set(key(0), long(2)) // the long value replaced: its first is dead
			ref[key(0)] = long(2)
		}
	}
	if d.compactions < 2 {
		t.Fatalf("%d compactions: the test does not cover them", d.compactions)
	}
	if len(d.chunks) < 3 {
		t.Fatalf("%d chunks: the test does not cover places past the first chunks", len(d.chunks))
	}
	for k, v := range ref {
		if got, ok := d.get(k); !ok || !bytes.Equal(got, v) {
			t.Fatalf("record %x lost or changed", k)
		}
	}
	if !bytes.Equal(held, want) {
		t.Fatal("the long value returned before the compactions changed")
	}
}

// held returns the bytes of room the chunks take.
func (m *arenaMap[K]) held() int {
	n := 0
	for _, c := range m.chunks {
		n += cap(c)
	}
	return n
}
