package tlog

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// MaxAddCheckpointProof is the most consistency proof lines an
// add-checkpoint request carries (tlog-witness).
const MaxAddCheckpointProof = 63

// maxAddCheckpointBody bounds a request body, in bytes: the old size line,
// the proof lines and a signed note.
const maxAddCheckpointBody = 64 + MaxAddCheckpointProof*(4*HashSize/3+2) + MaxNoteSize

// AddCheckpointRequest is the body of a C2SP tlog-witness add-checkpoint
// request, which trustreg members also exchange to ask each other for
// cosignatures:
//
//	old <old size in decimal, no leading zeros>\n
//	<base64 consistency proof hash>\n     (zero to 63 lines)
//	\n
//	<signed checkpoint note>
//
// Checkpoint is the signed note as sent, with its signature lines.
type AddCheckpointRequest struct {
	OldSize    uint64
	Proof      [][]byte
	Checkpoint []byte
}

// Marshal returns the request body. It refuses (ErrMalformedRequest) more
// than 63 proof hashes, a hash that is not 32 bytes, and a checkpoint that
// does not end in a newline.
func (r AddCheckpointRequest) Marshal() ([]byte, error) {
	if len(r.Proof) > MaxAddCheckpointProof {
		return nil, fmt.Errorf("%w: %d proof hashes, at most %d", ErrMalformedRequest, len(r.Proof), MaxAddCheckpointProof)
	}
	if len(r.Checkpoint) == 0 || r.Checkpoint[len(r.Checkpoint)-1] != '\n' {
		return nil, fmt.Errorf("%w: the checkpoint note must end in a newline", ErrMalformedRequest)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", r.OldSize)
	for i, h := range r.Proof {
		if len(h) != HashSize {
			return nil, fmt.Errorf("%w: proof hash %d has %d bytes", ErrMalformedRequest, i, len(h))
		}
		b.WriteString(base64.StdEncoding.EncodeToString(h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes(), nil
}

// ParseAddCheckpointRequest parses an add-checkpoint request body. It checks
// the framing only: the old size line, at most 63 proof lines of 32-byte
// hashes, the blank line, and a non-empty checkpoint ending in a newline. The
// checkpoint note's signatures and contents are for Verifier and Cosigner to
// judge. Errors wrap ErrMalformedRequest.
func ParseAddCheckpointRequest(body []byte) (AddCheckpointRequest, error) {
	if len(body) > maxAddCheckpointBody {
		return AddCheckpointRequest{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformedRequest, len(body), maxAddCheckpointBody)
	}
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return AddCheckpointRequest{}, fmt.Errorf("%w: no old size line", ErrMalformedRequest)
	}
	num, ok := strings.CutPrefix(string(line), "old ")
	if !ok {
		return AddCheckpointRequest{}, fmt.Errorf("%w: first line %q is not \"old <size>\"", ErrMalformedRequest, line)
	}
	old, err := parseDecimal(num)
	if err != nil {
		return AddCheckpointRequest{}, fmt.Errorf("%w: old size: %w", ErrMalformedRequest, err)
	}
	req := AddCheckpointRequest{OldSize: old}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return AddCheckpointRequest{}, fmt.Errorf("%w: no blank line before the checkpoint", ErrMalformedRequest)
		}
		if len(line) == 0 {
			break
		}
		if len(req.Proof) == MaxAddCheckpointProof {
			return AddCheckpointRequest{}, fmt.Errorf("%w: more than %d proof lines", ErrMalformedRequest, MaxAddCheckpointProof)
		}
		h, err := decodeHash(string(line))
		if err != nil {
			return AddCheckpointRequest{}, fmt.Errorf("%w: proof line %d: %w", ErrMalformedRequest, len(req.Proof)+1, err)
		}
		req.Proof = append(req.Proof, h[:])
	}
	if len(rest) == 0 || rest[len(rest)-1] != '\n' {
		return AddCheckpointRequest{}, fmt.Errorf("%w: the checkpoint is empty or does not end in a newline", ErrMalformedRequest)
	}
	req.Checkpoint = bytes.Clone(rest)
	return req, nil
}

// ConflictBody returns the body of a tlog-witness 409 answer (content type
// text/x.tlog.size): the size of the last cosigned checkpoint and a newline.
func ConflictBody(lastSize uint64) []byte {
	return []byte(strconv.FormatUint(lastSize, 10) + "\n")
}

// ParseConflictBody reads the size from a 409 answer's body. Errors wrap
// ErrMalformedRequest.
func ParseConflictBody(body []byte) (uint64, error) {
	s, ok := strings.CutSuffix(string(body), "\n")
	if !ok {
		return 0, fmt.Errorf("%w: size body must end in a newline", ErrMalformedRequest)
	}
	n, err := parseDecimal(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrMalformedRequest, err)
	}
	return n, nil
}

// CosignaturesBody returns the body of a tlog-witness 200 answer: one
// signature line per cosignature. ParseSignatureLines reads it back.
func CosignaturesBody(sigs ...Cosignature) []byte {
	var b bytes.Buffer
	for _, s := range sigs {
		b.WriteString(s.Line())
	}
	return b.Bytes()
}
