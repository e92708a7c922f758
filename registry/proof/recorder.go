package proof

import (
	"slices"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/smt"
)

// Recorder is a decide.Records that reads through to another and records
// every key a decision reads, with what it read: the records a node must
// prove for the answer, exactly. Run the decision with no decide.Memo, or
// with one Memo wraps (a remembered record is not read, so it would not
// be recorded otherwise). It is for one goroutine, like the Records it
// wraps.
type Recorder struct {
	src decide.Records
	// stable: src's bytes are never changed or reused, so they are
	// recorded as returned (NewStableRecorder).
	stable bool
	// index finds a key read before once more than recorderScan are
	// recorded; below that a scan of keys does, sooner than a map is
	// made.
	index   map[decide.RecordKey]struct{}
	keys    []decide.RecordKey
	records []Record
}

var _ decide.Records = (*Recorder)(nil)

// recorderKeys is the room a Recorder starts with: the records of a
// depth-3 chain's decision and a few more.
const recorderKeys = 12

// recorderScan is how many keys a Recorder scans for a repeat before it
// indexes them.
const recorderScan = 32

// NewRecorder returns a Recorder over src.
func NewRecorder(src decide.Records) *Recorder {
	return &Recorder{src: src, keys: make([]decide.RecordKey, 0, recorderKeys), records: make([]Record, 0, recorderKeys)}
}

// NewStableRecorder is NewRecorder over a src whose bytes, once returned,
// are never changed or reused (registry.View.Records): what it returns is
// recorded as is, not copied.
func NewStableRecorder(src decide.Records) *Recorder {
	r := NewRecorder(src)
	r.stable = true
	return r
}

// Record reads k from the underlying Records and records it.
func (r *Recorder) Record(k decide.RecordKey) ([]byte, error) {
	b, err := r.src.Record(k)
	if err != nil {
		return nil, err
	}
	r.keep(k, b)
	return b, nil
}

// Received reads the listing from the underlying Records and records it
// in its record form (decide.EncodeReceived; an empty listing is absent).
func (r *Recorder) Received(subject, framework string) ([]string, error) {
	ids, err := r.src.Received(subject, framework)
	if err != nil {
		return nil, err
	}
	var b []byte
	if len(ids) > 0 {
		b = decide.EncodeReceived(ids)
	}
	r.keep(decide.ReceivedKey(subject, framework), b)
	return ids, nil
}

// keep records k's bytes the first time k is read (a copy: the caller's
// store may reuse its buffer).
func (r *Recorder) keep(k decide.RecordKey, b []byte) {
	if r.index != nil {
		if _, ok := r.index[k]; ok {
			return
		}
		r.index[k] = struct{}{}
	} else {
		if slices.Contains(r.keys, k) {
			return
		}
		if len(r.keys) == recorderScan {
			r.index = make(map[decide.RecordKey]struct{}, 2*recorderScan)
			for _, x := range r.keys {
				r.index[x] = struct{}{}
			}
			r.index[k] = struct{}{}
		}
	}
	if b != nil && !r.stable {
		b = append(make([]byte, 0, len(b)), b...)
	}
	r.keys = append(r.keys, k)
	r.records = append(r.records, NewRecord(k, b))
}

// Records returns what the decision read, each key once, in the order
// first read: the bundle's records.
func (r *Recorder) Records() []Record { return append([]Record(nil), r.records...) }

// MapKeys returns the state map keys of the records read, in the same
// order: the keys to give smt.Map.ProveBatch.
func (r *Recorder) MapKeys() []smt.Key {
	out := make([]smt.Key, 0, len(r.keys))
	for _, k := range r.keys {
		out = append(out, MapKey(k))
	}
	return out
}

// Read returns the keys of the records read, in the order first read, and
// the bytes read for each (nil: absent; shared with Records, only to be
// read): what to prove.
func (r *Recorder) Read() ([]decide.RecordKey, [][]byte) {
	b := make([][]byte, len(r.records))
	for i := range r.records {
		b[i] = r.records[i].Bytes
	}
	return append([]decide.RecordKey(nil), r.keys...), b
}

// Memo returns m, a memory of decoded records of the same state as the
// Records r reads, wrapped so that what the decision recalls from it is
// recorded as if read: a remembered record is read again through r (its
// bytes, not decoded), a remembered listing (decide.KindReceived) is read
// again with every accreditation it names, as the evaluator reads them
// when it decodes the listing itself. The decision then records exactly
// the keys it records without a memo, and decodes each record once per
// memory instead of once per decision. Memo(nil) is nil.
func (r *Recorder) Memo(m decide.Memo) decide.Memo {
	if m == nil {
		return nil
	}
	return recordingMemo{r: r, m: m}
}

// recordingMemo is Recorder.Memo's decide.Memo.
type recordingMemo struct {
	r *Recorder
	m decide.Memo
}

// Recall implements decide.Memo: a remembered value is recalled once its
// records are recorded; when reading them fails it is not, and the
// evaluator's own read through the Recorder meets the error.
func (rm recordingMemo) Recall(k decide.RecordKey) (any, bool) {
	v, ok := rm.m.Recall(k)
	if !ok {
		return nil, false
	}
	if k.Kind != decide.KindReceived {
		if _, err := rm.r.Record(k); err != nil {
			return nil, false
		}
		return v, true
	}
	ids, err := rm.r.Received(k.A, k.B)
	if err != nil {
		return nil, false
	}
	for _, id := range ids {
		if _, err := rm.r.Record(decide.AccreditationKey(id)); err != nil {
			return nil, false
		}
	}
	return v, true
}

// Remember implements decide.Memo.
func (rm recordingMemo) Remember(k decide.RecordKey, v any) { rm.m.Remember(k, v) }
