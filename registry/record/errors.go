package record

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Rejected operations carry one of the rejection codes
// below; Result.Err maps a code back to its sentinel so callers compare with
// errors.Is.
var (
	ErrMalformed     = errors.New("registry: malformed operation")
	ErrBadSignature  = errors.New("registry: signature does not verify")
	ErrUnknownKey    = errors.New("registry: unknown signing key")
	ErrNotAuthorized = errors.New("registry: signer not authorized")
	ErrScope         = errors.New("registry: grant exceeds the grantor's scope")
	ErrConflict      = errors.New("registry: conflicts with the current state")
	ErrInvalid       = errors.New("registry: semantically invalid")
	ErrIATWindow     = errors.New("registry: iat outside the accepted window")
	ErrTooLarge      = errors.New("registry: operation too large")
	ErrNotFound      = errors.New("registry: not found")
	ErrBadQuery      = errors.New("registry: bad query")
	ErrGenesis       = errors.New("registry: genesis mismatch")
)

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

var codeErrors = map[string]error{
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
	return fmt.Errorf("%w: %s", base, r.Reason)
}

// Invalid turns a validation error into a CodeInvalid Rejection; nil stays
// nil.
func Invalid(err error) error {
	if err == nil {
		return nil
	}
	return Reject(CodeInvalid, "%v", err)
}
