package textout

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape returns s with every character a terminal would not show as
// itself written as a Go escape (\u200b, \x1b, \xff): control characters
// but line feed and tab, format characters (zero-width spaces, bidi
// overrides), separators other than the space, private-use and unassigned
// code points, and bytes that are not UTF-8. Text from a registry or a
// proof bundle is someone else's: written raw, "\r\x1b[2K" could rewrite
// the line a reader takes for the verdict, and an invisible character
// make two identifiers look alike.
func Escape(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case unsafeRune(r):
			if r < 0x80 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else if r <= 0xffff {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

// unsafeRune reports whether r is written escaped (Escape).
func unsafeRune(r rune) bool {
	if r == '\n' || r == '\t' {
		return false
	}
	return !unicode.IsGraphic(r) || unicode.Is(unicode.Cf, r)
}
