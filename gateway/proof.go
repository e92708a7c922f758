package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// Proofs in answers (issue #32). An answer about "now" must be computed
// and proven from the state whose log size is exactly the latest cosigned
// checkpoint's (proof.ErrNotLatest): the map is updated in place, so the
// state of now is not the state the checkpoint commits. The registry keeps
// views of recently published states by log size (registry.ViewAtLogSize);
// the gateway takes the one at the checkpoint's size. See DESIGN.md.

// ProvenViews is the registry's store of views by log size; the gateway
// answers ?proof=true when its Registry has one.
type ProvenViews interface {
	ViewAtLogSize(size uint64) (*registry.View, error)
}

var _ ProvenViews = (*registry.State)(nil)

// ErrNoProvenState: no state at the latest cosigned checkpoint's size
// could be read in time to prove an answer from it.
var ErrNoProvenState = record.NewKind("gateway: no provable state at the latest checkpoint",
	"this node holds no state at exactly the latest cosigned checkpoint's log size right now (writes are arriving faster than checkpoints, or the node is catching up), so it cannot prove an answer about now; try again shortly", nil)

// Bound of the wait for a provable state: how long a proof request waits
// for the state to reach the latest checkpoint's size, for a checkpoint
// whose state is kept, or for one that covers the index the read must
// see; and how often it looks again meanwhile. Checkpoints follow writes
// within about a second, so this spans a few of them.
const (
	proofWait = 6 * time.Second
	proofPoll = 50 * time.Millisecond
)

// wantProof reads the proof query parameter: absent or "false" is no.
func wantProof(r *http.Request) (bool, error) {
	v := query(r).Get("proof")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, record.Errorf(ErrBadRequest, "proof %q must be true or false", v)
	}
	return b, nil
}

// provenState is a view of the state at the latest cosigned checkpoint's
// size, with the checkpoint note and the last leaf of that log.
type provenState struct {
	view      *registry.View
	note      []byte
	size      uint64
	leaf      []byte
	leafIndex uint64
	applied   uint64   // the leaf's raft index
	inclusion [][]byte // the leaf's inclusion proof in the log of size; shared, only read
	// evidence keeps the cosigner changes' evidence of the latest size
	// proven (the Server's).
	evidence *cosignerEvidence
}

// cosignerEvidence keeps the evidence of the cosigner changes for one log
// size: every proof from the state at that size carries the same (the
// changes' operations, leaves and inclusion proofs in that tree), so it is
// read once per checkpoint size rather than once per answer.
type cosignerEvidence struct {
	mu      sync.Mutex
	size    uint64
	changes []proof.CosignerChange // nil: none at size (or nothing kept yet)
	kept    bool
}

// checkpointHead keeps, for one log size, the log's last leaf, the raft
// index it commits to and its inclusion proof in the log of that size:
// every proof from the state at that size carries the same (the log only
// grows), so they are read once per checkpoint size rather than once per
// answer. What it returns is shared by the bundles of that size, which
// only read it.
type checkpointHead struct {
	mu        sync.Mutex
	size      uint64 // 0: nothing kept yet
	leaf      []byte
	applied   uint64
	inclusion [][]byte
	// bodySize is the length of the last JSON proof answer, the buffer
	// the next one starts with (no regrowing as it is written).
	bodySize atomic.Int64
}

// at returns the last leaf of the log of size (read from v, a state at
// exactly that size), its raft index and its inclusion proof.
func (h *checkpointHead) at(v *registry.View, size uint64) ([]byte, uint64, [][]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.size == size {
		return h.leaf, h.applied, h.inclusion, nil
	}
	leaf, err := v.Leaf(size - 1)
	if err != nil {
		return nil, 0, nil, err
	}
	l, err := tlog.DecodeLeaf(leaf)
	if err != nil {
		return nil, 0, nil, err
	}
	incl, err := v.InclusionProof(size-1, size)
	if err != nil {
		return nil, 0, nil, err
	}
	h.size, h.leaf, h.applied, h.inclusion = size, leaf, l.Index, incl
	return leaf, l.Index, incl, nil
}

// bodyBuffer returns an empty buffer with room for a proof answer of the
// size the last one had, and a little more.
func (h *checkpointHead) bodyBuffer() []byte {
	n := h.bodySize.Load()
	return make([]byte, 0, n+n/8+512)
}

// latestCheckpoint returns the latest cosigned note and its size.
func (s *Server) latestCheckpoint() ([]byte, uint64, error) {
	if s.cfg.Checkpoints == nil {
		return nil, 0, ErrNoCosigners
	}
	note, err := s.cfg.Checkpoints.LatestCheckpoint()
	if err != nil {
		return nil, 0, err
	}
	if size, ok := s.lastNote.sizeOf(note); ok {
		return note, size, nil
	}
	i := bytes.Index(note, []byte("\n\n"))
	if i < 0 {
		return nil, 0, fmt.Errorf("gateway: the latest checkpoint is not a signed note")
	}
	cp, err := tlog.ParseCheckpoint(note[:i+1])
	if err != nil {
		return nil, 0, err
	}
	s.lastNote.keep(note, cp.Size)
	return note, cp.Size, nil
}

// parsedNote keeps the latest checkpoint note parsed and its size: every
// proof request reads the latest note, which changes about once a second.
type parsedNote struct {
	mu   sync.Mutex
	note []byte
	size uint64
}

// sizeOf returns the size of note when it is the one kept.
func (p *parsedNote) sizeOf(note []byte) (uint64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size, p.note != nil && bytes.Equal(p.note, note)
}

// keep keeps note, parsed as of size.
func (p *parsedNote) keep(note []byte, size uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.note, p.size = bytes.Clone(note), size
}

// provenView finds the state to answer from: the latest checkpoint, of
// size C, and a view of the state at exactly C that has applied at least
// minIndex (the read's consistency level). When the state is behind C,
// when no view at C is kept (quick commits skipped it, or it was dropped),
// or when C's state is older than minIndex, it looks again shortly, for a
// newer checkpoint or the state catching up, until proofWait has passed:
// then ErrNoProvenState (503, Retry-After). While there is no checkpoint
// yet it waits the same way, then ErrNoCheckpoint.
func (s *Server) provenView(ctx context.Context, minIndex uint64) (*provenState, error) {
	views, ok := s.cfg.Registry.(ProvenViews)
	if !ok {
		return nil, ErrNoCosigners
	}
	deadline := time.Now().Add(proofWait)
	for {
		note, size, err := s.latestCheckpoint()
		if err == nil && size == 0 {
			err = ErrNoCheckpoint
		}
		var v *registry.View
		if err == nil {
			v, err = views.ViewAtLogSize(size)
		}
		switch {
		case errors.Is(err, ErrNoCheckpoint):
			// The first checkpoint follows the first writes within about
			// a second: wait for it like for the next one.
			if time.Now().After(deadline) {
				return nil, err
			}
		case err == nil && v.Index() >= minIndex:
			return s.atView(v, note, size)
		case err == nil:
			err = fmt.Errorf("the latest checkpoint (log size %d) covers index %d, the read asks for %d", size, v.Index(), minIndex)
			v.Close()
		case errors.Is(err, registry.ErrLogBehind), errors.Is(err, registry.ErrNoKeptView):
			err = fmt.Errorf("log size %d: %w", size, err)
		default:
			return nil, err
		}
		if time.Now().After(deadline) && !errors.Is(err, ErrNoCheckpoint) {
			return nil, record.Errorf(ErrNoProvenState, "within %s: %v", proofWait, err)
		}
		if err := sleepCtx(ctx, proofPoll); err != nil {
			return nil, record.Errorf(ErrNoProvenState, "%v", err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// atView reads the last leaf of the checkpoint's log from v, and its
// inclusion proof (once per size: checkpointHead).
func (s *Server) atView(v *registry.View, note []byte, size uint64) (*provenState, error) {
	leaf, applied, incl, err := s.head.at(v, size)
	if err != nil {
		v.Close()
		return nil, err
	}
	return &provenState{view: v, note: note, size: size, leaf: leaf, leafIndex: size - 1, applied: applied, inclusion: incl, evidence: &s.evidence}, nil
}

// bundle proves the records rec read (from p.view: the map proof covers
// the bytes it read, which the view checks against the map) and makes the
// bundle of q and a.
func (p *provenState) bundle(rec *proof.Recorder, q proof.Question, a proof.Answer) (*proof.Bundle, error) {
	cos, err := p.cosigners()
	if err != nil {
		return nil, err
	}
	keys, read := rec.Read()
	vals, mapProof, err := p.view.ProveReadRecords(keys, read, p.cosignerKeys(cos))
	if err != nil {
		return nil, err
	}
	return &proof.Bundle{
		Version: proof.Version, Question: q, Answer: a, Records: rec.Records(), MapProof: mapProof,
		Leaf: p.leaf, LeafIndex: p.leafIndex, Inclusion: p.inclusion, Checkpoint: string(p.note),
		Cosigners: withRecord(cos, vals, 0),
	}, nil
}

// cosigners is the evidence of the cosigner changes the checkpoint
// follows (proof.Cosigners), without its record, which the map proof
// proves (cosignerKeys, withRecord); nil while the genesis's set is in
// force. The view is the state at the checkpoint's size, so its record
// lists exactly the changes applied below that size.
func (p *provenState) cosigners() (*proof.Cosigners, error) {
	e := p.evidence
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.kept || e.size != p.size {
		changes, err := p.readCosigners()
		if err != nil {
			return nil, err
		}
		e.size, e.changes, e.kept = p.size, changes, true
	}
	if e.changes == nil {
		return nil, nil
	}
	// The changes are shared by every bundle of this size and only read;
	// each bundle gets its own Cosigners for its record (withRecord).
	return &proof.Cosigners{Changes: e.changes}, nil
}

// readCosigners reads the evidence of the cosigner changes from the view:
// nil while the genesis's set is in force.
func (p *provenState) readCosigners() ([]proof.CosignerChange, error) {
	set, _, err := p.view.CosignerSet()
	if err != nil || set == nil {
		return nil, err
	}
	var out []proof.CosignerChange
	for _, ch := range set.Changes {
		jws, err := p.view.OperationJWS(ch.Operation)
		if err != nil {
			return nil, err
		}
		at, leaf, err := p.view.LeafOfIndex(ch.Index)
		if err != nil {
			return nil, err
		}
		incl, err := p.view.InclusionProof(at, p.size)
		if err != nil {
			return nil, err
		}
		out = append(out, proof.CosignerChange{JWS: jws, Leaf: leaf, LeafIndex: at, Inclusion: incl})
	}
	return out, nil
}

// cosignerKeys is the store key the map proof must cover for cos: the
// cosigner-set record's, when there is evidence.
func (p *provenState) cosignerKeys(cos *proof.Cosigners) [][]byte {
	if cos == nil {
		return nil
	}
	return [][]byte{registry.CosignerSetStoreKey()}
}

// withRecord sets cos's record to the proven value vals[i].
func withRecord(cos *proof.Cosigners, vals [][]byte, i int) *proof.Cosigners {
	if cos != nil {
		cos.Record = vals[i]
	}
	return cos
}

// proveDecision answers q with its proof (minIndex: see provenView): the decision made through a
// proof.Recorder over the state at the latest checkpoint, and its bundle.
func (s *Server) proveDecision(ctx context.Context, q decide.Question, minIndex uint64, now time.Time) (*record.Decision, *proof.Bundle, error) {
	if applied := s.cfg.Registry.AppliedIndex(); q.AsOf > applied {
		// As an answer without proof says: the index is not this node's yet.
		return nil, nil, record.Errorf(record.ErrBadQuery, "as_of %d is beyond the applied index %d: ask again later or read with min_index", q.AsOf, applied)
	}
	p, err := s.provenView(ctx, minIndex)
	if err != nil {
		return nil, nil, err
	}
	defer p.view.Close()
	if q.AsOf > p.applied {
		return nil, nil, record.Errorf(ErrNotCaughtUp, "as_of %d is past the latest cosigned checkpoint's state (index %d); ask again once a checkpoint covers it", q.AsOf, p.applied)
	}
	rec := proof.NewStableRecorder(p.view.Records())
	d, err := decide.Decide(rec, rec.Memo(p.view.ProofMemo()), p.applied, q, now)
	if err != nil {
		return nil, nil, err
	}
	pq, pa := proof.NewAuthorization(q, d, p.applied)
	b, err := p.bundle(rec, pq, pa)
	return d, b, err
}

// proveRecognition is proveDecision for a recognition question.
func (s *Server) proveRecognition(ctx context.Context, q decide.RecognitionQuestion, minIndex uint64, now time.Time) (*decide.RecognitionDecision, *proof.Bundle, error) {
	p, err := s.provenView(ctx, minIndex)
	if err != nil {
		return nil, nil, err
	}
	defer p.view.Close()
	rec := proof.NewStableRecorder(p.view.Records())
	d, err := decide.Recognize(rec, p.applied, q, now)
	if err != nil {
		return nil, nil, err
	}
	pq, pa := proof.NewRecognition(q, d, p.applied)
	b, err := p.bundle(rec, pq, pa)
	return d, b, err
}

// provenRead answers a record read with proof=true: get makes the answer
// from the view of the state at the latest checkpoint and names the
// records it shows; the answer carries a records bundle (proof.TypeRecords)
// of exactly those, as stored. A record written since the checkpoint waits
// for a checkpoint that covers it (heldSince).
func (s *Server) provenRead(w http.ResponseWriter, r *http.Request, minIndex uint64, get func(*registry.View) (any, []decide.RecordKey, error)) {
	p, err := s.provenView(r.Context(), minIndex)
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer p.view.Close()
	v, keys, err := get(p.view)
	if since, ok := s.heldSince(err, p.view.Index(), func(v *registry.View) error {
		_, _, err := get(v)
		return err
	}); ok {
		// Written since the checkpoint: proven once one covers it. The
		// first view goes before the wait (it holds the store's read
		// lock, which a restore waits for); its deferred Close is then a
		// no-op.
		p.view.Close()
		if p, err = s.provenView(r.Context(), max(minIndex, since)); err != nil {
			writeError(w, r, err)
			return
		}
		defer p.view.Close()
		v, keys, err = get(p.view)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	rec := proof.NewStableRecorder(p.view.Records())
	for _, k := range keys {
		if _, err := rec.Record(k); err != nil {
			writeError(w, r, err)
			return
		}
	}
	q, a := proof.NewRecords(s.cfg.Now(), p.applied)
	b, err := p.bundle(rec, q, a)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeError(w, r, err)
		return
	}
	s.writeProven(w, r, p.applied, buf.Bytes(), b)
}

// wantsCBOR reports whether a proof request asks for the bundle's CBOR
// form: its Accept header names application/cbor.
func wantsCBOR(r *http.Request) bool {
	return listed(r.Header.Values("Accept"), proof.MediaTypeCBOR)
}

// acceptsGzip reports whether the request's Accept-Encoding names gzip.
func acceptsGzip(r *http.Request) bool {
	return listed(r.Header.Values("Accept-Encoding"), "gzip")
}

// listed reports whether the comma-separated lists of an Accept or
// Accept-Encoding header name want (case-insensitive) with a q-value
// above zero or none. Wildcards do not count: the JSON answer stays the
// default.
func listed(values []string, want string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			name, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || name != want {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// writeBundleCBOR answers a proof request that asked for the CBOR form
// (wantsCBOR) with the bundle alone, which holds the question and the
// answer, gzip-compressed when the client accepts it: the compact form
// issue #32's budget is held on (registry/proof DESIGN.md, Size).
func writeBundleCBOR(w http.ResponseWriter, r *http.Request, b *proof.Bundle) {
	body, err := b.MarshalCBOR()
	if err != nil {
		writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", proof.MediaTypeCBOR)
	h.Set(IndexHeader, strconv.FormatUint(b.Question.Applied, 10))
	h.Set("Cache-Control", cacheNone)
	h.Add("Vary", "Accept, Accept-Encoding")
	if acceptsGzip(r) {
		body = proof.Compress(body)
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// writeProven answers a proof request: the JSON answer body with b as its
// "proof" member, or, when the request asks for CBOR, b alone in its CBOR
// form (writeBundleCBOR).
func (s *Server) writeProven(w http.ResponseWriter, r *http.Request, index uint64, body []byte, b *proof.Bundle) {
	if wantsCBOR(r) {
		writeBundleCBOR(w, r, b)
		return
	}
	body, err := withProof(body, b)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeBody(w, r, index, http.StatusOK, body, cacheNone)
}

// withProof returns the JSON object body with a "proof" member holding b,
// written into body's array (the caller's own) after the answer's
// members: the bundle's JSON is written in place (proof.Bundle.AppendJSON),
// not made apart and copied.
func withProof(body []byte, b *proof.Bundle) ([]byte, error) {
	body = bytes.TrimRight(body, " \n")
	if len(body) == 0 || body[len(body)-1] != '}' {
		return nil, fmt.Errorf("gateway: answer is not a JSON object")
	}
	out := append(body[:len(body)-1], `,"proof":`...)
	out, err := b.AppendJSON(out)
	if err != nil {
		return nil, err
	}
	return append(out, "}\n"...), nil
}

// proveStatusList answers a status-list record read with proof=true: the
// list and its current version (or, at a non-zero ts, the version in force
// at ts and the one published next, if any) from the state at the latest
// checkpoint, and a status-list bundle (proof.TypeStatusList) of their
// stored records with the issuer's issue authorization under framework at
// the question's time, the current version's time or ts (framework "": the
// one of the issuer's first issue accreditation active then, else of its
// first issue accreditation), in one map proof.
// A list published since the latest checkpoint waits for a checkpoint
// that covers it (heldSince).
func (s *Server) proveStatusList(ctx context.Context, issuer, list, framework, resource string, ts time.Time, minIndex uint64) (*record.StatusListView, *proof.Bundle, uint64, error) {
	p, err := s.provenView(ctx, minIndex)
	if err != nil {
		return nil, nil, 0, err
	}
	defer p.view.Close()
	// A version at a past time is found by bisection over the list's
	// versions, in a turn (pastRoutes); taken once the proven state is
	// there, so that no turn is held while waiting for it.
	version := func(v *registry.View) (*record.StatusListView, *record.StatusListVersion, time.Time, error) {
		if !ts.IsZero() {
			if err := s.turnWithin(ctx); err != nil {
				return nil, nil, time.Time{}, err
			}
			defer s.giveTurn()
		}
		return provenListVersion(v, issuer, list, ts)
	}
	lv, next, at, err := version(p.view)
	if since, ok := s.heldSince(err, p.view.Index(), func(v *registry.View) error {
		_, err := v.StatusList(issuer, list)
		return err
	}); ok {
		// The first view goes before the wait, as in provenRead.
		p.view.Close()
		if p, err = s.provenView(ctx, max(minIndex, since)); err != nil {
			return nil, nil, 0, err
		}
		defer p.view.Close()
		lv, next, at, err = version(p.view)
	}
	if err != nil {
		return nil, nil, 0, err
	}
	if framework == "" {
		if framework, err = issuingFramework(p.view, issuer, at); err != nil {
			return nil, nil, 0, err
		}
	}
	q := decide.Question{Entity: issuer, Framework: framework, Action: record.ActionIssue, Resource: resource, At: at}
	rec := proof.NewStableRecorder(p.view.Records())
	d, err := decide.Decide(rec, rec.Memo(p.view.ProofMemo()), p.applied, q, at)
	if err != nil {
		return nil, nil, 0, err
	}
	var keys []decide.RecordKey
	for _, r := range rec.Records() {
		k, err := r.Key()
		if err != nil {
			return nil, nil, 0, err
		}
		keys = append(keys, k)
	}
	cos, err := p.cosigners()
	if err != nil {
		return nil, nil, 0, err
	}
	listKeys := [][]byte{proof.StatusListStoreKey(issuer, list), proof.ListVersionStoreKey(issuer, list, lv.Version.Index)}
	if next != nil {
		listKeys = append(listKeys, proof.ListVersionStoreKey(issuer, list, next.Index))
	}
	recs, vals, mapProof, err := p.view.ProveRecordsAndStoreKeys(keys, append(listKeys, p.cosignerKeys(cos)...))
	if err != nil {
		return nil, nil, 0, err
	}
	sl := &proof.StatusListRecords{List: vals[0], VersionIndex: lv.Version.Index, Version: vals[1]}
	if next != nil {
		sl.NextIndex, sl.Next = next.Index, vals[2]
	}
	out := make([]proof.Record, len(recs))
	for i, r := range recs {
		out[i] = proof.NewRecord(r.Key, r.Bytes)
	}
	incl, err := p.view.InclusionProof(p.leafIndex, p.size)
	if err != nil {
		return nil, nil, 0, err
	}
	pq, pa := proof.NewStatusList(list, q, d, p.applied)
	return lv, &proof.Bundle{
		Version: proof.Version, Question: pq, Answer: pa, Records: out,
		StatusList: sl,
		MapProof:   mapProof, Leaf: p.leaf, LeafIndex: p.leafIndex, Inclusion: incl, Checkpoint: string(p.note),
		Cosigners: withRecord(cos, vals, len(listKeys)),
	}, p.applied, nil
}

// heldSince is for a proven read that found nothing (err: ErrNotFound) at
// the latest checkpoint's state, of index at: if the node's latest state,
// later than that, holds what the read asks for (read finds it), it
// returns that state's index, which a checkpoint must cover for the read
// to be proven. A proven read waits for such a checkpoint, as one naming
// the index as min_index does, rather than answering 404 for a record the
// node serves without proof.
func (s *Server) heldSince(err error, at uint64, read func(*registry.View) error) (uint64, bool) {
	if !errors.Is(err, record.ErrNotFound) {
		return 0, false
	}
	v := s.cfg.Registry.View()
	defer v.Close()
	if v.Index() <= at || read(v) != nil {
		return 0, false
	}
	return v.Index(), true
}

// issuingFramework is the framework of issuer's first issue accreditation
// active at t, else of its first issue accreditation.
func issuingFramework(v *registry.View, issuer string, t time.Time) (string, error) {
	for _, status := range []string{record.ReasonActive, ""} {
		as, _, err := v.Accreditations(registry.AccreditationFilter{Subject: issuer, Action: record.ActionIssue, Status: status}, registry.Page{Limit: 1}, t)
		if err != nil {
			return "", err
		}
		if len(as) > 0 {
			return as[0].Framework, nil
		}
	}
	return "", record.Errorf(ErrBadRequest, "%s holds no issue accreditation to take the framework of its authorization from; name one with ?framework=", issuer)
}
