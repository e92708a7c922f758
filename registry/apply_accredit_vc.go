package registry

import (
	"encoding/hex"
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
	p, err := c.evaluator().accreditation(ref)
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
func (c *applyCtx) rootRoleNamed(did, cid string) (string, error) {
	it, err := c.b.NewIter(&pebble.IterOptions{LowerBound: []byte{tableRoots}, UpperBound: []byte{tableRoots + 1}})
	if err != nil {
		return "", err
	}
	defer it.Close()
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
