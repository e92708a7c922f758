package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/record"
)

// TestDevNodeProvesPastStatusListVersions: a status list's record with
// proof=true&timestamp=T answers the version the answer without proof
// gives for T, with a bundle that proves it was in force at T (its time
// at or before T, and the next version's record, naming it as previous,
// after T; or the list naming it current) and the issuer's authorization
// at T. A bundle presenting another version, hiding the successor, with a
// successor that does not link, or for another time is refused, each
// with its own error.
func TestDevNodeProvesPastStatusListVersions(t *testing.T) {
	d := mustDevProofChain(t)
	n, genesis, submit, c := d.n, d.genesis, d.submit, d.chain
	bits := make([]byte, record.MinStatusListEntries/8)
	previous := ""
	var jwts []string
	for i := range 3 {
		record.SetStatus(bits, i, 1, 1)
		vc, err := record.StatusListCredential(c.college.DID, "main", []string{"revocation"}, 1, nil, 0, bits)
		if err != nil {
			t.Fatal(err)
		}
		jwt, err := c.college.SignVCJWT(vc)
		if err != nil {
			t.Fatal(err)
		}
		op := map[string]any{"op": record.OpPublishStatusList, "list": "main", "credential": string(jwt)}
		if previous != "" {
			op["previous"] = previous
		}
		submit(signed(t, c.college, op))
		previous = record.CIDOf(jwt)
		jwts = append(jwts, string(jwt))
	}
	sv := n.State.View()
	vs, _, err := sv.StatusListHistory(c.college.DID, "main", registry.Page{Limit: 10})
	sv.Close()
	if err != nil || len(vs) != 3 {
		t.Fatalf("history: %d versions, %v", len(vs), err)
	}
	for i := 1; i < 3; i++ {
		if !vs[i].Time.After(vs[i-1].Time) {
			t.Fatalf("version %d's time %s is not after version %d's %s", i, vs[i].Time, i-1, vs[i-1].Time)
		}
	}
	// between(i): a time at which version i was in force and the next not yet.
	between := func(i int) time.Time { return vs[i].Time.Add(vs[i+1].Time.Sub(vs[i].Time) / 2) }
	t1, t2, t3 := between(0), between(1), vs[2].Time.Add(time.Millisecond)

	base := n.GatewayURL() + "/v1/status-lists/" + url.PathEscape(c.college.DID) + "/main/record"
	stamp := func(at time.Time) string { return url.QueryEscape(at.UTC().Format(time.RFC3339Nano)) }
	fetch := func(at time.Time) (provenList, *proof.Bundle) {
		t.Helper()
		_, body := getProven(t, func() (*http.Response, error) {
			return http.Get(base + "?proof=true&consistency=linearizable&timestamp=" + stamp(at))
		})
		var a provenList
		if err := json.Unmarshal(body, &a); err != nil || len(a.Proof) == 0 {
			t.Fatalf("no proof (%v): %s", err, body)
		}
		b, err := proof.ParseBundle(a.Proof)
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
	plain := func(at time.Time) (int, string) {
		t.Helper()
		resp, err := http.Get(base + "?timestamp=" + stamp(at))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var a provenList
		_ = json.Unmarshal(body, &a)
		return resp.StatusCode, a.CID
	}

	// Each time answers the plain answer's version, proven in force then.
	bundles := map[time.Time]*proof.Bundle{}
	for i, at := range []time.Time{t1, t2, t3} {
		a, b := fetch(at)
		if code, cid := plain(at); code != http.StatusOK || cid != a.CID || a.CID != vs[i].CID || a.JWT != jwts[i] {
			t.Fatalf("at %s: proven answer %s, plain answer %d %s, want version %d (%s)", at, a.CID, code, cid, i, vs[i].CID)
		}
		v, err := proof.Verify(b, genesis, proof.Options{Credential: []byte(a.JWT), Expect: &proof.Question{
			Type: proof.TypeStatusList, Entity: c.college.DID, Framework: c.fw, Action: record.ActionIssue, List: "main", At: at,
		}})
		if err != nil {
			t.Fatalf("at %s: %v", at, err)
		}
		if v.StatusListVersion.Index != vs[i].Index || !v.Decision.Authorized || !v.Decision.At.Equal(at) {
			t.Fatalf("at %s: version %+v, decision %+v", at, v.StatusListVersion, v.Decision)
		}
		switch {
		case i < 2 && (v.StatusListNext == nil || v.StatusListNext.Index != vs[i+1].Index):
			t.Fatalf("at %s: successor %+v, want version %d", at, v.StatusListNext, vs[i+1].Index)
		case i == 2 && v.StatusListNext != nil:
			t.Fatalf("at %s: the current version with a successor %+v", at, v.StatusListNext)
		}
		bundles[at] = b
	}
	// The CBOR form carries the successor too.
	raw, err := bundles[t1].MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	if cb, err := proof.ParseAny(raw); err != nil || cb.StatusList.NextIndex != vs[1].Index {
		t.Fatalf("CBOR form: %v, %+v", err, cb)
	} else if _, err := proof.Verify(cb, genesis, proof.Options{}); err != nil {
		t.Fatalf("CBOR form: %v", err)
	}
	if raw, err = bundles[t3].MarshalCBOR(); err != nil || bytes.Contains(raw, []byte("next")) {
		t.Fatalf("the current version's CBOR form names a successor (%v)", err)
	}

	// Before the first version: no version, as without proof; a timestamp
	// that is not one is malformed.
	before := vs[0].Time.Add(-time.Hour)
	for ts, want := range map[string]int{stamp(before): http.StatusNotFound, "yesterday": http.StatusUnprocessableEntity} {
		for _, q := range []string{"?timestamp=" + ts, "?proof=true&timestamp=" + ts} {
			resp, err := http.Get(base + q)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("%s: status %d, want %d", q, resp.StatusCode, want)
			}
		}
	}

	// copyOf is a deep enough copy of b to change its question and lists.
	copyOf := func(b *proof.Bundle) *proof.Bundle {
		out := *b
		sl := *b.StatusList
		out.StatusList = &sl
		return &out
	}
	// reprove gives b the honest map proof of its records as they now are,
	// over the state of its checkpoint: what a node that answers falsely
	// can always make, so only the status-list rules can refuse it.
	reprove := func(b *proof.Bundle) {
		t.Helper()
		v, err := n.State.ViewAtLogSize(b.LeafIndex + 1)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		var keys []decide.RecordKey
		for _, r := range b.Records {
			k, err := r.Key()
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		q, sl := b.Question, b.StatusList
		store := [][]byte{proof.StatusListStoreKey(q.Entity, q.List), proof.ListVersionStoreKey(q.Entity, q.List, sl.VersionIndex)}
		if sl.NextIndex != 0 {
			store = append(store, proof.ListVersionStoreKey(q.Entity, q.List, sl.NextIndex))
		}
		_, vals, mp, err := v.ProveRecordsAndStoreKeys(keys, store)
		if err != nil || b.Cosigners != nil {
			t.Fatalf("prove: %v (cosigners %v)", err, b.Cosigners)
		}
		b.MapProof, sl.List, sl.Version = mp, vals[0], vals[1]
		if sl.NextIndex != 0 {
			sl.Next = vals[2]
		}
	}
	if b := copyOf(bundles[t1]); true {
		reprove(b)
		if _, err := proof.Verify(b, genesis, proof.Options{}); err != nil {
			t.Fatalf("an honest bundle proven again: %v", err)
		}
	}

	for _, tc := range []struct {
		name   string
		attack func() *proof.Bundle
		opts   proof.Options
		want   error
	}{
		{"a later version presented", func() *proof.Bundle {
			b := copyOf(bundles[t2]) // version 1, for a time version 0 was in force
			b.Question.At = t1
			return b
		}, proof.Options{}, proof.ErrVersionNotInForce},
		{"an earlier version presented", func() *proof.Bundle {
			b := copyOf(bundles[t1]) // version 0, for a time version 1 was in force
			b.Question.At = t2
			return b
		}, proof.Options{}, proof.ErrVersionNotInForce},
		{"an older version claimed current", func() *proof.Bundle {
			b := copyOf(bundles[t3]) // the current version's question, version 0 with no successor
			b.StatusList.VersionIndex = vs[0].Index
			reprove(b)
			return b
		}, proof.Options{}, proof.ErrSuccessorHidden},
		{"the successor hidden", func() *proof.Bundle {
			b := copyOf(bundles[t1])
			b.StatusList.NextIndex, b.StatusList.Next = 0, nil
			reprove(b)
			return b
		}, proof.Options{}, proof.ErrSuccessorHidden},
		{"a successor that does not link", func() *proof.Bundle {
			b := copyOf(bundles[t1]) // version 2 (previous: version 1) as version 0's successor
			b.StatusList.NextIndex = vs[2].Index
			reprove(b)
			return b
		}, proof.Options{}, proof.ErrSuccessorNotLinked},
		{"a successor before the version", func() *proof.Bundle {
			b := copyOf(bundles[t2]) // version 0 as version 1's successor
			b.StatusList.NextIndex = vs[0].Index
			reprove(b)
			return b
		}, proof.Options{}, proof.ErrSuccessorNotLinked},
		{"another time than asked", func() *proof.Bundle { return copyOf(bundles[t1]) }, proof.Options{Expect: &proof.Question{
			Type: proof.TypeStatusList, Entity: c.college.DID, Framework: c.fw, Action: record.ActionIssue, List: "main", At: t2,
		}}, proof.ErrWrongQuestion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := proof.Verify(tc.attack(), genesis, tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("verify: %v, want %v", err, tc.want)
			}
		})
	}
}
