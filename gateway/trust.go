package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// MaxBatch bounds the questions of one POST /v1/trust.
const MaxBatch = 1000

// maxBatchReads bounds the listed accreditations (registry.ReadBudget)
// the decisions of one POST /v1/trust of two or more questions read. A
// question reads the accreditations its entity received in the framework,
// so a batch's cost grows with them, not only with its questions: 1,000
// questions about a subject holding 10,000 took some 200 ms, against
// 6 ms for 1,000 about colleges holding one each (gateway/DESIGN.md).
// The bound lets 1,000 questions about entities holding up to 100
// accreditations each through, and stops a batch after about a hundredth
// of the reads of 1,000 questions about a subject holding 10,000.
const maxBatchReads = 100_000

// ErrBatchTooCostly refuses a batch of trust questions whose decisions
// read more than maxBatchReads listed accreditations: a 413, as a batch
// over the body's bound is, since the remedy is the same (smaller
// batches).
var ErrBatchTooCostly = record.NewKind("gateway: batch reads too much", "batch reads too much", record.ErrTooLarge)

var trustParams = []string{"entity", "framework", "action", "resource", "jurisdiction", "at", "as_of", "proof"}

// ParseQuestion reads a trust question from query parameters. The action
// defaults to issue; at is an RFC 3339 time or a date (midnight UTC).
func ParseQuestion(q url.Values) (decide.Question, error) {
	out := decide.Question{
		Entity: q.Get("entity"), Framework: q.Get("framework"), Action: q.Get("action"),
		Resource: q.Get("resource"), Jurisdiction: q.Get("jurisdiction"),
	}
	for k, vs := range q {
		if len(vs) > 1 {
			return out, record.Errorf(ErrBadRequest, "parameter %q given %d times", k, len(vs))
		}
	}
	if out.Action == "" {
		out.Action = record.ActionIssue
	}
	if v := q.Get("at"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			return out, err
		}
		out.At = t
	}
	if v := q.Get("as_of"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return out, record.Errorf(ErrBadRequest, "as_of %q must be a registry index (a positive integer)", v)
		}
		out.AsOf = n
	}
	if out.Entity == "" || out.Framework == "" {
		return out, record.Errorf(ErrBadRequest, "entity and framework are required, e.g. /v1/trust?entity=did:web:college.example&framework=https://example.org/fw&resource=https://example.org/Nursing")
	}
	return out, nil
}

func parseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), checkTime(ErrBadRequest, "time", v, t)
		}
	}
	return time.Time{}, record.Errorf(ErrBadRequest, "time %q must be RFC 3339 (2025-06-01T00:00:00Z) or a date (2025-06-01)", v)
}

// checkTime refuses, as kind, a time t (written v in the request) that is
// not after 0001-01-01T00:00:00Z. That instant is Go's zero time.Time,
// which the registry reads as "no time given" (decide.Question.At,
// decide.RecognitionQuestion.At, registry.View.CheckStatus): asked about
// it, they would answer about now. Earlier times are refused with it, so
// the bound is one line in docs/API.md. Every time the gateway parses
// from a request passes here, so past parsing a zero time always means
// that none was given.
func checkTime(kind *record.Kind, what, v string, t time.Time) error {
	if t.After(time.Time{}) {
		return nil
	}
	return record.Errorf(kind, "%s %q is not after 0001-01-01T00:00:00Z, the earliest time this registry answers about", what, v)
}

// trustCache picks Cache-Control: an answer pinned to a valid time and a
// registry index never changes.
func trustCache(q decide.Question) string {
	if !q.At.IsZero() && q.AsOf != 0 {
		return cacheImmutable
	}
	return cacheShort
}

// cachedTrust serves a trust question from the answer cache if it holds
// one for this applied index and this moment under the query string as
// sent: a question spelt as questionKey spells it (as clients that encode
// their parameters with url.Values usually send it), or as it was sent
// before (alias). The cache keeps only answers to local reads, each under
// its question's canonical spelling and the spellings it was asked in,
// each of which asks for a local read of that question and nothing more,
// so a query string found there means what the kept answer answers.
func (s *Server) cachedTrust(w http.ResponseWriter, r *http.Request) bool {
	a, ok := s.answers.get(s.cfg.Registry.AppliedIndex(), s.cfg.Now(), r.URL.RawQuery)
	if ok {
		a.write(w, r, http.StatusOK)
	}
	return ok
}

func (s *Server) trust(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	if err := checkParams(r, trustParams...); err != nil {
		writeError(w, r, err)
		return
	}
	q, err := ParseQuestion(query(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	withP, err := wantProof(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	minIndex, ok := s.consistentIndex(w, r)
	if !ok {
		return
	}
	if withP {
		s.trustProven(w, r, q, minIndex, now)
		return
	}
	// The fast path (cachedTrust) found no answer kept under the query
	// string as sent; the question may be kept under its canonical
	// spelling. Only local reads are served from the cache or put in it.
	local := localRead(query(r))
	var key string
	if local {
		key = questionKey(q)
		applied := s.cfg.Registry.AppliedIndex()
		if a, ok := s.answers.get(applied, now, key); ok {
			s.answers.alias(applied, r.URL.RawQuery, key)
			a.write(w, r, http.StatusOK)
			return
		}
	}
	view := s.cfg.Registry.View()
	d, until, err := view.DecideSecond(q, now)
	applied := view.Index()
	view.Close()
	if err != nil {
		writeError(w, r, err)
		return
	}
	if until.IsZero() || !local || !s.answers.admits(applied, key) {
		// Made for this instant only (a record time falls in this second),
		// or for a read that asked for more than the local state (the fast
		// path serves cached answers without looking at the query), or the
		// cache is full: encoded in a recycled buffer and not kept.
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		*bp = appendDecision((*bp)[:0], d)
		s.writeBody(w, r, applied, http.StatusOK, *bp, trustCache(q))
		return
	}
	a := s.answers.put(applied, key, d, until, !q.At.IsZero(), trustCache(q))
	s.answers.alias(applied, r.URL.RawQuery, key)
	a.write(w, r, http.StatusOK)
}

// trustProven answers GET /v1/trust?proof=true: the decision, made from
// the state at the latest cosigned checkpoint, with its bundle as "proof".
func (s *Server) trustProven(w http.ResponseWriter, r *http.Request, q decide.Question, minIndex uint64, now time.Time) {
	cacheable := localRead(query(r)) && !wantsCBOR(r) // the cache keeps JSON answers
	pinned := !q.At.IsZero()
	var key string
	if cacheable {
		key = provenKey(query(r))
		if note, _, err := s.latestCheckpoint(); err == nil {
			if p, ok := s.proven.get(note, key, now, pinned); ok {
				s.writeBody(w, r, p.applied, http.StatusOK, p.body, cacheNone)
				return
			}
		}
	}
	d, b, err := s.proveDecision(r.Context(), q, minIndex, now)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if wantsCBOR(r) {
		writeBundleCBOR(w, r, b)
		return
	}
	body, err := withProof(appendDecision(s.head.bodyBuffer(), d), b)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.head.bodySize.Store(int64(len(body)))
	if cacheable {
		s.proven.put([]byte(b.Checkpoint), key, now, pinned, provenBody{body: body, applied: b.Question.Applied})
	}
	s.writeBody(w, r, b.Question.Applied, http.StatusOK, body, cacheNone)
}

// questionKey is the answer cache's key of q: q's canonical query
// string, url.Values.Encode's spelling (names in byte order, values
// escaped by url.QueryEscape) of the parameters that differ from their
// defaults (action other than issue, resource, jurisdiction, at in RFC
// 3339 in UTC, as_of), entity and framework always. ParseQuestion reads
// it back as q, which is what lets cachedTrust look a query string up
// before parsing it; every other spelling of q (parameters in another
// order, defaults spelt out, other escapes, empty parameters, a time in
// another form, consistency=local, proof=false) finds the answer once
// parsed. The body and ETag kept depend on q alone (the decision's
// fields and time, the applied index), not on how it was spelt.
func questionKey(q decide.Question) string {
	v := url.Values{"entity": {q.Entity}, "framework": {q.Framework}}
	if q.Action != record.ActionIssue {
		v["action"] = []string{q.Action}
	}
	if q.Resource != "" {
		v["resource"] = []string{q.Resource}
	}
	if q.Jurisdiction != "" {
		v["jurisdiction"] = []string{q.Jurisdiction}
	}
	if !q.At.IsZero() {
		v["at"] = []string{q.At.UTC().Format(time.RFC3339Nano)}
	}
	if q.AsOf != 0 {
		v["as_of"] = []string{strconv.FormatUint(q.AsOf, 10)}
	}
	return v.Encode()
}

// localRead reports whether a read asks for the local state only, with
// no consistency level or index to wait for. Parameters are judged as
// parsed, so an escaped name ("consistenc%79") counts as what it means.
func localRead(q url.Values) bool {
	c := q.Get("consistency")
	return (c == "" || c == "local") && !q.Has("min_index")
}

// answerCache keeps trust answers for one applied index, each under its
// question's canonical query string (questionKey) and the query strings
// it was asked in (alias): the fast path, cachedTrust, looks the query
// string as sent up before parsing it, and the handler looks the parsed
// question up. Each entry holds an answer DecideSecond made and how long its
// decision holds (until); within that, a question in a later second gets
// the same answer with that second as its "at", so answers do not all
// expire together at each second. Only the time's text and the ETag are
// made again: the rest of the body is shared, and the ETag's hash resumes
// from its state after the body's part before the time. A question with
// "at" is served as it is.
//
// Invalidation: each answer is filed under the index of the view that
// decided it (registry.View.Index: the exact state it was read from) and
// served only while that index is the applied one (cachedTrust); a new
// index starts a new generation and drops the old one. So an answer is
// never served after a commit that could change it, and never under an
// index whose state it was not read from.
//
// Bounds: one generation keeps at most maxCachedAnswers answers and
// maxCachedAnswerBytes bytes of keys and bodies; a question whose key is
// longer than maxCachedKeyBytes is answered but never kept. Anyone may
// send questions: one question's spellings share one key, but distinct
// questions with long identifiers each take one (when keys were query
// strings as sent, 16,384 questions padded with 60 KB of "&" each held
// about 1 GiB).
type answerCache struct {
	mu      sync.RWMutex
	applied uint64
	m       map[string]*cachedAnswer
	bytes   int // the size of m's keys and entries (answerSize)
}

// cachedAnswer is immutable once in the cache; a later second's answer
// replaces it.
type cachedAnswer struct {
	until  time.Time
	fixed  bool  // the question named "at": the answer never changes
	second int64 // the second ans was given for
	ans    answer
	// head is the SHA-256 state after ans.body[:ans.atOff]; atLen is the
	// length of the time's text in ans.body.
	head  []byte
	atLen int
}

// Bounds of the answer cache (answers are about 1 KiB).
const (
	// maxCachedAnswers bounds the answers of one generation.
	maxCachedAnswers = 16384
	// maxCachedAnswerBytes bounds the bytes of one generation, as
	// answerSize counts them: answers are kept until their bytes reach
	// it, so it is passed by one answer at most.
	maxCachedAnswerBytes = 32 << 20
	// maxCachedKeyBytes bounds the key an answer is kept under
	// (questionKey); a question's is usually 200 to 400 bytes.
	maxCachedKeyBytes = 1024
	// answerOverheadBytes is what an entry holds besides its key and
	// body: the cachedAnswer, its hash state, its map slot.
	answerOverheadBytes = 256
)

// answerSize is what the answer cache counts for e kept under key.
func answerSize(key string, e *cachedAnswer) int {
	return len(key) + len(e.ans.body) + len(e.head) + answerOverheadBytes
}

// get returns the answer to the question key at now, if the cache holds
// one that covers now.
func (c *answerCache) get(applied uint64, now time.Time, key string) (answer, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	fresh := ok && c.applied == applied
	c.mu.RUnlock()
	if !fresh {
		return answer{}, false
	}
	second := now.Unix()
	if e.fixed || e.second == second {
		return e.ans, true
	}
	if second < e.second || time.Unix(second+1, 0).After(e.until) {
		return answer{}, false // the decision may not hold for all of this second
	}
	at := secondText(second)
	if len(at) != e.atLen {
		return answer{}, false // a year of other than four digits: decide afresh
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(e.head); err != nil {
		return answer{}, false
	}
	h.Write(at)
	h.Write(e.ans.body[e.ans.atOff+e.atLen:])
	next := *e
	next.second = second
	next.ans.at = at
	next.ans.etag = etagFromSum(h.Sum(nil))
	next.ans.etagHdr = []string{next.ans.etag}
	c.store(applied, key, &next)
	return next.ans, true
}

// put caches a decision DecideSecond made at applied and returns its
// answer.
func (c *answerCache) put(applied uint64, key string, d *record.Decision, until time.Time, fixed bool, cacheControl string) answer {
	// Encoded in a recycled buffer, kept in one of the exact size.
	bp := bufPool.Get().(*[]byte)
	encoded, atOff := appendDecisionAt((*bp)[:0], d)
	body := bytes.Clone(encoded)
	*bp = encoded
	bufPool.Put(bp)
	atLen := bytes.IndexByte(body[atOff:], '"') // the time's text, up to its closing quote
	h := sha256.New()
	h.Write(body[:atOff])
	head, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		head = nil // get then decides again in a later second
	}
	h.Write(body[atOff:])
	e := &cachedAnswer{until: until, fixed: fixed, second: d.At.Unix(), head: head, atLen: atLen,
		ans: newTaggedAnswer(body, etagFromSum(h.Sum(nil)), applied, cacheControl)}
	e.ans.atOff = atOff
	c.store(applied, key, e)
	return e.ans
}

// secondText is the text of a whole second in UTC as appendTime writes
// it, made once per second and shared by every answer given in it.
func secondText(second int64) []byte {
	if t := lastSecond.Load(); t != nil && t.second == second {
		return t.text
	}
	t := &secondAt{second: second, text: time.Unix(second, 0).UTC().AppendFormat(nil, time.RFC3339Nano)}
	lastSecond.Store(t)
	return t.text
}

type secondAt struct {
	second int64
	text   []byte
}

var lastSecond atomic.Pointer[secondAt]

// admits reports whether put would keep an answer to key at applied.
func (c *answerCache) admits(applied uint64, key string) bool {
	if len(key) > maxCachedKeyBytes {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if applied != c.applied {
		return applied > c.applied // a new generation, or one already past
	}
	_, ok := c.m[key]
	return ok || c.hasRoom()
}

// alias files the answer kept at applied under key under raw too, the
// query string as a client sent it, so that the fast path finds it when
// the client asks again: a client that spells its questions otherwise
// than questionKey (trustctl spells out action=issue) keeps the fast
// path from its second question on. The handler calls it only with the
// query string of a local read of the question key names, so an alias
// means what every key of the cache means. An alias counts in the
// bounds as an answer does; raw over maxCachedKeyBytes is never kept.
func (c *answerCache) alias(applied uint64, raw, key string) {
	if raw == key || len(raw) > maxCachedKeyBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if _, had := c.m[raw]; !ok || had || c.applied != applied || !c.hasRoom() {
		return
	}
	// A copy: the key may share its bytes with the whole request line.
	c.m[strings.Clone(raw)] = e
	c.bytes += answerSize(raw, e)
}

// hasRoom reports whether the generation may take another answer; c.mu
// is held.
func (c *answerCache) hasRoom() bool {
	return len(c.m) < maxCachedAnswers && c.bytes < maxCachedAnswerBytes
}

func (c *answerCache) store(applied uint64, key string, e *cachedAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		// Made here, not by the generation change below: a node that has
		// applied nothing yet answers at index 0, the zero generation.
		c.m = make(map[string]*cachedAnswer, 1024)
	}
	if c.applied != applied {
		if applied < c.applied {
			return // a request that started before a commit
		}
		c.applied = applied
		clear(c.m)
		c.bytes = 0
	}
	size := answerSize(key, e)
	if old, ok := c.m[key]; ok {
		// A later second's answer, or a second answer to the same
		// question: the same body, or one of nearly its size.
		c.bytes += size - answerSize(key, old)
		c.m[key] = e
		return
	}
	if len(key) > maxCachedKeyBytes || !c.hasRoom() {
		return
	}
	// A copy: the key may share its bytes with the whole request line.
	c.m[strings.Clone(key)] = e
	c.bytes += size
}

// bufPool recycles response buffers of the trust query.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// batchQuestion is one question of a batch, in JSON.
type batchQuestion struct {
	Entity       string `json:"entity"`
	Framework    string `json:"framework"`
	Action       string `json:"action,omitempty"`
	Resource     string `json:"resource,omitempty"`
	Jurisdiction string `json:"jurisdiction,omitempty"`
	At           string `json:"at,omitempty"`
	AsOf         uint64 `json:"as_of,omitempty"`
}

func (s *Server) trustBatch(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r); err != nil {
		writeError(w, r, err)
		return
	}
	body, err := readBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var qs []batchQuestion
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&qs); err != nil {
		writeError(w, r, record.Errorf(ErrBadRequest, "body must be a JSON array of questions: %v", err))
		return
	}
	// encoding/json keeps the last of two equal members, matches names
	// whatever their case and stops after the first value: the body must
	// mean one thing.
	if err := checkBody(body, reflect.TypeFor[[]batchQuestion]()); err != nil {
		writeError(w, r, err)
		return
	}
	if len(qs) == 0 || len(qs) > MaxBatch {
		writeError(w, r, record.Errorf(ErrBadRequest, "a batch holds 1 to %d questions, got %d", MaxBatch, len(qs)))
		return
	}
	if !s.consistent(w, r) {
		return
	}
	now := s.cfg.Now()
	view := s.cfg.Registry.View()
	defer view.Close()
	out := make([]*record.Decision, 0, len(qs))
	budget := registry.ReadBudget{Max: s.batchReads}
	within := view.Within(&budget)
	for i, bq := range qs {
		v := url.Values{"entity": {bq.Entity}, "framework": {bq.Framework}, "action": {bq.Action}, "resource": {bq.Resource}, "jurisdiction": {bq.Jurisdiction}, "at": {bq.At}}
		if bq.AsOf != 0 {
			v.Set("as_of", strconv.FormatUint(bq.AsOf, 10))
		}
		q, err := ParseQuestion(v)
		if err != nil {
			writeError(w, r, inBatch(err, i))
			return
		}
		var d *record.Decision
		if len(qs) == 1 {
			d, err = view.Decide(q, now) // one question costs what GET /v1/trust does
		} else {
			d, err = within.Decide(q, now)
		}
		if errors.Is(err, registry.ErrReadBudget) {
			writeError(w, r, record.Errorf(ErrBatchTooCostly,
				"its decisions read more than %d accreditations (an entity's accreditations in the framework are read for each question about it), and question %d (counting from 0) passed the bound: "+
					"send the questions from %d on in another batch, send smaller batches, or ask about an entity that holds many accreditations alone (GET /v1/trust, or a batch of one question)",
				s.batchReads, i, i))
			return
		}
		if err != nil {
			writeError(w, r, inBatch(err, i))
			return
		}
		out = append(out, d)
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, out, cacheNone)
}

// readBody reads a request body of at most limit bytes. A longer one is
// ErrBodyTooLarge (413); one that cannot be read (malformed chunked
// encoding, a connection cut short) is a bad request (400).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, record.Errorf(ErrBodyTooLarge, "body over %d bytes", limit)
		}
		return nil, record.Errorf(ErrBadRequest, "read the body: %v", err)
	}
	return body, nil
}

// inBatch says which question of a batch err is about, in the detail a
// client reads when err is of a record.Kind.
func inBatch(err error, i int) error {
	const where = " (question %d of the batch, counting from 0)"
	var e *record.Error
	if errors.As(err, &e) {
		return record.Errorf(e.Kind, "%w"+where, detailOnly{e}, i)
	}
	return fmt.Errorf("%w"+where, err, i)
}

// detailOnly is an *record.Error whose text is its detail alone, for
// wrapping into another error of the same kind.
type detailOnly struct{ e *record.Error }

func (d detailOnly) Error() string { return d.e.Detail }
func (d detailOnly) Unwrap() error { return d.e }

// checkBody refuses a JSON request body that encoding/json would read
// other than its writer may have meant (record.CheckJSON), as a bad
// request: it is no operation.
func checkBody(body []byte, schema reflect.Type) error {
	err := record.CheckJSON("body", body, schema)
	var e *record.Error
	if errors.As(err, &e) {
		return record.Errorf(ErrBadRequest, "%s", e.Detail)
	}
	return err
}
