package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/record"
)

// Errors the gateway's collaborators return for conditions that are not the
// registry's: the node wraps its cluster errors with these.
var (
	ErrUnavailable = record.NewKind("gateway: no leader or not ready", "no leader or not ready", nil)
	// ErrBusy refuses a listing or an export that waited too long for its
	// turn (scanRoutes).
	ErrBusy       = record.NewKind("gateway: busy", "busy", nil)
	ErrBadRequest = record.NewKind("gateway: bad request", "bad request", nil)
	// ErrBodyTooLarge: a request body (a batch of questions, a TRQP
	// query) over the gateway's bound; a 413 as an oversized operation is.
	ErrBodyTooLarge = record.NewKind("gateway: request body too large", "request body too large", record.ErrTooLarge)
	ErrNotCaughtUp  = record.NewKind("gateway: node has not reached the requested index", "node has not reached the requested index", nil)
	// ErrNotAcceptable: the resource has no representation the request's
	// Accept field takes.
	ErrNotAcceptable = record.NewKind("gateway: no acceptable representation", "no acceptable representation", nil)
	// ErrOutcomeUnknown: the write may have reached the log and its fate is
	// unknown. ErrUnavailable, for a write, says it certainly did not.
	ErrOutcomeUnknown = record.NewKind("gateway: the operation may or may not have been applied; resubmit the same signed operation (resubmission is idempotent) to learn its result",
		"the operation may or may not have been applied; resubmit the same signed operation (resubmission is idempotent) to learn its result", nil)
	// ErrNoCosigners: the consortium's genesis lists no cosigners, so the
	// registry has no cosigned checkpoints and its answers no proofs.
	ErrNoCosigners = record.NewKind("gateway: the consortium has no cosigners",
		"the consortium's genesis lists no cosigners, so this registry publishes no cosigned checkpoints and its answers carry no proofs", nil)
	// ErrNoCheckpoint: no checkpoint has a quorum of cosignatures yet.
	ErrNoCheckpoint = record.NewKind("gateway: no cosigned checkpoint yet",
		"no checkpoint carries a quorum of cosignatures yet: the cosigners' nodes are starting or too few are reachable; try again shortly", nil)
)

// ErrSentByAnother marks the error of a write this call sent nothing for:
// the node found the same bytes in flight from another call, waited for
// it, and gave up first (the node's twins). The outcome is the other
// call's, which its signers were charged for; this call gives its charge
// back (signersOwn). It is never an answer of its own: the write's error
// also wraps what the client is answered (ErrOutcomeUnknown).
var ErrSentByAnother = errors.New("the same operation, submitted moments before through this node, is still in flight")

// problemTypeBase prefixes every problem type URI.
const problemTypeBase = "urn:trustreg:problem:"

type errorMapping struct {
	err    error
	status int
	code   string
}

// errorTable maps errors to HTTP status codes and problem type codes. It is
// the only place that does.
var errorTable = []errorMapping{
	// Status-list errors carry the W3C Recommendation's types; they come
	// first because they also wrap not-found and invalid.
	{record.ErrStatusRetrieval, http.StatusNotFound, statusListTypeBase + "STATUS_RETRIEVAL_ERROR"},
	{record.ErrRange, http.StatusBadRequest, statusListTypeBase + "RANGE_ERROR"},
	{record.ErrMalformedValue, http.StatusUnprocessableEntity, statusListTypeBase + "MALFORMED_VALUE_ERROR"},
	{record.ErrStatusListLength, http.StatusUnprocessableEntity, statusListTypeBase + "STATUS_LIST_LENGTH_ERROR"},
	{record.ErrStatusVerification, http.StatusUnprocessableEntity, statusListTypeBase + "STATUS_VERIFICATION_ERROR"},
	{ErrNotAcceptable, http.StatusNotAcceptable, "not_acceptable"},
	{record.ErrMalformed, http.StatusBadRequest, "malformed"},
	{record.ErrBadQuery, http.StatusBadRequest, "bad_query"},
	{ErrBadRequest, http.StatusBadRequest, "bad_request"},
	{record.ErrBadSignature, http.StatusUnauthorized, "bad_signature"},
	{record.ErrUnknownKey, http.StatusUnauthorized, "unknown_key"},
	{record.ErrNotAuthorized, http.StatusForbidden, "not_authorized"},
	{record.ErrScope, http.StatusForbidden, "scope_exceeded"},
	{record.ErrNotFound, http.StatusNotFound, "not_found"},
	{ErrNoCosigners, http.StatusNotFound, "no_cosigners"},
	{record.ErrConflict, http.StatusConflict, "conflict"},
	{record.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{ErrRateLimited, http.StatusTooManyRequests, "rate_limited"},
	{ErrTooManyStreams, http.StatusTooManyRequests, "too_many_streams"},
	{record.ErrInvalid, http.StatusUnprocessableEntity, "invalid"},
	{record.ErrIATWindow, http.StatusUnprocessableEntity, "iat_out_of_window"},
	{ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	{ErrNotCaughtUp, http.StatusServiceUnavailable, "not_caught_up"},
	{ErrOutcomeUnknown, http.StatusServiceUnavailable, "outcome_unknown"},
	{ErrNoCheckpoint, http.StatusServiceUnavailable, "no_checkpoint"},
	{ErrNoProvenState, http.StatusServiceUnavailable, "no_proven_state"},
	{ErrStreamsFull, http.StatusServiceUnavailable, "streams_full"},
	{ErrBusy, http.StatusServiceUnavailable, "busy"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "timeout"},
}

// problemFor maps an error through errorTable.
func problemFor(err error) api.Problem {
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			typ := e.code
			if !strings.Contains(typ, ":") {
				typ = problemTypeBase + typ
			}
			return api.Problem{Type: typ, Title: http.StatusText(e.status), Status: e.status, Detail: detailOf(err)}
		}
	}
	return api.Problem{Type: problemTypeBase + "internal", Title: http.StatusText(http.StatusInternalServerError), Status: http.StatusInternalServerError, Detail: detailOf(err)}
}

// detailOf is what a client reads of err in a problem's detail: the
// words of the first error in its chain that has words for a client (a
// record.Error: its kind's words and its detail), the words of a bare
// record.Kind, or else err's text as it is (an error that wraps a kind
// with fmt.Errorf keeps the kind's Go text).
func detailOf(err error) string {
	var p publicError
	if errors.As(err, &p) {
		return p.Public()
	}
	if k, ok := err.(*record.Kind); ok && k.Words() != "" {
		return k.Words()
	}
	return err.Error()
}

// publicError is an error with words of its own for a client.
type publicError interface {
	error
	Public() string
}

func writeProblem(w http.ResponseWriter, r *http.Request, p api.Problem) {
	p.Instance = instanceOf(r)
	if p.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", strconv.Itoa(1))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// instanceOf is a problem's instance: the absolute URI of the request
// (RFC 9457 §3.1.5; the TRQP and Ayra documents type it as a URI), with
// the scheme it came over (https over TLS or with X-Forwarded-Proto:
// https) and its Host, without the query. A request without a Host (HTTP/1.0)
// gets none.
func instanceOf(r *http.Request) string {
	if r.Host == "" {
		return ""
	}
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		u.Scheme = "https"
	}
	return u.String()
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	writeProblem(w, r, problemFor(err))
}

// WriteError answers r with err as a problem document, mapped as the
// gateway's own errors are: for requests the node refuses before they reach
// the gateway (during shutdown), so clients see one error format.
func WriteError(w http.ResponseWriter, r *http.Request, err error) { writeError(w, r, err) }
