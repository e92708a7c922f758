package smt

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func mustNewMap(t testing.TB) (*Map, *MemStore) {
	t.Helper()
	s := NewMemStore()
	return New(s), s
}

func mustUpdate(t testing.TB, m *Map, ch []Change) Hash {
	t.Helper()
	root, err := m.Update(ch)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return root
}

func randKey(r *rand.Rand) Key {
	var k Key
	for i := range k {
		k[i] = byte(r.Uint32())
	}
	return k
}

func randValue(r *rand.Rand) Value {
	return Value(randKey(r))
}

// nearKey returns k with only bit i flipped and the bits after it random:
// keys that share a long prefix with k reach deep into the tree.
func nearKey(r *rand.Rand, k Key, i int) Key {
	x := randKey(r)
	for j := range i {
		if refBit(k, j) != refBit(x, j) {
			x[j/8] ^= 0x80 >> (j % 8)
		}
	}
	if refBit(k, i) == refBit(x, i) {
		x[i/8] ^= 0x80 >> (i % 8)
	}
	return x
}

// randChanges returns n changes over ref's keys and new ones (some sharing
// long prefixes), applying them to ref.
func randChanges(r *rand.Rand, ref refTree, n int) []Change {
	keys := ref.keys()
	ch := make([]Change, 0, n)
	for range n {
		var c Change
		switch x := r.IntN(10); {
		case x < 2 && len(keys) > 0:
			c = Change{Key: keys[r.IntN(len(keys))], Delete: true}
		case x < 4 && len(keys) > 0:
			c = Change{Key: keys[r.IntN(len(keys))], Value: randValue(r)}
		case x < 5 && len(keys) > 0:
			c = Change{Key: nearKey(r, keys[r.IntN(len(keys))], r.IntN(256)), Value: randValue(r)}
		case x < 6:
			c = Change{Key: randKey(r), Delete: true} // absent
		default:
			c = Change{Key: randKey(r), Value: randValue(r)}
		}
		ch = append(ch, c)
		if c.Delete {
			delete(ref, c.Key)
		} else {
			ref[c.Key] = c.Value
		}
	}
	return ch
}

// checkProofs proves keys (present and absent) in m, compares each proof with
// the reference's and verifies its encoding against root.
func checkProofs(t *testing.T, m *Map, ref refTree, root Hash, keys []Key) {
	t.Helper()
	for _, k := range keys {
		p, err := m.Prove(k)
		if err != nil {
			t.Fatalf("Prove(%x): %v", k[:4], err)
		}
		want := ref.proof(k)
		if p.Kind != want.Kind || !slices.Equal(p.Siblings, want.Siblings) || p.OtherKey != want.OtherKey || p.OtherValue != want.OtherValue {
			t.Fatalf("Prove(%x) = kind %d with %d siblings, reference has kind %d with %d", k[:4], p.Kind, len(p.Siblings), want.Kind, len(want.Siblings))
		}
		enc, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary: %v", err)
		}
		v, present := ref[k]
		if present {
			err = VerifyInclusion(root, k, v, enc)
		} else {
			err = VerifyNonInclusion(root, k, enc)
		}
		if err != nil {
			t.Fatalf("verify proof of %x (present %v): %v", k[:4], present, err)
		}
		got, ok, err := m.Get(k)
		if err != nil || ok != present || got != v {
			t.Fatalf("Get(%x) = %x, %v, %v; want %x, %v", k[:4], got[:4], ok, err, v[:4], present)
		}
	}
}

func TestRootAndProofsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, batch := range []int{1, 3, 64, 700} {
		m, _ := mustNewMap(t)
		ref := refTree{}
		if got := mustUpdate(t, m, nil); got != Empty || ref.root() != Empty {
			t.Fatalf("empty map root %x, reference %x, want zero", got, ref.root())
		}
		for round := range 6 {
			root := mustUpdate(t, m, randChanges(r, ref, batch))
			if want := ref.root(); root != want {
				t.Fatalf("batch %d round %d: root %x, reference %x", batch, round, root[:8], want[:8])
			}
			if got, err := m.Root(); err != nil || got != root {
				t.Fatalf("Root() = %x, %v; Update returned %x", got[:8], err, root[:8])
			}
			keys := ref.keys()
			probe := []Key{randKey(r), randKey(r)}
			for i := 0; i < len(keys) && i < 15; i++ {
				probe = append(probe, keys[r.IntN(len(keys))], nearKey(r, keys[r.IntN(len(keys))], r.IntN(256)))
			}
			checkProofs(t, m, ref, root, probe)
		}
	}
}

func TestSmallMapsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m, _ := mustNewMap(t)
	ref := refTree{}
	a, b := randKey(r), randKey(r)
	steps := [][]Change{
		{{Key: a, Value: Value{1}}},                  // one key: the root is its leaf
		{{Key: a, Value: Value{2}}},                  // its value changed
		{{Key: b, Value: Value{3}}},                  // two keys
		{{Key: nearKey(r, a, 255), Value: Value{4}}}, // a key parting from a at the last bit
		{{Key: nearKey(r, a, 255), Delete: true}},
		{{Key: a, Delete: true}}, // back to one key, kept in the root
		{{Key: b, Delete: true}}, // empty
		{{Key: b, Delete: true}}, // deleting from an empty map
	}
	for i, ch := range steps {
		for _, c := range ch {
			if c.Delete {
				delete(ref, c.Key)
			} else {
				ref[c.Key] = c.Value
			}
		}
		root := mustUpdate(t, m, ch)
		if want := ref.root(); root != want {
			t.Fatalf("step %d: root %x, reference %x", i, root[:8], want[:8])
		}
		checkProofs(t, m, ref, root, []Key{a, b, nearKey(r, a, 255), nearKey(r, b, 0), randKey(r)})
	}
}

func TestDeepestPath(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	m, _ := mustNewMap(t)
	a := randKey(r)
	b := nearKey(r, a, 255)
	ref := refTree{a: Value{1}, b: Value{2}}
	root := mustUpdate(t, m, []Change{{Key: a, Value: Value{1}}, {Key: b, Value: Value{2}}})
	if want := ref.root(); root != want {
		t.Fatalf("root %x, reference %x", root[:8], want[:8])
	}
	p, err := m.Prove(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Siblings) != maxDepth {
		t.Fatalf("proof of a key parting at bit 255 has %d siblings, want %d", len(p.Siblings), maxDepth)
	}
	checkProofs(t, m, ref, root, []Key{a, b, nearKey(r, a, 254), nearKey(r, a, 100)})
}

// The root and the stored records depend only on the final (key, value) set:
// not on order, batch boundaries, values overwritten or keys deleted on the way.
func TestDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	final := make([]Change, 2000)
	for i := range final {
		final[i] = Change{Key: randKey(r), Value: randValue(r)}
	}
	final = append(final, Change{Key: nearKey(r, final[0].Key, 200), Value: Value{9}})

	m1, s1 := mustNewMap(t)
	want := mustUpdate(t, m1, final)

	m2, s2 := mustNewMap(t)
	shuffled := slices.Clone(final)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	var noise []Change
	restore := slices.Clone(shuffled[:300])
	for i := range 300 {
		noise = append(noise, Change{Key: randKey(r), Value: randValue(r)})
		noise = append(noise, Change{Key: shuffled[i].Key, Value: randValue(r)})
	}
	mustUpdate(t, m2, noise[:100])
	for len(shuffled) > 0 {
		n := min(len(shuffled), 1+r.IntN(300))
		mustUpdate(t, m2, shuffled[:n])
		shuffled = shuffled[n:]
	}
	mustUpdate(t, m2, noise[100:])
	var undo []Change
	for i, c := range noise {
		if i%2 == 0 {
			undo = append(undo, Change{Key: c.Key, Delete: true})
		}
	}
	mustUpdate(t, m2, undo)
	got := mustUpdate(t, m2, restore) // the values noise overwrote
	if got != want {
		t.Fatalf("root after another order and batches %x, want %x", got[:8], want[:8])
	}
	if !s1.Equal(s2) {
		t.Fatalf("stored records differ: %d records (%d bytes) and %d (%d bytes)", s1.Len(), s1.Bytes(), s2.Len(), s2.Bytes())
	}

	// Deleting everything leaves an empty store.
	var all []Change
	for _, c := range final {
		all = append(all, Change{Key: c.Key, Delete: true})
	}
	if got := mustUpdate(t, m2, all); got != Empty || s2.Len() != 0 {
		t.Fatalf("after deleting every key: root %x, %d records left", got[:8], s2.Len())
	}
}

func TestLaterChangeWins(t *testing.T) {
	m, _ := mustNewMap(t)
	k := Key{1}
	root := mustUpdate(t, m, []Change{{Key: k, Value: Value{1}}, {Key: k, Delete: true}, {Key: k, Value: Value{2}}})
	if want := (refTree{k: Value{2}}).root(); root != want {
		t.Fatalf("root %x, want the last value's %x", root[:8], want[:8])
	}
	root = mustUpdate(t, m, []Change{{Key: k, Value: Value{3}}, {Key: k, Delete: true}})
	if root != Empty {
		t.Fatalf("root %x after a set then a delete, want empty", root[:8])
	}
}

func TestTooManyChanges(t *testing.T) {
	m, s := mustNewMap(t)
	mustUpdate(t, m, []Change{{Key: Key{1}, Value: Value{1}}})
	_, err := m.Update(make([]Change, MaxChanges+1))
	if !errors.Is(err, ErrTooManyChanges) {
		t.Fatalf("Update of %d changes: %v, want ErrTooManyChanges", MaxChanges+1, err)
	}
	if s.Len() != 1 {
		t.Fatalf("store has %d records after a refused update, want 1", s.Len())
	}
}

func TestCorruptNodeRefused(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	ch := make([]Change, 50)
	for i := range ch {
		ch[i] = Change{Key: randKey(r), Value: randValue(r)}
	}
	root := nodeKey(0, &Key{})
	cases := []struct {
		name string
		key  []byte
		rec  []byte
	}{
		{"empty record", root, nil},
		{"unknown tag", root, []byte{0x07, 0x22}},
		{"root leaf short", root, []byte{tagRootLeaf, 1, 2}},
		{"trailing bytes", root, append(encodeInner(&node{kind: kindInner}, &node{kind: kindInner}), 0)},
		{"short child", root, encodeInner(&node{kind: kindInner}, &node{kind: kindInner})[:40]},
		{"bad child kind", root, []byte{tagInner, 0x30}},
		{"both children empty", root, []byte{tagInner, 0x00}},
		{"lone leaf beside empty", root, encodeInner(&node{kind: kindEmpty}, &node{kind: kindLeaf, key: Key{0x80}})},
		{"leaf off its path", root, encodeInner(&node{kind: kindLeaf, key: Key{0x80}}, &node{kind: kindInner})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, s := mustNewMap(t)
			mustUpdate(t, m, ch)
			if err := s.PutNode(tc.key, tc.rec); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Root(); !errors.Is(err, ErrCorruptNode) {
				t.Errorf("Root: %v, want ErrCorruptNode", err)
			}
			if _, err := m.Prove(ch[0].Key); !errors.Is(err, ErrCorruptNode) {
				t.Errorf("Prove: %v, want ErrCorruptNode", err)
			}
			if _, err := m.Update(ch[:1]); !errors.Is(err, ErrCorruptNode) {
				t.Errorf("Update: %v, want ErrCorruptNode", err)
			}
		})
	}
	t.Run("inner node below the last level", func(t *testing.T) {
		m, s := mustNewMap(t)
		a := randKey(r)
		b := nearKey(r, a, 255)
		mustUpdate(t, m, []Change{{Key: a, Value: Value{1}}, {Key: b, Value: Value{2}}})
		if err := s.PutNode(nodeKey(maxInnerDepth, &a), encodeInner(&node{kind: kindInner}, &node{kind: kindInner})); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Prove(a); !errors.Is(err, ErrCorruptNode) {
			t.Errorf("Prove: %v, want ErrCorruptNode", err)
		}
		if _, err := m.Update([]Change{{Key: a, Delete: true}}); !errors.Is(err, ErrCorruptNode) {
			t.Errorf("Update: %v, want ErrCorruptNode", err)
		}
	})
	t.Run("missing inner node", func(t *testing.T) {
		m, s := mustNewMap(t)
		mustUpdate(t, m, ch)
		k := ch[0].Key
		if err := s.DeleteNode(nodeKey(1, &k)); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Prove(k); !errors.Is(err, ErrCorruptNode) {
			t.Errorf("Prove: %v, want ErrCorruptNode", err)
		}
	})
}

// sharingStore is a NodeStore that keeps the very slices PutNode is given
// and hands out the ones it holds from GetNode, with a copy of each to tell
// whether the map changed one afterwards (NodeStore's contract, which the
// registry's write-back node cache relies on to skip copies).
type sharingStore struct {
	nodes  map[string][]byte
	copies map[string][]byte
	keys   [][]byte // every key passed to PutNode and DeleteNode
	kept   []string // their contents when passed
}

func (s *sharingStore) GetNode(k []byte) ([]byte, error) {
	v, ok := s.nodes[string(k)]
	if !ok {
		return nil, ErrNodeNotFound
	}
	return v, nil
}

func (s *sharingStore) PutNode(k, v []byte) error {
	s.nodes[string(k)], s.copies[string(k)] = v, slices.Clone(v)
	s.keys, s.kept = append(s.keys, k), append(s.kept, string(k))
	return nil
}

func (s *sharingStore) DeleteNode(k []byte) error {
	delete(s.nodes, string(k))
	delete(s.copies, string(k))
	s.keys, s.kept = append(s.keys, k), append(s.kept, string(k))
	return nil
}

// The map changes no record it got from GetNode or gave to PutNode, and no
// key it gave to PutNode or DeleteNode, so a store may share them: a store
// that does gives the reference roots, and every slice it holds still has
// the bytes it was given.
func TestStoreMayShareSlices(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	s := &sharingStore{nodes: map[string][]byte{}, copies: map[string][]byte{}}
	m := New(s)
	ref := refTree{}
	for round := range 40 {
		root := mustUpdate(t, m, randChanges(r, ref, 1+r.IntN(64)))
		if want := ref.root(); root != want {
			t.Fatalf("round %d: root %x, reference %x", round, root[:8], want[:8])
		}
		for k, v := range s.nodes {
			if string(v) != string(s.copies[k]) {
				t.Fatalf("round %d: the record at %x changed after the store took it", round, k)
			}
		}
		for i, k := range s.keys {
			if string(k) != s.kept[i] {
				t.Fatalf("round %d: a key changed after the store took it", round)
			}
		}
	}
}
