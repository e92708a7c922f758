package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
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

// headerOnly is a frame's length and no body: then r's end, or nothing
// (a stream left open) once r is read.
func headerOnly(n uint64) []byte { return binary.AppendUvarint(nil, n) }

// sizeReader hands out src in pieces of at most step bytes and records,
// for each Read, the bytes delivered before it plus the room it was asked
// to fill: the most of a buffer the reader of the frame can have made
// (Read fills the buffer it allocated, from where the body's bytes end).
type sizeReader struct {
	src       []byte
	step      int
	delivered int
	most      int // largest delivered + cap(p) seen
}

func (s *sizeReader) Read(p []byte) (int, error) {
	s.most = max(s.most, s.delivered+cap(p))
	if len(s.src) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), s.step)], s.src)
	s.src, s.delivered = s.src[n:], s.delivered+n
	return n, nil
}

// Read's memory follows the bytes that arrive, not the length announced:
// a peer that sends the length of a long frame and no body (the security
// review's 8 MiB on 24 streams, held for the stream's deadline) costs at
// most readAheadBytes, and a body that arrives costs at most about twice
// what came.
func TestReadAllocatesAsTheBodyArrives(t *testing.T) {
	const announced = 8 << 20
	for _, tc := range []struct {
		name string
		sent int // body bytes sent before the end
		step int
	}{
		{"no body", 0, 4096},
		{"a little body", 1000, 4096},
		{"a third of it, in pieces", announced / 3, 1500},
		{"all of it", announced, 32 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte{'x'}, tc.sent)
			r := &sizeReader{src: append(headerOnly(announced), body...), step: tc.step}
			got, err := Read(onlyReader{r}, announced)
			if tc.sent == announced {
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("Read = %d bytes, %v; want the %d sent", len(got), err, announced)
				}
			} else if !errors.Is(err, io.ErrUnexpectedEOF) && (tc.sent != 0 || !errors.Is(err, io.EOF)) {
				t.Fatalf("a cut frame: %v, want ErrUnexpectedEOF", err)
			}
			bodyDelivered := max(r.delivered-len(headerOnly(announced)), 0)
			if limit := max(readAheadBytes, 2*bodyDelivered) + len(headerOnly(announced)); r.most > limit {
				t.Fatalf("Read held a buffer of %d bytes for %d body bytes sent; want at most %d", r.most, bodyDelivered, limit)
			}
		})
	}

	// The same measured by the allocator: a length alone costs about
	// readAheadBytes, not the length.
	var before, after runtime.MemStats
	const reads = 8
	runtime.ReadMemStats(&before)
	for range reads {
		if _, err := Read(bytes.NewReader(headerOnly(announced)), announced); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("a length alone: %v, want EOF", err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / reads; per > 2*readAheadBytes {
		t.Fatalf("a length of %d bytes and no body allocated %d bytes, want at most %d", announced, per, 2*readAheadBytes)
	}
}

// FuzzRead: Read returns a frame's body of at most its limit, takes
// nothing past the frame from r, and refuses a frame above the limit by
// its length alone.
func FuzzRead(f *testing.F) {
	f.Add([]byte("\x03abc\x02de"), uint16(3))
	f.Add([]byte("\x80"), uint16(8))
	f.Add(append(headerOnly(70000), bytes.Repeat([]byte{'y'}, 70000)...), uint16(65535))
	f.Add(append(headerOnly(100000), bytes.Repeat([]byte{'z'}, 69000)...), uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, limit16 uint16) {
		// A limit of 0 stands for one above readAheadBytes, so long
		// bodies are reached.
		limit := uint64(limit16)
		if limit == 0 {
			limit = 4 * readAheadBytes
		}
		src := bytes.NewReader(in)
		got, err := Read(onlyReader{src}, limit)
		used := len(in) - src.Len()
		n, k := binary.Uvarint(in)
		var big *TooLargeError
		switch {
		case err == nil:
			// The length may have been written in more bytes than it
			// needs (k), as binary.ReadUvarint allows.
			if uint64(len(got)) != n || used != k+len(got) || !bytes.Equal(got, in[k:used]) {
				t.Fatalf("Read = % x, taking %d bytes of % x", got, used, in)
			}
			if uint64(len(got)) > limit {
				t.Fatalf("Read = %d bytes, above the limit %d", len(got), limit)
			}
		case errors.As(err, &big):
			if k <= 0 || big.Size != n || n <= limit || used != k {
				t.Fatalf("TooLargeError %v for % x (length %d, %d bytes), %d bytes taken", err, in, n, k, used)
			}
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			if k > 0 && uint64(len(in)-k) >= n {
				t.Fatalf("Read of a whole frame: %v", err)
			}
		default:
			if k > 0 { // a malformed length (overflow) is the only other error
				t.Fatalf("Read = %v for a well-formed length", err)
			}
		}
	})
}
