package tlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// SigTypeCosignatureV1 is the signed-note signature type of timestamped
// Ed25519 checkpoint cosignatures (C2SP tlog-cosignature, cosignature/v1).
const SigTypeCosignatureV1 byte = 0x04

// cosignatureSize is the size of a cosignature/v1 signature after the key
// ID: an 8-byte timestamp and a 64-byte Ed25519 signature.
const cosignatureSize = 8 + ed25519.SignatureSize

// CosignerKey is a cosigner's name and Ed25519 public key. Its vkey (String)
// is
//
//	<name>+<hex(key ID)>+<base64(0x04 || 32-byte public key)>
//
// and its key ID is the first four bytes, big-endian, of
// SHA-256(name || "\n" || 0x04 || public key).
type CosignerKey struct {
	Name string
	Key  ed25519.PublicKey
}

// NewCosignerKey checks name (signed-note key name rules) and key (32 bytes)
// and returns the key, or an error wrapping ErrMalformedKey.
func NewCosignerKey(name string, key ed25519.PublicKey) (CosignerKey, error) {
	if !isValidKeyName(name) {
		return CosignerKey{}, fmt.Errorf("%w: name %q must be non-empty, with no spaces or plus signs", ErrMalformedKey, name)
	}
	if len(key) != ed25519.PublicKeySize {
		return CosignerKey{}, fmt.Errorf("%w: Ed25519 public key of %d bytes", ErrMalformedKey, len(key))
	}
	return CosignerKey{Name: name, Key: append(ed25519.PublicKey(nil), key...)}, nil
}

// ParseCosignerKey parses a cosignature/v1 vkey, refusing other signature
// types, keys that are not 32 bytes, and a key ID that does not match the
// name and key. Errors wrap ErrMalformedKey.
func ParseCosignerKey(vkey string) (CosignerKey, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	id16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || len(id16) != 8 {
		return CosignerKey{}, fmt.Errorf("%w: want name+keyid+key", ErrMalformedKey)
	}
	// Lower case only: the key prints its ID so, and one key has one
	// spelling.
	id, err := strconv.ParseUint(id16, 16, 32)
	if err != nil || strings.ToLower(id16) != id16 {
		return CosignerKey{}, fmt.Errorf("%w: key ID %q is not lower-case hex", ErrMalformedKey, id16)
	}
	raw, err := decodeBase64(key64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != SigTypeCosignatureV1 {
		return CosignerKey{}, fmt.Errorf("%w: want base64 of 0x04 and a 32-byte Ed25519 key", ErrMalformedKey)
	}
	k, err := NewCosignerKey(name, raw[1:])
	if err != nil {
		return CosignerKey{}, err
	}
	if k.KeyID() != uint32(id) {
		return CosignerKey{}, fmt.Errorf("%w: key ID %08x, the name and key give %08x", ErrMalformedKey, id, k.KeyID())
	}
	return k, nil
}

// KeyID returns the key's signed-note key ID.
func (k CosignerKey) KeyID() uint32 { return KeyID(k.Name, SigTypeCosignatureV1, k.Key) }

// KeyID returns the signed-note key ID of a key: the first four bytes,
// big-endian, of SHA-256(name || "\n" || sigType || publicKey).
func KeyID(name string, sigType byte, publicKey []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', sigType})
	h.Write(publicKey)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// String returns the key's vkey.
func (k CosignerKey) String() string {
	return fmt.Sprintf("%s+%08x+%s", k.Name, k.KeyID(), base64.StdEncoding.EncodeToString(append([]byte{SigTypeCosignatureV1}, k.Key...)))
}

// noteVerifier returns the transparency-dev/formats cosignature/v1 verifier
// for k.
func (k CosignerKey) noteVerifier() (note.Verifier, error) {
	v, err := fnote.NewVerifierForCosignatureV1(k.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedKey, err)
	}
	return v, nil
}

// Cosignature is one cosignature/v1 signature line:
//
//	— <name> base64(key ID || uint64 timestamp || Ed25519 signature)
//
// where the timestamp is POSIX seconds, big-endian, and the signature is
// over CosignedMessage(checkpoint text, timestamp).
type Cosignature struct {
	Name      string
	KeyID     uint32
	Time      time.Time // whole seconds, UTC
	Signature [ed25519.SignatureSize]byte
}

// CosignedMessage returns the bytes a cosignature/v1 signs over a note text:
//
//	cosignature/v1\ntime <timestamp in decimal>\n<text>
func CosignedMessage(text []byte, timestamp uint64) []byte {
	m := fmt.Appendf(nil, "cosignature/v1\ntime %d\n", timestamp)
	return append(m, text...)
}

// Line returns the signature line, ending in a newline.
func (c Cosignature) Line() string {
	b := make([]byte, 0, 4+cosignatureSize)
	b = binary.BigEndian.AppendUint32(b, c.KeyID)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time.Unix()))
	b = append(b, c.Signature[:]...)
	return "— " + c.Name + " " + base64.StdEncoding.EncodeToString(b) + "\n"
}

// ParseSignatureLines parses a block of signed-note signature lines (as in a
// note's signature block, or a tlog-witness add-checkpoint response), each
// "— <name> <base64>\n". It does not verify anything. Errors wrap
// ErrMalformedNote.
func ParseSignatureLines(block []byte) ([]note.Signature, error) {
	if len(block) == 0 || block[len(block)-1] != '\n' {
		return nil, fmt.Errorf("%w: signature lines must end in a newline", ErrMalformedNote)
	}
	lines := strings.Split(string(block[:len(block)-1]), "\n")
	if len(lines) > MaxNoteSignatures {
		return nil, fmt.Errorf("%w: %d signature lines, at most %d", ErrMalformedNote, len(lines), MaxNoteSignatures)
	}
	sigs := make([]note.Signature, 0, len(lines))
	for i, line := range lines {
		rest, ok := strings.CutPrefix(line, "— ")
		name, b64, ok2 := strings.Cut(rest, " ")
		if !ok || !ok2 || !isValidKeyName(name) {
			return nil, fmt.Errorf("%w: line %d is not \"— <name> <signature>\"", ErrMalformedNote, i+1)
		}
		raw, err := decodeBase64(b64)
		if err != nil || len(raw) < 5 {
			return nil, fmt.Errorf("%w: line %d: signature is not base64 of a key ID and a signature", ErrMalformedNote, i+1)
		}
		sigs = append(sigs, note.Signature{Name: name, Hash: binary.BigEndian.Uint32(raw), Base64: b64})
	}
	return sigs, nil
}

// CosignatureFromSignature reads a cosignature/v1 from a parsed signature
// line, without verifying it. Errors wrap ErrMalformedNote.
func CosignatureFromSignature(s note.Signature) (Cosignature, error) {
	raw, err := decodeBase64(s.Base64)
	if err != nil || len(raw) != 4+cosignatureSize {
		return Cosignature{}, fmt.Errorf("%w: signature by %s is not a cosignature/v1 (%d bytes)", ErrMalformedNote, s.Name, len(raw))
	}
	ts := binary.BigEndian.Uint64(raw[4:12])
	if ts > math.MaxInt64 {
		return Cosignature{}, fmt.Errorf("%w: cosignature by %s has timestamp %d past 2^63-1", ErrMalformedNote, s.Name, ts)
	}
	c := Cosignature{Name: s.Name, KeyID: binary.BigEndian.Uint32(raw), Time: time.Unix(int64(ts), 0).UTC()}
	copy(c.Signature[:], raw[12:])
	return c, nil
}

// CosignatureSigner makes cosignature/v1 signatures with one Ed25519 key.
// Unlike a note.Signer it takes the timestamp from its caller, so the time
// it states is the caller's to choose and test.
type CosignatureSigner struct {
	key  CosignerKey
	priv ed25519.PrivateKey
}

// NewCosignatureSigner returns a signer for the cosigner called name.
func NewCosignatureSigner(name string, priv ed25519.PrivateKey) (*CosignatureSigner, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: Ed25519 private key of %d bytes", ErrMalformedKey, len(priv))
	}
	k, err := NewCosignerKey(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &CosignatureSigner{key: k, priv: priv}, nil
}

// Key returns the signer's public key.
func (s *CosignatureSigner) Key() CosignerKey { return s.key }

// SignText cosigns a checkpoint note text at time t (truncated to seconds,
// at or after 1970).
func (s *CosignatureSigner) SignText(text []byte, t time.Time) (Cosignature, error) {
	if t.Unix() < 0 {
		return Cosignature{}, fmt.Errorf("%w: timestamp %v before 1970", ErrMalformedNote, t)
	}
	ts := uint64(t.Unix())
	c := Cosignature{Name: s.key.Name, KeyID: s.key.KeyID(), Time: time.Unix(int64(ts), 0).UTC()}
	copy(c.Signature[:], ed25519.Sign(s.priv, CosignedMessage(text, ts)))
	return c, nil
}

// Sign cosigns a checkpoint at time t. It refuses an invalid checkpoint.
func (s *CosignatureSigner) Sign(cp Checkpoint, t time.Time) (Cosignature, error) {
	if err := cp.Validate(); err != nil {
		return Cosignature{}, err
	}
	return s.SignText(cp.Marshal(), t)
}

// SignedNote returns the checkpoint as a signed note carrying the given
// cosignatures, in the order given: the text, a blank line, and one line per
// cosignature.
func SignedNote(cp Checkpoint, sigs ...Cosignature) []byte {
	b := cp.Marshal()
	b = append(b, '\n')
	for _, s := range sigs {
		b = append(b, s.Line()...)
	}
	return b
}

// EncodeSignatureLines writes parsed signature lines back, one
// "— <name> <base64>\n" each; ParseSignatureLines reads them.
func EncodeSignatureLines(sigs []note.Signature) []byte {
	var b []byte
	for _, s := range sigs {
		b = append(b, "— "+s.Name+" "+s.Base64+"\n"...)
	}
	return b
}
