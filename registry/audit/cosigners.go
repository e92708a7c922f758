package audit

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// Following the cosigner changes without a state machine (issue #32 item
// 3). A checkpoint of size s is cosigned by the set in force after the
// first s leaves: the genesis's, or the one the last setCosigners among
// them named. trustd audit learns the changes by replaying the log;
// trustctl audit, a client, learns them from what a node serves and checks
// each against the log itself: every leaf's result (the change feed, or
// the result by raft index for an entry the feed does not list) must have
// the CID the leaf commits to, so a node cannot hide an accepted change
// nor invent one; an accepted setCosigners is then read by its CID and
// checked as the registry checks it (the genesis threshold of members
// signing with their genesis keys, a valid set).

// Operations is what FollowCosigners reads from a node (HTTP implements
// it).
type Operations interface {
	// Accepted returns accepted operations after raft index since, in
	// index order: the change feed, a page of it (none: its end), from a
	// state that has applied raft index minIndex at least.
	Accepted(since, minIndex uint64) ([]record.OperationView, error)
	// Result returns the result recorded at a raft index.
	Result(index uint64) (*record.Result, error)
	// Operation returns the exact bytes of an accepted operation by CID.
	Operation(cid string) ([]byte, error)
}

// CosignerChange is a setCosigners a log applied.
type CosignerChange struct {
	// Leaf is the index of its leaf, Index its raft index, CID the
	// operation's.
	Leaf, Index uint64
	CID         string
	// Cosigners and Quorum are the set it named (Quorum 0: the default).
	Cosigners []string
	Quorum    int
}

// feedPageLimit is how many operations FollowCosigners asks a change-feed
// page for.
const feedPageLimit = 100

// maxFeedPageBytes bounds a page of the change feed: feedPageLimit
// operations of at most record.MaxOperationSize bytes, each served with
// its payload, its JWS and its result.
const maxFeedPageBytes = feedPageLimit * 4 * record.MaxOperationSize

// maxFeedPages bounds the change-feed requests FollowCosigners makes for a
// log of n leaves: a page holds up to feedPageLimit operations and must
// advance, so n / feedPageLimit + 2 pages reach past the last leaf.
func maxFeedPages(n int) int { return n/feedPageLimit + 2 }

// FollowCosigners returns the cosigner changes the leaves of l applied, in
// log order, each checked against l (a *Divergence names the first leaf
// that disagrees with what ops serves), and the checkpoint verifier of the
// set in force at each size (VerifierAt). It reads the change feed in pages
// and the result of each entry the feed does not list (a rejection or a
// feature-level raise): about one request per feedPageLimit leaves,
// and one per entry outside the feed.
func FollowCosigners(l *Log, genesis []byte, ops Operations) ([]CosignerChange, VerifierAt, error) {
	g, err := record.ParseGenesis(genesis)
	if err != nil {
		return nil, nil, err
	}
	origin, err := tlog.Origin(record.CIDOf(genesis))
	if err != nil {
		return nil, nil, err
	}
	feed := &feed{ops: ops, pagesLeft: maxFeedPages(len(l.Decoded))}
	if n := len(l.Decoded); n > 0 {
		// The feed from the log's first entry on: accepted operations
		// before the log began are no leaves.
		feed.last, feed.minIndex = l.Decoded[0].Index-1, l.Decoded[n-1].Index
	}
	var changes []CosignerChange
	var prevRoot [tlog.HashSize]byte
	for i, leaf := range l.Decoded {
		if leaf.Index == 0 {
			break // it does not decode: ReadLog reports it
		}
		if len(leaf.Ops) != 1 {
			return nil, nil, &Divergence{Leaf: uint64(i), What: "operations in the entry", Want: "1", Got: fmt.Sprint(len(leaf.Ops))}
		}
		c, err := followLeaf(uint64(i), leaf, i > 0 && leaf.MapRoot == prevRoot, g, feed, ops)
		if err != nil {
			return nil, nil, err
		}
		prevRoot = leaf.MapRoot
		if c != nil {
			changes = append(changes, *c)
		}
	}
	at := func(_ *Log, size uint64) (*tlog.Verifier, error) {
		keys, quorum := g.Cosigners, g.CosignerQuorum
		for _, c := range changes {
			if c.Leaf < size {
				keys, quorum = c.Cosigners, c.Quorum
			}
		}
		return SetVerifier(origin, keys, record.CosignerQuorum(len(keys), quorum))
	}
	return changes, at, nil
}

// followLeaf checks the result of leaf i against the CID the leaf commits
// to and returns the cosigner change it applied (nil: none). unchanged
// says the leaf's map root is the previous leaf's.
//
// An entry neither the change feed lists nor whose result the source
// serves is a feature-level raise (the node serves no result for one). It
// may be taken as no change only where it cannot be one: an applied
// setCosigners rewrites the cosigner-set record, which the map commits, so
// its leaf's map root is never the previous leaf's; and it is never the
// log's first leaf (it needs feature level 8, whose raise is an entry
// before it, and the log begins with the entry that raises the state to
// the commitment's level 7 or later).
func followLeaf(i uint64, leaf tlog.Leaf, unchanged bool, g *record.Genesis, feed *feed, ops Operations) (*CosignerChange, error) {
	opCID := CIDText(leaf.Ops[0].CID)
	item, err := feed.at(leaf.Index)
	var d *Divergence
	if errors.As(err, &d) {
		d.Leaf = i
	}
	if err != nil {
		return nil, err
	}
	var res *record.Result
	var raw []byte
	if item != nil {
		if item.CID != opCID {
			return nil, &Divergence{Leaf: i, What: fmt.Sprintf("operation at raft index %d in the change feed", leaf.Index), Want: opCID, Got: item.CID}
		}
		res, raw = item.Result, []byte(item.JWS)
	} else if res, err = ops.Result(leaf.Index); errors.Is(err, ErrNotServed) && (i == 0 || unchanged) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("leaf %d (raft index %d) changed the state, and the change feed does not list it nor is its result served: %w", i, leaf.Index, err)
	}
	if d := CheckResult(leaf, res); d != nil {
		d.Leaf = i
		return nil, d
	}
	if !res.Accepted || res.Op != record.OpSetCosigners {
		return nil, nil
	}
	if len(raw) == 0 {
		if raw, err = ops.Operation(opCID); err != nil {
			return nil, fmt.Errorf("leaf %d: the accepted cosigner change %s: %w", i, opCID, err)
		}
	}
	what := fmt.Sprintf("cosigner change %s at raft index %d", opCID, leaf.Index)
	if got := record.CIDOf(raw); got != opCID {
		return nil, &Divergence{Leaf: i, What: what, Want: "bytes with its CID", Got: "bytes of CID " + got}
	}
	op, err := record.ParseStoredOperation(raw)
	if err != nil {
		return nil, &Divergence{Leaf: i, What: what, Want: "a signed operation", Got: err.Error()}
	}
	body, ok := op.Body.(*record.SetCosigners)
	if !ok {
		return nil, &Divergence{Leaf: i, What: what, Want: record.OpSetCosigners, Got: op.Op}
	}
	if n := len(record.GovernanceSigners(g, op)); n < g.Threshold {
		return nil, &Divergence{Leaf: i, What: what, Want: fmt.Sprintf("signatures by %d genesis members with their genesis keys", g.Threshold), Got: fmt.Sprint(n)}
	}
	if _, err := record.ParseCosigners(body.Cosigners, body.Quorum); err != nil {
		return nil, &Divergence{Leaf: i, What: what, Want: "a valid cosigner set", Got: err.Error()}
	}
	return &CosignerChange{Leaf: i, Index: leaf.Index, CID: opCID, Cosigners: body.Cosigners, Quorum: body.Quorum}, nil
}

// CheckResult checks that res, a result a source serves for leaf's entry,
// has the result CID the leaf commits to (the CID of its JSON, as the
// registry stores it). It returns the divergence (Leaf left 0) or nil.
func CheckResult(leaf tlog.Leaf, res *record.Result) *Divergence {
	stored, err := json.Marshal(res)
	if err != nil {
		return &Divergence{What: fmt.Sprintf("result at raft index %d", leaf.Index), Want: "a result", Got: err.Error()}
	}
	if got := RawCID(stored); string(got) != string(leaf.Ops[0].ResultCID) {
		return &Divergence{What: fmt.Sprintf("result of the operation %s at raft index %d", CIDText(leaf.Ops[0].CID), leaf.Index),
			Want: CIDText(leaf.Ops[0].ResultCID), Got: CIDText(got) + " (the result the source serves)"}
	}
	return nil
}

// feed walks the change feed in raft index order, a page at a time.
type feed struct {
	ops       Operations
	minIndex  uint64 // the raft index of the log's last leaf
	items     []record.OperationView
	last      uint64
	ended     bool
	pagesLeft int
}

// errFeedPages is a change feed that does not end within the pages a log
// of its size needs.
var errFeedPages = errors.New("audit: the change feed does not end within the pages the log's size needs")

// at returns the feed's operation at raft index (nil when the feed lists
// none there), reading pages as needed; the log's leaves' indexes must be
// asked in increasing order. An operation the feed lists at an index no
// leaf has is a *Divergence.
func (f *feed) at(index uint64) (*record.OperationView, error) {
	for {
		if len(f.items) > 0 && f.items[0].Index < index {
			return nil, &Divergence{What: "change feed", Want: fmt.Sprintf("the operation at raft index %d", index),
				Got: fmt.Sprintf("operation %s at raft index %d, which no leaf of the log has", f.items[0].CID, f.items[0].Index)}
		}
		if len(f.items) > 0 {
			if it := f.items[0]; it.Index == index {
				f.items = f.items[1:]
				return &it, nil
			}
			return nil, nil
		}
		if f.ended {
			return nil, nil
		}
		if f.pagesLeft == 0 {
			return nil, errFeedPages
		}
		f.pagesLeft--
		page, err := f.ops.Accepted(f.last, f.minIndex)
		if err != nil {
			return nil, fmt.Errorf("read the change feed after raft index %d: %w", f.last, err)
		}
		var fresh []record.OperationView
		for _, it := range page {
			if it.Index > f.last {
				fresh = append(fresh, it)
				f.last = it.Index
			}
		}
		if len(fresh) == 0 {
			f.ended = true
		}
		f.items = fresh
	}
}

// SetVerifier is the checkpoint verifier of a cosigner set (vkeys) and
// quorum for the log origin.
func SetVerifier(origin string, vkeys []string, quorum int) (*tlog.Verifier, error) {
	keys := make([]tlog.CosignerKey, 0, len(vkeys))
	for _, v := range vkeys {
		k, err := tlog.ParseCosignerKey(v)
		if err != nil {
			return nil, fmt.Errorf("cosigner %q: %w", v, err)
		}
		keys = append(keys, k)
	}
	return tlog.NewVerifier(origin, keys, quorum)
}

// RawCID is the binary CIDv1 (raw codec, sha2-256) of b, as a leaf names
// an operation or a result.
func RawCID(b []byte) []byte {
	d := sha256.Sum256(b)
	mh, err := multihash.Encode(d[:], multihash.SHA2_256)
	if err != nil {
		panic(fmt.Sprintf("multihash sha2-256: %v", err)) // cannot fail for a registered hash
	}
	return cid.NewCidV1(cid.Raw, mh).Bytes()
}

// CIDText is the text form of a binary CID (hex when it is none).
func CIDText(b []byte) string {
	c, err := cid.Cast(b)
	if err != nil {
		return fmt.Sprintf("%x", b)
	}
	return c.String()
}

// Accepted implements Operations: GET /v1/operations?since=&limit=&min_index=,
// the change feed.
func (h HTTP) Accepted(since, minIndex uint64) ([]record.OperationView, error) {
	q := url.Values{"since": {fmt.Sprint(since)}, "limit": {fmt.Sprint(feedPageLimit)}, "min_index": {fmt.Sprint(minIndex)}}
	body, err := h.get("/v1/operations?"+q.Encode(), maxFeedPageBytes)
	if err != nil {
		return nil, err
	}
	var v struct {
		Items []record.OperationView `json:"items"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("the change feed after %d: %w", since, err)
	}
	return v.Items, nil
}

var _ Operations = HTTP{}
