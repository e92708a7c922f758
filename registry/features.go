package registry

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/record"
)

// Feature levels gate additions to the operation schema. A build refuses
// an operation field it does not know (strict decoding), so a field that
// only newer builds accept would split a cluster running two builds: the
// newer nodes accept the operation, the older ones reject it. An addition
// therefore gets a level, and an operation that uses it is rejected, on
// every node alike, until the cluster's level reaches it. The level rises
// only through the log (EncodeFeatureLevel), which the leader proposes once
// every member, voters and read replicas alike, reports a build that knows
// it; it never goes down.
//
// Numbers are append-only: each new optional field or operation type that
// an older build would refuse takes the next level, and so does each change
// to what the apply accepts (the apply reads the level and keeps the older
// rules below it).
const (
	// FeatureLevelBase is the operation schema of the first release; a
	// state that has no level stored is at it.
	FeatureLevelBase = 1
	// FeatureLevelEntityLocation adds metadata.location to entities.
	FeatureLevelEntityLocation = 2
	// FeatureLevelKeyAuthority applies the rules of who may bind keys to
	// an identifier (authority.go) and lets an issuer whose accreditation
	// ended still revoke in its existing status lists. It adds no field an
	// operation carries, but it changes what the apply accepts, so the
	// nodes of a cluster change rules at one entry of the log.
	FeatureLevelKeyAuthority = 3
	// FeatureLevelSignedContent changes the meaning of bytes older builds
	// accept, so the apply checks it in the rules that change: an
	// operation is a resubmission when it carries a signature over a
	// protected header and payload already applied (not only the same
	// signature bytes); an ES256 signature with a high s, and a payload or
	// status-list credential that reads two ways (checkJSON), are
	// malformed. Below it the apply keeps the older rules, so a cluster
	// being upgraded stays one state.
	FeatureLevelSignedContent = 4
	// FeatureLevelAccreditationCredential accepts an accreditation in its
	// credential form: the accreditor-signed VC-JWT of EBSI's accreditation
	// types, submitted as the operation (record.AccreditationCredential),
	// and addRootAccreditor's credential (the root's
	// VerifiableAuthorisationForTrustChain). Older builds refuse both as
	// malformed.
	FeatureLevelAccreditationCredential = 5
	// FeatureLevelStatusListREC applies the Bitstring Status List
	// Recommendation's rules to published status lists: a credential
	// secured with Data Integrity (eddsa-rdfc-2022, eddsa-jcs-2022) beside
	// a VC-JWT, statusPurpose refresh (not reversible, as revocation), any
	// statusSize from 1 to record.MaxStatusSize, credentialSubject.
	// statusMessages, and a message list names its statusSize. Older
	// builds refuse or read such credentials otherwise, so the apply keeps
	// the older rules below it.
	FeatureLevelStatusListREC = 6
	// FeatureLevelCommitment commits to the state after every applied
	// entry (commitment.go): a sparse Merkle map over every record a
	// decision or a listing reads, and a transparency log with one leaf
	// per entry. It adds no field an operation carries, but every node
	// must start writing the commitment at the same entry, so the map and
	// the log stay a pure function of the log. The entry that raises the
	// level builds the map over every record already stored.
	FeatureLevelCommitment = 7
	// FeatureLevelCosignerSet accepts setCosigners: governance replaces
	// the checkpoint cosigners and their quorum, and the state keeps the
	// set in force, with the list of its changes, in a record the map
	// commits to (apply_cosigners.go). Older builds refuse the operation
	// as malformed.
	FeatureLevelCosignerSet = 8

	// FeatureLevelNumberRange refuses, as malformed, an operation whose
	// payload, status-list or root credential, or JWS JSON serialization
	// holds a JSON number beyond a float64's range (RFC 7493, I-JSON,
	// §2.2: readers take it as an error, an infinity or a big decimal).
	// A typed field refused such a number already; a member nothing
	// reads, such as a key's extra JWK member, did not, and the stored
	// operation kept it for every reader to take its own way. Below the
	// level the apply accepts it as older builds do; every check of a
	// build that knows the level refuses it before the log at every level
	// (ParsedOperation.CheckErr).
	FeatureLevelNumberRange = 9

	// FeatureLevelHeaderNumbers refuses, as malformed, an operation that
	// holds a JSON number beyond a float64's range in a JWS protected
	// header (its own signatures', a top-level one beside them, or a
	// status-list or root credential's), or one that
	// FeatureLevelNumberRange let through because strconv.ParseFloat, which
	// that level's first builds asked, misjudges it (an integer part of
	// more than 800 digits, an exponent past 10,000: record.rangeErrs).
	// go-jose refuses such a number in a header member it decodes into an
	// any, but drops the members of a "jwk" header it does not know, and
	// the stored operation kept them. Below the level the apply accepts it
	// as older builds do; every check of a build that knows the level
	// refuses it before the log at every level (ParsedOperation.CheckErr).
	FeatureLevelHeaderNumbers = 10

	// FeatureLevelClearRefusals changes what five refusals say and two
	// rules of what the apply accepts. Refused as malformed, in words that
	// name what is wrong: a JWS whose "crit" header go-jose refuses (older
	// builds: a signature that does not verify), an updateEntity that
	// names no id (older builds: " is not registered"), and a date-time
	// member that does not decode (its JSON Pointer and the form wanted,
	// not Go's layout). Refused as invalid: an entity homepage, registered
	// or changed, that is not an http(s) URL with a host, and an
	// updateFramework or updateEntity that gives no field to change. Which
	// operations are accepted changes by these two rules only: go-jose
	// refuses the crit headers too, after the duplicates are found, and
	// the crit rule runs there. A result's words are part of the committed
	// state, so below the level the apply keeps the older ones; every check
	// before the log answers the new words at any level.
	FeatureLevelClearRefusals = 11

	// FeatureLevelFinalRevocation makes the apply read an accreditation's
	// status events as answers already read them
	// (decide.AccreditationStatusAt): a revocation is final, and a
	// suspension holds until a reinstatement recorded after it, so no event
	// recorded before a backdated revocation or suspension, or planted to
	// take effect after one, lifts it. And a status change must come from
	// authority in force: an accreditor that suspends, reinstates or
	// revokes an accreditation below it must not be struck off at the
	// commit time (no revocation or suspension in force from its own
	// accreditation up, and its chain's root still a root; validity
	// windows do not count), and a reinstatement lifts only suspensions
	// placed by the signer or below it (an accreditor judged at the highest
	// place it holds in the chain), governance's only by governance. Below
	// the level the apply keeps the older rules. A change is judged at its
	// effectiveAt, not against the latest recorded event: nothing takes
	// effect at or after a revocation's effectiveAt (one effective sooner
	// is taken), a suspension is taken unless one by the signer's level
	// or above is in force then ("suspended already"; one placed below is
	// stacked over), and a reinstatement lifts every suspension recorded
	// before it that none lifts by then. A new grant may not reach back
	// before a revocation of the subject's accreditation in the framework
	// for the same action.
	FeatureLevelFinalRevocation = 12

	// FeatureLevelStanding asks a grant for the standing a status change
	// needs, bounds an accreditation's events, and keeps a root's and a
	// recognition's events in an order every reading agrees on:
	//   - a grant is refused when the subject holds an accreditation in
	//     the framework for the same action, with a resource and a
	//     jurisdiction in common, that is suspended over some time the
	//     grant covers, or revoked with the grant reaching back before the
	//     later of the revocation's effectiveAt and its commit time, by
	//     governance or by an accreditor above the grantor in the new
	//     grant's chain that the grantor does not also stand above (a
	//     revocation by the grantor itself too); a grant governance signs
	//     is refused by none. A suspension counts until a reinstatement
	//     lifts it or a revocation placed at or above its placer takes
	//     effect. Below the level any grant got past a suspension, and any
	//     revocation of the subject's in the framework, whoever placed it,
	//     refused a grant beginning before its effectiveAt;
	//   - a grantor must not be struck off (FeatureLevelFinalRevocation's
	//     rule for status changes): an accreditor revoked or suspended now
	//     granted while its own accreditation had not begun;
	//   - an accreditation holds at most maxStatusEvents status events;
	//     past it only a revocation is taken, the first or, while none is
	//     in force, one in force now;
	//   - a root accreditor's events are read as answers read them
	//     (decide.LastRecordedAt: of the events in force, the one recorded
	//     last), not by the latest effectiveAt; an add, a removal, a
	//     recognize and an unrecognize are judged at their effectiveAt, not
	//     against the latest recorded event, and none is taken that would
	//     make the two readings differ (inEffectOrder), so verifiers of
	//     older builds, which read by the latest effectiveAt, answer alike
	//     on every state the level makes.
	// Answers read root and recognition events by LastRecordedAt at every
	// level.
	FeatureLevelStanding = 13

	// FeatureLevelRecognitionResources keeps the resources of every
	// recognize in the recognition's record (record.ResourceChanges; the
	// first recognize at the level also records the resources held
	// before it, at the index of the recognize that set them), and
	// answers read the resources of the recognize in force at the time
	// asked, as recorded by the index asked about
	// (decide.RecognitionResources): a scheduled change of resources
	// takes effect at its effectiveAt, and an answer as of an earlier
	// index reads the resources recorded by then. Below it a recognize's
	// resources replaced the recognition's for every time and index. The
	// apply judges "already recognizes for these resources" by the
	// resources in force at the change's effectiveAt. A verifier of an
	// older build recomputes such answers with the latest resources and
	// fails them as a decision mismatch where the two differ.
	FeatureLevelRecognitionResources = 14

	// FeatureLevel is the highest level this build applies.
	FeatureLevel = FeatureLevelRecognitionResources
)

// featureNames say what each level adds, for error messages and status.
var featureNames = map[int]string{
	FeatureLevelBase:                    "the first release's operations",
	FeatureLevelEntityLocation:          "entity metadata.location",
	FeatureLevelKeyAuthority:            "keys bound only by an identifier's controller; revocation after an issuer's accreditation ends",
	FeatureLevelSignedContent:           "idempotency on what was signed; low-s ES256 and unambiguous JSON only",
	FeatureLevelAccreditationCredential: "accreditations submitted as EBSI Verifiable Accreditation VC-JWTs",
	FeatureLevelStatusListREC:           "status lists by the Bitstring Status List Recommendation: Data Integrity credentials, purpose refresh, any statusSize, statusMessages",
	FeatureLevelCommitment:              "a verifiable map of the state and a transparency log of the applied entries",
	FeatureLevelCosignerSet:             "checkpoint cosigners changed by governance (setCosigners)",
	FeatureLevelNumberRange:             "no JSON number beyond a 64-bit float's range in payloads and credentials",
	FeatureLevelHeaderNumbers:           "no JSON number beyond a 64-bit float's range in JWS protected headers, nor by its exact value",
	FeatureLevelClearRefusals:           "refusals that name what is wrong; entity homepages only as http(s) URLs; no update without a field to change",
	FeatureLevelFinalRevocation:         "a revocation is final, a suspension lifted only by a reinstatement recorded after it; status changes only by authority in force, a suspension lifted only from its level or above",
	FeatureLevelStanding:                "no grant past a suspension or into a revocation's past placed above the grantor; grantors not struck off; at most 256 status events an accreditation; root and recognition changes in effect order, read by the one recorded last",
	FeatureLevelRecognitionResources:    "a recognition's resources read as of the time and index asked: each recognize's kept",
}

// OpFeatureLevel names the result of a feature level raise.
const OpFeatureLevel = "featureLevel"

// commandTypeFeatureLevel raises the cluster's feature level; body: the
// level as one byte.
const commandTypeFeatureLevel byte = 2

// EncodeFeatureLevel is the log command that raises the cluster's feature
// level to level. It panics on a level this build does not know: proposing
// one would stop every node that applies it.
func EncodeFeatureLevel(level int) []byte {
	if level < FeatureLevelBase || level > FeatureLevel {
		panic(fmt.Sprintf("registry: feature level %d is outside this build's %d..%d", level, FeatureLevelBase, FeatureLevel))
	}
	return []byte{commandVersion1, commandTypeFeatureLevel, byte(level)}
}

// clearRefusals reports whether the apply refuses in the words, and by
// the entity and update rules, of FeatureLevelClearRefusals.
func (s *consortium) clearRefusals() bool {
	return s.ClusterFeatureLevel() >= FeatureLevelClearRefusals
}

// finalRevocation reports whether the apply decides by the rules of
// FeatureLevelFinalRevocation.
func (s *consortium) finalRevocation() bool {
	return s.ClusterFeatureLevel() >= FeatureLevelFinalRevocation
}

// standing reports whether the apply decides by the rules of
// FeatureLevelStanding.
func (s *consortium) standing() bool {
	return s.ClusterFeatureLevel() >= FeatureLevelStanding
}

// recognitionResources reports whether the apply keeps each recognize's
// resources (FeatureLevelRecognitionResources).
func (s *consortium) recognitionResources() bool {
	return s.ClusterFeatureLevel() >= FeatureLevelRecognitionResources
}

// ClusterFeatureLevel is the feature level the applied state is at.
func (s *consortium) ClusterFeatureLevel() int { return int(s.level.Load()) }

// loadLevel reads the stored feature level (FeatureLevelBase when none is).
func (s *consortium) loadLevel(r pebble.Reader) error {
	level, err := storedLevel(r)
	if err != nil {
		return err
	}
	s.level.Store(int32(level))
	return nil
}

// storedLevel is the feature level stored in the database. A level above
// this build's is refused: the state was written by a newer build (a
// binary rolled back, or a snapshot from a newer cluster), and applying
// the log past it with this build's rules could part from the members
// that know it.
func storedLevel(r pebble.Reader) (int, error) {
	v, closer, err := r.Get(metaFeatureLevel)
	if errors.Is(err, pebble.ErrNotFound) {
		return FeatureLevelBase, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the feature level: %w", err)
	}
	defer func() { _ = closer.Close() }() // releases the read value; nothing to report
	return parseLevel(v)
}

// parseLevel checks a stored feature level: one byte, a level this build
// applies.
func parseLevel(v []byte) (int, error) {
	if len(v) != 1 || int(v[0]) < FeatureLevelBase {
		return 0, fmt.Errorf("the stored feature level %x is malformed", v)
	}
	if level := int(v[0]); level > FeatureLevel {
		return 0, fmt.Errorf("the state is at feature level %d and this trustd applies up to %d: run a build at least as new as the one that wrote it", level, FeatureLevel)
	}
	return int(v[0]), nil
}

// applyFeatureLevel raises the feature level. A level this build does not
// know stops the node, as an unknown command does: applying what follows
// it could diverge from the nodes that know it. A level at or below the
// current one changes nothing (two leaders in turn may both propose it).
func (s *applier) applyFeatureLevel(b *pebble.Batch, index uint64, t time.Time, body []byte) *record.Result {
	if len(body) != 1 {
		panic(fmt.Sprintf("registry: entry %d: feature level command of %d bytes", index, len(body)))
	}
	level := int(body[0])
	if level > FeatureLevel {
		panic(fmt.Sprintf("registry: entry %d: the cluster's feature level is raised to %d; this build applies up to %d: upgrade trustd", index, level, FeatureLevel))
	}
	res := &record.Result{Index: index, Time: t, Op: OpFeatureLevel, Accepted: true, ID: fmt.Sprint(level)}
	if level <= s.ClusterFeatureLevel() {
		res.Duplicate = true
		return res
	}
	mustSet(b, metaFeatureLevel, []byte{byte(level)})
	// The new level is in memory before the batch that writes it (and its
	// migration) commits: the apply's next entries need it. A check sees
	// the raise under way and decides nothing until it commits (Check).
	if !s.levelRaised {
		s.levelRaised = true
		s.levelSeq.Add(1)
	}
	if s.ClusterFeatureLevel() < FeatureLevelKeyAuthority && level >= FeatureLevelKeyAuthority {
		s.markMemberKeys(b)
	}
	s.level.Store(int32(level))
	s.log.Info("cluster feature level raised", "level", level, "adds", featureNames[level], "index", index)
	return res
}

// featureLevelOf is the lowest feature level at which op may be applied.
func featureLevelOf(op *record.ParsedOperation) int {
	var m *record.EntityMetadata
	switch body := op.Body.(type) {
	case *record.RegisterEntity:
		m = body.Metadata
	case *record.UpdateEntity:
		m = body.Metadata
	case *record.AccreditationCredential:
		return FeatureLevelAccreditationCredential
	case *record.SetCosigners:
		return FeatureLevelCosignerSet
	case *record.RootChange:
		if body.Credential != "" {
			return FeatureLevelAccreditationCredential
		}
	}
	if m != nil && m.Location != "" {
		return FeatureLevelEntityLocation
	}
	if pub, ok := op.Body.(*record.PublishStatusList); ok && record.IsDataIntegrity(pub.Credential) {
		return FeatureLevelStatusListREC
	}
	return FeatureLevelBase
}

// checkFeatureLevel rejects an operation that uses what the cluster's
// feature level does not allow yet.
func (s *consortium) checkFeatureLevel(op *record.ParsedOperation) error {
	need, have := featureLevelOf(op), s.ClusterFeatureLevel()
	if need <= have {
		return nil
	}
	return record.Reject(record.CodeInvalid, "%s needs the cluster's feature level %d (%s), and it is at %d: a member still runs an older trustd; the level rises by itself once every member runs a build that knows it (see feature_level in /v1/status)",
		op.Op, need, featureNames[need], have)
}
