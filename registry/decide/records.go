package decide

import (
	"encoding/json"
	"errors"
	"strconv"
)

// RecordKind names a table of the records a decision reads.
type RecordKind uint8

// Kinds of record a decision reads. Their store keys are in schema.go
// (storeKey).
const (
	KindFramework     RecordKind = iota + 1 // A: framework id
	KindAccreditation                       // A: accreditation id
	KindRoot                                // A: framework id, B: the root accreditor's DID
	KindRecognition                         // A: recognizing framework, B: the recognized one
	KindEntity                              // A: DID
	// KindReceived names no record but the listing Records.Received
	// returns (A: subject, B: framework); a Memo keeps the decoded
	// listing under it.
	KindReceived
)

// RecordKey names one stored record by its kind and identifiers.
type RecordKey struct {
	Kind RecordKind
	A, B string
}

// FrameworkKey names a framework's record.
func FrameworkKey(id string) RecordKey { return RecordKey{Kind: KindFramework, A: id} }

// AccreditationKey names an accreditation's record.
func AccreditationKey(id string) RecordKey { return RecordKey{Kind: KindAccreditation, A: id} }

// RootKey names the record of did's place as a root accreditor of a
// framework.
func RootKey(framework, did string) RecordKey {
	return RecordKey{Kind: KindRoot, A: framework, B: did}
}

// RecognitionKey names the record of framework's recognition of another.
func RecognitionKey(framework, recognized string) RecordKey {
	return RecordKey{Kind: KindRecognition, A: framework, B: recognized}
}

// EntityKey names an entity's record.
func EntityKey(did string) RecordKey { return RecordKey{Kind: KindEntity, A: did} }

func (k RecordKey) String() string {
	s := strconv.Itoa(int(k.Kind)) + ":" + k.A
	if k.B != "" {
		s += "/" + k.B
	}
	return s
}

// Records reads the stored records that decisions are made from. It is the
// whole of what the decision code (evaluator) reads, so a decision can be
// made over any source of records: the node's store (a Pebble snapshot, or
// the batch being applied), or a set of records proven some other way.
//
// Implementations need not be safe for concurrent use; an evaluator uses
// one from one goroutine.
type Records interface {
	// Record returns the exact bytes stored under k (the JSON of the
	// record), or nil when there is no such record. The caller must not
	// modify them.
	Record(k RecordKey) ([]byte, error)
	// Received returns the ids of the accreditations subject received in
	// framework, in id order, whatever their status or creation index.
	// It is the one range read a decision makes (the received index of
	// the store); a source that proves its records must prove this list
	// as a record of its own.
	Received(subject, framework string) ([]string, error)
}

// Memo keeps decoded records between decisions, for a Records whose
// records can be remembered (the node's record cache). A remembered value
// is shared: no caller modifies it. Whether a key may be remembered, and
// for how long, is the Memo's to decide (cache.go).
type Memo interface {
	// Recall returns the value remembered under k: a *Framework,
	// *Accreditation, *RootAccreditor or *Entity (nil when the record is
	// absent), or []*Accreditation under a KindReceived key.
	Recall(k RecordKey) (any, bool)
	// Remember keeps v under k.
	Remember(k RecordKey, v any)
}

// ReceivedKey names the listing of what subject received in framework.
func ReceivedKey(subject, framework string) RecordKey {
	return RecordKey{Kind: KindReceived, A: subject, B: framework}
}

// Store tables of the records a decision reads: the first byte of their
// store keys (registry/schema.go holds every table of the state database;
// these are the same numbers, never reused).
const (
	TableFrameworks    byte = 0x05 // framework id -> Framework
	TableRoots         byte = 0x06 // framework 0 did -> RootAccreditor
	TableEntities      byte = 0x07 // did -> Entity
	TableAccreditation byte = 0x08 // accreditation id -> Accreditation
	TableReceived      byte = 0x09 // subject 0 framework 0 id -> nil
	TableRecognitions  byte = 0x0d // framework 0 recognized framework -> Recognition
	// TableCosigners holds one record, the cosigner set in force
	// (record.CosignerSet), under the key of the table byte alone; a
	// verifier reads it to follow cosigner changes, not a decision.
	TableCosigners byte = 0x15
)

// StoreKey is the key under which the state database keeps the record k
// names: its table's byte, then its identifiers separated by 0x00 (which
// validated identifiers never contain). A KindReceived key is the prefix
// of the listing's index entries, so it ends in 0x00. The registry's
// commitment keys its map by the SHA-256 of these bytes, so a verifier
// computes a record's place in the map from its RecordKey alone.
func StoreKey(k RecordKey) []byte {
	switch k.Kind {
	case KindFramework:
		return Key(TableFrameworks, k.A)
	case KindAccreditation:
		return Key(TableAccreditation, k.A)
	case KindRoot:
		return Key(TableRoots, k.A, k.B)
	case KindRecognition:
		return Key(TableRecognitions, k.A, k.B)
	case KindEntity:
		return Key(TableEntities, k.A)
	case KindReceived:
		return append(Key(TableReceived, k.A, k.B), 0)
	}
	panic("decide: record key of unknown kind " + strconv.Itoa(int(k.Kind)))
}

// Key is the store key of the record of table named by parts: the
// table's byte, then the parts separated by 0x00.
func Key(table byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, table)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

// EncodeReceived is the record form of a Received listing, the bytes a
// proof carries for it and whose digest the commitment holds: the ids as
// a JSON array of strings, in id order as Received returns them (an empty
// listing is no record at all).
func EncodeReceived(ids []string) []byte {
	b, err := json.Marshal(ids)
	if err != nil { // a []string always marshals
		panic(err)
	}
	return b
}

// DecodeReceived parses EncodeReceived's bytes, refusing ids out of
// order or repeated, so a listing has one encoding only.
func DecodeReceived(b []byte) ([]string, error) {
	var ids []string
	if err := json.Unmarshal(b, &ids); err != nil {
		return nil, err
	}
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			return nil, errUnsortedListing
		}
	}
	if string(EncodeReceived(ids)) != string(b) {
		return nil, errUnsortedListing
	}
	return ids, nil
}

var errUnsortedListing = errors.New("decide: a received listing must list distinct ids in order, as a compact JSON array")
