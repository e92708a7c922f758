package audit

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// fakeOps serves a change feed and results from memory, counting feed
// requests.
type fakeOps struct {
	feed    []record.OperationView
	results map[uint64]*record.Result
	ops     map[string][]byte
	endless bool // a feed listing operations at indexes no leaf has
	perPage int  // the most operations a page holds (0: all)
	pages   int
}

func (f *fakeOps) Accepted(since, _ uint64) ([]record.OperationView, error) {
	f.pages++
	if f.endless {
		var out []record.OperationView
		for i := range uint64(feedPageLimit) {
			out = append(out, record.OperationView{Index: since + 1 + i})
		}
		return out, nil
	}
	var out []record.OperationView
	for _, it := range f.feed {
		if it.Index > since && (f.perPage == 0 || len(out) < f.perPage) {
			out = append(out, it)
		}
	}
	return out, nil
}

func (f *fakeOps) Result(index uint64) (*record.Result, error) {
	if r, ok := f.results[index]; ok {
		return r, nil
	}
	return nil, ErrNotServed
}

func (f *fakeOps) Operation(c string) ([]byte, error) {
	if b, ok := f.ops[c]; ok {
		return b, nil
	}
	return nil, ErrNotServed
}

// TestFollowCosigners: the changes a log applied are followed from what a
// node serves, checked against the leaves; a feed that never ends costs a
// bounded number of pages, and a change no genesis threshold signed is a
// divergence.
func TestFollowCosigners(t *testing.T) {
	gov, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	newSigner := func(name string) *tlog.CosignatureSigner {
		_, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tlog.NewCosignatureSigner(name, priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1, s2 := newSigner("s1.example"), newSigner("s2.example")
	genesis, err := json.Marshal(record.Genesis{Consortium: "follow", Threshold: 1,
		Members: []record.Member{{ID: gov.DID, Name: "gov"}}, Cosigners: []string{s1.Key().String()}})
	if err != nil {
		t.Fatal(err)
	}
	// The log's raft indexes start high, so a feed of other indexes can
	// run on below them.
	const base = 1 << 20
	cidBytes := func(s string) []byte {
		c, err := cid.Decode(s)
		if err != nil {
			t.Fatal(err)
		}
		return c.Bytes()
	}
	// world is a log of a feature-level raise (leaf 0, nothing served), an
	// accepted framework, the change signed by by, and a rejection.
	world := func(by *record.Signer) (*Log, *fakeOps) {
		f := &fakeOps{results: map[uint64]*record.Result{}, ops: map[string][]byte{}}
		l := &Log{}
		root := func(b byte) (r [tlog.HashSize]byte) { r[0] = b; return r }
		add := func(index uint64, jws []byte, res *record.Result, mapRoot [tlog.HashSize]byte, inFeed bool) {
			opCID := record.CIDOf(jws)
			stored, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			l.Decoded = append(l.Decoded, tlog.Leaf{Index: index, CommitTime: time.Unix(int64(index), 0), MapRoot: mapRoot,
				Ops: []tlog.Op{{CID: cidBytes(opCID), ResultCID: RawCID(stored)}}})
			if inFeed {
				f.feed = append(f.feed, record.OperationView{CID: opCID, Index: index, Op: res.Op, JWS: string(jws), Result: res})
			} else if !res.Accepted {
				f.results[index] = res
			}
		}
		sign := func(s *record.Signer, p map[string]any) []byte {
			p["iat"] = 1
			raw, _ := json.Marshal(p)
			jws, err := record.SignJSON(raw, s)
			if err != nil {
				t.Fatal(err)
			}
			return jws
		}
		add(base+4, []byte{1, 2, 8}, &record.Result{Index: base + 4, Op: "featureLevel", Accepted: true, ID: "8"}, root(0), false)
		fw := sign(gov, map[string]any{"op": record.OpCreateFramework, "id": "https://f.example", "name": "F", "roots": []string{gov.DID}})
		add(base+5, fw, &record.Result{Index: base + 5, CID: record.CIDOf(fw), Op: record.OpCreateFramework, Accepted: true}, root(1), true)
		ch := sign(by, map[string]any{"op": record.OpSetCosigners, "cosigners": []string{s2.Key().String()}})
		// Its JSON serialization holds a member nothing reads with a number
		// beyond a float64's range: accepted at level 8, and audited as the
		// registry accepted it.
		ch = append([]byte(`{"x":1e400,`), ch[1:]...)
		if _, err := record.ParseOperation(ch); err == nil {
			t.Fatal("ParseOperation took the number")
		}
		add(base+6, ch, &record.Result{Index: base + 6, CID: record.CIDOf(ch), Op: record.OpSetCosigners, Accepted: true, ID: "cosigners/1"}, root(2), true)
		rj := sign(stranger, map[string]any{"op": record.OpCreateFramework, "id": "https://g.example", "name": "G", "roots": []string{gov.DID}})
		add(base+7, rj, &record.Result{Index: base + 7, CID: record.CIDOf(rj), Op: record.OpCreateFramework, Code: "not_authorized"}, root(2), false)
		return l, f
	}
	cp := func(size uint64, s *tlog.CosignatureSigner) []byte {
		origin, _ := tlog.Origin(record.CIDOf(genesis))
		c := tlog.Checkpoint{Origin: origin, Size: size}
		sig, err := s.Sign(c, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tlog.SignedNote(c, sig)
	}

	l, f := world(gov)
	changes, at, err := FollowCosigners(l, genesis, f)
	if err != nil || len(changes) != 1 || changes[0].Leaf != 2 || changes[0].Index != base+6 {
		t.Fatalf("changes %+v, %v", changes, err)
	}
	for _, tc := range []struct {
		size   uint64
		signer *tlog.CosignatureSigner
		ok     bool
	}{{2, s1, true}, {2, s2, false}, {3, s2, true}, {3, s1, false}, {4, s2, true}} {
		v, err := at(l, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(cp(tc.size, tc.signer)); (err == nil) != tc.ok {
			t.Errorf("size %d cosigned by %s: %v, want ok %v", tc.size, tc.signer.Key().Name, err, tc.ok)
		}
	}

	l, f = world(gov)
	f.endless = true
	var d *Divergence
	if _, _, err := FollowCosigners(l, genesis, f); !errors.As(err, &d) || f.pages != 1 {
		t.Fatalf("a feed of operations no leaf has: %v after %d pages", err, f.pages)
	}
	// A feed that serves one operation a page does not end within the
	// pages a log of its size needs.
	f = &fakeOps{perPage: 1}
	l = &Log{}
	for i := range uint64(3 * feedPageLimit) {
		opCID := record.CIDOf([]byte{byte(i), byte(i >> 8)})
		res := &record.Result{Index: i + 1, CID: opCID, Op: record.OpCreateFramework, Accepted: true}
		stored, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		l.Decoded = append(l.Decoded, tlog.Leaf{Index: i + 1, Ops: []tlog.Op{{CID: cidBytes(opCID), ResultCID: RawCID(stored)}}})
		f.feed = append(f.feed, record.OperationView{CID: opCID, Index: i + 1, Op: res.Op, Result: res})
	}
	if _, _, err := FollowCosigners(l, genesis, f); !errors.Is(err, errFeedPages) || f.pages != maxFeedPages(len(l.Decoded)) {
		t.Fatalf("a feed of one operation a page: %v after %d pages", err, f.pages)
	}

	l, f = world(stranger)
	if _, _, err := FollowCosigners(l, genesis, f); !errors.As(err, &d) || d.Leaf != 2 {
		t.Fatalf("a change no member signed: %v", err)
	}
}
