package registry

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/trustreg/trustreg/registry/decide"
)

// ProveRecordsAndStoreKeys is ProveRecords and ProveStoreKeys in one batch
// proof: the records keys name (as ProveRecords reads them), the bytes
// under storeKeys (nil when absent; committed tables only, else
// ErrNotCommitted), and one smt batch proof of all of them against the
// view's Commitment().MapRoot. A status-list answer proves the issuer's
// decision records and the list's records with it (issue #32). All keys
// must be distinct, at most smt.MaxBatchKeys in all.
func (v *View) ProveRecordsAndStoreKeys(keys []decide.RecordKey, storeKeys [][]byte) (_ []ProvenRecord, _ [][]byte, _ []byte, err error) {
	defer func() { err = v.m.corrupt(err) }()
	if _, _, _, err := logHead(v.snap); err != nil {
		return nil, nil, nil, err
	}
	out := make([]ProvenRecord, len(keys))
	all := make([][]byte, len(keys), len(keys)+len(storeKeys))
	// A kept view's memory holds the records its decision just read
	// (viewnodes.go); the bytes returned are shared, and only read here.
	rs := v.Records()
	for i, k := range keys {
		sk := decide.StoreKey(k)
		all[i] = sk
		out[i].Key = k
		var err error
		if k.Kind == decide.KindReceived {
			var ids []string
			if ids, err = listingIDs(v.snap, sk); err == nil && len(ids) > 0 {
				out[i].Bytes = decide.EncodeReceived(ids)
			}
		} else {
			out[i].Bytes, err = rs.Record(k)
		}
		if err != nil {
			return nil, nil, nil, err
		}
	}
	vals := make([][]byte, len(storeKeys))
	for i, k := range storeKeys {
		if !isCommitted(k) {
			return nil, nil, nil, fmt.Errorf("%w: %q", ErrNotCommitted, k)
		}
		val, closer, err := v.snap.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, nil, err
		}
		vals[i] = bytes.Clone(val)
		_ = closer.Close() // releases the read value; nothing to report
	}
	all = append(all, storeKeys...)
	proof, err := v.prove(all, func(i int) []byte {
		if i < len(out) {
			return out[i].Bytes
		}
		return vals[i-len(out)]
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return out, vals, proof, nil
}
