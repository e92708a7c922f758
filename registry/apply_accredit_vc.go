package registry

import (
	"encoding/hex"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/trustreg/trustreg/registry/record"
)

// accreditCredential applies an accreditation in its credential form. The
// attribute its termsOfUse names decides the framework and the parent:
// an accreditation the accreditor holds (the parent; its framework), or a
// root role of the accreditor (no parent; that role's framework). From
// there it is an accredit like any other: the same authority and
// attenuation checks, the operation's bytes (the credential) its record.
func (c *applyCtx) accreditCredential(vc *record.AccreditationCredential) (string, error) {
	ref := record.CIDOfDigest(vc.ParentDigest)
	op := &record.Accredit{
		Header: vc.Header, Accreditor: vc.Accreditor, Subject: vc.Subject, Action: vc.Action,
		Resources: vc.Resources, Jurisdictions: vc.Jurisdictions, ValidFrom: vc.ValidFrom, ValidUntil: vc.ValidUntil,
	}
	p, err := c.evaluator().Accreditation(ref)
	if err != nil {
		return "", err
	}
	if p != nil {
		// checkGrantorScope refuses a parent the accreditor does not hold.
		op.Framework, op.Parent = p.Framework, p.ID
		return c.accredit(op)
	}
	framework, err := c.rootRoleNamed(vc.Accreditor, ref)
	if err != nil {
		return "", err
	}
	if framework == "" {
		return "", record.Reject(record.CodeInvalid, "termsOfUse names attribute %s (%s), which is neither an accreditation nor a root role of %s: name the TIR attribute the accreditor grants under",
			hex.EncodeToString(vc.ParentDigest[:]), ref, vc.Accreditor)
	}
	op.Framework = framework
	return c.accredit(op)
}

// rootRoleNamed returns the framework in which did holds the root role
// whose first event was recorded by operation cid (its TIR attribute), or
// "" when it holds none.
func (c *applyCtx) rootRoleNamed(did, cid string) (_ string, err error) {
	it, err := c.b.NewIter(&pebble.IterOptions{LowerBound: []byte{tableRoots}, UpperBound: []byte{tableRoots + 1}})
	if err != nil {
		return "", err
	}
	defer closeJoin(it, &err)
	for it.First(); it.Valid(); it.Next() {
		if _, d, _ := strings.Cut(string(it.Key()[1:]), "\x00"); d != did {
			continue
		}
		var r record.RootAccreditor
		if err := decodeRecord(it.Value(), &r); err != nil {
			return "", err
		}
		if len(r.Events) > 0 && r.Events[0].Operation == cid {
			return r.Framework, nil
		}
	}
	return "", it.Error()
}

// checkRootCredential checks addRootAccreditor's credential: the root's
// VerifiableAuthorisationForTrustChain, issued to the accreditor by one of
// the governance members that signed the operation and signed with that
// member's key.
func (c *applyCtx) checkRootCredential(op *record.RootChange) error {
	if op.Op != record.OpAddRootAccreditor {
		return record.Reject(record.CodeInvalid, "only addRootAccreditor carries a credential")
	}
	rc, err := record.ParseRootCredential(op.Credential)
	if err != nil {
		return err
	}
	if rc.Subject != op.Accreditor {
		return record.Reject(record.CodeInvalid, "the credential's credentialSubject.id %q is not the accreditor %s", rc.Subject, op.Accreditor)
	}
	if _, member := c.s.members[rc.Issuer]; !member || !slices.Contains(c.signers, rc.Issuer) {
		return record.Reject(record.CodeNotAuthorized, "the credential's issuer %s must be a governance member that signs the operation", rc.Issuer)
	}
	kid := rc.JWS.Signatures[0].Protected.KeyID
	if did, _, _ := strings.Cut(kid, "#"); did != rc.Issuer {
		return record.Reject(record.CodeNotAuthorized, "the credential is signed by kid %q, not by its issuer %s", kid, rc.Issuer)
	}
	k, _, err := c.s.verify.resolveKey(c.evaluator(), kid)
	if err != nil {
		return err
	}
	if _, err := rc.JWS.Verify(k.jose); err != nil {
		return record.Reject(record.CodeBadSignature, "the credential's signature does not verify against %s's key", rc.Issuer)
	}
	return nil
}
