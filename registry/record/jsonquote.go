package record

import (
	"encoding/base64"
	"unicode/utf8"
)

const jsonHex = "0123456789abcdef"

// AppendJSONString appends s quoted as encoding/json quotes a string:
// '"' and '\' escaped, control characters as \b, \f, \n, \r, \t or \u00XX,
// invalid UTF-8 replaced by \ufffd, U+2028 and U+2029 escaped, and, when
// escapeHTML is set (json.Marshal's default), <, > and & as \u003c, \u003e
// and \u0026. The gateway's answers and the proof bundle's JSON form are
// written through it without reflection, byte for byte json's.
func AppendJSONString(dst []byte, s string, escapeHTML bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!escapeHTML || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', jsonHex[c>>4], jsonHex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', jsonHex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendJSONStrings appends ss as encoding/json writes a []string: null
// when nil, each string quoted as AppendJSONString quotes it.
func AppendJSONStrings(dst []byte, ss []string, escapeHTML bool) []byte {
	if ss == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, s, escapeHTML)
	}
	return append(dst, ']')
}

// AppendJSONOptString appends name (the member's key with its comma and
// colon) and s quoted as json.Marshal quotes it, unless s is empty: a
// string field tagged omitempty.
func AppendJSONOptString(dst []byte, name, s string) []byte {
	if s == "" {
		return dst
	}
	dst = append(dst, name...)
	return AppendJSONString(dst, s, true)
}

// AppendJSONBytes appends b as encoding/json writes a []byte: its
// standard base64 in quotes, null for nil.
func AppendJSONBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}
