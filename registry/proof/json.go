package proof

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/trustreg/trustreg/registry/record"
)

// AppendJSON appends the bundle's JSON to dst: exactly the bytes
// json.Marshal(b) makes (the same members in the same order, strings
// escaped the same way, HTML characters included), written without
// reflection into one buffer (the status-list records and the cosigner
// evidence, present in few answers, through encoding/json). A gateway answers every proof request with
// it; Marshal is the reference it is tested against (TestAppendJSON...).
// The errors are json.Marshal's: a hash list with a hash not of 32 bytes,
// a time outside years 0–9999.
func (b *Bundle) AppendJSON(dst []byte) ([]byte, error) {
	var err error
	dst = append(dst, `{"version":`...)
	dst = strconv.AppendInt(dst, int64(b.Version), 10)
	dst = append(dst, `,"question":`...)
	if dst, err = b.Question.appendJSON(dst); err != nil {
		return nil, err
	}
	dst = append(dst, `,"answer":`...)
	dst = b.Answer.appendJSON(dst)
	dst = append(dst, `,"records":`...)
	if b.Records == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range b.Records {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = b.Records[i].appendJSON(dst)
		}
		dst = append(dst, ']')
	}
	if b.StatusList != nil {
		// Status-list answers are not the hot path: their records are
		// written by encoding/json, whatever fields they gain.
		enc, err := json.Marshal(b.StatusList)
		if err != nil {
			return nil, err
		}
		dst = append(dst, `,"statusList":`...)
		dst = append(dst, enc...)
	}
	dst = append(dst, `,"mapProof":`...)
	dst = record.AppendJSONBytes(dst, b.MapProof)
	dst = append(dst, `,"leaf":`...)
	dst = record.AppendJSONBytes(dst, b.Leaf)
	dst = append(dst, `,"leafIndex":`...)
	dst = strconv.AppendUint(dst, b.LeafIndex, 10)
	if b.LeafSize != 0 {
		dst = append(dst, `,"leafSize":`...)
		dst = strconv.AppendUint(dst, b.LeafSize, 10)
	}
	dst = append(dst, `,"inclusion":`...)
	if dst, err = b.Inclusion.appendJSON(dst); err != nil {
		return nil, err
	}
	if len(b.Consistency) > 0 {
		dst = append(dst, `,"consistency":`...)
		if dst, err = b.Consistency.appendJSON(dst); err != nil {
			return nil, err
		}
	}
	dst = append(dst, `,"checkpoint":`...)
	dst = appendStringJSON(dst, b.Checkpoint)
	if b.Cosigners != nil {
		// Present only once governance changed the cosigners: written by
		// encoding/json, whatever fields the evidence gains.
		enc, err := json.Marshal(b.Cosigners)
		if err != nil {
			return nil, err
		}
		dst = append(dst, `,"cosigners":`...)
		dst = append(dst, enc...)
	}
	return append(dst, '}'), nil
}

func (q *Question) appendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"type":`...)
	dst = appendStringJSON(dst, q.Type)
	dst = record.AppendJSONOptString(dst, `,"entity":`, q.Entity)
	dst = append(dst, `,"framework":`...)
	dst = appendStringJSON(dst, q.Framework)
	dst = record.AppendJSONOptString(dst, `,"action":`, q.Action)
	dst = record.AppendJSONOptString(dst, `,"resource":`, q.Resource)
	dst = record.AppendJSONOptString(dst, `,"jurisdiction":`, q.Jurisdiction)
	dst = record.AppendJSONOptString(dst, `,"recognized":`, q.Recognized)
	dst = record.AppendJSONOptString(dst, `,"list":`, q.List)
	at, err := q.At.MarshalJSON()
	if err != nil {
		return nil, err
	}
	dst = append(dst, `,"at":`...)
	dst = append(dst, at...)
	if q.AsOf != 0 {
		dst = append(dst, `,"asOf":`...)
		dst = strconv.AppendUint(dst, q.AsOf, 10)
	}
	dst = append(dst, `,"applied":`...)
	dst = strconv.AppendUint(dst, q.Applied, 10)
	return append(dst, '}'), nil
}

func (a *Answer) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	if a.Authorized != nil {
		dst = append(dst, `"authorized":`...)
		dst = strconv.AppendBool(dst, *a.Authorized)
		dst = append(dst, ',')
	}
	if a.Recognized != nil {
		dst = append(dst, `"recognized":`...)
		dst = strconv.AppendBool(dst, *a.Recognized)
		dst = append(dst, ',')
	}
	dst = append(dst, `"reason":`...)
	dst = appendStringJSON(dst, a.Reason)
	if len(a.Chain) > 0 {
		dst = append(dst, `,"chain":[`...)
		for i, c := range a.Chain {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendStringJSON(dst, c)
		}
		dst = append(dst, ']')
	}
	dst = record.AppendJSONOptString(dst, `,"root":`, a.Root)
	dst = append(dst, `,"index":`...)
	dst = strconv.AppendUint(dst, a.Index, 10)
	return append(dst, '}')
}

func (r *Record) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"kind":`...)
	dst = appendStringJSON(dst, r.Kind)
	dst = append(dst, `,"a":`...)
	dst = appendStringJSON(dst, r.A)
	dst = record.AppendJSONOptString(dst, `,"b":`, r.B)
	dst = append(dst, `,"bytes":`...)
	dst = record.AppendJSONBytes(dst, r.Bytes)
	return append(dst, '}')
}

// appendJSON appends the hashes as MarshalJSON writes them: the base64 of
// their concatenation ("" for none).
func (h Hashes) appendJSON(dst []byte) ([]byte, error) {
	n := 0
	for _, x := range h {
		if len(x) != 32 {
			// MarshalJSON's error, and its message.
			_, err := h.concat()
			return nil, err
		}
		n += len(x)
	}
	dst = append(dst, '"')
	start := len(dst)
	m := base64.StdEncoding.EncodedLen(n)
	dst = slices.Grow(dst, m+1)[:start+m]
	// Whole hashes of 32 bytes are not multiples of 3, so encode the
	// concatenation in runs of three hashes (96 bytes, 128 characters)
	// and the rest as one.
	out := dst[start:]
	var run [96]byte
	for i := 0; i < len(h); i += 3 {
		k := copy(run[:], h[i])
		if i+1 < len(h) {
			k += copy(run[k:], h[i+1])
		}
		if i+2 < len(h) {
			k += copy(run[k:], h[i+2])
		}
		base64.StdEncoding.Encode(out, run[:k])
		out = out[base64.StdEncoding.EncodedLen(k):]
	}
	return append(dst, '"'), nil
}

// appendStringJSON appends s as a JSON string the way json.Marshal does
// by default (HTML characters escaped).
func appendStringJSON(dst []byte, s string) []byte { return record.AppendJSONString(dst, s, true) }
