package record

import (
	"strconv"
	"time"
)

// AppendJSON appends a as json.Marshal encodes it, byte for byte, and
// reports whether it could: false when a time is one json.Marshal refuses
// (a year outside 0–9999, an offset of a day or more), for the caller to
// take json.Marshal's error instead. An accreditation is the record every
// accredit writes; encoding it by reflection was about 2 % of a node's
// CPU in a 64-client write run (2026-12-06). FuzzAccreditationJSON holds
// the two encodings equal.
func (a *Accreditation) AppendJSON(dst []byte) ([]byte, bool) {
	ok := true
	dst = append(dst, `{"id":`...)
	dst = AppendJSONString(dst, a.ID, true)
	dst = append(dst, `,"framework":`...)
	dst = AppendJSONString(dst, a.Framework, true)
	dst = append(dst, `,"accreditor":`...)
	dst = AppendJSONString(dst, a.Accreditor, true)
	dst = append(dst, `,"subject":`...)
	dst = AppendJSONString(dst, a.Subject, true)
	dst = append(dst, `,"action":`...)
	dst = AppendJSONString(dst, a.Action, true)
	dst = append(dst, `,"resources":`...)
	dst = AppendJSONStrings(dst, a.Resources, true)
	if len(a.Jurisdictions) > 0 {
		dst = append(dst, `,"jurisdictions":`...)
		dst = AppendJSONStrings(dst, a.Jurisdictions, true)
	}
	dst = append(dst, `,"validFrom":`...)
	dst = AppendJSONTime(dst, a.ValidFrom, &ok)
	if a.ValidUntil != nil {
		dst = append(dst, `,"validUntil":`...)
		dst = AppendJSONTime(dst, *a.ValidUntil, &ok)
	}
	dst = AppendJSONOptString(dst, `,"parent":`, a.Parent)
	if len(a.Evidence) > 0 {
		dst = append(dst, `,"evidence":`...)
		dst = AppendJSONStrings(dst, a.Evidence, true)
	}
	dst = append(dst, `,"depth":`...)
	dst = strconv.AppendInt(dst, int64(a.Depth), 10)
	dst = append(dst, `,"createdIndex":`...)
	dst = strconv.AppendUint(dst, a.CreatedIndex, 10)
	dst = append(dst, `,"createdAt":`...)
	dst = AppendJSONTime(dst, a.CreatedAt, &ok)
	dst = append(dst, `,"events":`...)
	if a.Events == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range a.Events {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = a.Events[i].appendJSON(dst, &ok)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), ok
}

// appendJSON appends e as json.Marshal encodes it; a time json.Marshal
// refuses clears ok.
func (e *StatusEvent) appendJSON(dst []byte, ok *bool) []byte {
	dst = append(dst, `{"status":`...)
	dst = AppendJSONString(dst, e.Status, true)
	dst = append(dst, `,"effectiveAt":`...)
	dst = AppendJSONTime(dst, e.EffectiveAt, ok)
	dst = AppendJSONOptString(dst, `,"reason":`, e.Reason)
	dst = append(dst, `,"index":`...)
	dst = strconv.AppendUint(dst, e.Index, 10)
	dst = append(dst, `,"operation":`...)
	dst = AppendJSONString(dst, e.Operation, true)
	return append(dst, '}')
}

// AppendJSONTime appends t as its MarshalJSON does (RFC 3339 with
// nanoseconds, quoted); a time it refuses clears ok.
func AppendJSONTime(dst []byte, t time.Time, ok *bool) []byte {
	dst = append(dst, '"')
	dst, err := t.AppendText(dst)
	if err != nil {
		*ok = false
	}
	return append(dst, '"')
}

// AppendJSON appends r as json.Marshal encodes it, byte for byte, and
// reports whether it could (false for a time json.Marshal refuses). Every
// applied entry stores its result. FuzzResultJSON holds the two equal.
func (r *Result) AppendJSON(dst []byte) ([]byte, bool) {
	ok := true
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendUint(dst, r.Index, 10)
	dst = append(dst, `,"time":`...)
	dst = AppendJSONTime(dst, r.Time, &ok)
	dst = AppendJSONOptString(dst, `,"cid":`, r.CID)
	dst = AppendJSONOptString(dst, `,"op":`, r.Op)
	if len(r.Signers) > 0 {
		dst = append(dst, `,"signers":`...)
		dst = AppendJSONStrings(dst, r.Signers, true)
	}
	dst = append(dst, `,"accepted":`...)
	dst = strconv.AppendBool(dst, r.Accepted)
	if r.Duplicate {
		dst = append(dst, `,"duplicate":true`...)
	}
	dst = AppendJSONOptString(dst, `,"id":`, r.ID)
	dst = AppendJSONOptString(dst, `,"code":`, r.Code)
	dst = AppendJSONOptString(dst, `,"reason":`, r.Reason)
	return append(dst, '}'), ok
}
