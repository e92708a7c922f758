package registry

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Status purposes a list may carry.
const (
	PurposeRevocation = "revocation"
	PurposeSuspension = "suspension"
	PurposeMessage    = "message"
)

// StatusList is an issuer's list and its current version.
type StatusList struct {
	Issuer       string          `json:"issuer"`
	ID           string          `json:"id"`
	Purposes     []string        `json:"purposes"`
	StatusSize   int             `json:"statusSize"`
	Entries      int             `json:"entries"`
	Messages     []StatusMessage `json:"statusMessage,omitempty"`
	TTL          int64           `json:"ttl,omitempty"` // milliseconds
	Current      string          `json:"current"`       // CID of the current version's credential
	CurrentIndex uint64          `json:"currentIndex"`  // registry index of the current version
	Versions     int             `json:"versions"`
	CreatedIndex uint64          `json:"createdIndex"`
	UpdatedIndex uint64          `json:"updatedIndex"`
}

// StatusMessage maps an entry value ("0x1") to a message.
type StatusMessage struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// StatusListVersion is one published version: the issuer-signed credential
// exactly as published.
type StatusListVersion struct {
	CID        string     `json:"cid"` // CID of Credential's bytes
	Index      uint64     `json:"index"`
	Time       time.Time  `json:"time"` // commit time: current from then on
	Previous   string     `json:"previous,omitempty"`
	ValidFrom  *time.Time `json:"validFrom,omitempty"`
	ValidUntil *time.Time `json:"validUntil,omitempty"`
	Operation  string     `json:"operation"`
	// Credential is the VC-JWT. A history listing leaves it out (the
	// version's bytes are at the list's URL with ?timestamp=); stored
	// versions always have it, so omitempty leaves their bytes as they were.
	Credential string `json:"credential,omitempty"`
}

// statusListVC is the part of a BitstringStatusListCredential checked here.
type statusListVC struct {
	Context           json.RawMessage `json:"@context"`
	ID                string          `json:"id"`
	Type              []string        `json:"type"`
	Issuer            json.RawMessage `json:"issuer"`
	ValidFrom         *time.Time      `json:"validFrom"`
	ValidUntil        *time.Time      `json:"validUntil"`
	CredentialSubject struct {
		ID            string          `json:"id"`
		Type          string          `json:"type"`
		StatusPurpose json.RawMessage `json:"statusPurpose"`
		EncodedList   string          `json:"encodedList"`
		TTL           *int64          `json:"ttl"`
		StatusSize    *int            `json:"statusSize"`
		StatusMessage []StatusMessage `json:"statusMessage"`
	} `json:"credentialSubject"`
}

var listIDRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// ParsedStatusList is a verified-shape status-list credential with its
// decoded bitstring.
type ParsedStatusList struct {
	Issuer     string
	Purposes   []string
	StatusSize int
	Messages   []StatusMessage
	TTL        int64
	ValidFrom  *time.Time
	ValidUntil *time.Time
	Bits       []byte
	VC         json.RawMessage
}

// ParseStatusListCredential checks the shape of a BitstringStatusListCredential
// payload (already verified) and decodes its list. A payload that reads two
// ways (checkJSON: a member twice, a member named like a field but for
// case, invalid UTF-8, control characters outside prose) is refused with
// ErrMalformed, as a publishStatusList operation carrying it is.
func ParseStatusListCredential(payload []byte) (*ParsedStatusList, error) {
	if err := checkStatusListJSON(payload); err != nil {
		return nil, err
	}
	return parseStatusListCredential(payload)
}

// parseStatusListCredential is ParseStatusListCredential without the check
// for JSON that reads two ways: for versions already stored, and for the
// apply, where parseOperation made that check and the feature level
// decides whether it counts.
func parseStatusListCredential(payload []byte) (*ParsedStatusList, error) {
	var vc statusListVC
	if err := json.Unmarshal(payload, &vc); err != nil {
		return nil, reject(CodeMalformed, "credential is not a JSON object: %v", err)
	}
	issuer, err := issuerID(vc.Issuer)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(vc.Type, "VerifiableCredential") || !slices.Contains(vc.Type, "BitstringStatusListCredential") {
		return nil, reject(CodeInvalid, "credential type must include VerifiableCredential and BitstringStatusListCredential, got %v", vc.Type)
	}
	cs := vc.CredentialSubject
	if cs.Type != "BitstringStatusList" {
		return nil, reject(CodeInvalid, "credentialSubject.type must be BitstringStatusList, got %q", cs.Type)
	}
	purposes, err := parsePurposes(cs.StatusPurpose)
	if err != nil {
		return nil, err
	}
	p := &ParsedStatusList{Issuer: issuer, Purposes: purposes, StatusSize: 1, Messages: cs.StatusMessage, ValidFrom: vc.ValidFrom, ValidUntil: vc.ValidUntil, VC: payload}
	if cs.StatusSize != nil {
		p.StatusSize = *cs.StatusSize
	}
	if !slices.Contains([]int{1, 2, 4, 8}, p.StatusSize) {
		return nil, reject(CodeInvalid, "statusSize %d must be 1, 2, 4 or 8", p.StatusSize)
	}
	if err := checkMessages(p.StatusSize, cs.StatusMessage); err != nil {
		return nil, err
	}
	if cs.TTL != nil {
		if *cs.TTL < 0 {
			return nil, reject(CodeInvalid, "ttl %d must not be negative", *cs.TTL)
		}
		p.TTL = *cs.TTL
	}
	if vc.ValidFrom != nil && vc.ValidUntil != nil && !vc.ValidUntil.After(*vc.ValidFrom) {
		return nil, reject(CodeInvalid, "validUntil is not after validFrom")
	}
	bits, err := DecodeBitstring(cs.EncodedList)
	if err != nil {
		code := CodeMalformedValue
		if errors.Is(err, ErrStatusListLength) {
			code = CodeStatusListLength
		}
		return nil, reject(code, "%v", err)
	}
	if n := StatusEntries(bits, p.StatusSize); n < MinStatusListEntries {
		return nil, reject(CodeStatusListLength, "the list holds %d entries of %d bits; at least %d are required", n, p.StatusSize, MinStatusListEntries)
	}
	p.Bits = bits
	return p, nil
}

// issuerObject is a credential's issuer in its object form.
type issuerObject struct {
	ID string `json:"id"`
}

func issuerID(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return s, nil
	}
	var o issuerObject
	if json.Unmarshal(raw, &o) == nil && o.ID != "" {
		return o.ID, nil
	}
	return "", reject(CodeInvalid, "credential issuer must be a DID or an object with an id")
}

func parsePurposes(raw json.RawMessage) ([]string, error) {
	var list []string
	var one string
	switch {
	case json.Unmarshal(raw, &one) == nil && one != "":
		list = []string{one}
	case json.Unmarshal(raw, &list) == nil && len(list) > 0:
	default:
		return nil, reject(CodeInvalid, "statusPurpose must be a purpose or a list of purposes")
	}
	for _, p := range list {
		if p != PurposeRevocation && p != PurposeSuspension && p != PurposeMessage {
			return nil, reject(CodeInvalid, "statusPurpose %q must be revocation, suspension or message", p)
		}
	}
	slices.Sort(list)
	if len(slices.Compact(slices.Clone(list))) != len(list) {
		return nil, reject(CodeInvalid, "statusPurpose lists a purpose twice")
	}
	return list, nil
}

// checkMessages applies the Recommendation's rules: with statusSize above 1
// there is one message for each of the 2^statusSize values.
func checkMessages(size int, msgs []StatusMessage) error {
	if size == 1 && len(msgs) == 0 {
		return nil
	}
	if size > 1 && len(msgs) == 0 {
		return reject(CodeInvalid, "statusSize %d needs statusMessage with %d entries", size, 1<<size)
	}
	if len(msgs) != 1<<size {
		return reject(CodeInvalid, "statusMessage has %d entries; statusSize %d needs %d", len(msgs), size, 1<<size)
	}
	seen := map[int64]bool{}
	for _, m := range msgs {
		v, err := strconv.ParseInt(strings.TrimPrefix(m.Status, "0x"), 16, 32)
		if err != nil || !strings.HasPrefix(m.Status, "0x") || v < 0 || v >= 1<<size || seen[v] {
			return reject(CodeInvalid, "statusMessage status %q must be a distinct hex value 0x0..0x%x", m.Status, 1<<size-1)
		}
		seen[v] = true
		if err := invalid(validText("status message", m.Message, 1024)); err != nil {
			return err
		}
	}
	return nil
}

func (c *applyCtx) publishStatusList(op *PublishStatusList) (string, error) {
	if !listIDRE.MatchString(op.List) {
		return "", reject(CodeInvalid, "list id %q must be 1 to 128 letters, digits, '.', '_', '~' or '-'", op.List)
	}
	jwt, err := jose.ParseSignedCompact(op.Credential, acceptedAlgs)
	if err != nil || len(jwt.Signatures) != 1 {
		return "", reject(CodeMalformed, "credential must be a VC-JWT (compact JWS, EdDSA or ES256): %v", err)
	}
	kid := jwt.Signatures[0].Protected.KeyID
	if !strings.Contains(kid, "#") {
		return "", reject(CodeMalformed, "credential kid %q is not a DID URL", kid)
	}
	signer, did, err := c.s.verify.resolveKey(c.evaluator(), kid)
	if err != nil {
		return "", err
	}
	payload, err := jwt.Verify(signer.jose)
	if err != nil {
		return "", reject(CodeBadSignature, "the credential's signature does not verify against %s", kid)
	}
	p, err := parseStatusListCredential(payload)
	if err != nil {
		return "", err
	}
	if p.Issuer != did || did != c.signer() {
		return "", reject(CodeNotAuthorized, "the credential's issuer %s, its signing key's DID %s and the operation's signer %s must be one issuer", p.Issuer, did, c.signer())
	}
	accredited, err := c.holdsActive(did, ActionIssue)
	if err != nil {
		return "", err
	}
	if !accredited && !c.s.keyAuthority() {
		return "", reject(CodeNotAuthorized, "%s holds no active issue accreditation: only accredited issuers publish status lists", did)
	}
	k := key(tableStatusLists, did, op.List)
	var list StatusList
	exists, err := getJSON(c.b, k, &list)
	if err != nil {
		return "", err
	}
	if !accredited && !exists {
		return "", reject(CodeNotAuthorized, "%s holds no active issue accreditation: a new status list needs one; its existing lists still take versions that set revocation or suspension bits", did)
	}
	versionCID := CIDOf([]byte(op.Credential))
	entries := StatusEntries(p.Bits, p.StatusSize)
	switch {
	case !exists && op.Previous != "":
		return "", reject(CodeConflict, "list %s of %s does not exist: publish its first version without previous", op.List, did)
	case exists && op.Previous == "":
		return "", reject(CodeConflict, "list %s of %s exists already (current version %s): a new version names the current one as previous", op.List, did, list.Current)
	case exists && op.Previous != list.Current:
		return "", reject(CodeConflict, "previous %q is not the current version %s: fetch the list again, apply the change, and publish with the current version as previous", op.Previous, list.Current)
	}
	if exists {
		if !slices.Equal(list.Purposes, p.Purposes) || list.StatusSize != p.StatusSize {
			return "", reject(CodeInvalid, "a list keeps its statusPurpose %v and statusSize %d", list.Purposes, list.StatusSize)
		}
		if entries < list.Entries {
			return "", reject(CodeStatusListLength, "the list cannot shrink from %d to %d entries", list.Entries, entries)
		}
		if slices.Contains(p.Purposes, PurposeRevocation) || !accredited {
			prev, err := c.s.caches.lists.decodedVersion(c.b, did, op.List, list.Current, list.CurrentIndex)
			if err != nil {
				return "", err
			}
			i := firstUnset(prev, p.Bits)
			if i >= 0 && slices.Contains(p.Purposes, PurposeRevocation) {
				return "", reject(CodeInvalid, "entry %d is revoked in the current version and unset in this one: revocation cannot be undone", i/p.StatusSize)
			}
			if !accredited {
				var cur StatusListVersion
				if _, err := getJSON(c.b, binary.BigEndian.AppendUint64(prefix(tableListVersions, did, op.List), list.CurrentIndex), &cur); err != nil {
					return "", err
				}
				if err := onlyRevokes(did, &list, &cur, p, entries, i); err != nil {
					return "", err
				}
			}
		}
	} else {
		list = StatusList{Issuer: did, ID: op.List, CreatedIndex: c.index}
	}
	list.Purposes, list.StatusSize, list.Entries, list.Messages, list.TTL = p.Purposes, p.StatusSize, entries, p.Messages, p.TTL
	list.Current, list.CurrentIndex, list.UpdatedIndex = versionCID, c.index, c.index
	list.Versions++
	mustSetJSON(c.b, k, list)
	vk := binary.BigEndian.AppendUint64(prefix(tableListVersions, did, op.List), c.index)
	mustSetJSON(c.b, vk, StatusListVersion{
		CID: versionCID, Index: c.index, Time: c.now, Previous: op.Previous,
		ValidFrom: p.ValidFrom, ValidUntil: p.ValidUntil, Operation: c.op.CID, Credential: op.Credential,
	})
	c.s.caches.lists.add(versionCID, p.Bits)
	return did + "/" + op.List, nil
}

// onlyRevokes checks that a new version of list, published by an issuer
// that holds no active issue accreditation, makes its credentials no more
// valid than the current version cur: the list is a revocation or
// suspension list, keeps its length and messages, clears no bit (unset is
// firstUnset's answer), and is valid for no longer (validFrom no earlier,
// validUntil no later, ttl no longer: a verifier keeps a cached list up
// to its ttl). Revoking and suspending need no authority beyond owning
// the list; anything else needs an active issue accreditation.
func onlyRevokes(did string, list *StatusList, cur *StatusListVersion, p *ParsedStatusList, entries, unset int) error {
	const why = "holds no active issue accreditation, which"
	switch {
	case slices.Contains(p.Purposes, PurposeMessage):
		return reject(CodeNotAuthorized, "%s %s a new version of a list with purpose message needs; only revocation and suspension lists take new versions after an issuer's accreditation ends", did, why)
	case entries != list.Entries:
		return reject(CodeNotAuthorized, "%s %s growing list %s from %d to %d entries needs; publish it at its length with revocation or suspension bits set", did, why, list.ID, list.Entries, entries)
	case !slices.Equal(list.Messages, p.Messages):
		return reject(CodeNotAuthorized, "%s %s changing the statusMessage of list %s needs; keep the current messages", did, why, list.ID)
	case unset >= 0:
		return reject(CodeNotAuthorized, "entry %d is suspended in the current version and clear in this one: %s %s lifting a suspension needs; setting revocation and suspension bits does not", unset/p.StatusSize, did, why)
	case cur.ValidFrom != nil && (p.ValidFrom == nil || p.ValidFrom.Before(*cur.ValidFrom)):
		return reject(CodeNotAuthorized, "%s %s moving list %s's validFrom before %s needs", did, why, list.ID, cur.ValidFrom.Format(time.RFC3339))
	case cur.ValidUntil != nil && (p.ValidUntil == nil || p.ValidUntil.After(*cur.ValidUntil)):
		return reject(CodeNotAuthorized, "%s %s extending list %s's validUntil past %s needs", did, why, list.ID, cur.ValidUntil.Format(time.RFC3339))
	case p.TTL > list.TTL:
		return reject(CodeNotAuthorized, "%s %s lengthening list %s's ttl from %d to %d needs", did, why, list.ID, list.TTL, p.TTL)
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
