package decide

import "strconv"

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
