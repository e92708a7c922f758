package gateway

import (
	"strconv"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// appendDecision appends a trust decision as JSON, byte for byte what
// encoding/json (HTML escaping off) writes, without reflection: the trust
// query is the gateway's hot path. TestAppendDecisionMatchesEncodingJSON
// keeps the two equal.
func appendDecision(b []byte, d *record.Decision) []byte {
	b, _ = appendDecisionAt(b, d)
	return b
}

// appendDecisionAt is appendDecision that also returns where the text of
// the decision's time ("at", inside its quotes) begins in b.
func appendDecisionAt(b []byte, d *record.Decision) ([]byte, int) {
	b = append(b, `{"entity":`...)
	b = appendString(b, d.Entity)
	b = append(b, `,"framework":`...)
	b = appendString(b, d.Framework)
	b = append(b, `,"action":`...)
	b = appendString(b, d.Action)
	if d.Resource != "" {
		b = append(b, `,"resource":`...)
		b = appendString(b, d.Resource)
	}
	b = append(b, `,"authorized":`...)
	b = strconv.AppendBool(b, d.Authorized)
	b = append(b, `,"reason":`...)
	b = appendString(b, d.Reason)
	b = append(b, `,"chain":`...)
	if d.Chain == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range d.Chain {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendLink(b, &d.Chain[i])
		}
		b = append(b, ']')
	}
	if d.Root != "" {
		b = append(b, `,"root":`...)
		b = appendString(b, d.Root)
	}
	b = append(b, `,"at":`...)
	at := len(b) + 1
	b = appendTime(b, d.At)
	b = append(b, `,"index":`...)
	b = strconv.AppendUint(b, d.Index, 10)
	return append(b, "}\n"...), at
}

func appendLink(b []byte, l *record.Link) []byte {
	b = append(b, `{"accreditation":`...)
	b = appendString(b, l.Accreditation)
	b = append(b, `,"accreditor":`...)
	b = appendString(b, l.Accreditor)
	b = append(b, `,"subject":`...)
	b = appendString(b, l.Subject)
	b = append(b, `,"action":`...)
	b = appendString(b, l.Action)
	b = append(b, `,"resources":`...)
	b = appendStrings(b, l.Resources)
	if len(l.Jurisdictions) > 0 {
		b = append(b, `,"jurisdictions":`...)
		b = appendStrings(b, l.Jurisdictions)
	}
	b = append(b, `,"validFrom":`...)
	b = appendTime(b, l.ValidFrom)
	if l.ValidUntil != nil {
		b = append(b, `,"validUntil":`...)
		b = appendTime(b, *l.ValidUntil)
	}
	b = append(b, `,"status":`...)
	b = appendString(b, l.Status)
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte { return record.AppendJSONStrings(b, ss, false) }

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString quotes s as encoding/json does with HTML escaping off.
func appendString(b []byte, s string) []byte { return record.AppendJSONString(b, s, false) }
