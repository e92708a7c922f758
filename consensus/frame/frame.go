package frame

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// messageBufferBytes is the read buffer ReadMessage reads a message
// through, so that a small message costs one read from the stream.
const messageBufferBytes = 4096

// readAheadBytes is the most of a frame's body Read allocates before the
// body's bytes arrive. A longer body's buffer doubles as it fills, so a
// peer that announces a long frame and sends less holds a buffer of at
// most twice what it sent (or readAheadBytes), not what it announced.
const readAheadBytes = 64 << 10

// TooLargeError is a frame whose length, Size bytes, is above the
// reader's limit, Limit bytes. Its body is left unread.
type TooLargeError struct {
	Size, Limit uint64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("frame of %d bytes, above the limit of %d", e.Size, e.Limit)
}

// Write writes b as one frame, in one write.
func Write(w io.Writer, b []byte) error {
	buf := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen64), uint64(len(b)))
	_, err := w.Write(append(buf, b...))
	return err
}

// WriteMessage writes the byte kind and body as one frame, in one write.
func WriteMessage(w io.Writer, kind byte, body []byte) error {
	buf := make([]byte, 0, 1+binary.MaxVarintLen64+len(body))
	buf = append(buf, kind)
	buf = binary.AppendUvarint(buf, uint64(len(body)))
	_, err := w.Write(append(buf, body...))
	return err
}

// Read reads one frame of at most limit bytes. A longer one is a
// *TooLargeError. When r is not an io.ByteReader the length is read a
// byte at a time, so that nothing past the frame is taken from r. The
// body's buffer is allocated as the body arrives (readAheadBytes); a body
// cut short is io.ErrUnexpectedEOF, and io.EOF when none of it came.
func Read(r io.Reader, limit uint64) ([]byte, error) {
	br, ok := r.(io.ByteReader)
	if !ok {
		br = byteReader{r}
	}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, &TooLargeError{Size: n, Limit: limit}
	}
	return readBody(r, n)
}

// readBody reads a body of n bytes into a buffer of at most
// readAheadBytes to begin with, doubled (to at most n) each time it is
// full: the buffer it returns holds n bytes exactly.
func readBody(r io.Reader, n uint64) ([]byte, error) {
	b := make([]byte, 0, min(n, readAheadBytes))
	for uint64(len(b)) < n {
		if len(b) == cap(b) {
			grown := make([]byte, len(b), min(n, 2*uint64(cap(b))))
			copy(grown, b)
			b = grown
		}
		k, err := io.ReadFull(r, b[len(b):cap(b)])
		b = b[:len(b)+k]
		if err != nil {
			if errors.Is(err, io.EOF) && len(b) > 0 {
				err = io.ErrUnexpectedEOF // part of the body came
			}
			return nil, err
		}
	}
	return b, nil
}

// ReadMessage reads a message's byte and its frame of at most limit bytes
// (Read) through a buffer, so a small message costs one read from r; what
// the buffer holds past the message is dropped, as a stream carries one
// message each way.
func ReadMessage(r io.Reader, limit uint64) (byte, []byte, error) {
	br := bufio.NewReaderSize(r, messageBufferBytes)
	kind, err := br.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	body, err := Read(br, limit)
	return kind, body, err
}

// byteReader reads one byte at a time from r, taking nothing more.
type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var one [1]byte
	_, err := io.ReadFull(b.r, one[:])
	return one[0], err
}
