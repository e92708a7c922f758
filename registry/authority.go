package registry

import (
	"bytes"
	"crypto"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/record"
)

// Who may bind keys to an identifier (SPEC §3), from feature level
// FeatureLevelKeyAuthority on:
//
//   - A did:key carries its own key; nothing binds another to it.
//   - A governance member's keys come from the genesis. Only an operation
//     signed by M of N members (registerEntity, rotateKeys) binds others,
//     and a member's entity record is used for its signatures only when
//     its keys were bound that way (Entity.KeysBoundBy); any other record
//     of a member's DID names no key of it.
//   - An entity changes its own keys with rotateKeys signed by a current
//     key; governance may too.
//   - A third party (an active accreditor) may register a DID only while
//     that DID holds no authority in the registry: not a governance
//     member, not a root accreditor of any framework (at any time), and
//     not the subject of any accreditation granted by someone other than
//     the registrar itself (a grantor signed its grants, so it is
//     registered already).
//     Once registered, an entity's keys change only by its own key or by
//     governance, so whoever accredits it later accredits the keys it sees,
//     and the record says who bound them.
//
// Proof of possession (the subject co-signing its registration) is not
// asked for: for a did:web it would prove possession of the registered
// key, which the registrar chose, not control of the domain, and the
// takeovers above are closed by the authority rule.

// KeysByGovernance is Entity.KeysBoundBy for keys bound by an operation
// that M of N governance members signed.
const KeysByGovernance = "governance"

// keyAuthority reports whether the rules above apply: the cluster's
// feature level has reached FeatureLevelKeyAuthority. Before, the apply
// keeps the first release's rules, so that every node, of either build,
// reaches the same state from the same log.
func (s *consortium) keyAuthority() bool {
	return s.ClusterFeatureLevel() >= FeatureLevelKeyAuthority
}

// signingKeys returns the keys a signature of did is checked against, ent
// being its entity record (nil when it has none). did is not a did:key.
func (s *consortium) signingKeys(did string, ent *record.Entity) []json.RawMessage {
	m, member := s.members[did]
	switch {
	case member && s.keyAuthority() && (ent == nil || len(ent.Keys) == 0 || !boundByController(ent)):
		return m.Keys
	case ent != nil:
		return ent.Keys
	case member:
		return m.Keys
	}
	return nil
}

// boundByController reports whether ent's keys were bound by governance or
// by the entity itself.
func boundByController(ent *record.Entity) bool {
	return ent.KeysBoundBy == KeysByGovernance || ent.KeysBoundBy == ent.ID
}

// nextBinder is what Entity.KeysBoundBy records after an operation that
// signers signed binds keys to did, whose record said prev: governance
// (M of N members) binds them itself; an entity that rotates its own keys
// keeps prev, since the key it signs with descends from whoever bound the
// first ones (a registrar that chose the keys and rotates them as the
// entity stays the binder); anyone else is the binder.
func (s *consortium) nextBinder(did, prev string, signers []string) string {
	n := 0
	for _, signer := range signers {
		if _, ok := s.members[signer]; ok {
			n++
		}
	}
	switch {
	case n >= s.genesis.Threshold:
		return KeysByGovernance
	case signers[0] == did && prev != "":
		return prev
	}
	return signers[0]
}

// thirdPartyMayRegister checks that c's signer, an active accreditor that
// is neither governance nor the identifier itself, may register did.
func (c *applyCtx) thirdPartyMayRegister(did string) error {
	if _, ok := c.s.members[did]; ok {
		return record.Reject(record.CodeNotAuthorized, "%s may not register %s: it is a governance member, whose keys come from the genesis and change only through governance (registerEntity or rotateKeys signed by %d of the %d members)",
			c.signer(), did, c.s.genesis.Threshold, len(c.s.genesis.Members))
	}
	held, err := c.authorityHeld(did, c.signer())
	if err != nil {
		return err
	}
	if held != "" {
		return record.Reject(record.CodeNotAuthorized, "%s may not register %s: it is %s, and an accreditor registers only an identifier that holds no authority yet; governance may register it (signed by %d of the %d members)",
			c.signer(), did, held, c.s.genesis.Threshold, len(c.s.genesis.Members))
	}
	return nil
}

// authorityHeld describes authority did holds in the registry that a
// registration by registrar would let registrar take over, or returns ""
// when it holds none: a root accreditor of a framework (whatever its
// status: answers about the past rest on it), or the subject of an
// accreditation granted by someone other than registrar. A grantor signed
// its grants, so it is registered already (or a member, or a did:key).
func (c *applyCtx) authorityHeld(did, registrar string) (_ string, err error) {
	// Roots are keyed by framework first; frameworks are few, and
	// isActiveAccreditor scans the same table.
	it, err := c.b.NewIter(&pebble.IterOptions{LowerBound: []byte{tableRoots}, UpperBound: []byte{tableRoots + 1}})
	if err != nil {
		return "", err
	}
	for it.First(); it.Valid(); it.Next() {
		fw, d, _ := strings.Cut(string(it.Key()[1:]), "\x00")
		if d == did {
			return fmt.Sprintf("a root accreditor of framework %s", fw), it.Close()
		}
	}
	if err := it.Close(); err != nil {
		return "", err
	}
	e := c.evaluator()
	p := prefix(tableReceived, did)
	it, err = c.b.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return "", err
	}
	defer closeJoin(it, &err)
	for it.First(); it.Valid(); it.Next() {
		fw, id, _ := bytes.Cut(bytes.TrimPrefix(it.Key(), p), []byte{0})
		a, err := e.Accreditation(string(id))
		if err != nil {
			return "", err
		}
		if a != nil && a.Accreditor != registrar {
			return fmt.Sprintf("the subject of accreditation %s granted by %s in framework %s", id, a.Accreditor, fw), nil
		}
	}
	return "", it.Error()
}

// markMemberKeys runs when the cluster's level reaches
// FeatureLevelKeyAuthority: it records who bound the keys of each
// governance member's entity record written by the first release's rules,
// found from the operation in the member's history that last registered
// it or rotated its keys. Keys that governance or the member itself bound
// stay the member's keys; keys a third party bound are no longer used for
// the member's signatures (signingKeys), which fall back to the genesis.
// Members are few and the walk runs once, in the apply, so every node
// writes the same records.
func (s *applier) markMemberKeys(b *pebble.Batch) {
	c := &applyCtx{s: s, b: b}
	for _, m := range s.genesis.Members {
		if strings.HasPrefix(m.ID, "did:key:") {
			continue
		}
		ent, ok, err := c.entity(m.ID)
		if err != nil {
			panic(fmt.Sprintf("registry: read entity %s: %v", m.ID, err))
		}
		if !ok || len(ent.Keys) == 0 || ent.KeysBoundBy != "" {
			continue
		}
		binder, err := s.lastKeyBinder(b, m.ID)
		if err != nil {
			panic(fmt.Sprintf("registry: history of %s: %v", m.ID, err))
		}
		ent.KeysBoundBy = binder
		c.putEntity(ent)
	}
}

// lastKeyBinder follows did's history from the start, through every
// accepted registerEntity and rotateKeys of did, and returns who bound its
// current keys as KeysBoundBy records it (nextBinder): a rotation the
// entity signed keeps the binder before it, so keys a third party chose
// and then rotated as the entity are still that third party's.
func (s *applier) lastKeyBinder(r pebble.Reader, did string) (_ string, err error) {
	p := prefix(tableHistory, did)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return "", err
	}
	defer closeJoin(it, &err)
	binder := ""
	for it.First(); it.Valid(); it.Next() {
		var rec opRecord
		found, err := getJSON(r, key(tableOps, string(it.Value())), &rec)
		if err != nil {
			return "", err
		}
		if !found || rec.ID != did || (rec.Op != record.OpRegisterEntity && rec.Op != record.OpRotateKeys) || len(rec.Signers) == 0 {
			continue
		}
		binder = s.nextBinder(did, binder, rec.Signers)
	}
	if err := it.Error(); err != nil {
		return "", err
	}
	if binder == "" {
		// Every entity record was written by an operation in its history;
		// were that one missing, no one is known to have bound the keys,
		// and the genesis keeps them.
		return "unknown", nil
	}
	return binder, nil
}

// onlyOwnKey refuses keys for a did:key other than the key the DID itself
// carries: its signatures are always checked against that key, so any
// other key on its record would only mislead whoever reads the record.
func onlyOwnKey(did string, keys []json.RawMessage) error {
	own, err := record.ParseDIDKey(did)
	if err != nil {
		return record.Reject(record.CodeInvalid, "%s: %v", did, err)
	}
	for _, raw := range keys {
		k, err := record.ParsePublicJWK(raw)
		if err != nil {
			return record.Reject(record.CodeInvalid, "key of %s: %v", did, err)
		}
		if eq, ok := k.Key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(own) {
			return record.Reject(record.CodeInvalid, "key %q is not the key %s carries: a did:key is registered without keys, or with its own key only", k.KeyID, did)
		}
	}
	return nil
}
