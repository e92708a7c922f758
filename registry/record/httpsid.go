package record

import "strings"

// The replicated apply decides by ValidateID, so which https URLs it takes
// must not move with the Go release or a GODEBUG setting, as net/url's
// Parse does (urlstrictcolons did in Go 1.26). No library offers a reading
// frozen by its own code rather than by the toolchain that builds it, so
// httpsID reads the text itself. It takes exactly the strings that
// url.Parse (Go 1.26, default GODEBUG) parses without error to a URL with
// scheme "https" and a non-empty Host, among those that reach it from
// ValidateID (printable UTF-8 without spaces);
// FuzzHTTPSIdentifierMatchesURLParse holds the two to one answer, and
// every rule below names the net/url step it stands for.

// httpsID reports whether s is an https URL with a host, read as
//
//	https://[userinfo@]host[:port][/path][?query][#fragment]
//
// The rules, in net/url's terms:
//   - the scheme is "https" in any ASCII case, followed by "//" (getScheme
//     lower-cases it; without "//" the URL is opaque or has no host);
//   - the fragment is all after the first "#", the query all after the
//     first "?" before it, and the authority runs from "//" to the first
//     "/", "?" or "#" (Parse, parse);
//   - userinfo is all before the authority's last "@" (parseAuthority),
//     see validUserinfo; the host is the rest and is not empty;
//   - the host is read by validHost (parseHost);
//   - the path and the fragment hold only well-formed %-escapes
//     (setPath, setFragment); the query is not checked.
func httpsID(s string) bool {
	const scheme = "https:"
	if len(s) < len(scheme) || !asciiLowerIs(s[:len(scheme)], scheme) {
		return false
	}
	rest, fragment, _ := strings.Cut(s[len(scheme):], "#")
	rest, _, _ = strings.Cut(rest, "?")
	rest, ok := strings.CutPrefix(rest, "//")
	if !ok {
		return false
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	host := authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		if !validUserinfo(authority[:i]) {
			return false
		}
		host = authority[i+1:]
	}
	return host != "" && validHost(host) && validEscapes(path) && validEscapes(fragment)
}

// asciiLowerIs reports whether s, with ASCII letters lower-cased, is lower.
func asciiLowerIs(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// validUserinfo reports whether s is userinfo as net/url takes it
// (validUserinfo, then unescape): ASCII letters, digits and
// "-._:~!$&'()*+,;=@", and well-formed %-escapes.
func validUserinfo(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '%' && !strings.ContainsRune("-._:~!$&'()*+,;=@", rune(c)) {
			return false
		}
	}
	return validEscapes(s)
}

// validHost reports whether host, the authority without userinfo, is one
// net/url takes (parseHost): an IP literal if it starts with "[", else a
// name with at most one ":" followed by digits only (the strict colons of
// http and https URLs), no "[", its ASCII bytes allowed in a host
// (hostByte) and its %-escapes for a non-ASCII byte (%80 to %FF) or "%25"
// (unescape in encodeHost mode). Other non-ASCII bytes are taken as they
// are.
func validHost(host string) bool {
	switch strings.LastIndexByte(host, '[') {
	case 0:
		return validIPLiteral(host)
	case -1:
	default:
		return false
	}
	if _, port, ok := strings.Cut(host, ":"); ok && !allDigits(port) {
		return false
	}
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case c == '%':
			if !validEscapeAt(host, i) || host[i+1] < '8' && host[i:i+3] != "%25" {
				return false
			}
			i += 2
		case c < 0x80 && !hostByte(c):
			return false
		}
	}
	return true
}

// validIPLiteral reports whether host, which starts with "[" and holds no
// other, is "[" IPv6 ["%25" zone] "]" [":" digits], the "]" being the
// last in host (parseHost with RFC 6874 zones, then netip.ParseAddr,
// which takes no IPv4 address here and needs a zone to be non-empty).
func validIPLiteral(host string) bool {
	end := strings.LastIndexByte(host, ']')
	if end < 0 {
		return false
	}
	if port := host[end+1:]; port != "" && (port[0] != ':' || !allDigits(port[1:])) {
		return false
	}
	addr, zone, hasZone := strings.Cut(host[1:end], "%25")
	return validIPv6(addr) && (!hasZone || validZone(zone))
}

// validZone reports whether zone (after "%25") is a non-empty zone whose
// ASCII bytes are allowed in a host (hostByte) and whose %-escapes are
// "%25" or decode to a space or such a byte (unescape in encodeZone mode).
func validZone(zone string) bool {
	if zone == "" {
		return false
	}
	for i := 0; i < len(zone); i++ {
		switch c := zone[i]; {
		case c == '%':
			if !validEscapeAt(zone, i) {
				return false
			}
			v := unhex(zone[i+1])<<4 | unhex(zone[i+2])
			if v != '%' && v != ' ' && (v >= 0x80 || !hostByte(v)) {
				return false
			}
			i += 2
		case c < 0x80 && !hostByte(c):
			return false
		}
	}
	return true
}

// validIPv6 reports whether s is an IPv6 address in text without a zone
// (RFC 4291 §2.2, as netip.ParseAddr reads it): groups of one to four hex
// digits split by ":", eight of them, the last two of which may be written
// as a dotted IPv4 address; or fewer around one "::" that stands for at
// least one zero group.
func validIPv6(s string) bool {
	head, tail, ellipsis := strings.Cut(s, "::")
	if !ellipsis {
		n, ok := ipv6Groups(s, true)
		return ok && n == 8
	}
	h, okh := ipv6Groups(head, false)
	t, okt := ipv6Groups(tail, true)
	return okh && okt && h+t <= 7
}

// ipv6Groups counts the 16-bit groups in s, fields split by ":" ("" has
// none), each of one to four hex digits, or the last, if ipv4 is set, a
// dotted IPv4 address counting two.
func ipv6Groups(s string, ipv4 bool) (int, bool) {
	if s == "" {
		return 0, true
	}
	fields := strings.Split(s, ":")
	n := 0
	for i, f := range fields {
		switch {
		case ipv4 && i == len(fields)-1 && strings.Contains(f, "."):
			if !validIPv4(f) {
				return 0, false
			}
			n += 2
		case f == "" || len(f) > 4 || strings.TrimLeft(f, "0123456789abcdefABCDEF") != "":
			return 0, false
		default:
			n++
		}
	}
	return n, n <= 8
}

// validIPv4 reports whether s is four decimal numbers from 0 to 255 split
// by ".", without leading zeros.
func validIPv4(s string) bool {
	fields := strings.Split(s, ".")
	if len(fields) != 4 {
		return false
	}
	for _, f := range fields {
		if f == "" || len(f) > 3 || !allDigits(f) || len(f) > 1 && f[0] == '0' || len(f) == 3 && f > "255" {
			return false
		}
	}
	return true
}

// hostByte reports whether net/url leaves the ASCII byte c as it is in a
// host or zone (shouldEscape in encodeHost mode): letters, digits and
// "!$&'()*+,;=:[]<>\"-._~".
func hostByte(c byte) bool {
	return isAlnum(c) || strings.ContainsRune("!$&'()*+,;=:[]<>\"-._~", rune(c))
}

// validEscapes reports whether every "%" in s starts a %-escape, "%" and
// two hex digits (unescape).
func validEscapes(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0; i = strings.IndexByte(s, '%') {
		if !validEscapeAt(s, i) {
			return false
		}
		s = s[i+3:]
	}
	return true
}

// validEscapeAt reports whether s[i], a "%", is followed by two hex digits.
func validEscapeAt(s string, i int) bool {
	return i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2])
}

// isHex reports whether c is a hex digit.
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex is the value of the hex digit c.
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// isAlnum reports whether c is an ASCII letter or digit.
func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// allDigits reports whether s holds only ASCII digits ("" does).
func allDigits(s string) bool {
	return strings.TrimLeft(s, "0123456789") == ""
}
