package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// maxKeys bounds the keys one entity may register.
const maxKeys = 16

// entity reads a fresh copy of an entity record from the batch, for the
// apply to change and put back.
func (c *applyCtx) entity(did string) (*record.Entity, bool, error) {
	var ent record.Entity
	ok, err := getJSON(c.b, key(tableEntities, did), &ent)
	return &ent, ok, err
}

// putEntity writes an entity record. Signature checks read entities
// through the read-side cache, which drops this one when the batch
// commits; until then the batch's own reads see it (see applyCtx.evaluator).
func (c *applyCtx) putEntity(ent *record.Entity) {
	k := key(tableEntities, ent.ID)
	mustSetJSON(c.b, k, ent)
	c.dirty(decide.EntityKey(ent.ID))
}

// validKeys parses the JWKs an operation registers for did.
func validKeys(did string, keys []json.RawMessage) ([]json.RawMessage, error) {
	if len(keys) > maxKeys {
		return nil, record.Reject(record.CodeInvalid, "%d keys, limit %d", len(keys), maxKeys)
	}
	seen := map[string]bool{}
	out := make([]json.RawMessage, 0, len(keys))
	for _, raw := range keys {
		jwk, err := record.ParsePublicJWK(raw)
		if err != nil {
			return nil, record.Reject(record.CodeInvalid, "key of %s: %v", did, err)
		}
		if seen[jwk.KeyID] {
			return nil, record.Reject(record.CodeInvalid, "key id %q listed twice", jwk.KeyID)
		}
		seen[jwk.KeyID] = true
		// Store the canonical public form, never what the client sent.
		canon, err := jwk.MarshalJSON()
		if err != nil {
			return nil, record.Reject(record.CodeInvalid, "key %q: %v", jwk.KeyID, err)
		}
		out = append(out, canon)
	}
	return out, nil
}

func validMetadata(m *record.EntityMetadata) error { return record.Invalid(record.CheckMetadata(m)) }

// validHomepage refuses, from FeatureLevelClearRefusals on, metadata whose
// homepage is not an http(s) URL with a host: verifiers and the DCC export
// link to it. Below the level any text is kept, as older builds keep it;
// an update checks the homepage only when it changes it, so an entity
// registered below the level with another homepage can still update the
// rest of its metadata (trustctl and the DCC import send it all).
func (c *applyCtx) validHomepage(m *record.EntityMetadata) error {
	if m == nil || !c.s.clearRefusals() {
		return nil
	}
	return record.Invalid(record.CheckHomepage(m.Homepage))
}

// isActiveAccreditor reports whether did may grant accreditations somewhere
// at the commit time: a root accreditor of a framework, or holder of an
// authorized accredit accreditation.
func (c *applyCtx) isActiveAccreditor(did string) (bool, error) {
	e := c.evaluator()
	it, err := c.b.NewIter(&pebble.IterOptions{LowerBound: []byte{tableRoots}, UpperBound: []byte{tableRoots + 1}})
	if err != nil {
		return false, err
	}
	for it.First(); it.Valid(); it.Next() {
		fw, d, _ := strings.Cut(string(it.Key()[1:]), "\x00")
		if d != did {
			continue
		}
		if ok, err := e.IsRoot(fw, did, c.now); err != nil || ok {
			return ok, errors.Join(err, it.Close())
		}
	}
	if err := it.Close(); err != nil {
		return false, err
	}
	return c.holdsActive(did, record.ActionAccredit)
}

// holdsActive reports whether did holds an accreditation for action whose
// chain is in force at the commit time, in any framework.
func (c *applyCtx) holdsActive(did, action string) (_ bool, err error) {
	e := c.evaluator()
	p := prefix(tableReceived, did)
	it, err := c.b.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return false, err
	}
	defer closeJoin(it, &err)
	for it.First(); it.Valid(); it.Next() {
		_, id, _ := bytes.Cut(bytes.TrimPrefix(it.Key(), p), []byte{0})
		a, err := e.Accreditation(string(id))
		if err != nil {
			return false, err
		}
		if a == nil || a.Action != action {
			continue
		}
		if _, reason, _, err := e.Chain(a, c.now); err != nil || reason == record.ReasonActive {
			return err == nil, err
		}
	}
	return false, it.Error()
}

func (c *applyCtx) registerEntity(op *record.RegisterEntity) (string, error) {
	if err := record.Invalid(record.ValidateEntity(op.ID, op.Name, op.Metadata)); err != nil {
		return "", err
	}
	if err := c.validHomepage(op.Metadata); err != nil {
		return "", err
	}
	self := strings.HasPrefix(op.ID, "did:key:") && c.signer() == op.ID
	gov := c.isGovernance()
	if !self && !gov {
		ok, err := c.isActiveAccreditor(c.signer())
		if err != nil {
			return "", err
		}
		if !ok {
			return "", record.Reject(record.CodeNotAuthorized, "%s may not register %s: an entity is registered by itself (did:key), by governance, or by an active accreditor", c.signer(), op.ID)
		}
		if c.s.keyAuthority() {
			if err := c.thirdPartyMayRegister(op.ID); err != nil {
				return "", err
			}
		}
	}
	if _, ok, err := c.entity(op.ID); err != nil {
		return "", err
	} else if ok {
		return "", record.Reject(record.CodeConflict, "%s is registered already: use updateEntity or rotateKeys", op.ID)
	}
	keys, err := validKeys(op.ID, op.Keys)
	if err != nil {
		return "", err
	}
	if c.s.keyAuthority() && strings.HasPrefix(op.ID, "did:key:") {
		if err := onlyOwnKey(op.ID, keys); err != nil {
			return "", err
		}
	}
	ent := &record.Entity{
		ID: op.ID, Name: op.Name, Metadata: op.Metadata, Keys: keys, Registered: true,
		CreatedIndex: c.index, UpdatedIndex: c.index,
	}
	if c.s.keyAuthority() && len(keys) > 0 {
		ent.KeysBoundBy = c.s.nextBinder(op.ID, "", c.signers)
	}
	c.putEntity(ent)
	c.touched = append(c.touched, op.ID)
	return op.ID, nil
}

func (c *applyCtx) updateEntity(op *record.UpdateEntity) (string, error) {
	if c.s.clearRefusals() {
		if op.ID == "" {
			return "", record.Reject(record.CodeMalformed, "updateEntity names no id: give the DID of the entity to update")
		}
		if op.Name == nil && op.Metadata == nil {
			return "", record.Reject(record.CodeInvalid, "updateEntity changes nothing: give name or metadata")
		}
	}
	ent, ok, err := c.entity(op.ID)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", record.Reject(record.CodeInvalid, "%s is not registered: use registerEntity", op.ID)
	}
	if c.signer() != op.ID && !c.isGovernance() {
		return "", record.Reject(record.CodeNotAuthorized, "%s may not update %s: only the entity itself or governance may", c.signer(), op.ID)
	}
	if op.Name != nil {
		if strings.TrimSpace(*op.Name) == "" {
			return "", record.Reject(record.CodeInvalid, "entity name is empty")
		}
		if err := record.Invalid(record.ValidText("name", *op.Name, 256)); err != nil {
			return "", err
		}
		ent.Name = *op.Name
	}
	if op.Metadata != nil {
		if err := validMetadata(op.Metadata); err != nil {
			return "", err
		}
		if ent.Metadata == nil || op.Metadata.Homepage != ent.Metadata.Homepage {
			if err := c.validHomepage(op.Metadata); err != nil {
				return "", err
			}
		}
		ent.Metadata = op.Metadata
	}
	ent.UpdatedIndex = c.index
	c.putEntity(ent)
	c.touched = append(c.touched, op.ID)
	return op.ID, nil
}

func (c *applyCtx) rotateKeys(op *record.RotateKeys) (string, error) {
	if strings.HasPrefix(op.ID, "did:key:") {
		return "", record.Reject(record.CodeInvalid, "a did:key carries its own key and cannot rotate it: use a new did:key")
	}
	ent, ok, err := c.entity(op.ID)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", record.Reject(record.CodeInvalid, "%s is not registered: use registerEntity", op.ID)
	}
	gov := c.isGovernance()
	if c.signer() != op.ID && !gov {
		return "", record.Reject(record.CodeNotAuthorized, "keys of %s are rotated with one of its current keys (or by governance), not by %s", op.ID, c.signer())
	}
	if _, member := c.s.members[op.ID]; member && !gov && c.s.keyAuthority() {
		return "", record.Reject(record.CodeNotAuthorized, "%s is a governance member: its keys come from the genesis and change only through governance (rotateKeys signed by %d of the %d members)",
			op.ID, c.s.genesis.Threshold, len(c.s.genesis.Members))
	}
	if len(op.Keys) == 0 {
		return "", record.Reject(record.CodeInvalid, "rotateKeys needs at least one new key")
	}
	keys, err := validKeys(op.ID, op.Keys)
	if err != nil {
		return "", err
	}
	ent.Keys = keys
	if c.s.keyAuthority() {
		ent.KeysBoundBy = c.s.nextBinder(op.ID, ent.KeysBoundBy, c.signers)
	}
	ent.UpdatedIndex = c.index
	c.putEntity(ent)
	c.touched = append(c.touched, op.ID)
	return op.ID, nil
}
