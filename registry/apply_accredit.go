package registry

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// jurisdictionRE matches ISO 3166-1 alpha-2 codes and ISO 3166-2
// subdivision codes (US, US-CA).
var jurisdictionRE = regexp.MustCompile(`^[A-Z]{2}(-[A-Z0-9]{1,3})?$`)

func (c *applyCtx) accredit(op *record.Accredit) (string, error) {
	f, err := c.framework(op.Framework)
	if err != nil {
		return "", err
	}
	if err := record.Invalid(errors.Join(record.ValidateID("accreditor", op.Accreditor), record.ValidateID("subject", op.Subject))); err != nil {
		return "", err
	}
	if op.Accreditor != c.signer() {
		return "", record.Reject(record.CodeNotAuthorized, "accreditor %s must sign its own grant; it was signed by %s", op.Accreditor, c.signer())
	}
	if op.Subject == op.Accreditor {
		return "", record.Reject(record.CodeInvalid, "an accreditor cannot accredit itself")
	}
	if op.Action != record.ActionIssue && op.Action != record.ActionAccredit {
		return "", record.Reject(record.CodeInvalid, "action %q must be %q or %q", op.Action, record.ActionIssue, record.ActionAccredit)
	}
	if err := validResources(op.Resources, false); err != nil {
		return "", err
	}
	if len(op.Jurisdictions) > 64 {
		return "", record.Reject(record.CodeInvalid, "%d jurisdictions, limit 64", len(op.Jurisdictions))
	}
	for _, j := range op.Jurisdictions {
		if !jurisdictionRE.MatchString(j) {
			return "", record.Reject(record.CodeInvalid, "jurisdiction %q is not an ISO 3166 code such as US or US-CA", j)
		}
	}
	if len(op.Evidence) > 32 {
		return "", record.Reject(record.CodeInvalid, "%d evidence items, limit 32", len(op.Evidence))
	}
	for _, ev := range op.Evidence {
		if err := record.Invalid(record.ValidText("evidence", ev, 2048)); err != nil {
			return "", err
		}
	}
	from := c.now
	if op.ValidFrom != nil {
		from = op.ValidFrom.UTC()
	}
	var until *time.Time
	if op.ValidUntil != nil {
		u := op.ValidUntil.UTC()
		if !u.After(from) {
			return "", record.Reject(record.CodeInvalid, "validUntil %s is not after validFrom %s", u.Format(time.RFC3339), from.Format(time.RFC3339))
		}
		until = &u
	}
	a := &record.Accreditation{
		ID: c.op.CID, Framework: op.Framework, Accreditor: op.Accreditor, Subject: op.Subject,
		Action: op.Action, Resources: op.Resources, Jurisdictions: op.Jurisdictions,
		ValidFrom: from, ValidUntil: until, Parent: op.Parent, Evidence: op.Evidence,
		Depth: 1, CreatedIndex: c.index, CreatedAt: c.now,
		Events: []record.StatusEvent{{Status: record.StatusActive, EffectiveAt: from, Index: c.index, Operation: c.op.CID}},
	}
	if err := c.checkGrantorScope(a); err != nil {
		return "", err
	}
	switch {
	case c.s.standing():
		e := c.evaluator()
		if err := c.placeHolds(e, a); err != nil {
			var rj *record.Rejection
			if errors.As(err, &rj) {
				return "", record.Reject(record.CodeNotAuthorized, "%s may not accredit: %s", a.Accreditor, rj.Msg)
			}
			return "", err
		}
		if err := c.grantStanding(e, a); err != nil {
			return "", err
		}
	case c.s.finalRevocation():
		if err := c.notBeforeRevocation(a); err != nil {
			return "", err
		}
	}
	if a.Depth > f.MaxChainLength {
		return "", record.Reject(record.CodeScope, "the chain would be %d accreditations long; framework %s allows %d", a.Depth, f.ID, f.MaxChainLength)
	}
	mustSetJSON(c.b, key(tableAccreditation, a.ID), a)
	mustSet(c.b, key(tableReceived, a.Subject, a.Framework, a.ID), nil)
	c.dirty(decide.AccreditationKey(a.ID))
	c.dirty(decide.ReceivedKey(a.Subject, a.Framework))
	mustSet(c.b, key(tableGranted, a.Accreditor, a.Framework, a.ID), nil)
	mustSet(c.b, key(tableByFramework, a.Framework, a.ID), nil)
	c.touched = append(c.touched, a.Subject)
	return a.ID, nil
}

// notBeforeRevocation refuses, at FeatureLevelFinalRevocation, a grant a
// whose validity reaches back before the effectiveAt of a revocation of an
// accreditation its subject holds in the same framework for the same
// action: "grant a new accreditation instead" is a fresh start, not a way
// to make answers about the revoked past say authorized again. From
// FeatureLevelStanding grantStanding decides instead.
func (c *applyCtx) notBeforeRevocation(a *record.Accreditation) error {
	held, err := c.evaluator().Received(a.Subject, a.Framework)
	if err != nil {
		return err
	}
	for _, old := range held {
		if old.Action != a.Action || old.CreatedIndex > c.index {
			continue
		}
		for _, ev := range old.Events {
			if ev.Status == record.StatusRevoked && ev.Index <= c.index && a.ValidFrom.Before(ev.EffectiveAt) {
				return record.Reject(record.CodeConflict, "%s's accreditation %s is revoked from %s: a new grant may begin then or later, not at %s",
					a.Subject, old.ID, ev.EffectiveAt.Format(time.RFC3339), a.ValidFrom.Format(time.RFC3339))
			}
		}
	}
	return nil
}

// statusOp is what the apply reads of the operation that recorded a
// status event: its signers (nil when none is found: taken for
// governance's, the careful reading) and its commit time (the apply's own
// when none is found). Every build kept an operation record, signers and
// all, for each accepted operation.
type statusOp struct {
	signers  []string
	recorded time.Time
}

// statusOps reads, for one grantStanding, what it asks of each operation
// that recorded a status event once: a committed one's from the placer
// memory, any other's from its record, remembered here for the call. It
// also remembers each atOrAbove and binds it answered.
type statusOps struct {
	c     *applyCtx
	read  map[string]statusOp
	rank  map[[3]string]bool
	bound map[string]placerBinds
}

// placerBinds is what binds answered for one placer.
type placerBinds struct {
	by    string
	bound bool
}

// readStatusOp reads the operation that recorded ev: from the placer
// memory (placerCache) once an earlier batch committed it, else from its
// operation record (loadStatusOp).
func (c *applyCtx) readStatusOp(ev record.StatusEvent) (statusOp, error) {
	if op, ok := c.s.caches.placers.get(ev.Operation); ok {
		return op, nil
	}
	return c.loadStatusOp(ev)
}

// loadStatusOp reads the operation that recorded ev from its operation
// record (which the same batch or an earlier one wrote), and remembers
// what it read once an earlier batch committed it: an operation record
// is written once, when its operation is applied.
func (c *applyCtx) loadStatusOp(ev record.StatusEvent) (statusOp, error) {
	placers := c.s.caches.placers
	gen := placers.generation()
	var placed struct {
		Time    time.Time `json:"time"`
		Signers []string  `json:"signers"`
	}
	found, err := getJSON(c.b, key(tableOps, ev.Operation), &placed)
	if err != nil {
		return statusOp{}, err
	}
	op := statusOp{recorded: c.now}
	if found && len(placed.Signers) > 0 {
		op.signers = placed.Signers
	}
	if found && !placed.Time.IsZero() {
		op.recorded = placed.Time
	}
	if found && ev.Index <= c.s.applied.Load() {
		placers.add(ev.Operation, op, gen) // committed: fixed from now on
	}
	return op, nil
}

// of returns the operation that recorded ev.
func (o *statusOps) of(ev record.StatusEvent) (statusOp, error) {
	if op, ok := o.c.s.caches.placers.get(ev.Operation); ok {
		return op, nil
	}
	if op, ok := o.read[ev.Operation]; ok {
		return op, nil
	}
	op, err := o.c.loadStatusOp(ev)
	if err != nil {
		return statusOp{}, err
	}
	if o.read == nil {
		o.read = map[string]statusOp{}
	}
	o.read[ev.Operation] = op
	return op, nil
}

// binds is applyCtx.binds for grantStanding's grant a, remembered by
// placer (one grant's events are placed by few).
func (o *statusOps) binds(e *decide.Evaluator, a *record.Accreditation, placer []string) (string, bool, error) {
	k := strings.Join(placer, "\x00")
	if placer == nil {
		k = "\x00nil" // not found: taken for governance's
	}
	if b, seen := o.bound[k]; seen {
		return b.by, b.bound, nil
	}
	by, bound, err := o.c.binds(e, a, placer)
	if err != nil {
		return "", false, err
	}
	if o.bound == nil {
		o.bound = map[string]placerBinds{}
	}
	o.bound[k] = placerBinds{by, bound}
	return by, bound, nil
}

// atOrAbove is applyCtx.atOrAbove, remembered by a and the two sets of
// signers.
func (o *statusOps) atOrAbove(e *decide.Evaluator, a *record.Accreditation, who, placer []string) (bool, error) {
	k := [3]string{a.ID, strings.Join(who, "\x00"), strings.Join(placer, "\x00")}
	if ok, seen := o.rank[k]; seen {
		return ok, nil
	}
	ok, err := o.c.atOrAbove(e, a, who, placer)
	if err != nil {
		return false, err
	}
	if o.rank == nil {
		o.rank = map[[3]string]bool{}
	}
	o.rank[k] = ok
	return ok, nil
}

// grantStanding refuses, from FeatureLevelStanding on, a grant a that
// gets past a status event of an accreditation the subject holds in the
// same framework for the same action, with a resource and a jurisdiction
// in common (overlaps), placed by one that binds the grantor (binds):
//   - a suspension in force over some time a covers, from its effectiveAt
//     until a reinstatement lifts it or a revocation placed at or above
//     its placer takes effect (suspensionEnd); the grantor's own
//     suspensions do not bind it. A fresh grant made answers say
//     authorized where its grantor could not lift the suspension;
//   - a revocation whose revoked past a would reach: a covers some time at
//     or after its effectiveAt and begins before the later of that and
//     when the revocation was recorded, so no answer about the time the
//     revocation reached back over is rewritten ("grant a new
//     accreditation instead" is a fresh start from then).
//
// Events placed by a peer, another tree, or one the grantor stands above
// bind nothing: their placer holds no authority over the grantor, and
// could otherwise block a subject for every other branch in advance. A
// grant governance signs is bound by nothing.
func (c *applyCtx) grantStanding(e *decide.Evaluator, a *record.Accreditation) error {
	if c.isGovernance() {
		return nil
	}
	held, err := e.Received(a.Subject, a.Framework)
	if err != nil {
		return err
	}
	ops := &statusOps{c: c}
	for _, old := range held {
		if old.Action != a.Action || old.CreatedIndex > c.index || !overlaps(old, a) {
			continue
		}
		for _, ev := range old.Events {
			if ev.Index > c.index || a.ValidUntil != nil && !ev.EffectiveAt.Before(*a.ValidUntil) {
				continue // not recorded yet, or in force only after the grant ends
			}
			if ev.Status != record.StatusRevoked && ev.Status != record.StatusSuspended {
				continue
			}
			op, err := ops.of(ev)
			if err != nil {
				return err
			}
			if ev.Status == record.StatusRevoked {
				from := maxTime(ev.EffectiveAt, op.recorded)
				if !a.ValidFrom.Before(from) {
					continue
				}
				by, bound, err := ops.binds(e, a, op.signers)
				if err != nil {
					return err
				}
				if bound {
					return record.Reject(record.CodeConflict, "%s's accreditation %s is revoked from %s by %s, recorded at %s (index %d): a new grant may begin at %s or later, not at %s",
						a.Subject, old.ID, ev.EffectiveAt.Format(time.RFC3339), by, op.recorded.Format(time.RFC3339), ev.Index, from.Format(time.RFC3339), a.ValidFrom.Format(time.RFC3339))
				}
				continue
			}
			if op.signers != nil && op.signers[0] == c.signer() && !c.s.governanceSigned(op.signers) {
				continue // the grantor's own suspension
			}
			by, bound, err := ops.binds(e, a, op.signers)
			if err != nil {
				return err
			}
			if !bound {
				continue
			}
			end, ended, err := c.suspensionEnd(e, old, ev, op.signers, ops)
			if err != nil {
				return err
			}
			if ended && (!end.After(a.ValidFrom) || !end.After(ev.EffectiveAt)) {
				continue // over before the grant begins, or never in force
			}
			return record.Reject(record.CodeNotAuthorized, "%s may not accredit %s: its accreditation %s is suspended from %s (index %d) by %s, above the grantor; only that placer or one above it lifts it",
				c.signer(), a.Subject, old.ID, ev.EffectiveAt.Format(time.RFC3339), ev.Index, by)
		}
	}
	return nil
}

// binds reports whether a status event placed by placer (its operation's
// signers; nil when not known, taken for governance) binds this
// operation's signer, the grantor of a: governance's does, the grantor's
// own does, and an accreditor's that holds a place above the grantor in
// a's own chain does unless the grantor also stands above it there (judged
// at the placer's highest place, as rank judges). by names the placer.
func (c *applyCtx) binds(e *decide.Evaluator, a *record.Accreditation, placer []string) (by string, bound bool, err error) {
	if placer == nil || c.s.governanceSigned(placer) {
		return "governance", true, nil
	}
	if placer[0] == c.signer() {
		return placer[0], true, nil
	}
	links, err := linksAccreditedBy(e, a, placer[0])
	if err != nil || len(links) == 0 {
		return placer[0], false, err
	}
	above, err := c.grantedAbove(e, links[len(links)-1], c.signer())
	return placer[0], !above, err
}

// suspensionEnd is when the suspension s of a stops counting against a
// grant (grantStanding): the earliest effectiveAt of a reinstatement
// recorded after it (one lifts every suspension recorded before it) or of
// a revocation of a placed at or above s's placer. ended is false when
// neither is recorded.
func (c *applyCtx) suspensionEnd(e *decide.Evaluator, a *record.Accreditation, s record.StatusEvent, placer []string, ops *statusOps) (end time.Time, ended bool, err error) {
	for _, ev := range a.Events {
		if ev.Index > c.index || (ended && !ev.EffectiveAt.Before(end)) {
			continue
		}
		switch {
		case ev.Status == record.StatusActive && ev.Index > s.Index:
		case ev.Status == record.StatusRevoked:
			op, err := ops.of(ev)
			if err != nil {
				return time.Time{}, false, err
			}
			ok, err := ops.atOrAbove(e, a, op.signers, placer)
			if err != nil {
				return time.Time{}, false, err
			}
			if !ok {
				continue
			}
		default:
			continue
		}
		end, ended = ev.EffectiveAt, true
	}
	return end, ended, nil
}

// atOrAbove reports whether who, the signers of an operation, stand at or
// above placer, another's, in a's chain (rank asks it for this operation,
// suspensionEnd for two recorded ones): governance over anything, an accreditor over what it, or
// one below the highest place it holds in a's chain, placed. Signers not
// known (nil) stand over nothing; a placer not known is taken for
// governance.
func (c *applyCtx) atOrAbove(e *decide.Evaluator, a *record.Accreditation, who, placer []string) (bool, error) {
	whoGov := who != nil && c.s.governanceSigned(who)
	switch {
	case placer == nil || c.s.governanceSigned(placer):
		return whoGov, nil
	case whoGov:
		return true, nil
	case who == nil:
		return false, nil
	}
	links, err := linksAccreditedBy(e, a, placer[0])
	if err != nil || len(links) == 0 {
		return false, err
	}
	return c.grantedAbove(e, links[len(links)-1], who[0])
}

// overlaps reports whether grants a and b cover a resource and a
// jurisdiction in common (the wildcard resource covers every one; no
// jurisdictions, every one).
func overlaps(a, b *record.Accreditation) bool {
	common := func(x, y []string, all func([]string) bool) bool {
		if all(x) || all(y) {
			return true
		}
		for _, v := range x {
			if slices.Contains(y, v) {
				return true
			}
		}
		return false
	}
	return common(a.Resources, b.Resources, func(rs []string) bool { return slices.Contains(rs, record.Wildcard) }) &&
		common(a.Jurisdictions, b.Jurisdictions, func(js []string) bool { return len(js) == 0 })
}

// checkGrantorScope checks that the grantor may make grant a: a root
// accreditor of the framework, or the subject of an accredit accreditation
// in good standing whose scope contains a's (attenuation). It sets a.Depth.
func (c *applyCtx) checkGrantorScope(a *record.Accreditation) error {
	e := c.evaluator()
	if a.Parent == "" {
		ok, err := e.IsRoot(a.Framework, a.Accreditor, c.now)
		if err != nil {
			return err
		}
		if !ok {
			return record.Reject(record.CodeNotAuthorized, "%s is not a root accreditor of %s: name as parent the accreditation that lets it accredit", a.Accreditor, a.Framework)
		}
		return nil
	}
	p, err := e.Accreditation(a.Parent)
	if err != nil {
		return err
	}
	switch {
	case p == nil:
		return record.Reject(record.CodeInvalid, "parent accreditation %s does not exist", a.Parent)
	case p.Subject != a.Accreditor:
		return record.Reject(record.CodeNotAuthorized, "parent accreditation %s was granted to %s, not to %s", p.ID, p.Subject, a.Accreditor)
	case p.Framework != a.Framework:
		return record.Reject(record.CodeScope, "parent accreditation %s is in framework %s, not %s", p.ID, p.Framework, a.Framework)
	case p.Action != record.ActionAccredit:
		return record.Reject(record.CodeScope, "parent accreditation %s grants %q, not %q", p.ID, p.Action, record.ActionAccredit)
	}
	if _, reason, _, err := e.Chain(p, c.now); err != nil {
		return err
	} else if reason != record.ReasonActive && reason != record.ReasonNotYetValid {
		return record.Reject(record.CodeNotAuthorized, "the grantor's own accreditation %s is %s now", p.ID, reason)
	}
	if !slices.Contains(p.Resources, record.Wildcard) {
		for _, r := range a.Resources {
			if !slices.Contains(p.Resources, r) {
				return record.Reject(record.CodeScope, "resource %q is outside the grantor's accreditation %s (resources %v)", r, p.ID, p.Resources)
			}
		}
	}
	if len(p.Jurisdictions) > 0 {
		if len(a.Jurisdictions) == 0 {
			return record.Reject(record.CodeScope, "the grantor is limited to jurisdictions %v: the grant must name a subset of them", p.Jurisdictions)
		}
		for _, j := range a.Jurisdictions {
			if !slices.Contains(p.Jurisdictions, j) {
				return record.Reject(record.CodeScope, "jurisdiction %s is outside the grantor's jurisdictions %v", j, p.Jurisdictions)
			}
		}
	}
	if a.ValidFrom.Before(p.ValidFrom) {
		return record.Reject(record.CodeScope, "validFrom %s is before the grantor's own validFrom %s", a.ValidFrom.Format(time.RFC3339), p.ValidFrom.Format(time.RFC3339))
	}
	if p.ValidUntil != nil && (a.ValidUntil == nil || a.ValidUntil.After(*p.ValidUntil)) {
		return record.Reject(record.CodeScope, "the grant must end by the grantor's own validUntil %s", p.ValidUntil.Format(time.RFC3339))
	}
	a.Depth = p.Depth + 1
	return nil
}

func (c *applyCtx) changeStatus(op *record.StatusChange) (string, error) {
	e := c.evaluator()
	a, err := e.Accreditation(op.Accreditation)
	if err != nil {
		return "", err
	}
	if a == nil {
		return "", record.Reject(record.CodeInvalid, "accreditation %q does not exist", op.Accreditation)
	}
	// Read through the read-side cache, so shared with trust queries
	// running now: the new event goes on a copy, in a new array (an append
	// in place would show queries an event not yet committed, and race
	// with them).
	own := *a
	own.Events = slices.Clip(a.Events)
	a = &own
	if err := record.Invalid(record.ValidText("reason", op.Reason, 1024)); err != nil {
		return "", err
	}
	if !c.isGovernance() {
		ok, err := c.grantedAbove(e, a, c.signer())
		if err != nil {
			return "", err
		}
		if !ok {
			return "", record.Reject(record.CodeNotAuthorized, "%s may not %s %s: only its accreditor, an accreditor above it in the chain, or governance may", c.signer(), op.Op, a.ID)
		}
		if c.s.finalRevocation() {
			if err := c.authorityInForce(e, a, c.signer(), op.Op); err != nil {
				return "", err
			}
		}
	}
	at := c.now
	if op.EffectiveAt != nil {
		at = op.EffectiveAt.UTC()
	}
	if c.s.standing() && len(a.Events) >= maxStatusEvents {
		first := !slices.ContainsFunc(a.Events, isRevocation)
		inForce := slices.ContainsFunc(a.Events, func(ev record.StatusEvent) bool { return isRevocation(ev) && !ev.EffectiveAt.After(c.now) })
		if op.Op != record.OpRevoke || !first && (inForce || at.After(c.now)) {
			return "", record.Reject(record.CodeConflict, "accreditation %s holds %d status events, the most one may: revoke it from now (taken while no revocation is in force) and grant a new accreditation", a.ID, len(a.Events))
		}
	}
	var status string
	if c.s.finalRevocation() {
		status, err = c.statusChangeAt(e, a, op.Op, at)
	} else {
		status, err = statusChangeRecorded(a, op.Op, c.index)
	}
	if err != nil {
		return "", err
	}
	a.Events = append(a.Events, record.StatusEvent{Status: status, EffectiveAt: at, Reason: op.Reason, Index: c.index, Operation: c.op.CID})
	c.dirty(decide.AccreditationKey(a.ID))
	// Trust questions cache a subject's accreditations with its listing.
	c.dirty(decide.ReceivedKey(a.Subject, a.Framework))
	mustSetJSON(c.b, key(tableAccreditation, a.ID), a)
	c.touched = append(c.touched, a.Subject, a.Accreditor)
	return a.ID, nil
}

// maxStatusEvents bounds, from FeatureLevelStanding on, the status events
// one accreditation holds: every status change rewrites the record, and
// the apply's rules and every answer read all its events (some rules each
// against each), so an accreditor that scheduled suspensions and
// revocations without end made every later change, grant and answer about
// the subject slower. Past it only a revocation is taken: the first one,
// or, while none is in force, one in force now, so the accreditation can
// always be ended (an accreditor that filled the record and scheduled its
// own revocation far ahead does not shut its superiors out), and a record
// holds at most two events more. No real accreditation comes near it.
const maxStatusEvents = 256

// isRevocation reports whether ev is a revocation.
func isRevocation(ev record.StatusEvent) bool { return ev.Status == record.StatusRevoked }

// authorityInForce refuses, from FeatureLevelFinalRevocation on, a status
// change (op) of a by did, an accreditor in a's chain, whose place in the
// chain does not hold at the commit time: it was struck off. A place
// holds when, from the link above the one did accredited up to the root,
// no accreditation is revoked or suspended (read as answers read it) and
// the root is a root of the framework still; a validity window does not
// count (an accreditor whose own accreditation has not begun, or has
// ended, may still undo what it granted). did may hold more than one
// place in a's chain; one that holds is enough.
func (c *applyCtx) authorityInForce(e *decide.Evaluator, a *record.Accreditation, did, op string) error {
	links, err := linksAccreditedBy(e, a, did)
	if err != nil {
		return err
	}
	var refusal error
	for _, link := range links {
		err := c.placeHolds(e, link)
		if err == nil {
			return nil
		}
		var rj *record.Rejection
		if !errors.As(err, &rj) {
			return err
		}
		if refusal == nil {
			refusal = record.Reject(record.CodeNotAuthorized, "%s may not %s %s: %s", did, op, a.ID, rj.Msg)
		}
	}
	if refusal == nil { // grantedAbove found a place; cannot be
		refusal = record.Reject(record.CodeNotAuthorized, "%s may not %s %s: it holds no place in its chain", did, op, a.ID)
	}
	return refusal
}

// placeHolds returns nil when the place of link's accreditor holds at the
// commit time (authorityInForce), else a *record.Rejection saying why not.
func (c *applyCtx) placeHolds(e *decide.Evaluator, link *record.Accreditation) error {
	cur := link
	for range decide.MaxWalk {
		if cur.Parent == "" {
			root, err := e.IsRoot(cur.Framework, cur.Accreditor, c.now)
			if err != nil {
				return err
			}
			if !root {
				if cur == link {
					return record.Reject(record.CodeNotAuthorized, "it is no longer a root accreditor of %s", cur.Framework)
				}
				return record.Reject(record.CodeNotAuthorized, "the chain above it ends at %s, no longer a root accreditor of %s", cur.Accreditor, cur.Framework)
			}
			return nil
		}
		p, err := e.Accreditation(cur.Parent)
		if err != nil {
			return err
		}
		if p == nil {
			return record.Reject(record.CodeNotAuthorized, "accreditation %s above it does not exist", cur.Parent)
		}
		if ev, ok := decide.AccreditationStatusAt(p.Events, c.now, c.index); ok && ev.Status != record.StatusActive {
			if cur == link {
				return record.Reject(record.CodeNotAuthorized, "its own accreditation %s is %s", p.ID, ev.Status)
			}
			return record.Reject(record.CodeNotAuthorized, "accreditation %s above it is %s", p.ID, ev.Status)
		}
		cur = p
	}
	return record.Reject(record.CodeNotAuthorized, "its chain is longer than %d links", decide.MaxWalk)
}

// statusChangeRecorded is the status an event of op records, by the rules
// below FeatureLevelFinalRevocation: nothing after a recorded revocation,
// whatever its effectiveAt, and a suspension or reinstatement judged by the
// latest recorded event.
func statusChangeRecorded(a *record.Accreditation, op string, index uint64) (string, error) {
	if everRevoked(a.Events, index) {
		return "", record.Reject(record.CodeConflict, "accreditation %s is revoked; revocation is final: grant a new accreditation instead", a.ID)
	}
	last, _ := latestRecorded(a.Events)
	switch op {
	case record.OpSuspend:
		if last.Status == record.StatusSuspended {
			return "", record.Reject(record.CodeConflict, "accreditation %s is suspended already", a.ID)
		}
		return record.StatusSuspended, nil
	case record.OpReinstate:
		if last.Status != record.StatusSuspended {
			return "", record.Reject(record.CodeConflict, "accreditation %s is not suspended", a.ID)
		}
		return record.StatusActive, nil
	case record.OpRevoke:
		return record.StatusRevoked, nil
	}
	panic(fmt.Sprintf("registry: status change %q", op))
}

// statusChangeAt is the status an event of op effective at at records,
// from FeatureLevelFinalRevocation on, judged as answers read the events
// (decide.AccreditationStatusAt) rather than by the latest recorded one:
//   - nothing takes effect at or after a revocation's effectiveAt (a
//     revocation recorded with a later one leaves earlier times open: a
//     revocation, suspension or reinstatement effective before it is
//     taken);
//   - a suspension is taken unless one is in force at at whose placer the
//     signer does not stand strictly above ("suspended already"); one
//     placed below is stacked over, and one placed by governance or
//     higher in the chain holds until a reinstatement by them;
//   - a reinstatement lifts, from at on, every suspension recorded before
//     it that no reinstatement recorded after that suspension and
//     effective by at lifts already; there must be one, and the signer
//     must stand at or above whoever placed each (mayLift).
func (c *applyCtx) statusChangeAt(e *decide.Evaluator, a *record.Accreditation, op string, at time.Time) (string, error) {
	for _, ev := range a.Events {
		if ev.Status == record.StatusRevoked && !ev.EffectiveAt.After(at) {
			return "", record.Reject(record.CodeConflict, "accreditation %s is revoked from %s (index %d); revocation is final: grant a new accreditation instead",
				a.ID, ev.EffectiveAt.Format(time.RFC3339), ev.Index)
		}
	}
	switch op {
	case record.OpSuspend:
		// Suspended already at at by a placer the signer does not stand
		// strictly above: the new suspension adds nothing. One placed
		// below is stacked over: the signer's holds when that one is
		// lifted.
		for _, s := range a.Events {
			if s.Status != record.StatusSuspended || s.EffectiveAt.After(at) || liftedBy(a.Events, s, at) {
				continue
			}
			placer, err := c.placerOf(s)
			if err != nil {
				return "", err
			}
			if _, above, err := c.rank(e, a, placer); err != nil {
				return "", err
			} else if !above {
				return "", record.Reject(record.CodeConflict, "accreditation %s is suspended already at %s (by the suspension at index %d)", a.ID, at.Format(time.RFC3339), s.Index)
			}
		}
		return record.StatusSuspended, nil
	case record.OpRevoke:
		return record.StatusRevoked, nil
	case record.OpReinstate:
		// A suspension is lifted already, for every time the new
		// reinstatement would lift it (from at, or from its own
		// effectiveAt when that is later), by a reinstatement recorded
		// after it and in force by then.
		var pending []record.StatusEvent
		for _, s := range a.Events {
			if s.Status == record.StatusSuspended && !liftedBy(a.Events, s, maxTime(at, s.EffectiveAt)) {
				pending = append(pending, s)
			}
		}
		if len(pending) == 0 {
			return "", record.Reject(record.CodeConflict, "accreditation %s is not suspended at %s or after: no suspension for a reinstatement then to lift", a.ID, at.Format(time.RFC3339))
		}
		if err := c.mayLift(e, a, pending); err != nil {
			return "", err
		}
		return record.StatusActive, nil
	}
	panic(fmt.Sprintf("registry: status change %q", op))
}

// maxTime is the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// liftedBy reports whether a reinstatement recorded after the suspension s
// and effective by at lifts it from at on.
func liftedBy(events []record.StatusEvent, s record.StatusEvent, at time.Time) bool {
	for _, r := range events {
		if r.Status == record.StatusActive && r.Index > s.Index && !r.EffectiveAt.After(at) {
			return true
		}
	}
	return false
}

// mayLift refuses, from FeatureLevelFinalRevocation on, a reinstatement of
// a by a signer that does not stand at or above whoever placed each of the
// suspensions it lifts (pending: statusChangeAt; rank).
func (c *applyCtx) mayLift(e *decide.Evaluator, a *record.Accreditation, pending []record.StatusEvent) error {
	for _, susp := range pending {
		placer, err := c.placerOf(susp)
		if err != nil {
			return err
		}
		if ok, _, err := c.rank(e, a, placer); err != nil {
			return err
		} else if ok {
			continue
		}
		if placer == nil || c.s.governanceSigned(placer) {
			return record.Reject(record.CodeNotAuthorized, "%s may not reinstate %s: governance suspended it (at index %d), and only governance lifts that", c.signer(), a.ID, susp.Index)
		}
		return record.Reject(record.CodeNotAuthorized, "%s may not reinstate %s: %s suspended it (at index %d); only it, an accreditor above it in the chain, or governance lifts that",
			c.signer(), a.ID, placer[0], susp.Index)
	}
	return nil
}

// placerOf returns the signers of the operation that recorded ev (its
// operation record, which the same batch or an earlier one wrote; every
// build has kept one, signers and all, for each accepted operation). nil
// when none is found: rank then takes the placer for governance, the
// careful reading, the same on every node.
func (c *applyCtx) placerOf(ev record.StatusEvent) ([]string, error) {
	op, err := c.readStatusOp(ev)
	return op.signers, err
}

// rank places this operation's signers against placer, the signers of a
// status event of a: atOrAbove when they may lift what placer placed
// (governance over anything; an accreditor over what it, or one below the
// highest place it holds in a's chain, placed), above when also not the
// placer's own level (governance over an accreditor's; an accreditor over
// one below it). Governance's is at or above only governance's.
func (c *applyCtx) rank(e *decide.Evaluator, a *record.Accreditation, placer []string) (atOrAbove, above bool, err error) {
	ok, err := c.atOrAbove(e, a, c.signers, placer)
	switch {
	case err != nil || !ok:
		return false, false, err
	case placer == nil || c.s.governanceSigned(placer):
		return true, false, nil // governance's own level
	}
	return true, c.isGovernance() || c.signer() != placer[0], nil
}

// linksAccreditedBy returns the links from a up its chain that did
// accredited, lowest first.
func linksAccreditedBy(e *decide.Evaluator, a *record.Accreditation, did string) ([]*record.Accreditation, error) {
	var links []*record.Accreditation
	cur := a
	for range decide.MaxWalk {
		if cur.Accreditor == did {
			links = append(links, cur)
		}
		if cur.Parent == "" {
			break
		}
		p, err := e.Accreditation(cur.Parent)
		if err != nil || p == nil {
			return links, err
		}
		cur = p
	}
	return links, nil
}

// grantedAbove reports whether did granted a or any accreditation above it
// in its chain (the root accreditor included): one who may change a's
// status.
func (c *applyCtx) grantedAbove(e *decide.Evaluator, a *record.Accreditation, did string) (bool, error) {
	links, err := linksAccreditedBy(e, a, did)
	return len(links) > 0, err
}
