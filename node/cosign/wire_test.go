package cosign

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// A frame above its limit is refused by its length, as ErrBadAnswer, with
// the words a refusal or a collector's log has always shown.
func TestFrameAboveLimit(t *testing.T) {
	want := "cosign: malformed answer: frame of 4 bytes, at most 3"
	if _, err := readFrame(bufio.NewReader(bytes.NewReader([]byte("\x04abcd"))), 3); !errors.Is(err, ErrBadAnswer) || err.Error() != want {
		t.Fatalf("readFrame: %v, want %q", err, want)
	}
	var w bytes.Buffer
	w.WriteByte(byte(statusOK))
	w.Write(binary.AppendUvarint(nil, maxAnswerBytes+1))
	if _, _, err := readAnswer(&w); !errors.Is(err, ErrBadAnswer) {
		t.Fatalf("readAnswer: %v, want ErrBadAnswer", err)
	}
}
