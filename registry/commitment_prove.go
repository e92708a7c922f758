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
	if _, _, _, err := v.head(); err != nil {
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

// ProveReadRecords is ProveRecordsAndStoreKeys for records a decision has
// just read from this view (through View.Records, as a proof.Recorder
// does): read[i] is what it read for keys[i] (nil: absent; a
// KindReceived key's decide.EncodeReceived of the listing), so the
// records are not read again. The proof is made as ProveRecordsAndStoreKeys
// makes it, and the map is checked to hold exactly those bytes: bytes
// other than the view's are ErrStateCorrupt, so give only what the view
// returned. It returns the bytes under storeKeys and the proof.
func (v *View) ProveReadRecords(keys []decide.RecordKey, read [][]byte, storeKeys [][]byte) (_ [][]byte, _ []byte, err error) {
	defer func() { err = v.m.corrupt(err) }()
	if len(read) != len(keys) {
		return nil, nil, fmt.Errorf("registry: %d records read for %d keys", len(read), len(keys))
	}
	if _, _, _, err := v.head(); err != nil {
		return nil, nil, err
	}
	all := make([][]byte, len(keys), len(keys)+len(storeKeys))
	for i, k := range keys {
		all[i] = decide.StoreKey(k)
	}
	vals := make([][]byte, len(storeKeys))
	for i, k := range storeKeys {
		if !isCommitted(k) {
			return nil, nil, fmt.Errorf("%w: %q", ErrNotCommitted, k)
		}
		val, closer, err := v.snap.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		vals[i] = bytes.Clone(val)
		_ = closer.Close() // releases the read value; nothing to report
	}
	all = append(all, storeKeys...)
	proof, err := v.prove(all, func(i int) []byte {
		if i < len(read) {
			return read[i]
		}
		return vals[i-len(read)]
	})
	if err != nil {
		return nil, nil, err
	}
	return vals, proof, nil
}
