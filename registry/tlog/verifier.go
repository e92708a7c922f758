package tlog

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// DefaultQuorum returns the number of cosignatures a checkpoint needs from n
// cosigners unless the genesis says otherwise: n − ⌊(n−1)/3⌋, as Hyperledger
// Indy asks of its nodes' multi-signatures (3 of 4, 5 of 7, 1 of 1).
func DefaultQuorum(n int) int {
	if n <= 0 {
		return 0
	}
	return n - (n-1)/3
}

// Verifier checks cosigned checkpoints of one log against a set of cosigner
// keys and a quorum. It is safe for concurrent use.
type Verifier struct {
	origin    string
	keys      []CosignerKey
	quorum    int
	verifiers note.Verifiers
}

// NewVerifier returns a verifier for checkpoints of the log called origin,
// cosigned by at least quorum of keys (quorum 0 means DefaultQuorum). Names
// and public keys must each be distinct, and 1 <= quorum <= len(keys);
// otherwise the error wraps ErrBadPolicy.
func NewVerifier(origin string, keys []CosignerKey, quorum int) (*Verifier, error) {
	if err := checkOrigin(origin); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPolicy, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no cosigner keys", ErrBadPolicy)
	}
	if quorum == 0 {
		quorum = DefaultQuorum(len(keys))
	}
	if quorum < 1 || quorum > len(keys) {
		return nil, fmt.Errorf("%w: quorum %d of %d cosigners", ErrBadPolicy, quorum, len(keys))
	}
	names := make(map[string]bool, len(keys))
	pubs := make(map[string]bool, len(keys))
	vs := make([]note.Verifier, 0, len(keys))
	own := make([]CosignerKey, 0, len(keys))
	for _, k := range keys {
		k, err := NewCosignerKey(k.Name, k.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadPolicy, err)
		}
		if names[k.Name] {
			return nil, fmt.Errorf("%w: cosigner %q listed twice", ErrBadPolicy, k.Name)
		}
		if pubs[string(k.Key)] {
			return nil, fmt.Errorf("%w: cosigner %q shares its public key with another", ErrBadPolicy, k.Name)
		}
		names[k.Name], pubs[string(k.Key)] = true, true
		v, err := k.noteVerifier()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadPolicy, err)
		}
		vs = append(vs, v)
		own = append(own, k)
	}
	return &Verifier{origin: origin, keys: own, quorum: quorum, verifiers: note.VerifierList(vs...)}, nil
}

// Quorum returns the number of cosignatures a checkpoint needs.
func (v *Verifier) Quorum() int { return v.quorum }

// Origin returns the origin checkpoints must carry.
func (v *Verifier) Origin() string { return v.origin }

// Verified is a checkpoint a quorum cosigned.
type Verified struct {
	Checkpoint Checkpoint
	// Cosignatures are the valid cosignatures by keys of the set, one per
	// cosigner, in the order of the note.
	Cosignatures []Cosignature
	Quorum       int
}

// Cosigners returns the names of the cosigners whose cosignatures verified.
func (v *Verified) Cosigners() []string {
	out := make([]string, len(v.Cosignatures))
	for i, c := range v.Cosignatures {
		out[i] = c.Name
	}
	return out
}

// FreshAsOf returns the latest time at which a quorum of cosigners vouched
// for the checkpoint: the quorum-th most recent cosignature timestamp. The
// checkpoint's age is measured from it, so fewer than a quorum of cosigners
// with clocks ahead cannot make it look newer than it is.
func (v *Verified) FreshAsOf() time.Time {
	ts := make([]time.Time, len(v.Cosignatures))
	for i, c := range v.Cosignatures {
		ts[i] = c.Time
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return b.Compare(a) })
	if v.Quorum < 1 || v.Quorum > len(ts) {
		return time.Time{}
	}
	return ts[v.Quorum-1]
}

// Verify checks a cosigned checkpoint (a signed note) and returns it with the
// cosigners that signed it, or the first reason it refuses, in this order:
//
//  1. the note's syntax: size, UTF-8, the blank line before the signatures,
//     each signature line (ErrMalformedNote);
//  2. the checkpoint text: origin, size and root lines exactly as Marshal
//     writes them, no extension lines (ErrMalformedCheckpoint);
//  3. the origin is this log's (ErrWrongOrigin, *OriginError);
//  4. lines by distinct cosigners of the set number at least Quorum, counted
//     by name and key ID before any signature is verified (Precheck:
//     ErrTooFewCosignatures, *QuorumError), so a note that cannot reach the
//     quorum costs no signature verification;
//  5. every signature line whose name and key ID match a cosigner key
//     verifies as a cosignature/v1 over the text; one that does not rejects
//     the whole note (ErrBadSignature, *SignatureError);
//  6. at least Quorum distinct cosigners of the set signed
//     (ErrTooFewCosignatures, *QuorumError; it also matches ErrUnknownKey when
//     lines by keys outside the set were ignored).
//
// Lines by unknown keys are ignored, as signed-note requires; they never
// count towards the quorum.
func (v *Verifier) Verify(signedNote []byte) (*Verified, error) {
	cp, err := v.Precheck(signedNote)
	if err != nil {
		return nil, err
	}
	n, err := note.Open(signedNote, v.verifiers)
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		n = unverified.Note
	case errors.As(err, &invalid):
		return nil, &SignatureError{Name: invalid.Name, KeyID: invalid.Hash}
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrMalformedNote, err)
	}
	out := &Verified{Checkpoint: cp, Quorum: v.quorum}
	for _, s := range n.Sigs {
		c, err := CosignatureFromSignature(s)
		if err != nil {
			return nil, &SignatureError{Name: s.Name, KeyID: s.Hash}
		}
		out.Cosignatures = append(out.Cosignatures, c)
	}
	if len(out.Cosignatures) < v.quorum {
		qe := &QuorumError{Have: len(out.Cosignatures), Need: v.quorum}
		for _, s := range n.UnverifiedSigs {
			qe.Unknown = append(qe.Unknown, s.Name)
		}
		return nil, qe
	}
	return out, nil
}

// Precheck reads a signed note as Verify does before it verifies any
// signature (steps 1 to 4 of Verify) and returns its checkpoint: the
// note's syntax, the checkpoint text, the origin, and that signature
// lines by distinct cosigners of the set (matched by name and key ID)
// number at least Quorum (*QuorumError otherwise, listing the names of
// lines by keys outside the set). It costs hashing and parsing only: a
// caller that must bound its work checks a note from an untrusted source
// with it before anything that depends on the note's size or root. The
// checkpoint it returns is not yet proven: only Verify proves it.
func (v *Verifier) Precheck(signedNote []byte) (Checkpoint, error) {
	if len(signedNote) > MaxNoteSize {
		return Checkpoint{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformedNote, len(signedNote), MaxNoteSize)
	}
	split := bytes.LastIndex(signedNote, []byte("\n\n"))
	if split < 0 {
		return Checkpoint{}, fmt.Errorf("%w: no blank line before the signatures", ErrMalformedNote)
	}
	text, block := signedNote[:split+1], signedNote[split+2:]
	sigs, err := ParseSignatureLines(block)
	if err != nil {
		return Checkpoint{}, err
	}
	cp, err := ParseCheckpoint(text)
	if err != nil {
		return Checkpoint{}, err
	}
	if cp.Origin != v.origin {
		return Checkpoint{}, &OriginError{Want: v.origin, Got: cp.Origin}
	}
	type nameHash struct {
		name string
		hash uint32
	}
	known := make(map[nameHash]bool, len(sigs))
	var unknown []string
	for _, s := range sigs {
		if _, err := v.verifiers.Verifier(s.Name, s.Hash); err != nil {
			unknown = append(unknown, s.Name)
			continue
		}
		known[nameHash{s.Name, s.Hash}] = true
	}
	if len(known) < v.quorum {
		return Checkpoint{}, &QuorumError{Have: len(known), Need: v.quorum, Unknown: unknown}
	}
	return cp, nil
}
