package registry

import (
	"crypto"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/trustreg/trustreg/registry/record"
)

func (c *applyCtx) publishStatusList(op *record.PublishStatusList) (string, error) {
	if !record.ListIDRE.MatchString(op.List) {
		return "", record.Reject(record.CodeInvalid, "list id %q must be 1 to 128 letters, digits, '.', '_', '~' or '-'", op.List)
	}
	payload, did, err := c.verifyListCredential(op.Credential)
	if err != nil {
		return "", err
	}
	rules := record.ListRulesV1
	if c.s.ClusterFeatureLevel() >= FeatureLevelStatusListREC {
		rules = record.ListRulesREC
	}
	p, err := record.ParseStatusListRules(payload, rules)
	if err != nil {
		return "", err
	}
	if p.Issuer != did || did != c.signer() {
		return "", record.Reject(record.CodeNotAuthorized, "the credential's issuer %s, its signing key's DID %s and the operation's signer %s must be one issuer", p.Issuer, did, c.signer())
	}
	accredited, err := c.holdsActive(did, record.ActionIssue)
	if err != nil {
		return "", err
	}
	if !accredited && !c.s.keyAuthority() {
		return "", record.Reject(record.CodeNotAuthorized, "%s holds no active issue accreditation: only accredited issuers publish status lists", did)
	}
	k := key(tableStatusLists, did, op.List)
	var list record.StatusList
	exists, err := getJSON(c.b, k, &list)
	if err != nil {
		return "", err
	}
	if !accredited && !exists {
		return "", record.Reject(record.CodeNotAuthorized, "%s holds no active issue accreditation: a new status list needs one; its existing lists still take versions that set revocation or suspension bits", did)
	}
	versionCID := record.CIDOf([]byte(op.Credential))
	entries := record.StatusEntries(p.Bits, p.StatusSize)
	switch {
	case !exists && op.Previous != "":
		return "", record.Reject(record.CodeConflict, "list %s of %s does not exist: publish its first version without previous", op.List, did)
	case exists && op.Previous == "":
		return "", record.Reject(record.CodeConflict, "list %s of %s exists already (current version %s): a new version names the current one as previous", op.List, did, list.Current)
	case exists && op.Previous != list.Current:
		return "", record.Reject(record.CodeConflict, "previous %q is not the current version %s: fetch the list again, apply the change, and publish with the current version as previous", op.Previous, list.Current)
	}
	if exists {
		if !slices.Equal(list.Purposes, p.Purposes) || list.StatusSize != p.StatusSize {
			return "", record.Reject(record.CodeInvalid, "a list keeps its statusPurpose %v and statusSize %d", list.Purposes, list.StatusSize)
		}
		if entries < list.Entries {
			return "", record.Reject(record.CodeStatusListLength, "the list cannot shrink from %d to %d entries", list.Entries, entries)
		}
		if irreversible(p.Purposes) || !accredited {
			prev, err := c.s.caches.lists.decodedVersion(c.b, did, op.List, list.Current, list.CurrentIndex)
			if err != nil {
				return "", err
			}
			i := firstUnset(prev, p.Bits)
			if i >= 0 && irreversible(p.Purposes) {
				return "", record.Reject(record.CodeInvalid, "entry %d is set in the current version and unset in this one: revocation and refresh cannot be undone (REC §2.2)", i/p.StatusSize)
			}
			if !accredited {
				var cur record.StatusListVersion
				if _, err := getJSON(c.b, binary.BigEndian.AppendUint64(prefix(tableListVersions, did, op.List), list.CurrentIndex), &cur); err != nil {
					return "", err
				}
				if err := onlyRevokes(did, &list, &cur, p, entries, i); err != nil {
					return "", err
				}
			}
		}
	} else {
		list = record.StatusList{Issuer: did, ID: op.List, CreatedIndex: c.index}
	}
	list.Purposes, list.StatusSize, list.Entries, list.Messages, list.TTL = p.Purposes, p.StatusSize, entries, p.Messages, p.TTL
	list.Current, list.CurrentIndex, list.UpdatedIndex = versionCID, c.index, c.index
	list.Versions++
	mustSetJSON(c.b, k, list)
	vk := binary.BigEndian.AppendUint64(prefix(tableListVersions, did, op.List), c.index)
	mustSetJSON(c.b, vk, record.StatusListVersion{
		CID: versionCID, Index: c.index, Time: c.now, Previous: op.Previous,
		ValidFrom: p.ValidFrom, ValidUntil: p.ValidUntil, Operation: c.op.CID, Credential: op.Credential,
	})
	c.s.caches.lists.add(versionCID, p.Bits)
	return did + "/" + op.List, nil
}

// verifyListCredential verifies a published credential, a VC-JWT or (from
// FeatureLevelStatusListREC on, which featureLevelOf enforces) a JSON
// credential secured with Data Integrity, against the key its kid or
// verificationMethod names, and returns its JSON and the key's DID.
func (c *applyCtx) verifyListCredential(credential string) ([]byte, string, error) {
	if record.IsDataIntegrity(credential) {
		var did string
		proof, err := record.VerifyDataIntegrity([]byte(credential), func(vm string) (crypto.PublicKey, error) {
			k, d, err := c.s.verify.resolveKey(c.evaluator(), vm)
			did = d
			return k.pub, err
		})
		switch {
		case errors.Is(err, record.ErrBadSignature):
			return nil, "", record.Reject(record.CodeBadSignature, "%v", err)
		case errors.Is(err, record.ErrDataIntegrity):
			return nil, "", record.Reject(record.CodeMalformed, "%v", err)
		case err != nil:
			return nil, "", err
		}
		if m := record.RDFUnsignedListMembers([]byte(credential)); proof.Cryptosuite == record.CryptosuiteEdDSARDFC && len(m) > 0 {
			return nil, "", record.Reject(record.CodeInvalid, "credentialSubject members %v are not defined for a BitstringStatusList by the credentials v2 context, so an eddsa-rdfc-2022 proof does not sign them: secure this list with eddsa-jcs-2022 or as a VC-JWT", m)
		}
		return []byte(credential), did, nil
	}
	jwt, err := jose.ParseSignedCompact(credential, record.AcceptedAlgs)
	if err != nil || len(jwt.Signatures) != 1 {
		return nil, "", record.Reject(record.CodeMalformed, "credential must be a VC-JWT (compact JWS, EdDSA or ES256) or a JSON credential secured with Data Integrity: %v", err)
	}
	kid := jwt.Signatures[0].Protected.KeyID
	if !strings.Contains(kid, "#") {
		return nil, "", record.Reject(record.CodeMalformed, "credential kid %q is not a DID URL", kid)
	}
	signer, did, err := c.s.verify.resolveKey(c.evaluator(), kid)
	if err != nil {
		return nil, "", err
	}
	payload, err := jwt.Verify(signer.jose)
	if err != nil {
		return nil, "", record.Reject(record.CodeBadSignature, "the credential's signature does not verify against %s", kid)
	}
	return payload, did, nil
}

// irreversible reports whether a list's set entries may never be cleared:
// revocation and refresh are not reversible (REC §2.2).
func irreversible(purposes []string) bool {
	return slices.Contains(purposes, record.PurposeRevocation) || slices.Contains(purposes, record.PurposeRefresh)
}

// onlyRevokes checks that a new version of list, published by an issuer
// that holds no active issue accreditation, makes its credentials no more
// valid than the current version cur: the list is a revocation or
// suspension list, keeps its length and messages, clears no bit (unset is
// firstUnset's answer), and is valid for no longer (validFrom no earlier,
// validUntil no later, ttl no longer: a verifier keeps a cached list up
// to its ttl). Revoking and suspending need no authority beyond owning
// the list; anything else needs an active issue accreditation.
func onlyRevokes(did string, list *record.StatusList, cur *record.StatusListVersion, p *record.ParsedStatusList, entries, unset int) error {
	const why = "holds no active issue accreditation, which"
	switch {
	case slices.Contains(p.Purposes, record.PurposeMessage):
		return record.Reject(record.CodeNotAuthorized, "%s %s a new version of a list with purpose message needs; only revocation and suspension lists take new versions after an issuer's accreditation ends", did, why)
	case entries != list.Entries:
		return record.Reject(record.CodeNotAuthorized, "%s %s growing list %s from %d to %d entries needs; publish it at its length with revocation or suspension bits set", did, why, list.ID, list.Entries, entries)
	case !slices.Equal(list.Messages, p.Messages):
		return record.Reject(record.CodeNotAuthorized, "%s %s changing the statusMessage of list %s needs; keep the current messages", did, why, list.ID)
	case unset >= 0:
		return record.Reject(record.CodeNotAuthorized, "entry %d is suspended in the current version and clear in this one: %s %s lifting a suspension needs; setting revocation and suspension bits does not", unset/p.StatusSize, did, why)
	case cur.ValidFrom != nil && (p.ValidFrom == nil || p.ValidFrom.Before(*cur.ValidFrom)):
		return record.Reject(record.CodeNotAuthorized, "%s %s moving list %s's validFrom before %s needs", did, why, list.ID, cur.ValidFrom.Format(time.RFC3339))
	case cur.ValidUntil != nil && (p.ValidUntil == nil || p.ValidUntil.After(*cur.ValidUntil)):
		return record.Reject(record.CodeNotAuthorized, "%s %s extending list %s's validUntil past %s needs", did, why, list.ID, cur.ValidUntil.Format(time.RFC3339))
	case p.TTL > list.TTL:
		return record.Reject(record.CodeNotAuthorized, "%s %s lengthening list %s's ttl from %d to %d needs", did, why, list.ID, list.TTL, p.TTL)
	}
	return nil
}

// firstUnset returns the first bit set in prev and clear in next, or -1.
func firstUnset(prev, next []byte) int {
	for i, b := range prev {
		var n byte
		if i < len(next) {
			n = next[i]
		}
		if gone := b &^ n; gone != 0 {
			for bit := 0; bit < 8; bit++ {
				if gone&(0x80>>bit) != 0 {
					return i*8 + bit
				}
			}
		}
	}
	return -1
}
