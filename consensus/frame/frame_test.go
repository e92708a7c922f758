package frame

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// The bytes on the wire: a uvarint length, then the body; a message's
// byte comes first. These pin what the cluster and cosign protocols sent
// before they shared this package.
func TestWireBytes(t *testing.T) {
	long := bytes.Repeat([]byte{'x'}, 300) // a two-byte length: 0xac 0x02
	for _, tc := range []struct {
		name  string
		write func(w io.Writer) error
		want  []byte
	}{
		{"empty frame", func(w io.Writer) error { return Write(w, nil) }, []byte{0}},
		{"frame", func(w io.Writer) error { return Write(w, []byte("abc")) }, []byte("\x03abc")},
		{"long frame", func(w io.Writer) error { return Write(w, long) }, append([]byte{0xac, 0x02}, long...)},
		{"message", func(w io.Writer) error { return WriteMessage(w, 7, []byte("hi")) }, []byte("\x07\x02hi")},
		{"empty message", func(w io.Writer) error { return WriteMessage(w, 0, nil) }, []byte{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w countingWriter
			if err := tc.write(&w); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(w.b.Bytes(), tc.want) || w.writes != 1 {
				t.Fatalf("wrote % x in %d writes, want % x in one", w.b.Bytes(), w.writes, tc.want)
			}
		})
	}
}

type countingWriter struct {
	b      bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.b.Write(p)
}

// onlyReader hides a reader's other methods (ReadByte).
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestRead(t *testing.T) {
	// Read takes nothing past the frame from a plain reader: what follows
	// stays for the next reader (the hello's second frame, for one).
	src := strings.NewReader("\x03abc\x02de")
	for _, want := range []string{"abc", "de"} {
		got, err := Read(onlyReader{src}, 3)
		if err != nil || string(got) != want {
			t.Fatalf("Read = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := Read(onlyReader{src}, 3); !errors.Is(err, io.EOF) {
		t.Fatalf("Read at the end = %v, want EOF", err)
	}

	// A frame above the limit is refused by its length alone.
	var big *TooLargeError
	if _, err := Read(strings.NewReader("\x04abcd"), 3); !errors.As(err, &big) || big.Size != 4 || big.Limit != 3 {
		t.Fatalf("a frame above the limit: %v, want TooLargeError{4, 3}", err)
	}
	if _, err := Read(strings.NewReader("\x05abc"), 8); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a cut frame: %v, want ErrUnexpectedEOF", err)
	}
	if _, err := Read(strings.NewReader("\x80"), 8); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a cut length: %v, want ErrUnexpectedEOF", err)
	}

	kind, body, err := ReadMessage(strings.NewReader("\x07\x02hi"), 2)
	if err != nil || kind != 7 || string(body) != "hi" {
		t.Fatalf("ReadMessage = %d, %q, %v; want 7, \"hi\"", kind, body, err)
	}
	if _, _, err := ReadMessage(strings.NewReader("\x07\x02hi"), 1); !errors.As(err, &big) {
		t.Fatalf("ReadMessage above the limit: %v, want TooLargeError", err)
	}
}
