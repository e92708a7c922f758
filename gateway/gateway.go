package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

// Registry is the read side of the registry the gateway serves.
type Registry interface {
	// View returns a view of the latest applied state: every read of one
	// request goes through one view, and its answer reports the view's
	// index. The handler closes it once the answer is made.
	View() *registry.View
	// Genesis and GenesisCID name the consortium (the Ayra profile's
	// /metadata).
	Genesis() record.Genesis
	GenesisCID() string
	AppliedIndex() uint64
}

// Writer submits signed operations to the cluster.
type Writer interface {
	Submit(ctx context.Context, jws []byte) (*record.Result, error)
}

// Node reports on and coordinates with the cluster.
type Node interface {
	// Status is the node's view of the cluster, as JSON.
	Status() any
	// Version is the node's build and the cluster's feature level, as
	// JSON.
	Version() any
	// Ready returns nil when the node can serve (it knows a leader and has
	// applied its state).
	Ready() error
	// ReadIndex returns an index that a linearizable read must wait for:
	// the commit index, once leadership has been confirmed.
	ReadIndex(ctx context.Context) (uint64, error)
	// WaitApplied blocks until the node has applied the log up to index.
	WaitApplied(ctx context.Context, index uint64) error
}

// Checkpoints serves the latest checkpoint of the registry's log that
// carries a quorum of the genesis cosigners' cosignatures.
type Checkpoints interface {
	// LatestCheckpoint returns the checkpoint as a C2SP signed note, or an
	// error that is ErrNoCosigners (the genesis lists none) or
	// ErrNoCheckpoint (none has a quorum yet).
	LatestCheckpoint() ([]byte, error)
}

// Config configures a Server.
type Config struct {
	Registry     Registry
	Writer       Writer
	Node         Node
	Logger       *slog.Logger
	Metrics      prometheus.Registerer // nil: no metrics registered
	Gatherer     prometheus.Gatherer   // served on /metrics
	MaxBodyBytes int64
	MaxWait      time.Duration // bound on min_index and linearizable waits
	// Limits bounds each client address's and each signer's writes; the
	// zero value sets no limit.
	Limits Limits
	// MaxWatchStreams bounds the watch streams (GET /v1/watch) open at
	// once, MaxWatchStreamsPerAddress those of one client address; zero
	// means 2,048 and 32.
	MaxWatchStreams           int
	MaxWatchStreamsPerAddress int
	Now                       func() time.Time
	// Lag, if set, is how many entries the leader has committed that this
	// node has not applied, as far as it knows; every answer carries it
	// in LagHeader.
	Lag func() uint64
	// Checkpoints serves GET /v1/checkpoint; nil answers as a consortium
	// without cosigners does.
	Checkpoints Checkpoints
}

// Server is the HTTP gateway.
type Server struct {
	cfg     Config
	log     *slog.Logger
	routes  *router
	metrics *metrics
	limits  writeLimits
	// watchers counts the watch streams open against their bounds.
	watchers *watchSlots
	// turns holds a token for each answer of scanRoutes being made and
	// each page a watch stream reads (takeTurn).
	turns chan struct{}
	// batchReads bounds the listed accreditations one batch of trust
	// questions reads: maxBatchReads (tests lower it).
	batchReads int
	answers    answerCache
	// proven keeps proof answers to GET /v1/trust (proofcache.go).
	proven proofCache
	// evidence keeps the cosigner changes' evidence of the latest
	// checkpoint size proven (proof.go).
	evidence cosignerEvidence
	// head keeps the last leaf and its inclusion proof of the latest
	// checkpoint size proven, and the size of the last proof answer
	// (proof.go).
	head checkpointHead
	// lastNote is the latest checkpoint note parsed (proof.go).
	lastNote parsedNote
	// trustHandler is the instrumented GET /v1/trust.
	trustHandler http.Handler
	// closing is canceled when the HTTP server shuts down; long-lived
	// answers (watch streams) end then.
	closing     context.Context
	stopStreams context.CancelFunc
}

// route is one endpoint. The OpenAPI document is kept in step with this
// table by a test.
type route struct {
	method, pattern string
	handler         func(*Server, http.ResponseWriter, *http.Request)
}

var routes = []route{
	{"POST", "/v1/operations", (*Server).submitOperation},
	{"GET", "/v1/operations", (*Server).changes},
	{"GET", "/v1/operations/{ref}", (*Server).operation},
	{"GET", "/v1/watch", (*Server).watch},
	{"GET", trustPath, (*Server).trust},
	{"POST", trustPath, (*Server).trustBatch},
	{"POST", "/authorization", (*Server).trqpAuthorize},
	{"POST", "/recognition", (*Server).trqpRecognize},
	{"GET", "/metadata", (*Server).ayraMetadata},
	{"GET", "/entities", (*Server).ayraEntities},
	{"GET", "/entities/{entity_id}", (*Server).ayraEntity},
	{"GET", "/entities/{entity_id}/authorizations", (*Server).ayraEntityAuthorizations},
	{"GET", "/ecosystems/{ecosystem_id}", (*Server).ayraEcosystem},
	{"GET", "/ecosystems/{ecosystem_id}/recognitions", (*Server).ayraEcosystemRecognitions},
	{"GET", "/lookups/assuranceLevels", ayraNotImplemented(ayraNoAssuranceLevels)},
	{"GET", "/lookups/authorizations", (*Server).ayraLookupAuthorizations},
	{"GET", "/lookups/didMethods", ayraNotImplemented(ayraNoDIDMethods)},
	{"GET", tirBase + "/{version}/issuers", (*Server).tirIssuers},
	{"GET", tirBase + "/{version}/issuers/{did}", (*Server).tirIssuer},
	{"GET", tirBase + "/{version}/issuers/{did}/attributes", (*Server).tirAttributes},
	{"GET", tirBase + "/{version}/issuers/{did}/attributes/{attribute}", (*Server).tirAttribute},
	{"GET", tirBase + "/{version}/issuers/{did}/attributes/{attribute}/revisions", (*Server).tirRevisions},
	{"GET", tirBase + "/{version}/issuers/{did}/attributes/{attribute}/revisions/{revision}", (*Server).tirRevision},
	{"GET", tirBase + "/{version}/issuers/{did}/proxies", tirNotImplemented(tirNoProxies)},
	{"GET", tirBase + "/{version}/issuers/{did}/proxies/{proxy}", tirNotImplemented(tirNoProxies)},
	{"GET", tirBase + "/{version}/issuers/{did}/proxies/{proxy}/{path...}", tirNotImplemented(tirNoProxies)},
	{"GET", tirBase + "/{version}/abi", tirNotImplemented(tirNoABI, "v5")},
	{"POST", tirBase + "/{version}/jsonrpc", tirNotImplemented(tirNoJSONRPC)},
	{"GET", "/v1/export/dcc", (*Server).exportDCC},
	{"GET", "/v1/frameworks", (*Server).frameworks},
	{"GET", "/v1/frameworks/{id}", (*Server).framework},
	{"GET", "/v1/entities", (*Server).entities},
	{"GET", "/v1/entities/{did}", (*Server).entity},
	{"GET", "/v1/entities/{did}/accreditations", (*Server).entityAccreditations},
	{"GET", "/v1/entities/{did}/history", (*Server).entityHistory},
	{"GET", "/v1/accreditations", (*Server).accreditations},
	{"GET", "/v1/accreditations/{id}", (*Server).accreditation},
	{"GET", "/v1/status-lists", (*Server).statusLists},
	{"GET", "/v1/status-lists/{issuer}/{list}", (*Server).statusList},
	{"GET", "/v1/status-lists/{issuer}/{list}/record", (*Server).statusListRecord},
	{"GET", "/v1/status-lists/{issuer}/{list}/versions", (*Server).statusListVersions},
	{"GET", "/v1/status-lists/{issuer}/{list}/entries/{index}", (*Server).statusEntry},
	{"GET", "/v1/checkpoint", (*Server).checkpoint},
	{"GET", "/v1/status", (*Server).status},
	{"GET", "/v1/version", (*Server).version},
	{"GET", "/healthz", (*Server).healthz},
	{"GET", "/readyz", (*Server).readyz},
	{"GET", "/metrics", (*Server).metricsHandler},
	{"GET", "/openapi.json", (*Server).openapi},
	{"GET", "/openapi.html", (*Server).openapiPage},
}

// scanRoutes are the answers that may read many records: a listing page
// (up to registry.MaxPageScan records, or 4 MiB of operations), the TIR
// and Ayra issuer listings (a walk of every issuer at a new state), the
// Ayra answers made of many accreditations, the DCC export. Anyone may
// ask them, each may take a tenth of a second or more, so they take
// turns, which the watch streams' page reads take too: at most half the
// node's cores' worth at once (one on two cores), so that a flood of them
// leaves the trust answers the rest. A request waits its turn for at most
// Config.MaxWait, then is refused with 503 busy and Retry-After.
var scanRoutes = map[string]bool{
	"GET /v1/operations":                                                           true,
	"GET /entities":                                                                true,
	"GET /entities/{entity_id}":                                                    true,
	"GET /entities/{entity_id}/authorizations":                                     true,
	"GET /ecosystems/{ecosystem_id}/recognitions":                                  true,
	"GET /lookups/authorizations":                                                  true,
	"GET " + tirBase + "/{version}/issuers":                                        true,
	"GET " + tirBase + "/{version}/issuers/{did}":                                  true,
	"GET " + tirBase + "/{version}/issuers/{did}/attributes":                       true,
	"GET " + tirBase + "/{version}/issuers/{did}/attributes/{attribute}/revisions": true,
	"GET /v1/export/dcc":                                                           true,
	"GET /v1/frameworks":                                                           true,
	"GET /v1/entities":                                                             true,
	"GET /v1/entities/{did}/accreditations":                                        true,
	"GET /v1/entities/{did}/history":                                               true,
	"GET /v1/accreditations":                                                       true,
	"GET /v1/status-lists":                                                         true,
	"GET /v1/status-lists/{issuer}/{list}/versions":                                true,
}

// pastRoutes take turns (as scanRoutes do) when they ask for a past time
// (?timestamp=): finding the version current then reads up to some 66
// version records of up to 256 KiB by bisection, and an entry of it
// decompresses its bitstring up to the entry (up to 16 MiB), some
// milliseconds where the current version's answer comes from the cache.
var pastRoutes = map[string]bool{
	"GET /v1/status-lists/{issuer}/{list}":                 true,
	"GET /v1/status-lists/{issuer}/{list}/record":          true,
	"GET /v1/status-lists/{issuer}/{list}/entries/{index}": true,
}

// takingTurnsForThePast makes h take a turn (takingTurns) when the request
// asks for a past time. A proof (proof=true) takes its turn itself, once
// the proven state it waits for is there (proveStatusList), so that no
// turn is held while it waits.
func takingTurnsForThePast(h func(*Server, http.ResponseWriter, *http.Request)) func(*Server, http.ResponseWriter, *http.Request) {
	turns := takingTurns(h)
	return func(s *Server, w http.ResponseWriter, r *http.Request) {
		if withP, _ := wantProof(r); query(r).Has("timestamp") && !withP {
			turns(s, w, r)
			return
		}
		h(s, w, r)
	}
}

// errTurnWait refuses a read that waited for its turn longer than
// Config.MaxWait.
func errTurnWait() error {
	return record.Errorf(ErrBusy, "the node is making as many listings and exports as it may at once; ask again")
}

// turnWithin takes a turn (takeTurn), waiting at most Config.MaxWait, or
// returns errTurnWait; the caller gives it back (giveTurn).
func (s *Server) turnWithin(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MaxWait)
	defer cancel()
	if !s.takeTurn(ctx) {
		return errTurnWait()
	}
	return nil
}

// takingTurns makes h wait for a turn (takeTurn). A turn is held only
// while the answer is made: the request's consistency wait (min_index,
// linearizable) comes before it, and the answer, made into memory, is
// written to the client after it, so neither a read waiting for an index
// nor a client that reads its answer slowly holds a turn.
func takingTurns(h func(*Server, http.ResponseWriter, *http.Request)) func(*Server, http.ResponseWriter, *http.Request) {
	return func(s *Server, w http.ResponseWriter, r *http.Request) {
		waited, ok := s.consistentIndex(w, r)
		if !ok {
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), waitedKey{}, waited))
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.MaxWait)
		defer cancel()
		if !s.takeTurn(ctx) {
			if r.Context().Err() != nil {
				return // the client is gone
			}
			w.Header().Set("Retry-After", "1")
			writeError(w, r, errTurnWait())
			return
		}
		held := &heldResponse{header: w.Header()}
		func() {
			defer s.giveTurn()
			h(s, held, r)
		}()
		held.writeTo(w)
	}
}

// takeTurn waits for a turn of the reads that may read much (scanRoutes'
// answers, the watch streams' pages), at most half the node's cores' worth
// at once; false when ctx ends first. giveTurn gives it back.
func (s *Server) takeTurn(ctx context.Context) bool {
	select {
	case s.turns <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) giveTurn() { <-s.turns }

// waitedKey marks a request whose consistency wait was made before its
// turn (takingTurns); its value is what consistentIndex returned.
type waitedKey struct{}

// heldResponse keeps an answer's status and body until the turn it was
// made in is given back; its headers are the response's own.
type heldResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldResponse) Header() http.Header { return h.header }

func (h *heldResponse) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldResponse) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}

// writeTo sends the answer held; nothing, when the handler wrote nothing.
func (h *heldResponse) writeTo(w http.ResponseWriter) {
	if h.status == 0 {
		return
	}
	w.WriteHeader(h.status)
	_, _ = w.Write(h.body.Bytes()) // a client gone is nothing to report
}

// New builds the gateway.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = record.MaxOperationSize
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 10 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "gateway"), routes: newRouter(func(r *http.Request) string {
		return fmt.Sprintf("no route %s %s: see /openapi.json", r.Method, r.URL.Path)
	})}
	s.closing, s.stopStreams = context.WithCancel(context.Background())
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.limits = newWriteLimits(cfg.Limits)
	s.watchers = newWatchSlots(cfg.MaxWatchStreams, cfg.MaxWatchStreamsPerAddress)
	s.turns = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))
	s.batchReads = maxBatchReads
	for _, rt := range routes {
		h := rt.handler
		switch k := rt.method + " " + rt.pattern; {
		case scanRoutes[k]:
			h = takingTurns(h)
		case pastRoutes[k]:
			h = takingTurnsForThePast(h)
		}
		var fast func(http.ResponseWriter, *http.Request) bool
		if rt.method == http.MethodGet && rt.pattern == trustPath {
			fast = s.cachedTrust
		}
		handler := s.instrument(rt.pattern, fast, func(w http.ResponseWriter, r *http.Request) { h(s, w, r) })
		s.routes.handle(rt.method, rt.pattern, handler)
		if fast != nil {
			s.trustHandler = handler
		}
	}
	if err := s.registerExplorer(); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
// The trust question, verifiers' hot path, skips the pattern matching.
//
// Every answer may be read by a web page of any origin (CORS): the gateway
// serves public data, and a write carries its own signature, not the
// browser's cookies, so there is nothing a page could borrow. Verifier
// pages check issuers and fetch status lists from the browser itself.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Access-Control-Allow-Origin"] = corsAnyOrigin
	h["Access-Control-Expose-Headers"] = corsExposed
	if id := r.Header[requestIDHeader]; len(id) == 1 && len(id[0]) <= maxRequestIDBytes {
		h[requestIDHeader] = id
	}
	if s.cfg.Lag != nil {
		h[LagHeader] = lagValue(s.cfg.Lag())
	}
	if r.Method == http.MethodGet && r.URL.Path == trustPath && s.trustHandler != nil {
		s.trustHandler.ServeHTTP(w, r)
		return
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		preflight(w)
		return
	}
	s.routes.serve(w, r)
}

// requestIDHeader is the tracing header TRQP's HTTPS binding lets a
// client send; every answer echoes it, when the request carries one no
// longer than maxRequestIDBytes (a UUID is 36).
const (
	requestIDHeader   = "X-Request-Id" // canonical form of X-Request-ID
	maxRequestIDBytes = 128
)

// CORS headers; the slices are shared by every answer and never changed.
var (
	corsAnyOrigin = []string{"*"}
	corsExposed   = []string{"ETag, " + IndexHeader + ", " + LagHeader + ", Retry-After, X-Request-ID"}
	corsMethods   = []string{"GET, HEAD, POST"}
	// Content-Type for the JSON of a batch trust question and the JOSE
	// of an operation; If-None-Match and Accept a client sends to
	// revalidate or choose a representation; Last-Event-ID an EventSource
	// sends when it reconnects to a watch stream; Authorization and
	// X-Request-ID, which TRQP's HTTPS binding has clients send (the
	// gateway needs no token and ignores one).
	corsHeaders = []string{"Content-Type, If-None-Match, Accept, Last-Event-ID, Authorization, X-Request-ID"}
	corsMaxAge  = []string{"86400"}
)

// preflight answers a browser's CORS preflight: a page of any origin may
// send GET, HEAD and POST with these headers, and may remember that for a
// day.
func preflight(w http.ResponseWriter) {
	h := w.Header()
	h["Access-Control-Allow-Methods"] = corsMethods
	h["Access-Control-Allow-Headers"] = corsHeaders
	h["Access-Control-Max-Age"] = corsMaxAge
	w.WriteHeader(http.StatusNoContent)
}

const trustPath = "/v1/trust"

// HTTPServer wraps the gateway in an http.Server with the given timeouts.
// Its Shutdown ends the watch streams, which would otherwise hold it for
// its whole grace period.
func (s *Server) HTTPServer(addr string, read, write time.Duration) *http.Server {
	srv := &http.Server{
		Addr: addr, Handler: s,
		ReadHeaderTimeout: read, ReadTimeout: read, WriteTimeout: write, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	srv.RegisterOnShutdown(s.StopStreams)
	return srv
}

// StopStreams ends the watch streams being served and any opened later.
func (s *Server) StopStreams() { s.stopStreams() }

// IndexHeader carries the applied index a read was served at.
const IndexHeader = "X-Trustreg-Index"

// LagHeader carries how many entries the leader has committed that this
// node has not yet applied, as far as the node has heard (Config.Lag):
// 0 on a node that is caught up with what the leader last sent it.
const LagHeader = "X-Trustreg-Lag"

// lagZero is the header value of a node that is not behind, shared by
// every answer.
var lagZero = []string{"0"}

func lagValue(n uint64) []string {
	if n == 0 {
		return lagZero
	}
	return []string{strconv.FormatUint(n, 10)}
}

// consistent applies the read's consistency level before it is served:
// local (default), min_index=N, or consistency=linearizable.
func (s *Server) consistent(w http.ResponseWriter, r *http.Request) bool {
	_, ok := s.consistentIndex(w, r)
	return ok
}

// consistentIndex is consistent that also returns the index the read
// waited for (0: a local read): a proven answer must come from a state at
// least that new (proof.go).
func (s *Server) consistentIndex(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	if waited, ok := r.Context().Value(waitedKey{}).(uint64); ok {
		return waited, true // before the request's turn (takingTurns)
	}
	q := query(r)
	var wait uint64
	switch c := q.Get("consistency"); c {
	case "", "local":
	case "linearizable":
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.MaxWait)
		defer cancel()
		idx, err := s.cfg.Node.ReadIndex(ctx)
		if err != nil {
			writeError(w, r, err)
			return 0, false
		}
		wait = idx
	default:
		writeError(w, r, record.Errorf(ErrBadRequest, "consistency %q must be local or linearizable", c))
		return 0, false
	}
	if v := q.Get("min_index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, r, record.Errorf(ErrBadRequest, "min_index %q is not a registry index", v))
			return 0, false
		}
		wait = max(wait, n)
	}
	if wait > 0 && s.cfg.Registry.AppliedIndex() < wait {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.MaxWait)
		defer cancel()
		if err := s.cfg.Node.WaitApplied(ctx, wait); err != nil {
			writeError(w, r, record.Errorf(ErrNotCaughtUp, "index %d (applied %d) within %s; retry later", wait, s.cfg.Registry.AppliedIndex(), s.cfg.MaxWait))
			return 0, false
		}
	}
	return wait, true
}

// writeJSON writes v, an answer not read from the registry's state (the
// node's status, a write's result), with the applied index, an ETag and
// Cache-Control, and answers a matching If-None-Match with 304.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any, cacheControl string) {
	s.writeJSONAt(w, r, s.cfg.Registry.AppliedIndex(), status, v, cacheControl)
}

// writeJSONAt is writeJSON for an answer read from the state at index (the
// index of the view it was read from).
func (s *Server) writeJSONAt(w http.ResponseWriter, r *http.Request, index uint64, status int, v any, cacheControl string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeError(w, r, err)
		return
	}
	s.writeBody(w, r, index, status, buf.Bytes(), cacheControl)
}

// etagOf names a body's exact bytes.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return etagFromSum(sum[:])
}

func etagFromSum(sum []byte) string {
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// writeBody writes an encoded JSON body with index (the applied index it
// was read at), an ETag and Cache-Control, and answers a matching
// If-None-Match with 304.
func (s *Server) writeBody(w http.ResponseWriter, r *http.Request, index uint64, status int, body []byte, cacheControl string) {
	a := newAnswer(body, index, cacheControl)
	a.write(w, r, status)
}

// answer is an encoded answer with its header values made once: served
// from the trust answer cache it costs a map assignment per header. The
// slices are shared by every response that serves it; net/http only reads
// them.
type answer struct {
	body []byte
	// at, when not nil, is sent in place of the len(at) bytes of body
	// from atOff on: a cached trust answer given again in a later second
	// differs from its first rendering only in the time it was given for.
	at                               []byte
	atOff                            int
	etag                             string
	length, index, etagHdr, cacheHdr []string
}

// newAnswer prepares body as answered at applied; an empty cacheControl
// sends no Cache-Control.
func newAnswer(body []byte, applied uint64, cacheControl string) answer {
	return newTaggedAnswer(body, etagOf(body), applied, cacheControl)
}

// newTaggedAnswer is newAnswer for a body whose ETag is already known.
func newTaggedAnswer(body []byte, etag string, applied uint64, cacheControl string) answer {
	a := answer{
		body: body, etag: etag,
		index:   []string{strconv.FormatUint(applied, 10)},
		etagHdr: []string{etag},
	}
	if len(body) >= autoLengthBelow {
		a.length = []string{strconv.Itoa(len(body))}
	}
	if cacheControl != "" {
		a.cacheHdr = []string{cacheControl}
	}
	return a
}

// write sends the answer with the applied index, its ETag and
// Cache-Control, and answers a matching If-None-Match on a 200 with 304.
// Keys are written in canonical form directly: Header.Set would
// canonicalize each one on every answer.
func (a *answer) write(w http.ResponseWriter, r *http.Request, status int) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	if a.length != nil {
		h["Content-Length"] = a.length
	}
	h[IndexHeader] = a.index
	h["Etag"] = a.etagHdr
	if a.cacheHdr != nil {
		h["Cache-Control"] = a.cacheHdr
	}
	if status == http.StatusOK && noneMatch(r.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(status)
	// Up to three writes into net/http's buffer: no body copied per answer.
	head, at, tail := a.pieces()
	_, _ = w.Write(head)
	if at != nil {
		_, _ = w.Write(at)
		_, _ = w.Write(tail)
	}
}

// pieces are the body the answer sends: the kept body whole, or, when at
// is set, the kept body around its time with at in its place.
func (a *answer) pieces() (head, at, tail []byte) {
	if a.at == nil {
		return a.body, nil, nil
	}
	return a.body[:a.atOff], a.at, a.body[a.atOff+len(a.at):]
}

// autoLengthBelow: net/http buffers the first 2 KiB a handler writes and,
// when the handler returns with all of it still buffered, sends the
// Content-Length itself, without a header map entry to copy, sort and
// check on every answer. Longer answers carry it from the handler.
const autoLengthBelow = 2048

// contentTypeJSON is shared by every JSON answer; net/http only reads it.
var contentTypeJSON = []string{"application/json"}

// Cache policies.
const (
	cacheShort     = "public, max-age=5"
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheNone      = "no-store"
)

func (s *Server) metricsHandler(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Gatherer == nil {
		writeProblem(w, r, api.Problem{Type: problemTypeBase + "not_found", Title: "Not Found", Status: http.StatusNotFound,
			Detail: "this gateway serves no metrics"})
		return
	}
	promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Node.Ready(); err != nil {
		writeError(w, r, record.Errorf(ErrUnavailable, "%v", err))
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ready\n"))
}

// checkpoint answers the latest cosigned checkpoint as its signed note.
// It changes at every round of cosigning (at least every
// proofs.cosign_interval), so caches must revalidate it.
func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request) {
	if err := checkLogParams(r); err != nil {
		writeError(w, r, err)
		return
	}
	if s.cfg.Checkpoints == nil {
		writeError(w, r, ErrNoCosigners)
		return
	}
	note, err := s.cfg.Checkpoints.LatestCheckpoint()
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(note)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	// consistency and min_index are taken (clients send them with every
	// read) but not waited for: the answer is the node as it is now, which
	// an operator asks for most when it has no leader.
	if err := checkParams(r); err != nil {
		writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, s.cfg.Node.Status(), cacheNone)
}

// version answers with the node's build. It is not cached: the cluster's
// feature level in it rises when the last member is upgraded.
func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	// consistency and min_index are taken (clients send them with every
	// read) but not waited for: the answer is the node as it is now, which
	// an operator asks for most when it has no leader.
	if err := checkParams(r); err != nil {
		writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, s.cfg.Node.Version(), cacheNone)
}

// noneMatch reports whether an If-None-Match field value matches etag, a
// strong entity tag ("..."), as RFC 9110 §13.1.2 compares them: "*"
// matches, and so does any tag of the list by the weak comparison (W/"x"
// matches "x"; a proxy that compresses answers makes their tags weak). An
// ill-formed list matches nothing from where it goes wrong.
func noneMatch(field, etag string) bool {
	if field == "" {
		return false
	}
	if field == etag {
		return true // the common case: one tag, as it was sent
	}
	for {
		field = strings.TrimLeft(field, " \t,")
		if field == "" {
			return false
		}
		if field[0] == '*' {
			return true
		}
		field = strings.TrimPrefix(field, "W/")
		if field == "" || field[0] != '"' {
			return false
		}
		end := strings.IndexByte(field[1:], '"')
		if end < 0 {
			return false
		}
		if field[:end+2] == etag {
			return true
		}
		field = field[end+2:]
	}
}
