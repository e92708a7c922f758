package record

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Rejected operations carry one of the rejection codes
// below; Result.Err maps a code back to its sentinel so callers compare with
// errors.Is. Each is a Kind: what a client reads of it (a problem
// document's detail) is its Public words and an Error's Detail, never its
// Go text edited.
var (
	ErrMalformed     = NewKind("registry: malformed operation", "malformed operation", nil)
	ErrBadSignature  = NewKind("registry: signature does not verify", "signature does not verify", nil)
	ErrUnknownKey    = NewKind("registry: unknown signing key", "unknown signing key", nil)
	ErrNotAuthorized = NewKind("registry: signer not authorized", "signer not authorized", nil)
	ErrScope         = NewKind("registry: grant exceeds the grantor's scope", "grant exceeds the grantor's scope", nil)
	ErrConflict      = NewKind("registry: conflicts with the current state", "conflicts with the current state", nil)
	ErrInvalid       = NewKind("registry: semantically invalid", "semantically invalid", nil)
	ErrIATWindow     = NewKind("registry: iat outside the accepted window", "iat outside the accepted window", nil)
	ErrTooLarge      = NewKind("registry: operation too large", "operation too large", nil)
	ErrNotFound      = NewKind("registry: not found", "not found", nil)
	ErrBadQuery      = NewKind("registry: bad query", "bad query", nil)
	ErrGenesis       = errors.New("registry: genesis mismatch")
)

// Kind is a class of error a client is told about. errors.Is matches it,
// and also its parent: a kind can be a special case of another (a missing
// status list is also not found). Its Error text names the package, as Go
// errors do; Public is the words a client reads, empty where the problem
// type already says everything. An error that has words of its own for a
// client offers them as a Public method (Error does).
type Kind struct {
	text   string
	public string
	parent error
}

// NewKind returns a kind with the Go text text, the client-facing words
// public, and parent (nil: none).
func NewKind(text, public string, parent error) *Kind {
	return &Kind{text: text, public: public, parent: parent}
}

func (k *Kind) Error() string { return k.text }

// Unwrap returns the kind's parent.
func (k *Kind) Unwrap() error { return k.parent }

// Words is what a client reads for the kind.
func (k *Kind) Words() string { return k.public }

// Error is an error of a Kind with a detail for the client.
type Error struct {
	Kind *Kind
	// Detail says what went wrong, for the client, without the kind.
	Detail string
	cause  error // what the detail wrapped with %w, if anything
}

// Errorf returns an *Error of kind k whose detail is format with args
// (fmt.Errorf's rules: %w wraps a cause, which errors.Is finds too).
func Errorf(k *Kind, format string, args ...any) error {
	e := fmt.Errorf(format, args...)
	err := &Error{Kind: k, Detail: e.Error()}
	if errors.Unwrap(e) != nil || isMulti(e) {
		err.cause = e
	}
	return err
}

func isMulti(e error) bool {
	_, ok := e.(interface{ Unwrap() []error })
	return ok
}

func (e *Error) Error() string { return e.Kind.text + ": " + e.Detail }

// Unwrap returns the kind and the wrapped cause, if any.
func (e *Error) Unwrap() []error {
	if e.cause != nil {
		return []error{e.Kind, e.cause}
	}
	return []error{e.Kind}
}

// Public is what a client reads: the kind's words, then the detail.
func (e *Error) Public() string {
	if e.Kind.public == "" {
		return e.Detail
	}
	return e.Kind.public + ": " + e.Detail
}

// Rejection codes stored in a Result.
const (
	CodeMalformed     = "malformed"
	CodeBadSignature  = "bad_signature"
	CodeUnknownKey    = "unknown_key"
	CodeNotAuthorized = "not_authorized"
	CodeScope         = "scope_exceeded"
	CodeConflict      = "conflict"
	CodeInvalid       = "invalid"
	CodeIATWindow     = "iat_out_of_window"
	CodeTooLarge      = "too_large"
	// Status-list rejections, after the W3C Recommendation's error types.
	CodeStatusListLength = "status_list_length"
	CodeMalformedValue   = "malformed_value"
)

var codeErrors = map[string]*Kind{
	CodeMalformed:        ErrMalformed,
	CodeBadSignature:     ErrBadSignature,
	CodeUnknownKey:       ErrUnknownKey,
	CodeNotAuthorized:    ErrNotAuthorized,
	CodeScope:            ErrScope,
	CodeConflict:         ErrConflict,
	CodeInvalid:          ErrInvalid,
	CodeIATWindow:        ErrIATWindow,
	CodeTooLarge:         ErrTooLarge,
	CodeStatusListLength: ErrStatusListLength,
	CodeMalformedValue:   ErrMalformedValue,
}

// Rejection is a domain-rule violation found while applying an operation.
// It becomes a rejected Result, never a crash.
type Rejection struct {
	Code string // one of the rejection codes above
	Msg  string // the Result's reason
}

func (r *Rejection) Error() string { return r.Msg }

// Reject returns a Rejection with code and a reason formatted as by
// fmt.Sprintf.
func Reject(code, format string, args ...any) *Rejection {
	return &Rejection{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Result is the outcome of applying one log entry.
type Result struct {
	Index     uint64    `json:"index"`
	Time      time.Time `json:"time"`
	CID       string    `json:"cid,omitempty"`
	Op        string    `json:"op,omitempty"`
	Signers   []string  `json:"signers,omitempty"`
	Accepted  bool      `json:"accepted"`
	Duplicate bool      `json:"duplicate,omitempty"`
	// ID names the record the operation created or changed (an
	// accreditation id, a framework id, a DID).
	ID     string `json:"id,omitempty"`
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Err returns nil for an accepted result and, for a rejection, an error that
// wraps the code's sentinel and carries the reason.
func (r *Result) Err() error {
	if r.Accepted {
		return nil
	}
	base, ok := codeErrors[r.Code]
	if !ok {
		base = ErrInvalid
	}
	return Errorf(base, "%s", r.Reason)
}

// Invalid turns a validation error into a CodeInvalid Rejection; nil stays
// nil.
func Invalid(err error) error {
	if err == nil {
		return nil
	}
	return Reject(CodeInvalid, "%v", err)
}
