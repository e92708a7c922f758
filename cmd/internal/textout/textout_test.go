package textout

import (
	"errors"
	"strings"
	"testing"
)

var errFull = errors.New("full")

// failAfter accepts n writes, then fails every one.
type failAfter struct {
	n   int
	got strings.Builder
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errFull
	}
	f.n--
	return f.got.Write(p)
}

func TestWriterKeepsFirstError(t *testing.T) {
	f := &failAfter{n: 2}
	w := &Writer{W: f}
	w.Printf("a %d\n", 1)
	w.Println("b", 2)
	w.Printf("c\n")
	f.n = 5 // the writer would take more now; nothing more is written
	w.Println("d")
	if !errors.Is(w.Err, errFull) {
		t.Fatalf("Err = %v, want %v", w.Err, errFull)
	}
	if got, want := f.got.String(), "a 1\nb 2\n"; got != want {
		t.Fatalf("written %q, want %q", got, want)
	}
	if n, err := w.Write([]byte("e")); n != 0 || !errors.Is(err, errFull) {
		t.Fatalf("Write after a failure = %d, %v; want 0, %v", n, err, errFull)
	}
}

// Text from elsewhere cannot drive the terminal or hide in it: what a
// terminal would not show as itself is written as a visible escape; the
// rest, line breaks and tabs included, as it is.
func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"did:web:college.example\n":     "did:web:college.example\n",
		"a\tb é 中 🎓":                    "a\tb é 中 🎓",
		"\r\x1b[2KVERIFIED: AUTHORIZED": `\x0d\x1b[2KVERIFIED: AUTHORIZED`,
		"https://example.org/fw\u200b":  `https://example.org/fw\u200b`,
		"abc\u202edef":                  `abc\u202edef`,
		"\x7f\u0085\u2028\ufeff":        `\x7f\u0085\u2028\ufeff`,
		"bad \xff byte":                 `bad \xff byte`,
		"private \U000F0000":            `private \U000f0000`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
	var b strings.Builder
	w := &Writer{W: &b, Escaped: true}
	w.Printf("VERIFIED: %s\n", "\rNOT")
	if w.Err != nil || b.String() != `VERIFIED: \x0dNOT`+"\n" {
		t.Fatalf("escaped writer wrote %q (%v)", b.String(), w.Err)
	}
}
