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
