package record

import (
	"net/url"
	"os"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// urlParseHTTPS is the rule httpsID replaces: what ValidateID took before.
func urlParseHTTPS(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != ""
}

// reachesHTTPSRule reports whether ValidateID's checks before the https
// rule pass s: non-empty, at most MaxIDLength bytes of valid UTF-8 without
// spaces or control characters, not a DID.
func reachesHTTPSRule(s string) bool {
	if s == "" || len(s) > MaxIDLength || !utf8.ValidString(s) || strings.HasPrefix(s, "did:") {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// httpsIDSeeds are inputs for FuzzHTTPSIdentifierMatchesURLParse: each part
// of the URL with the bytes and forms net/url treats apart, and every
// disagreement the fuzzer found.
var httpsIDSeeds = []string{
	// Scheme.
	"https://a.example/", "HTTPS://a.example", "HtTpS://a", "http://a.example", "https:/a.example",
	"https:a.example", "https:", "https", "https//a", "xhttps://a", "https+x://a", "ſhttps://a",
	"httpſ://a", "httpS://a", "https://", "https:///a", "https:////a", "://a", ":https://a",
	// Authority ends, query and fragment.
	"https://?q", "https://#f", "https://a?q", "https://a#f", "https://a?", "https://a?q?r",
	"https://a#f#g", "https://a?q#f?g", "https://a#f?q", "https://a/p?q#f", "https:?//a", "https:#//a",
	"https://a\\b", "https://a\\b/c",
	// Userinfo.
	"https://a@", "https://@a", "https://u@a", "https://u:p@a", "https://u:p:q@a", "https://u@v@a",
	"https://u:p@ssword@a", "https://u%41@a", "https://u%4@a", "https://u%@a", "https://u%zz@a",
	"https://u%4:@a", "https://u:%@a", "https://u:p%41@a", "https://\"u\"@a", "https://u<@a",
	"https://u[@a", "https://u]@a", "https://u{@a", "https://u|@a", "https://u^@a", "https://u`@a",
	"https://u\\@a", "https://é@a", "https://u!$&'()*+,;=-._~@a", "https://u#@a", "https://u?@a",
	"https://u/@a", "https://@", "https://@@", "https://:@a", "https://u@:1",
	// Ports and colons.
	"https://a:443", "https://a:", "https://:443", "https://:", "https://a:x", "https://a:44x",
	"https://a:1:2/", "https://a::", "https://a::1", "https://:1:", "https://a.example:1:2/",
	"https://a:%31", "https://a:+1", "https://a:-1", "https://a:١", "https://a:443@b",
	"https://a:99999999999999999999",
	// IP literals.
	"https://[::1]", "https://[::1]:443", "https://[::1]:", "https://[::1]x", "https://[::1]:x",
	"https://[::1]:1:2", "https://[::1", "https://[]", "https://[", "https://]", "https://a]",
	"https://a]b", "https://a[b]", "https://x[::1]", "https://[[::1]]", "https://[::1]]",
	"https://[::1]]:80", "https://[1.2.3.4]", "https://[::ffff:1.2.3.4]", "https://[::1.2.3.4]",
	"https://[1:2:3:4:5:6:1.2.3.4]", "https://[1:2:3:4:5:6:7:1.2.3.4]", "https://[1:2:3:4:5::1.2.3.4]",
	"https://[1:2:3:4:5:6::1.2.3.4]", "https://[::1.2.3]", "https://[::1.2.3.4.5]",
	"https://[::01.2.3.4]", "https://[::0.0.0.0]", "https://[::256.1.1.1]", "https://[::1.2.3.4:5]",
	"https://[::a.2.3.4]", "https://[1.2.3.4::]", "https://[1:2:3:4:5:6:7:8]",
	"https://[1:2:3:4:5:6:7:8:9]", "https://[1:2:3:4::5:6:7:8]", "https://[1:2:3:4:5:6:7::]",
	"https://[::1:2:3:4:5:6:7]", "https://[1::2::3]", "https://[:::]", "https://[::]",
	"https://[:1]", "https://[1:]", "https://[1::]", "https://[fffff::]", "https://[0000::]",
	"https://[00000::]", "https://[FE80::A]", "https://[g::]", "https://[::%31]", "https://[::1%]",
	"https://[%3A%3A1]", "https://[::%ff]",
	// Zones.
	"https://[fe80::1%25en0]", "https://[fe80::1%25en0]:8080", "https://[fe80::1%25]",
	"https://[fe80::1%25%25]", "https://[fe80::1%2525]", "https://[fe80::1%25a%20b]",
	"https://[fe80::1%25a%41]", "https://[fe80::1%25a%2f]", "https://[fe80::1%25a%ff]",
	"https://[fe80::1%25a%zz]", "https://[fe80::1%25a%]", "https://[fe80::1%25é]",
	"https://[fe80::1%25a]b]", "https://[fe80::1%25a]:80]", "https://[fe80::1%25a<>\"]",
	"https://[fe80::1%25a{]", "https://[fe80::1%25a|b]", "https://[fe80::1%25a^]",
	"https://[fe80::1%25a`]", "https://[fe80::1%25a%25b]", "https://[1.2.3.4%25a]",
	"https://[%25a]", "https://[fe80::1%26a]", "https://[fe80::1%en0]", "https://[fe80::1%25a%3A]",
	"https://[fe80::1%25a%5B]", "https://[fe80::1%25a%7B]", "https://[fe80::1%25%7e]",
	// Host bytes and escapes.
	"https://a%25b", "https://a%41", "https://a%7F", "https://a%80", "https://a%C3%A9", "https://a%c3%a9",
	"https://a%8", "https://a%", "https://a%zz", "https://a%2", "https://a%G0", "https://%25",
	"https://é.example", "https://例え.jp", "https://a\"b", "https://a<b>", "https://a{b}",
	"https://a|b", "https://a^b", "https://a`b", "https://a!$&'()*+,;=b", "https://a-._~b",
	"https://a%2Fb", "https://a%3a1", "https://a.example:%38%30",
	// Path.
	"https://a/%", "https://a/%4", "https://a/%41", "https://a/%zz", "https://a/%%", "https://a/<>\"{}|\\^`",
	"https://a/é", "https://a/[x]", "https://a/@:", "https://a//b", "https://a/%2f",
	// Query (not checked).
	"https://a?%", "https://a?<>\"{}|\\^`", "https://a?%zz#f", "https://a/?[",
	// Fragment.
	"https://a#%", "https://a#%4", "https://a#%41", "https://a#%zz", "https://a#<>\"{}|\\^`",
	"https://a#é", "https://a#", "https://a?#%", "https://a##%",
	// Not https at all.
	"a", "/a", "//a", "*", "urn:x", "mailto:a@b", "did", "a:b", "1https://a", "%41://a",
}

// httpsID takes exactly what url.Parse's rule took, for every string that
// reaches it from ValidateID.
func FuzzHTTPSIdentifierMatchesURLParse(f *testing.F) {
	if strings.Contains(os.Getenv("GODEBUG"), "urlstrictcolons") {
		f.Skip("the reference is url.Parse under the default GODEBUG")
	}
	for _, s := range httpsIDSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !reachesHTTPSRule(s) {
			return
		}
		if got, want := httpsID(s), urlParseHTTPS(s); got != want {
			t.Fatalf("httpsID(%q) = %v, url.Parse rule %v", s, got, want)
		}
		if got, want := ValidateID("id", s) == nil, httpsID(s); got != want {
			t.Fatalf("ValidateID(%q) passed: %v, httpsID %v", s, got, want)
		}
	})
}

// Examples of what httpsID takes and refuses, with the rule that decides.
func TestHTTPSID(t *testing.T) {
	for _, c := range []struct {
		s    string
		ok   bool
		rule string
	}{
		{"https://a.example/f", true, "host and path"},
		{"HTTPS://a.example", true, "the scheme in any case"},
		{"https://u:p@a.example:8443/x?q=<>#f", true, "userinfo, port, an unchecked query"},
		{"https://:443", true, "a host of only a port is not empty"},
		{"https://a]b", true, `"]" is a host byte`},
		{"https://é.example", true, "non-ASCII host bytes are taken as they are"},
		{"https://a%C3%A9", true, "a host may escape non-ASCII bytes"},
		{"https://a%25b", true, `a host may escape "%"`},
		{"https://[fe80::1%25en0]:80", true, "an IPv6 literal with a zone and a port"},
		{"https://[::ffff:1.2.3.4]", true, "an IPv4-mapped IPv6 literal"},
		{"https://[fe80::1%25a]b]", true, `the literal ends at the last "]"; "]" is a zone byte`},
		{"http://a.example", false, "not https"},
		{"https:a.example", false, `no "//": opaque`},
		{"https:/a.example", false, `one "/": no host`},
		{"https://", false, "empty host"},
		{"https://?q", false, "empty host before the query"},
		{"https://#f", false, "empty host before the fragment"},
		{"https://a@", false, "empty host after userinfo"},
		{"https://a:1:2/", false, "more than one colon (strict colons)"},
		{"https://a:x", false, "a port not of digits"},
		{"https://u<@a", false, `"<" is not a userinfo byte`},
		{"https://é@a", false, "non-ASCII userinfo"},
		{"https://u%4@a", false, "a broken escape in userinfo"},
		{"https://a%41", false, "a host may not escape an ASCII byte"},
		{"https://a{b}", false, `"{" is not a host byte`},
		{"https://x[::1]", false, `"[" not at the start of the host`},
		{"https://[1.2.3.4]", false, "an IPv4 address in brackets"},
		{"https://[::1]x", false, `bytes after "]" not a port`},
		{"https://[1::2::3]", false, `two "::"`},
		{"https://[::01.2.3.4]", false, "a leading zero in embedded IPv4"},
		{"https://[fe80::1%25]", false, "an empty zone"},
		{"https://[fe80::1%25a%ff]", false, "a zone escaping a non-ASCII byte"},
		{"https://[fe80::1%25a{]", false, `"{" is not a zone byte`},
		{"https://a/%zz", false, "a broken escape in the path"},
		{"https://a#%4", false, "a broken escape in the fragment"},
	} {
		if got := httpsID(c.s); got != c.ok {
			t.Errorf("httpsID(%q) = %v, want %v: %s", c.s, got, c.ok, c.rule)
		}
		if want := urlParseHTTPS(c.s); want != c.ok && !strings.Contains(os.Getenv("GODEBUG"), "urlstrictcolons") {
			t.Errorf("url.Parse rule on %q = %v; the example's %v is wrong", c.s, want, c.ok)
		}
	}
}
