package tlog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// OriginPrefix starts every trustreg log origin.
const OriginPrefix = "trustreg/log/"

// Limits of checkpoints and notes, in bytes or signatures.
const (
	// MaxOriginSize is the longest origin line. ML-DSA cosignatures encode
	// the origin with a one-byte length, so an origin that fits can later be
	// cosigned that way too.
	MaxOriginSize = 255
	// MaxNoteSize is the largest signed note a verifier reads.
	MaxNoteSize = 64 << 10
	// MaxNoteSignatures is the most signature lines a verifier reads;
	// signed-note asks for at least 16.
	MaxNoteSignatures = 100
)

// Origin returns the checkpoint origin of the log of the consortium whose
// genesis is identified by genesisID (for example the CID or hex digest of
// the genesis document; the caller chooses, and every member and verifier
// must use the same): OriginPrefix followed by genesisID. genesisID must be
// 1 to 200 bytes of ASCII letters, digits and "-._:", so the origin is a
// schema-less name with no spaces or plus signs, as tlog-checkpoint
// recommends. Otherwise the error wraps ErrBadOrigin.
func Origin(genesisID string) (string, error) {
	if len(genesisID) == 0 || len(genesisID) > 200 {
		return "", fmt.Errorf("%w: %d bytes, want 1..200", ErrBadOrigin, len(genesisID))
	}
	for i := 0; i < len(genesisID); i++ {
		c := genesisID[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == ':'
		if !ok {
			return "", fmt.Errorf("%w: byte %q at %d; use only letters, digits and the characters -._: in a genesis identifier", ErrBadOrigin, c, i)
		}
	}
	return OriginPrefix + genesisID, nil
}

// Checkpoint is the body of a C2SP tlog-checkpoint: the log's origin, its
// size and its RFC 6962 root hash. Its note text is exactly
//
//	<origin>\n<size in decimal, no leading zeros>\n<base64(root)>\n
//
// trustreg checkpoints carry no extension lines.
type Checkpoint struct {
	Origin string
	Size   uint64
	Hash   [HashSize]byte
}

// Marshal returns the checkpoint's note text. It does not validate; see
// Validate.
func (c Checkpoint) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(c.Origin)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatUint(c.Size, 10))
	b.WriteByte('\n')
	b.WriteString(base64.StdEncoding.EncodeToString(c.Hash[:]))
	b.WriteByte('\n')
	return b.Bytes()
}

// Validate checks what a checkpoint must satisfy before it is signed or
// believed: a valid origin, and the empty tree's root if its size is 0
// (tlog-witness). Errors wrap ErrMalformedCheckpoint.
func (c Checkpoint) Validate() error {
	if err := checkOrigin(c.Origin); err != nil {
		return err
	}
	if c.Size == 0 && !bytes.Equal(c.Hash[:], EmptyRoot()) {
		return fmt.Errorf("%w: size 0 with a root other than the empty tree's", ErrMalformedCheckpoint)
	}
	return nil
}

func checkOrigin(origin string) error {
	switch {
	case origin == "":
		return fmt.Errorf("%w: empty origin", ErrMalformedCheckpoint)
	case len(origin) > MaxOriginSize:
		return fmt.Errorf("%w: origin of %d bytes, at most %d", ErrMalformedCheckpoint, len(origin), MaxOriginSize)
	case !utf8.ValidString(origin):
		return fmt.Errorf("%w: origin is not UTF-8", ErrMalformedCheckpoint)
	case strings.ContainsFunc(origin, func(r rune) bool { return r < 0x20 }):
		return fmt.Errorf("%w: control character in the origin", ErrMalformedCheckpoint)
	}
	return nil
}

// ParseCheckpoint parses a checkpoint's note text (without signatures),
// refusing anything Marshal would not produce: a missing final newline, a size
// with leading zeros or a sign, a root that is not the standard base64 of 32
// bytes, and extension lines. Errors wrap ErrMalformedCheckpoint.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	if len(text) > MaxNoteSize {
		return Checkpoint{}, fmt.Errorf("%w: %d bytes", ErrMalformedCheckpoint, len(text))
	}
	lines := strings.Split(string(text), "\n")
	// Three lines, each ending in a newline, give four elements, the last empty.
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return Checkpoint{}, fmt.Errorf("%w: want origin, size and root lines, each ending in a newline", ErrMalformedCheckpoint)
	}
	if len(lines) > 4 {
		return Checkpoint{}, fmt.Errorf("%w: %d extension lines; trustreg checkpoints have none", ErrMalformedCheckpoint, len(lines)-4)
	}
	var c Checkpoint
	c.Origin = lines[0]
	if err := checkOrigin(c.Origin); err != nil {
		return Checkpoint{}, err
	}
	size, err := parseDecimal(lines[1])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: size: %w", ErrMalformedCheckpoint, err)
	}
	c.Size = size
	h, err := decodeHash(lines[2])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: root: %w", ErrMalformedCheckpoint, err)
	}
	c.Hash = h
	if err := c.Validate(); err != nil {
		return Checkpoint{}, err
	}
	return c, nil
}

// parseDecimal parses an ASCII decimal uint64 with no sign and no leading
// zeros (except "0" itself).
func parseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 1 && s[0] == '0' || strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		return 0, fmt.Errorf("%q is not a decimal number without leading zeros", s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return n, nil
}

// decodeBase64 decodes standard, padded base64 that is exactly the encoding
// of what it decodes to. Strict decoding refuses nonzero padding bits but
// still skips CR and LF anywhere in the text; in signed text one value has
// one spelling, so those are refused too.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if base64.StdEncoding.EncodeToString(b) != s {
		return nil, errors.New("not the canonical encoding (line breaks inside)")
	}
	return b, nil
}

// decodeHash decodes the standard, padded base64 of exactly 32 bytes, refusing
// non-canonical encodings.
func decodeHash(s string) ([HashSize]byte, error) {
	var h [HashSize]byte
	b, err := decodeBase64(s)
	if err != nil {
		return h, fmt.Errorf("%q is not base64: %w", s, err)
	}
	if len(b) != HashSize {
		return h, fmt.Errorf("%w: %d bytes", ErrHashSize, len(b))
	}
	copy(h[:], b)
	return h, nil
}

// isValidKeyName reports whether name can name a note key: non-empty UTF-8
// with no Unicode spaces and no plus sign (signed-note).
func isValidKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && !strings.ContainsFunc(name, unicode.IsSpace) && !strings.Contains(name, "+")
}
