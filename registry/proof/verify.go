package proof

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
	"github.com/trustreg/trustreg/registry/tlog"
)

// Reasons a bundle does not verify. Verify returns the first it finds,
// wrapped with %w and the detail; compare with errors.Is.
var (
	// ErrMalformed: the bundle cannot be read (JSON, version, field
	// values, an undecodable leaf or record).
	ErrMalformed = errors.New("proof: malformed bundle")
	// ErrWrongQuestion: the bundle answers another question than
	// Options.Expect, or a question about "now" at a time further than
	// MaxAge from the verifier's clock.
	ErrWrongQuestion = errors.New("proof: the bundle answers another question")
	// ErrBadGenesis: the genesis given to the verifier does not parse.
	ErrBadGenesis = errors.New("proof: invalid genesis")
	// ErrNoCosigners: the genesis names no checkpoint cosigners, so its
	// consortium serves no proofs.
	ErrNoCosigners = errors.New("proof: the genesis names no cosigners, so its consortium serves no proofs")
	// ErrWrongLog: the checkpoint is of another log than the genesis's.
	ErrWrongLog = errors.New("proof: checkpoint of another log (origin is not the genesis's)")
	// ErrBadCosignature: a cosignature line by a genesis key does not
	// verify (the checkpoint text was altered, or the signature forged).
	ErrBadCosignature = errors.New("proof: a cosignature by a genesis key does not verify")
	// ErrTooFewCosigners: fewer cosigners in force (the genesis's, or
	// the last carried change's) signed the checkpoint than the quorum.
	ErrTooFewCosigners = errors.New("proof: too few cosigners")
	// ErrUnknownCosigner: the checkpoint lacks a quorum of the cosigners
	// in force and carries cosignatures by keys outside that set.
	ErrUnknownCosigner = errors.New("proof: cosignatures by keys outside the genesis cosigner set")
	// ErrCheckpointTooOld: a quorum of cosigners vouched for the
	// checkpoint longer ago than Options.MaxAge.
	ErrCheckpointTooOld = errors.New("proof: checkpoint older than the maximum age")
	// ErrCheckpointFromFuture: a quorum of cosigners vouched for the
	// checkpoint at a time past the verifier's clock by more than
	// Options.MaxClockSkew. Taken, it would pass the age check until its
	// time came, however old the state it covers is by then.
	ErrCheckpointFromFuture = errors.New("proof: checkpoint cosigned at a time still to come")
	// ErrLogInclusion: the leaf is not in the checkpoint's log.
	ErrLogInclusion = errors.New("proof: leaf not included in the log")
	// ErrConsistency: the log at the leaf's size is not a prefix of the
	// checkpoint's log.
	ErrConsistency = errors.New("proof: log at the leaf's size not consistent with the checkpoint")
	// ErrNotLatest: the question asked about the latest state, and the
	// leaf is not the last one of the checkpoint's log.
	ErrNotLatest = errors.New("proof: answer about the latest state from an older leaf")
	// ErrRecordDigest: the digests of the records' bytes (and the
	// absences claimed) do not lead through the map proof to the leaf's
	// map root: a record's bytes are not those the map commits.
	ErrRecordDigest = errors.New("proof: record digests do not match the map root")
	// ErrMapProof: the map proof cannot be read, covers other keys, or
	// shows a record present that the bundle claims absent (or the
	// reverse).
	ErrMapProof = errors.New("proof: map proof does not verify")
	// ErrNotProven: the decision read a record the bundle does not carry.
	ErrNotProven = errors.New("proof: the decision reads a record the bundle does not prove")
	// ErrDecisionMismatch: the decision recomputed from the proven records
	// is not the answer the bundle claims.
	ErrDecisionMismatch = errors.New("proof: the answer does not follow from the proven records")
)

// DefaultMaxAge is the checkpoint age Verify accepts when Options.MaxAge
// is zero.
const DefaultMaxAge = 5 * time.Minute

// DefaultMaxClockSkew is how far past the verifier's clock a checkpoint's
// cosigning time may lie when Options.MaxClockSkew is zero: clocks that
// keep time by NTP differ by far less.
const DefaultMaxClockSkew = 2 * time.Minute

// Options tune Verify.
type Options struct {
	// MaxAge is the oldest a checkpoint may be: how long ago a quorum of
	// cosigners last vouched for it (0: DefaultMaxAge).
	MaxAge time.Duration
	// MaxClockSkew is how far past Now a quorum of cosigners may have
	// vouched for the checkpoint (0: DefaultMaxClockSkew).
	MaxClockSkew time.Duration
	// Now is the verifier's clock (zero: time.Now()).
	Now time.Time
	// Expect, when set, is the question the caller asked: the bundle must
	// answer it (ErrWrongQuestion). Its Type, Entity, Framework, Action,
	// Resource, Jurisdiction, Recognized and AsOf must be the bundle's;
	// a zero At asks about now, and the bundle's evaluated time must then
	// lie within MaxAge of Now, else At must be the bundle's. Applied is
	// not compared. Without Expect the caller checks Verified.Question.
	Expect *Question
	// MinCosignerChanges is how many cosigner changes this verifier has
	// seen followed already (Verified.CosignerChanges of an earlier
	// bundle): a bundle that follows fewer is refused
	// (ErrCosignerSetBehind), so cosigners a change removed cannot feed
	// it a checkpoint that leaves the change out. Zero: no pin.
	MinCosignerChanges int
	// Credential, when set, is the status-list credential the caller was
	// served (the body of the list's URL, or the JWT of its record): a
	// status-list bundle's proven version must hold exactly these bytes
	// (ErrCredentialMismatch).
	Credential []byte
}

// Verified is what a bundle proved.
type Verified struct {
	// Question is the question the bundle answers; the caller checks it
	// is the one it asked.
	Question Question
	// Decision is the authorization decision recomputed from the proven
	// records (nil for a recognition), chain links in full.
	Decision *record.Decision
	// Recognition is the recognition decision (nil for an authorization).
	Recognition *decide.RecognitionDecision
	// Records are the proven records of a records bundle (TypeRecords),
	// as stored; nil Bytes: proven absent.
	Records []Record
	// StatusList and StatusListVersion are a status-list bundle's proven
	// list and version records; StatusListVersion.Credential is the
	// issuer-signed credential, byte for byte.
	StatusList        *record.StatusList
	StatusListVersion *record.StatusListVersion
	// StatusListNext is the proven successor of StatusListVersion when
	// that version is not the list's current one (a question about a past
	// time); nil: StatusListVersion is the current version.
	StatusListNext *record.StatusListVersion
	// Cosigners are the cosigners in force whose cosignatures verified.
	Cosigners []string
	// Quorum is how many the set in force asks for.
	Quorum int
	// CosignerSet is the cosigner set in force at the checkpoint (its
	// vkeys): the genesis's, or the last carried change's.
	CosignerSet []string
	// CosignerChanges is how many cosigner changes the bundle followed
	// from the genesis; keep it for Options.MinCosignerChanges.
	CosignerChanges int
	// CheckpointSize is the size of the cosigned log.
	CheckpointSize uint64
	// FreshAsOf is the latest time a quorum of cosigners vouched for the
	// checkpoint (the quorum-th newest cosignature timestamp); Age is
	// Options.Now minus it.
	FreshAsOf time.Time
	Age       time.Duration
	// Leaf is the log leaf of the state the answer was computed over.
	Leaf tlog.Leaf
}

// Verify checks a bundle against the consortium's genesis document
// (its exact bytes) and returns what it proved, or the first reason it
// does not verify, in this order (DESIGN.md explains each step):
//
//  1. the bundle's fields (ErrMalformed), and the question against
//     Options.Expect (ErrWrongQuestion);
//  2. the genesis: its cosigners, quorum and the log origin
//     tlog.Origin(record.CIDOf(genesis)) (ErrBadGenesis, ErrNoCosigners);
//  3. what costs no signature verification: the carried cosigner changes
//     (ErrMalformed; ErrCosignerChangeUnauthorized when fewer genesis
//     members sign one than the threshold) and their count
//     (ErrCosignerSetBehind); the checkpoint note's text, origin and lines
//     by a quorum of the set in force (ErrWrongLog, ErrUnknownCosigner,
//     ErrTooFewCosigners, ErrCosignedByOldSet); each change's leaf in the
//     log the note names (ErrCosignerChangeNotLogged);
//  4. the changes' member signatures, at most one verification per member
//     per change (ErrCosignerChangeUnauthorized), then the checkpoint
//     note's cosignatures, at most one per cosigner of the set in force
//     (ErrBadCosignature, and the reasons of 3), and its age
//     (ErrCheckpointTooOld, ErrCheckpointFromFuture);
//  5. the leaf in the log: inclusion in the checkpoint's tree, or in the
//     tree of LeafSize and that tree's consistency with the checkpoint's
//     (ErrLogInclusion, ErrConsistency); the last leaf for a question
//     about the latest state (ErrNotLatest);
//  6. every record against the leaf's map root, in one batch map proof
//     (ErrRecordDigest, ErrMapProof);
//  7. the decision, recomputed by decide over the proven records alone,
//     against the answer (ErrNotProven, ErrDecisionMismatch); a records
//     bundle (TypeRecords) has none, and only its index is compared; a
//     status-list bundle (TypeStatusList) first has its list and version
//     checked: present, the question's list and its version in force at
//     the question's time (the current one, or followed by a proven
//     successor published after that time), holding the credential its
//     CID names, and holding Options.Credential when set
//     (ErrCredentialMismatch, ErrVersionNotInForce, ErrSuccessorHidden,
//     ErrSuccessorNotLinked).
func Verify(b *Bundle, genesis []byte, opts Options) (*Verified, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: no bundle", ErrMalformed)
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	if opts.Credential != nil && b.Question.Type != TypeStatusList {
		return nil, fmt.Errorf("%w: a credential to check, and a %s bundle, not a statusList one", ErrWrongQuestion, b.Question.Type)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	maxAge := opts.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if opts.Expect != nil {
		if err := b.Question.answers(*opts.Expect, now, maxAge); err != nil {
			return nil, err
		}
	}
	g, origin, err := parseGenesis(genesis)
	if err != nil {
		return nil, err
	}
	f, err := b.follow(g)
	if err != nil {
		return nil, err
	}
	if len(f.changes) < opts.MinCosignerChanges {
		return nil, fmt.Errorf("%w: it follows %d, this verifier has seen %d (a checkpoint that leaves a change out is signed by the set the change replaced)",
			ErrCosignerSetBehind, len(f.changes), opts.MinCosignerChanges)
	}
	// What costs no signature verification comes first: the note's text
	// and its lines by the set in force, and the changes' leaves in the
	// log it names. Then the changes' governance signatures (against the
	// genesis, a set the bundle cannot choose), then the note's
	// cosignatures.
	cpText, err := f.precheckCheckpoint(origin, []byte(b.Checkpoint))
	if err != nil {
		return nil, err
	}
	if err := b.checkChangesLogged(f, cpText); err != nil {
		return nil, err
	}
	if err := f.authorize(g); err != nil {
		return nil, err
	}
	cp, err := f.verifyCheckpoint(origin, []byte(b.Checkpoint))
	if err != nil {
		return nil, err
	}
	out := &Verified{
		Question: b.Question, Cosigners: cp.Cosigners(), Quorum: cp.Quorum,
		CheckpointSize: cp.Checkpoint.Size, FreshAsOf: cp.FreshAsOf(),
		CosignerSet: f.set.keys, CosignerChanges: len(f.changes),
	}
	out.Age = now.Sub(out.FreshAsOf)
	skew := opts.MaxClockSkew
	if skew <= 0 {
		skew = DefaultMaxClockSkew
	}
	if -out.Age > skew {
		return nil, fmt.Errorf("%w: a quorum of cosigners vouched for it at %s, %s past this verifier's clock (at most %s): a clock is wrong, this one or the cosigners'",
			ErrCheckpointFromFuture, out.FreshAsOf.UTC().Format(time.RFC3339), (-out.Age).Round(time.Second), skew)
	}
	if out.Age > maxAge {
		return nil, fmt.Errorf("%w: a quorum of cosigners last vouched for it at %s, %s ago; the limit is %s (ask the node again, or allow an older one)",
			ErrCheckpointTooOld, out.FreshAsOf.UTC().Format(time.RFC3339), out.Age.Round(time.Second), maxAge)
	}
	if err := b.checkLog(cp.Checkpoint); err != nil {
		return nil, err
	}
	leaf, err := tlog.DecodeLeaf(b.Leaf)
	if err != nil {
		return nil, fmt.Errorf("%w: leaf: %w", ErrMalformed, err)
	}
	out.Leaf = leaf
	if leaf.Index != b.Question.Applied {
		return nil, fmt.Errorf("%w: the answer claims applied index %d, the proven leaf is of index %d", ErrDecisionMismatch, b.Question.Applied, leaf.Index)
	}
	src, err := b.provenRecords(smt.Hash(leaf.MapRoot))
	if err != nil {
		return nil, err
	}
	if err := b.checkCosignerRecord(f); err != nil {
		return nil, err
	}
	if err := b.decide(src, out, opts.Credential); err != nil {
		return nil, err
	}
	return out, nil
}

// check validates the bundle's fields before any proof is checked.
func (b *Bundle) check() error {
	if b.Version != Version {
		return fmt.Errorf("%w: version %d; this build reads version %d", ErrMalformed, b.Version, Version)
	}
	q := b.Question
	switch q.Type {
	case TypeAuthorization:
		if q.Recognized != "" || b.Answer.Authorized == nil || b.Answer.Recognized != nil {
			return fmt.Errorf("%w: an authorization answers with authorized, and asks about no recognized framework", ErrMalformed)
		}
	case TypeRecognition:
		if q.Entity != "" || q.Action != "" || q.Jurisdiction != "" || b.Answer.Recognized == nil || b.Answer.Authorized != nil {
			return fmt.Errorf("%w: a recognition answers with recognized, and asks about no entity, action or jurisdiction", ErrMalformed)
		}
	case TypeStatusList:
		if err := b.checkStatusList(); err != nil {
			return err
		}
	case TypeRecords:
		a := b.Answer
		if q.Entity != "" || q.Framework != "" || q.Action != "" || q.Resource != "" || q.Jurisdiction != "" || q.Recognized != "" || q.AsOf != 0 ||
			a.Authorized != nil || a.Recognized != nil || a.Reason != "" || a.Chain != nil || a.Root != "" {
			return fmt.Errorf("%w: a records bundle asks no question and answers with no decision", ErrMalformed)
		}
	default:
		return fmt.Errorf("%w: question type %q, want %q, %q, %q or %q", ErrMalformed, q.Type, TypeAuthorization, TypeRecognition, TypeRecords, TypeStatusList)
	}
	if q.Type != TypeStatusList && (b.StatusList != nil || q.List != "") {
		return fmt.Errorf("%w: only a statusList bundle names a list", ErrMalformed)
	}
	if q.At.IsZero() {
		return fmt.Errorf("%w: the question names no valid time (at)", ErrMalformed)
	}
	if q.Applied == 0 || q.AsOf > q.Applied {
		return fmt.Errorf("%w: applied index %d, asOf %d", ErrMalformed, q.Applied, q.AsOf)
	}
	if len(b.Records) == 0 || len(b.Records) > MaxRecords {
		return fmt.Errorf("%w: %d records, want 1 to %d", ErrMalformed, len(b.Records), MaxRecords)
	}
	if len(b.Leaf) == 0 || len(b.MapProof) == 0 || b.Checkpoint == "" {
		return fmt.Errorf("%w: leaf, mapProof and checkpoint are required", ErrMalformed)
	}
	return nil
}

// answers checks that q (the bundle's) is the question want asks.
func (q Question) answers(want Question, now time.Time, maxAge time.Duration) error {
	at := want.At
	got := q
	got.At, got.Applied, want.At, want.Applied = time.Time{}, 0, time.Time{}, 0
	if got != want {
		return fmt.Errorf("%w: it answers %s, the question asked is %s", ErrWrongQuestion, got.describe(), want.describe())
	}
	switch {
	case at.IsZero():
		if d := q.At.Sub(now); d > maxAge || d < -maxAge {
			return fmt.Errorf("%w: a question about now, answered for %s, %s from this verifier's clock (at most %s)",
				ErrWrongQuestion, q.At.UTC().Format(time.RFC3339), d.Abs().Round(time.Second), maxAge)
		}
	case !q.At.Equal(at):
		return fmt.Errorf("%w: it answers for %s, the question asked about %s", ErrWrongQuestion, q.At.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	return nil
}

// describe is a question's fields (but its times) for messages.
func (q Question) describe() string {
	s := q.Type + " of " + q.Entity + q.Recognized + " under " + q.Framework
	for _, f := range []struct{ name, v string }{{"action", q.Action}, {"resource", q.Resource}, {"jurisdiction", q.Jurisdiction}} {
		if f.v != "" {
			s += " " + f.name + " " + f.v
		}
	}
	if q.AsOf != 0 {
		s += fmt.Sprintf(" as of %d", q.AsOf)
	}
	return "(" + s + ")"
}

// parseGenesis reads the genesis and its log's origin
// tlog.Origin(record.CIDOf(genesis)).
func parseGenesis(genesis []byte) (*record.Genesis, string, error) {
	g, err := record.ParseGenesis(genesis)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrBadGenesis, err)
	}
	if len(g.Cosigners) == 0 {
		return nil, "", fmt.Errorf("%w: consortium %q", ErrNoCosigners, g.Consortium)
	}
	origin, err := tlog.Origin(record.CIDOf(genesis))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrBadGenesis, err)
	}
	if _, err := (cosignerSet{g.Cosigners, g.CosignerQuorum}).verifier(origin); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrBadGenesis, err)
	}
	return g, origin, nil
}

// precheckCheckpoint reads the checkpoint note as the set in force
// verifies it, without verifying a signature (tlog.Verifier.Precheck): its
// text, origin, and lines by enough distinct cosigners of the set. The
// checkpoint it returns is not proven yet (verifyCheckpoint proves it);
// what depends on its size and root only is checked against it first, so
// a bundle that fails those checks costs no signature verification.
func (f *followed) precheckCheckpoint(origin string, note []byte) (tlog.Checkpoint, error) {
	v, err := f.set.verifier(origin)
	if err != nil {
		return tlog.Checkpoint{}, fmt.Errorf("%w: the cosigner set in force: %w", ErrMalformed, err)
	}
	cp, err := v.Precheck(note)
	if err != nil {
		return tlog.Checkpoint{}, f.refused(origin, note, err)
	}
	return cp, nil
}

// verifyCheckpoint verifies the checkpoint note against the set in force
// after the carried changes.
func (f *followed) verifyCheckpoint(origin string, note []byte) (*tlog.Verified, error) {
	v, err := f.set.verifier(origin)
	if err != nil {
		return nil, fmt.Errorf("%w: the cosigner set in force: %w", ErrMalformed, err)
	}
	checkpointChecks.Add(1)
	cp, err := v.Verify(note)
	if err != nil {
		return nil, f.refused(origin, note, err)
	}
	return cp, nil
}

// refused names the reason the set in force refused the note (err). When
// it refused it for want of cosignatures and the set before the last
// change verifies it, the checkpoint was cosigned by the set the change
// replaced (ErrCosignedByOldSet).
func (f *followed) refused(origin string, note []byte, err error) error {
	if len(f.changes) > 0 && (errors.Is(err, tlog.ErrTooFewCosignatures) || errors.Is(err, tlog.ErrUnknownKey)) {
		if pv, perr := f.prev.verifier(origin); perr == nil {
			if _, perr := pv.Precheck(note); perr != nil {
				return checkpointError(err)
			}
			checkpointChecks.Add(1)
			if _, perr := pv.Verify(note); perr == nil {
				return fmt.Errorf("%w: change %s replaced them before this checkpoint: %w", ErrCosignedByOldSet, f.changes[len(f.changes)-1].CID, err)
			}
		}
	}
	return checkpointError(err)
}

// checkpointChecks counts the checkpoint notes Verify verifies with a
// cosigner set (each verifies at most one signature per cosigner of the
// set), so tests can show their bound (export_test.go).
var checkpointChecks atomic.Int64

// checkpointError maps the tlog verifier's refusal to this package's
// reason, keeping tlog's detail.
func checkpointError(err error) error {
	var sentinel error
	switch {
	case errors.Is(err, tlog.ErrUnknownKey):
		// Too few genesis cosignatures, and lines by other keys: the
		// note was signed by a set the genesis does not name.
		sentinel = ErrUnknownCosigner
	case errors.Is(err, tlog.ErrTooFewCosignatures):
		sentinel = ErrTooFewCosigners
	case errors.Is(err, tlog.ErrBadSignature):
		sentinel = ErrBadCosignature
	case errors.Is(err, tlog.ErrWrongOrigin):
		sentinel = ErrWrongLog
	default:
		sentinel = ErrMalformed
	}
	return fmt.Errorf("%w: checkpoint: %w", sentinel, err)
}

// checkLog checks that the bundle's leaf is in the log cp commits to.
func (b *Bundle) checkLog(cp tlog.Checkpoint) error {
	size := cp.Size
	if b.Question.AsOf == 0 && (b.LeafIndex+1 != size || (b.LeafSize != 0 && b.LeafSize != size)) {
		return fmt.Errorf("%w: the question names no asOf, so the answer must come from leaf %d, the last of the checkpoint's %d; it comes from leaf %d",
			ErrNotLatest, size-1, size, b.LeafIndex)
	}
	leafHash := tlog.LeafHash(b.Leaf)
	if b.LeafSize == 0 || b.LeafSize == size {
		if len(b.Consistency) != 0 {
			return fmt.Errorf("%w: a consistency proof without an older leaf size", ErrMalformed)
		}
		if err := tlog.VerifyInclusion(b.LeafIndex, size, leafHash, b.Inclusion, cp.Hash[:]); err != nil {
			return fmt.Errorf("%w: the inclusion proof of leaf %d does not lead to the root of the checkpoint's %d leaves", ErrLogInclusion, b.LeafIndex, size)
		}
		return nil
	}
	if b.LeafSize > size || b.LeafIndex >= b.LeafSize {
		return fmt.Errorf("%w: leaf %d of a tree of size %d, checkpoint size %d", ErrLogInclusion, b.LeafIndex, b.LeafSize, size)
	}
	root, err := proof.RootFromInclusionProof(rfc6962.DefaultHasher, b.LeafIndex, b.LeafSize, leafHash, b.Inclusion)
	if err != nil {
		return fmt.Errorf("%w: leaf %d of %d: %w", ErrLogInclusion, b.LeafIndex, b.LeafSize, err)
	}
	if err := tlog.VerifyConsistency(b.LeafSize, size, b.Consistency, root, cp.Hash[:]); err != nil {
		return fmt.Errorf("%w: the consistency proof from %d to %d leaves does not verify", ErrConsistency, b.LeafSize, size)
	}
	return nil
}

// provenRecords checks the bundle's records against the map root with
// its one batch proof and returns them as a decide.Records.
func (b *Bundle) provenRecords(root smt.Hash) (*proven, error) {
	p := &proven{records: make(map[decide.RecordKey][]byte, len(b.Records))}
	claims := make([]smt.Claim, 0, len(b.Records))
	for i, r := range b.Records {
		k, err := r.Key()
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if _, dup := p.records[k]; dup {
			return nil, fmt.Errorf("%w: %s twice", ErrMalformed, keyName(k))
		}
		p.records[k] = r.Bytes
		c := smt.Claim{Key: MapKey(k)}
		if r.Bytes != nil {
			c.Value, c.Present = MapValue(r.Bytes), true
		}
		claims = append(claims, c)
	}
	if b.StatusList != nil {
		claims = append(claims, b.statusListClaims()...)
	}
	claims = append(claims, b.cosignerClaim()...)
	if err := smt.VerifyBatch(root, claims, b.MapProof); err != nil {
		if errors.Is(err, smt.ErrProofMismatch) && !errors.Is(err, smt.ErrWrongKind) {
			return nil, fmt.Errorf("%w: %w", ErrRecordDigest, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrMapProof, err)
	}
	return p, nil
}

// proven is a decide.Records over proven records only: a record the
// bundle does not carry is ErrNotProven, never absent.
type proven struct {
	records map[decide.RecordKey][]byte
}

var _ decide.Records = (*proven)(nil)

// Record returns the proven bytes of k (nil: proven absent).
func (p *proven) Record(k decide.RecordKey) ([]byte, error) {
	b, ok := p.records[k]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotProven, keyName(k))
	}
	return b, nil
}

// Received returns the proven listing of subject's accreditations in
// framework (none when proven absent).
func (p *proven) Received(subject, framework string) ([]string, error) {
	k := decide.ReceivedKey(subject, framework)
	b, ok := p.records[k]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotProven, keyName(k))
	}
	if b == nil {
		return nil, nil
	}
	ids, err := decide.DecodeReceived(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, keyName(k), err)
	}
	return ids, nil
}

// decide recomputes the answer over the proven records and compares it
// with the bundle's; for a status-list bundle it also checks the proven
// version holds cred (the credential served) when cred is not nil.
func (b *Bundle) decide(src *proven, out *Verified, cred []byte) error {
	q := b.Question
	var got Answer
	var err error
	switch q.Type {
	case TypeAuthorization:
		var d *record.Decision
		d, err = decide.Decide(src, nil, q.Applied, decide.Question{
			Entity: q.Entity, Framework: q.Framework, Action: q.Action, Resource: q.Resource,
			Jurisdiction: q.Jurisdiction, At: q.At, AsOf: q.AsOf,
		}, q.At)
		if err == nil {
			out.Decision, got = d, AnswerOf(d)
		}
	case TypeStatusList:
		var l *record.StatusList
		var v, next *record.StatusListVersion
		if l, v, next, err = b.provenStatusList(); err != nil {
			return err
		}
		out.StatusListNext = next
		if cred != nil && string(cred) != v.Credential {
			return fmt.Errorf("%w: the credential served (%d bytes) is not the proven version's %s", ErrCredentialMismatch, len(cred), v.CID)
		}
		out.StatusList, out.StatusListVersion = l, v
		var d *record.Decision
		d, err = decide.Decide(src, nil, q.Applied, decide.Question{
			Entity: q.Entity, Framework: q.Framework, Action: q.Action, Resource: q.Resource,
			Jurisdiction: q.Jurisdiction, At: q.At,
		}, q.At)
		if err == nil {
			out.Decision, got = d, AnswerOf(d)
		}
	case TypeRecords:
		// Nothing to recompute: the records are what was proven.
		out.Records = b.Records
		got = Answer{Index: q.Applied}
	case TypeRecognition:
		var d *decide.RecognitionDecision
		d, err = decide.Recognize(src, q.Applied, decide.RecognitionQuestion{
			Framework: q.Framework, Recognized: q.Recognized, Resource: q.Resource, At: q.At, AsOf: q.AsOf,
		}, q.At)
		if err == nil {
			out.Recognition, got = d, RecognitionAnswerOf(d)
		}
	}
	switch {
	case errors.Is(err, ErrNotProven):
		return err
	case err != nil:
		return fmt.Errorf("%w: recomputing the decision: %w", ErrMalformed, err)
	}
	if diff := answerDiff(b.Answer, got); diff != "" {
		return fmt.Errorf("%w: %s", ErrDecisionMismatch, diff)
	}
	return nil
}

// answerDiff names the first field in which the claimed answer differs
// from the recomputed one ("" when none does).
func answerDiff(claimed, got Answer) string {
	b := func(p *bool) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	}
	switch {
	case b(claimed.Authorized) != b(got.Authorized):
		return fmt.Sprintf("authorized is %s, the proven records say %s", b(claimed.Authorized), b(got.Authorized))
	case b(claimed.Recognized) != b(got.Recognized):
		return fmt.Sprintf("recognized is %s, the proven records say %s", b(claimed.Recognized), b(got.Recognized))
	case claimed.Reason != got.Reason:
		return fmt.Sprintf("reason is %q, the proven records say %q", claimed.Reason, got.Reason)
	case !slices.Equal(claimed.Chain, got.Chain):
		return fmt.Sprintf("chain is %q, the proven records say %q", claimed.Chain, got.Chain)
	case claimed.Root != got.Root:
		return fmt.Sprintf("root is %q, the proven records say %q", claimed.Root, got.Root)
	case claimed.Index != got.Index:
		return fmt.Sprintf("index is %d, the proven records say %d", claimed.Index, got.Index)
	}
	return ""
}

// reasons are the codes of Verify's refusals, for machine-readable output
// (trustctl verify --json, a gateway's problem details).
var reasons = []struct {
	err  error
	code string
}{
	{ErrMalformed, "malformed"},
	{ErrWrongQuestion, "wrong_question"},
	{ErrBadGenesis, "bad_genesis"},
	{ErrNoCosigners, "no_cosigners"},
	{ErrWrongLog, "wrong_log"},
	{ErrBadCosignature, "bad_cosignature"},
	{ErrUnknownCosigner, "unknown_cosigner"},
	{ErrTooFewCosigners, "too_few_cosigners"},
	{ErrCheckpointTooOld, "checkpoint_too_old"},
	{ErrCheckpointFromFuture, "checkpoint_from_future"},
	{ErrLogInclusion, "log_inclusion"},
	{ErrConsistency, "consistency"},
	{ErrNotLatest, "not_latest"},
	{ErrRecordDigest, "record_digest"},
	{ErrMapProof, "map_proof"},
	{ErrNotProven, "not_proven"},
	{ErrDecisionMismatch, "decision_mismatch"},
	{ErrCredentialMismatch, "credential_mismatch"},
	{ErrVersionNotInForce, "version_not_in_force"},
	{ErrSuccessorHidden, "successor_hidden"},
	{ErrSuccessorNotLinked, "successor_not_linked"},
	{ErrCosignerChangeUnauthorized, "cosigner_change_unauthorized"},
	{ErrCosignerChangeNotLogged, "cosigner_change_not_logged"},
	{ErrCosignerChangeOmitted, "cosigner_change_omitted"},
	{ErrCosignedByOldSet, "cosigned_by_old_set"},
	{ErrCosignerSetBehind, "cosigner_set_behind"},
}

// ReasonOf returns the code of the reason err (from Verify) names, such
// as "record_digest" for ErrRecordDigest: the sentinel's name in snake
// case without "Err". It returns "" for an error that is none of them.
func ReasonOf(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return ""
}
