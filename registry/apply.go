package registry

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// opRecord is an accepted operation as stored: its exact bytes and where it
// landed in the log.
type opRecord struct {
	CID     string    `json:"cid"`
	Index   uint64    `json:"index"`
	Time    time.Time `json:"time"`
	Op      string    `json:"op"`
	Signers []string  `json:"signers"`
	ID      string    `json:"id,omitempty"`
	JWS     []byte    `json:"jws"`
}

// appendJSON appends o as json.Marshal encodes it, byte for byte (the JWS
// in standard base64 with padding, nil as null), and reports whether it
// could (false for a time json.Marshal refuses). FuzzOpRecordJSON holds
// the two equal.
func (o *opRecord) appendJSON(dst []byte) ([]byte, bool) {
	dst = append(dst, `{"cid":`...)
	dst = record.AppendJSONString(dst, o.CID, true)
	dst = append(dst, `,"index":`...)
	dst = strconv.AppendUint(dst, o.Index, 10)
	ok := true
	dst = append(dst, `,"time":`...)
	dst = record.AppendJSONTime(dst, o.Time, &ok)
	dst = append(dst, `,"op":`...)
	dst = record.AppendJSONString(dst, o.Op, true)
	dst = append(dst, `,"signers":`...)
	dst = record.AppendJSONStrings(dst, o.Signers, true)
	dst = record.AppendJSONOptString(dst, `,"id":`, o.ID)
	dst = append(dst, `,"jws":`...)
	dst = record.AppendJSONBytes(dst, o.JWS)
	return append(dst, '}'), ok
}

// applyCtx carries one operation through its handler.
type applyCtx struct {
	s       *applier
	b       *pebble.Batch
	index   uint64
	now     time.Time
	op      *record.ParsedOperation
	signers []string
	// touched are the DIDs whose history records this operation.
	touched []string
	// dry, in a check (applier.Check), holds the keys b has written, in
	// place of the apply's dirty set: see judge.
	dry map[decide.RecordKey]struct{}
}

// dirty records a record the caches must drop after this batch commits
// (caches.committed): one an evaluator may have remembered.
func (c *applyCtx) dirty(k decide.RecordKey) {
	if c.dry != nil {
		c.dry[k] = struct{}{}
		return
	}
	c.s.dirty = append(c.s.dirty, k)
	c.s.dirtySet[k] = struct{}{}
}

// evaluator returns an evaluator over the batch being applied, or in a
// check over the check's own batch on the live database. Records the batch
// has not written are read through the read-side cache (they hold their
// committed value); records it wrote are read from the batch and never
// cached. Received listings come from memory where the batch wrote none:
// the apply's own (batchListings), or for a check the listings as
// published (checkListings), taken only at the epoch read here.
func (c *applyCtx) evaluator() *decide.Evaluator {
	// The epoch first: listings loaded after it are those of that
	// publishing sequence or a later one, which the reader's check of the
	// sequence then refuses (a restore replaces them in an odd stretch).
	epoch := c.s.seq.Load()
	r := &storeReader{r: c.b, cache: c.s.caches.records, epoch: epoch}
	if c.dry != nil {
		r.dirty, r.known, r.knownPub = c.dry, c.s.checkListings.Load(), &c.s.seq
	} else {
		r.dirty, r.known = c.s.dirtySet, c.s.batchListings
	}
	e := decide.NewEvaluator(r, r, c.index).KeepListedRecords()
	if !c.s.finalRevocation() {
		e.LatestEventRule() // the older builds' reading of status events
	}
	if !c.s.standing() {
		e.LatestEffectiveRootRule() // and of a root's
	}
	return e
}

func (s *applier) applyOperation(b *pebble.Batch, index uint64, t time.Time, raw []byte) *record.Result {
	c, res, err := s.judge(b, index, t, raw, nil)
	if err != nil {
		return rejected(res, err)
	}
	if c == nil {
		return res // a duplicate: the result it got the first time
	}
	op, signers := c.op, c.signers
	id := res.ID
	mustSetJSON(b, key(tableOps, op.CID), opRecord{
		CID: op.CID, Index: index, Time: t, Op: op.Op, Signers: signers, ID: id, JWS: raw,
	})
	mustSet(b, indexKey(tableOpsByIndex, index), []byte(op.CID))
	signedContent := s.ClusterFeatureLevel() >= FeatureLevelSignedContent
	keys := duplicateKeys(op, signedContent)
	if signedContent && c.isGovernance() {
		keys = append(keys, governancePayloadKey(op.Payload))
	}
	for _, k := range keys {
		mustSet(b, k, []byte(op.CID))
		s.sigs.Load().add(signatureDigest(k))
	}
	if s.sigs.Load().saturated() {
		s.resizeSigs(b)
	}
	slices.Sort(c.touched)
	for _, did := range slices.Compact(c.touched) {
		mustSet(b, historyKey(did, index), []byte(op.CID))
	}
	return res
}

// judge takes an operation through every rule of the apply, at index and
// commit time t, writing what it would change to b. It returns the context
// that records an accepted operation (c, with res.ID set); or, c nil,
// either a duplicate's original result (err nil) or why the operation is
// refused (err, with res naming it).
//
// dry, when set, makes it a check (Check): the set collects the keys b
// writes, and nothing outside b changes but the record cache, which takes
// what a check decodes only from a reader made at an even, still current
// publishing sequence (recordCache.put); no cache the apply consumes is
// consumed or filled, so it runs beside the apply and other checks.
func (s *applier) judge(b *pebble.Batch, index uint64, t time.Time, raw []byte, dry map[decide.RecordKey]struct{}) (*applyCtx, *record.Result, error) {
	res := &record.Result{Index: index, Time: t}
	var op *record.ParsedOperation
	var err error
	if dry != nil {
		op, err = s.verify.preVerify(raw) // parsed and signatures checked, remembered for the apply
	} else {
		op, err = s.verify.parse(raw)
	}
	if err != nil {
		res.CID = record.CIDOf(raw)
		if s.clearRefusals() {
			err = record.ClearWords(err)
		}
		return nil, res, err
	}
	res.CID, res.Op = op.CID, op.Op
	// Before anything else: a build that does not know the feature refuses
	// the operation as malformed, and this node must come to the same
	// state as that build's nodes.
	if err := s.checkFeatureLevel(op); err != nil {
		return nil, res, err
	}
	// From FeatureLevelSignedContent on, a signature has one encoding and
	// a payload one meaning; below it the apply decides as older builds do.
	// (A check has refused these already: preVerify returns CheckErr.)
	signedContent := s.ClusterFeatureLevel() >= FeatureLevelSignedContent
	if signedContent && op.StrictErr() != nil {
		return nil, res, op.StrictErr()
	}
	// From FeatureLevelNumberRange on, no number beyond a float64's range
	// (the checks refused it already: preVerify returns CheckErr).
	if s.ClusterFeatureLevel() >= FeatureLevelNumberRange && op.NumberErr() != nil {
		return nil, res, op.NumberErr()
	}
	// From FeatureLevelHeaderNumbers on, none by its true value, and none
	// in a protected header either.
	if s.ClusterFeatureLevel() >= FeatureLevelHeaderNumbers && op.ExactNumberErr() != nil {
		return nil, res, op.ExactNumberErr()
	}

	// Idempotency: the same operation, byte for byte, re-serialized, or
	// signed again over the same header and payload, returns the result it
	// got the first time.
	if orig, ok := s.findDuplicate(b, op, signedContent); ok {
		orig.Duplicate = true
		return nil, orig, nil
	}
	// From FeatureLevelClearRefusals on, a crit header go-jose refuses is
	// malformed; below it the signature check refuses it. After the
	// duplicates, as there: an operation already applied, sent again in
	// another serialization, keeps the answer it got.
	if s.clearRefusals() && op.CritErr() != nil {
		return nil, res, op.CritErr()
	}

	iat := time.Unix(op.IAT, 0)
	if d := t.Sub(iat); d > s.iatWindow || -d > s.iatWindow {
		return nil, res, record.Reject(record.CodeIATWindow, "iat %s is %s from the commit time %s; the window is %s: sign the operation again now",
			iat.UTC().Format(time.RFC3339), d.Round(time.Second), t.Format(time.RFC3339), s.iatWindow)
	}
	c := &applyCtx{s: s, b: b, index: index, now: t, op: op, dry: dry}
	signers, err := s.verify.verifySignatures(c.evaluator(), op, dry == nil)
	if err != nil {
		return nil, res, err
	}
	res.Signers = signers
	c.signers, c.touched = signers, slices.Clone(signers)
	if !record.IsGovernance(op.Op) && len(signers) != 1 && !c.isGovernance() {
		return nil, res, record.Reject(record.CodeMalformed, "%s takes exactly one signature (or governance signatures), got %d", op.Op, len(signers))
	}
	id, err := c.dispatch()
	if err != nil {
		return nil, res, err
	}
	res.ID = id
	res.Accepted = true
	return c, res, nil
}

// parse returns the operation PreVerify parsed (the CID names the exact
// bytes, and parsing is a pure function of them), or parses it now. The
// apply is the memory's last reader, so the entry is dropped: kept, the
// operations of a bulk load would stay in the heap (about 20 MiB of
// pointers for the collector to trace) long after they were applied.
func (s *verifier) parse(raw []byte) (*record.ParsedOperation, error) {
	if err := record.CheckSize(raw); err != nil {
		return nil, err
	}
	digest := sha256.Sum256(raw)
	if op, ok := s.parsed.take(digest); ok {
		return op, nil
	}
	return record.ParseOperationDigest(raw, digest)
}

func rejected(res *record.Result, err error) *record.Result {
	var rj *record.Rejection
	switch {
	case errors.As(err, &rj):
		res.Code, res.Reason = rj.Code, rj.Msg
	case errors.Is(err, record.ErrTooLarge):
		res.Code, res.Reason = record.CodeTooLarge, err.Error()
	case errors.Is(err, record.ErrMalformed):
		res.Code, res.Reason = record.CodeMalformed, err.Error()
	default:
		// A storage read failed: the state cannot be trusted to decide.
		panic(fmt.Sprintf("registry: apply entry %d: %v", res.Index, err))
	}
	return res
}

// duplicateKeys are the keys an accepted operation is found again by.
// From FeatureLevelSignedContent on: what each signature signed (its
// protected header and the payload), so no other encoding of a signature,
// no other serialization and no other signature over the same content
// makes a new operation. An operation accepted with governance signatures
// is stored under its payload too (governancePayloadKey, added by the
// apply), so the same payload signed by another set of members is the same
// operation. Below the level, as older builds: each signature's bytes.
func duplicateKeys(op *record.ParsedOperation, signedContent bool) [][]byte {
	var keys [][]byte
	if !signedContent {
		for _, sig := range op.Signatures() {
			keys = append(keys, signatureKey(sig.Signature))
		}
		return keys
	}
	for _, d := range op.SignedContent() {
		keys = append(keys, signedContentKey(d))
	}
	return keys
}

// findDuplicate finds an earlier accepted operation that op repeats: one
// stored under any of op's keys (duplicateKeys) or, for an operation
// governance accepted, under its payload. From
// FeatureLevelSignedContent on it also looks in the table of signature
// bytes, which holds the operations applied before the level was reached,
// for each signature and, for ES256, its other encoding (r, n − s): a
// signature applied with a high s before the level is found by its low-s
// twin. Every accepted operation stores its keys with its record, so this
// is one lookup per key, and the filter (sigfilter.go) skips those never
// stored: an operation that is new costs lookups that miss.
func (s *applier) findDuplicate(r pebble.Reader, op *record.ParsedOperation, signedContent bool) (*record.Result, bool) {
	keys := duplicateKeys(op, signedContent)
	if signedContent {
		keys = append(keys, governancePayloadKey(op.Payload))
		for _, sig := range op.Signatures() {
			keys = append(keys, signatureKey(sig.Signature))
			if sig.Header.Algorithm == string(jose.ES256) {
				if twin := record.LowSTwin(sig.Signature); twin != nil {
					keys = append(keys, signatureKey(twin))
				}
			}
		}
	}
	sigs := s.sigs.Load()
	for _, k := range keys {
		if !sigs.mayContain(signatureDigest(k)) {
			continue // never stored: not a resubmission
		}
		v, closer, err := r.Get(k)
		if err == pebble.ErrNotFound {
			continue
		}
		if err != nil {
			panic(fmt.Sprintf("registry: read duplicate key of %s: %v", op.CID, err))
		}
		orig := string(v)
		_ = closer.Close() // releases the read value; nothing to report
		var rec opRecord
		if found, err := getJSON(r, key(tableOps, orig), &rec); err != nil || !found {
			panic(fmt.Sprintf("registry: operation %s named by a duplicate key is missing: %v", orig, err))
		}
		var res record.Result
		if ok, err := getJSON(r, indexKey(tableResults, rec.Index), &res); err != nil || !ok {
			panic(fmt.Sprintf("registry: result of index %d missing: %v", rec.Index, err))
		}
		return &res, true
	}
	return nil, false
}

func (c *applyCtx) dispatch() (string, error) {
	switch body := c.op.Body.(type) {
	case *record.CreateFramework:
		return c.createFramework(body)
	case *record.UpdateFramework:
		return c.updateFramework(body)
	case *record.RootChange:
		return c.changeRoot(body)
	case *record.RegisterEntity:
		return c.registerEntity(body)
	case *record.UpdateEntity:
		return c.updateEntity(body)
	case *record.RotateKeys:
		return c.rotateKeys(body)
	case *record.Accredit:
		return c.accredit(body)
	case *record.AccreditationCredential:
		return c.accreditCredential(body)
	case *record.StatusChange:
		return c.changeStatus(body)
	case *record.RecognitionChange:
		return c.changeRecognition(body)
	case *record.PublishStatusList:
		return c.publishStatusList(body)
	case *record.SetCosigners:
		return c.setCosigners(body)
	}
	panic(fmt.Sprintf("registry: no handler for %T", c.op.Body))
}

// governanceSigned reports whether signers (an operation's, as accepted)
// hold the genesis threshold of governance members.
func (s *consortium) governanceSigned(signers []string) bool {
	return s.governanceCount(signers) >= s.genesis.Threshold
}

// governanceCount is how many of signers are governance members.
func (s *consortium) governanceCount(signers []string) int {
	n := 0
	for _, did := range signers {
		if _, ok := s.members[did]; ok {
			n++
		}
	}
	return n
}

// requireGovernance checks that at least threshold distinct governance
// members signed.
func (c *applyCtx) requireGovernance() error {
	n := c.s.governanceCount(c.signers)
	if n < c.s.genesis.Threshold {
		return record.Reject(record.CodeNotAuthorized, "%s is a governance operation: it needs signatures of %d of the %d governance members, it has %d",
			c.op.Op, c.s.genesis.Threshold, len(c.s.genesis.Members), n)
	}
	return nil
}

// isGovernance reports what requireGovernance checks, without making the
// refusal (a formatted message, on every accreditor's operation).
func (c *applyCtx) isGovernance() bool { return c.s.governanceSigned(c.signers) }

func (c *applyCtx) signer() string { return c.signers[0] }

// framework reads a framework through the read-side cache (every accredit
// names one). The record is shared: callers that change it copy it first.
func (c *applyCtx) framework(id string) (*record.Framework, error) {
	f, err := c.evaluator().Framework(id)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, record.Reject(record.CodeInvalid, "framework %q does not exist", id)
	}
	return f, nil
}

func (c *applyCtx) createFramework(op *record.CreateFramework) (string, error) {
	if err := c.requireGovernance(); err != nil {
		return "", err
	}
	if err := record.Invalid(record.ValidateID("framework id", op.ID)); err != nil {
		return "", err
	}
	if strings.TrimSpace(op.Name) == "" {
		return "", record.Reject(record.CodeInvalid, "framework name is empty")
	}
	if err := record.Invalid(errors.Join(record.ValidText("name", op.Name, 256), record.ValidText("description", op.Description, 4096))); err != nil {
		return "", err
	}
	if op.URL != "" {
		if err := record.Invalid(record.ValidateID("url", op.URL)); err != nil {
			return "", err
		}
	}
	maxLen := op.MaxChainLength
	if maxLen == 0 {
		maxLen = record.DefaultMaxChainLength
	}
	if maxLen < 1 || maxLen > 16 {
		return "", record.Reject(record.CodeInvalid, "maxChainLength %d must be between 1 and 16", maxLen)
	}
	if _, closer, err := c.b.Get(key(tableFrameworks, op.ID)); err == nil {
		_ = closer.Close() // releases the read value; nothing to report
		return "", record.Reject(record.CodeConflict, "framework %q exists already: use updateFramework", op.ID)
	}
	for _, r := range op.Roots {
		if err := record.Invalid(record.ValidateID("root accreditor", r)); err != nil {
			return "", err
		}
	}
	c.dirty(decide.FrameworkKey(op.ID))
	mustSetJSON(c.b, key(tableFrameworks, op.ID), record.Framework{
		ID: op.ID, Name: op.Name, Description: op.Description, URL: op.URL, MaxChainLength: maxLen,
		CreatedIndex: c.index, CreatedAt: c.now, UpdatedIndex: c.index, Operation: c.op.CID,
	})
	for _, r := range op.Roots {
		c.writeRootEvent(op.ID, r, record.RootAccreditor{Framework: op.ID, Accreditor: r}, record.StatusActive, time.Time{}, "")
	}
	return op.ID, nil
}

func (c *applyCtx) updateFramework(op *record.UpdateFramework) (string, error) {
	if err := c.requireGovernance(); err != nil {
		return "", err
	}
	if c.s.clearRefusals() && op.Name == nil && op.Description == nil && op.URL == nil && op.MaxChainLength == nil {
		return "", record.Reject(record.CodeInvalid, "updateFramework changes nothing: give name, description, url or maxChainLength")
	}
	shared, err := c.framework(op.ID)
	if err != nil {
		return "", err
	}
	f := new(record.Framework)
	*f = *shared
	if op.Name != nil {
		if strings.TrimSpace(*op.Name) == "" {
			return "", record.Reject(record.CodeInvalid, "framework name is empty")
		}
		f.Name = *op.Name
	}
	if op.Description != nil {
		f.Description = *op.Description
	}
	if op.URL != nil {
		if *op.URL != "" {
			if err := record.Invalid(record.ValidateID("url", *op.URL)); err != nil {
				return "", err
			}
		}
		f.URL = *op.URL
	}
	if op.MaxChainLength != nil {
		if *op.MaxChainLength < 1 || *op.MaxChainLength > 16 {
			return "", record.Reject(record.CodeInvalid, "maxChainLength %d must be between 1 and 16", *op.MaxChainLength)
		}
		f.MaxChainLength = *op.MaxChainLength
	}
	if err := record.Invalid(errors.Join(record.ValidText("name", f.Name, 256), record.ValidText("description", f.Description, 4096))); err != nil {
		return "", err
	}
	f.UpdatedIndex = c.index
	f.Operation = c.op.CID
	c.dirty(decide.FrameworkKey(op.ID))
	mustSetJSON(c.b, key(tableFrameworks, op.ID), f)
	return op.ID, nil
}

func (c *applyCtx) changeRoot(op *record.RootChange) (string, error) {
	if err := c.requireGovernance(); err != nil {
		return "", err
	}
	if _, err := c.framework(op.Framework); err != nil {
		return "", err
	}
	if err := record.Invalid(record.ValidateID("accreditor", op.Accreditor)); err != nil {
		return "", err
	}
	var root record.RootAccreditor
	if _, err := getJSON(c.b, key(tableRoots, op.Framework, op.Accreditor), &root); err != nil {
		return "", err
	}
	root.Framework, root.Accreditor = op.Framework, op.Accreditor
	var status string
	var at time.Time // a new root holds its authority from the start of time
	if op.Credential != "" {
		if err := c.checkRootCredential(op); err != nil {
			return "", err
		}
	}
	if op.Op == record.OpAddRootAccreditor {
		status = record.StatusActive
		if len(root.Events) > 0 {
			at = c.now // re-added after a removal: from now on
		}
	} else {
		status, at = record.StatusRevoked, c.now
	}
	if op.EffectiveAt != nil {
		at = op.EffectiveAt.UTC()
	}
	// Below FeatureLevelStanding the latest recorded event decides; from
	// it the status at the change's own time, as answers read it
	// (decide.LastRecordedAt), so a removal is refused only where the root
	// is removed then already.
	last, _ := latestRecorded(root.Events)
	when := ""
	if c.s.standing() {
		if err := inEffectOrder(root.Events, status, at, op.Accreditor+" is a root accreditor of "+op.Framework, op.Accreditor+" is removed as a root accreditor of "+op.Framework); err != nil {
			return "", err
		}
		last, _ = decide.LastRecordedAt(root.Events, at, c.index)
		when = " at " + at.Format(time.RFC3339)
	}
	switch {
	case op.Op == record.OpAddRootAccreditor && last.Status == record.StatusActive:
		return "", record.Reject(record.CodeConflict, "%s is already a root accreditor of %s%s", op.Accreditor, op.Framework, when)
	case op.Op != record.OpAddRootAccreditor && last.Status != record.StatusActive:
		return "", record.Reject(record.CodeConflict, "%s is not a root accreditor of %s%s", op.Accreditor, op.Framework, when)
	}
	c.writeRootEvent(op.Framework, op.Accreditor, root, status, at, op.Reason)
	c.touched = append(c.touched, op.Accreditor)
	return op.Accreditor, nil
}

// inEffectOrder refuses, from FeatureLevelStanding on, a root's or a
// recognition's change to status effective at at that would make the
// events read otherwise by the one recorded last (decide.LastRecordedAt,
// answers) than by the latest effectiveAt (decide.StatusAt, verifiers of
// builds before the level) at some time. Both readings change only at an
// event's effectiveAt, so the events with the change added are compared
// there. Where they differ, the change is taken still when no event of the
// other status, recorded before it, takes effect after at: then the change
// is read alike both ways wherever it is in force, and the difference is
// an older state's (one level 12 made), which the change leaves as it was.
// activeSays and revokedSays say what each status means.
func inEffectOrder(events []record.StatusEvent, status string, at time.Time, activeSays, revokedSays string) error {
	next := append(slices.Clip(events), record.StatusEvent{Status: status, EffectiveAt: at, Index: math.MaxUint64})
	agree := true
	for _, p := range next {
		a, aok := decide.StatusAt(next, p.EffectiveAt, math.MaxUint64)
		b, bok := decide.LastRecordedAt(next, p.EffectiveAt, math.MaxUint64)
		if aok != bok || a.Status != b.Status {
			agree = false
			break
		}
	}
	if agree {
		return nil
	}
	for _, ev := range events {
		if ev.Status != status && ev.EffectiveAt.After(at) {
			says := activeSays
			if ev.Status != record.StatusActive {
				says = revokedSays
			}
			return record.Reject(record.CodeConflict, "%s from %s (index %d), and verifiers of builds before feature level %d would read a change the other way at %s as overruled from then on: record the change effective at %s first (it supersedes that one), then this one",
				says, ev.EffectiveAt.Format(time.RFC3339), ev.Index, FeatureLevelStanding, at.Format(time.RFC3339), ev.EffectiveAt.Format(time.RFC3339))
		}
	}
	return nil
}

func (c *applyCtx) writeRootEvent(framework, did string, root record.RootAccreditor, status string, at time.Time, reason string) {
	root.Events = append(root.Events, record.StatusEvent{Status: status, EffectiveAt: at, Reason: reason, Index: c.index, Operation: c.op.CID})
	c.dirty(decide.RootKey(framework, did))
	mustSetJSON(c.b, key(tableRoots, framework, did), root)
}

func (c *applyCtx) changeRecognition(op *record.RecognitionChange) (string, error) {
	if err := c.requireGovernance(); err != nil {
		return "", err
	}
	if _, err := c.framework(op.Framework); err != nil {
		return "", err
	}
	if err := record.Invalid(record.ValidateID("recognized framework", op.Recognized)); err != nil {
		return "", err
	}
	if op.Recognized == op.Framework {
		return "", record.Reject(record.CodeInvalid, "a framework cannot recognize itself")
	}
	if err := validResources(op.Resources, true); err != nil {
		return "", err
	}
	var rec record.Recognition
	k := key(tableRecognitions, op.Framework, op.Recognized)
	if _, err := getJSON(c.b, k, &rec); err != nil {
		return "", err
	}
	at := c.now
	if op.EffectiveAt != nil {
		at = op.EffectiveAt.UTC()
	}
	// As for roots (changeRoot): from FeatureLevelStanding judged at at.
	last, lastOK := latestRecorded(rec.Events)
	when := ""
	status := record.StatusActive
	if op.Op == record.OpUnrecognize {
		status = record.StatusRevoked
	}
	if c.s.standing() {
		if err := inEffectOrder(rec.Events, status, at, op.Framework+" recognizes "+op.Recognized, op.Framework+" no longer recognizes "+op.Recognized); err != nil {
			return "", err
		}
		last, lastOK = decide.LastRecordedAt(rec.Events, at, c.index)
		when = " at " + at.Format(time.RFC3339)
	}
	// The resources recognized then: from FeatureLevelRecognitionResources
	// those of the recognize in force at at, before it the latest.
	resources := rec.Resources
	if c.s.recognitionResources() {
		resources = decide.RecognitionResources(&rec, last, lastOK, c.index)
	}
	if op.Op == record.OpUnrecognize {
		if last.Status != record.StatusActive {
			return "", record.Reject(record.CodeConflict, "%s does not recognize %s%s", op.Framework, op.Recognized, when)
		}
	} else if last.Status == record.StatusActive && slices.Equal(resources, op.Resources) {
		return "", record.Reject(record.CodeConflict, "%s already recognizes %s for these resources%s", op.Framework, op.Recognized, when)
	}
	rec.Framework, rec.Recognized = op.Framework, op.Recognized
	if op.Op == record.OpRecognize {
		if c.s.recognitionResources() {
			// A recognition recorded before the level keeps the resources
			// it held, from the recognize that set them.
			if len(rec.ResourceChanges) == 0 && len(rec.Events) > 0 {
				rec.ResourceChanges = append(rec.ResourceChanges, record.ResourceChange{Index: lastRecognize(rec.Events), Resources: rec.Resources})
			}
			rec.ResourceChanges = append(rec.ResourceChanges, record.ResourceChange{Index: c.index, Resources: op.Resources})
		}
		rec.Resources = op.Resources
	}
	rec.Events = append(rec.Events, record.StatusEvent{Status: status, EffectiveAt: at, Index: c.index, Operation: c.op.CID})
	mustSetJSON(c.b, k, rec)
	return op.Framework, nil
}

// lastRecognize is the index of the last recognize among a recognition's
// events (the one that set its resources).
func lastRecognize(events []record.StatusEvent) uint64 {
	var last uint64
	for _, e := range events {
		if e.Status == record.StatusActive {
			last = max(last, e.Index)
		}
	}
	return last
}

func validResources(rs []string, allowEmpty bool) error {
	if len(rs) == 0 && !allowEmpty {
		return record.Reject(record.CodeInvalid, "resources is empty: name credential-type IRIs or %q", record.Wildcard)
	}
	if len(rs) > 256 {
		return record.Reject(record.CodeInvalid, "%d resources, limit 256", len(rs))
	}
	seen := map[string]bool{}
	for _, r := range rs {
		if r == "" || len(r) > record.MaxIDLength || strings.ContainsAny(r, " \t\r\n") {
			return record.Reject(record.CodeInvalid, "resource %q is not an IRI", r)
		}
		if seen[r] {
			return record.Reject(record.CodeInvalid, "resource %q listed twice", r)
		}
		seen[r] = true
	}
	return nil
}
