package proof

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
)

// Version is the bundle format this package writes and reads.
const Version = 1

// MaxBundleSize is the largest bundle ParseBundle reads, in bytes: 128
// times the 8 KiB a depth-3 chain's bundle is budgeted.
const MaxBundleSize = 1 << 20

// MaxRecords is the most records one bundle carries: what one batch map
// proof covers.
const MaxRecords = smt.MaxBatchKeys

// Question types (Question.Type).
const (
	TypeAuthorization = "authorization" // TRQP /authorization: decide.Decide
	TypeRecognition   = "recognition"   // TRQP /recognition: decide.Recognize
	TypeRecords       = "records"       // records as stored (an entity, an accreditation): no decision
)

// Bundle is a proof bundle: an answer of the registry with everything a
// verifier needs to check it offline against the consortium's genesis.
// Its JSON is the format; the package comment describes every field.
type Bundle struct {
	Version  int      `json:"version"`
	Question Question `json:"question"`
	Answer   Answer   `json:"answer"`
	Records  []Record `json:"records"`
	// StatusList: a status-list bundle's (TypeStatusList) list records,
	// proven by MapProof with Records.
	StatusList  *StatusListRecords `json:"statusList,omitempty"`
	MapProof    []byte             `json:"mapProof"`
	Leaf        []byte             `json:"leaf"`
	LeafIndex   uint64             `json:"leafIndex"`
	LeafSize    uint64             `json:"leafSize,omitempty"`
	Inclusion   Hashes             `json:"inclusion"`
	Consistency Hashes             `json:"consistency,omitempty" cbor:"consistency,omitzero"`
	Checkpoint  string             `json:"checkpoint"`
	// Cosigners: when the checkpoint's cosigner set is not the
	// genesis's, the changes that made it and the state's cosigner-set
	// record, proven by MapProof with Records (cosigners.go).
	Cosigners *Cosigners `json:"cosigners,omitempty"`
}

// Question is what was asked: decide.Question for an authorization,
// decide.RecognitionQuestion for a recognition, with the valid time the
// answer was evaluated at (never zero) and the applied index of the state
// it was computed over.
type Question struct {
	Type         string    `json:"type"`
	Entity       string    `json:"entity,omitempty"`
	Framework    string    `json:"framework"`
	Action       string    `json:"action,omitempty"`
	Resource     string    `json:"resource,omitempty"`
	Jurisdiction string    `json:"jurisdiction,omitempty"`
	Recognized   string    `json:"recognized,omitempty"`
	List         string    `json:"list,omitempty"`
	At           time.Time `json:"at"`
	AsOf         uint64    `json:"asOf,omitempty"`
	Applied      uint64    `json:"applied"`
}

// Answer is the answer as the node gave it: the decision's fields that a
// verifier must find again when it recomputes the decision. Exactly one of
// Authorized (an authorization) and Recognized (a recognition) is set.
type Answer struct {
	Authorized *bool    `json:"authorized,omitempty"`
	Recognized *bool    `json:"recognized,omitempty"`
	Reason     string   `json:"reason"`
	Chain      []string `json:"chain,omitempty"`
	Root       string   `json:"root,omitempty"`
	Index      uint64   `json:"index"`
}

// Record is one record the decision read, with its exact stored bytes; nil
// Bytes (JSON null) claims the record absent.
type Record struct {
	Kind  string `json:"kind"`
	A     string `json:"a"`
	B     string `json:"b,omitempty"`
	Bytes []byte `json:"bytes"`
}

// Hashes is a list of 32-byte hashes, written in JSON as the base64 of
// their concatenation.
type Hashes [][]byte

// MarshalJSON writes the hashes as one base64 string.
func (h Hashes) MarshalJSON() ([]byte, error) {
	b, err := h.concat()
	if err != nil {
		return nil, err
	}
	return json.Marshal(b)
}

// UnmarshalJSON reads one base64 string of concatenated 32-byte hashes.
func (h *Hashes) UnmarshalJSON(data []byte) error {
	var b []byte
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	return h.split(b)
}

// Record kinds (Record.Kind), and the decide.RecordKind each names.
var kinds = map[string]decide.RecordKind{
	"framework":     decide.KindFramework,
	"accreditation": decide.KindAccreditation,
	"root":          decide.KindRoot,
	"recognition":   decide.KindRecognition,
	"entity":        decide.KindEntity,
	"received":      decide.KindReceived,
}

// kindName is the Record.Kind of a decide.RecordKind.
func kindName(k decide.RecordKind) string {
	for n, v := range kinds {
		if v == k {
			return n
		}
	}
	return ""
}

// twoPart reports whether a kind's key has a B part.
func twoPart(k decide.RecordKind) bool {
	return k == decide.KindRoot || k == decide.KindRecognition || k == decide.KindReceived
}

// keyName names a record key in messages: its kind's name and
// identifiers ("accreditation bafk...", "root <framework> <did>").
func keyName(k decide.RecordKey) string {
	s := kindName(k.Kind) + " " + k.A
	if k.B != "" {
		s += " " + k.B
	}
	return s
}

// NewRecord returns the bundle record of k with bytes b (nil: absent).
func NewRecord(k decide.RecordKey, b []byte) Record {
	return Record{Kind: kindName(k.Kind), A: k.A, B: k.B, Bytes: b}
}

// Key returns the record key r names, or an error wrapping ErrMalformed.
func (r Record) Key() (decide.RecordKey, error) {
	kind, ok := kinds[r.Kind]
	if !ok {
		return decide.RecordKey{}, fmt.Errorf("%w: record kind %q", ErrMalformed, r.Kind)
	}
	if r.A == "" || len(r.A) > record.MaxIDLength || len(r.B) > record.MaxIDLength || (r.B == "") == twoPart(kind) {
		return decide.RecordKey{}, fmt.Errorf("%w: %s record with identifiers %q, %q", ErrMalformed, r.Kind, r.A, r.B)
	}
	if bytes.IndexByte([]byte(r.A), 0) >= 0 || bytes.IndexByte([]byte(r.B), 0) >= 0 {
		return decide.RecordKey{}, fmt.Errorf("%w: %s record identifier with a NUL byte", ErrMalformed, r.Kind)
	}
	if r.Bytes != nil && len(r.Bytes) == 0 {
		return decide.RecordKey{}, fmt.Errorf("%w: %s record %q with empty bytes (absent is null)", ErrMalformed, r.Kind, r.A)
	}
	return decide.RecordKey{Kind: kind, A: r.A, B: r.B}, nil
}

// MapKey is the state map's key of the record k names:
// SHA-256(decide.StoreKey(k)).
func MapKey(k decide.RecordKey) smt.Key { return smt.KeyOf(decide.StoreKey(k)) }

// MapValue is the state map's value of a record's bytes: their SHA-256.
func MapValue(b []byte) smt.Value { return smt.Value(sha256.Sum256(b)) }

// Marshal returns the bundle's JSON.
func (b *Bundle) Marshal() ([]byte, error) { return b.AppendJSON(nil) }

// ParseBundle reads a bundle's JSON strictly: one JSON object of at most
// MaxBundleSize bytes, no unknown fields, version 1. Errors wrap
// ErrMalformed.
func ParseBundle(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(data), MaxBundleSize)
	}
	// One reading for every reader: encoding/json takes the last of two
	// members of one name and matches names without regard to case, where
	// another JSON reader (a wallet's display of the bundle, jq) may take
	// the first, or neither. The CBOR form refuses both by its one
	// encoding; the JSON form is refused them here.
	if err := record.CheckJSON("bundle", data, reflect.TypeFor[Bundle]()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the bundle", ErrMalformed)
	}
	if b.Version != Version {
		return nil, fmt.Errorf("%w: version %d; this build reads version %d", ErrMalformed, b.Version, Version)
	}
	return &b, nil
}

// NewAuthorization returns the question and answer of a bundle for the
// decision d the node made for q over the state at index applied.
func NewAuthorization(q decide.Question, d *record.Decision, applied uint64) (Question, Answer) {
	return Question{
		Type: TypeAuthorization, Entity: q.Entity, Framework: q.Framework, Action: q.Action,
		Resource: q.Resource, Jurisdiction: q.Jurisdiction, At: d.At, AsOf: q.AsOf, Applied: applied,
	}, AnswerOf(d)
}

// NewRecognition is NewAuthorization for a recognition question.
func NewRecognition(q decide.RecognitionQuestion, d *decide.RecognitionDecision, applied uint64) (Question, Answer) {
	return Question{
		Type: TypeRecognition, Framework: q.Framework, Recognized: q.Recognized,
		Resource: q.Resource, At: d.At, AsOf: q.AsOf, Applied: applied,
	}, RecognitionAnswerOf(d)
}

// NewRecords returns the question and answer of a records bundle: the
// records read at valid time at (the node's now) from the state at index
// applied, proven as they are stored, with no decision.
func NewRecords(at time.Time, applied uint64) (Question, Answer) {
	return Question{Type: TypeRecords, At: at.UTC(), Applied: applied}, Answer{Index: applied}
}

// AnswerOf is the bundle answer of an authorization decision.
func AnswerOf(d *record.Decision) Answer {
	ok := d.Authorized
	a := Answer{Authorized: &ok, Reason: d.Reason, Root: d.Root, Index: d.Index}
	for _, l := range d.Chain {
		a.Chain = append(a.Chain, l.Accreditation)
	}
	return a
}

// RecognitionAnswerOf is the bundle answer of a recognition decision.
func RecognitionAnswerOf(d *decide.RecognitionDecision) Answer {
	ok := d.Recognizes
	return Answer{Recognized: &ok, Reason: d.Reason, Index: d.Index}
}
