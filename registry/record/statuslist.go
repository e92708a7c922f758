package record

import (
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
	// PurposeRefresh says a newer credential is available from the
	// credential's refresh service; like revocation it is not reversible
	// (Bitstring Status List v1.0 REC §2.2).
	PurposeRefresh = "refresh"
)

// ListRules are the rules a status-list credential is read by; the apply
// chooses them by the cluster's feature level.
type ListRules int

const (
	// ListRulesV1 are the first release's: purposes revocation,
	// suspension and message; statusSize 1, 2, 4 or 8; the messages in
	// credentialSubject.statusMessage.
	ListRulesV1 ListRules = iota
	// ListRulesREC follow the Recommendation (Bitstring Status List
	// v1.0, W3C Recommendation 15 May 2025, §2.2): purpose refresh too,
	// any statusSize from 1 to MaxStatusSize, the messages in
	// credentialSubject.statusMessages (statusMessage, the first
	// release's name, is still read), and a message list names its
	// statusSize.
	ListRulesREC
)

// MaxStatusSize is the largest statusSize accepted. The Recommendation
// allows any integer above zero, but a list with statusSize s carries
// 2^s status messages, and beyond 2^16 they do not fit in an operation.
const MaxStatusSize = 16

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
		ID             string          `json:"id"`
		Type           string          `json:"type"`
		StatusPurpose  json.RawMessage `json:"statusPurpose"`
		EncodedList    string          `json:"encodedList"`
		TTL            *int64          `json:"ttl"`
		StatusSize     *int            `json:"statusSize"`
		StatusMessage  []StatusMessage `json:"statusMessage"`
		StatusMessages []StatusMessage `json:"statusMessages"`
	} `json:"credentialSubject"`
}

// ListIDRE is what a status list id must match.
var ListIDRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

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
// ErrMalformed, as a publishStatusList operation carrying it is. A number
// beyond a float64's range is not: a list published below
// FeatureLevelNumberRange may hold one, and its issuer still reads it to
// publish the next version.
func ParseStatusListCredential(payload []byte) (*ParsedStatusList, error) {
	if _, strict := checkStatusListJSON(payload); strict != nil {
		return nil, strict
	}
	return ParseStoredStatusList(payload)
}

// StatusListPayload returns the credential JSON of a published credential:
// a VC-JWT's payload (not verified here), or a Data Integrity credential
// itself.
func StatusListPayload(credential string) ([]byte, error) {
	if IsDataIntegrity(credential) {
		return []byte(credential), nil
	}
	jwt, err := jose.ParseSignedCompact(credential, AcceptedAlgs)
	if err != nil {
		return nil, Errorf(ErrMalformed, "the credential is neither a VC-JWT nor a JSON credential: %v", err)
	}
	return jwt.UnsafePayloadWithoutVerification(), nil
}

// ParseStoredStatusList is ParseStatusListCredential without the check
// for JSON that reads two ways: for versions already stored, and for the
// apply, where ParseOperationDigest made that check and the feature level
// decides whether it counts.
func ParseStoredStatusList(payload []byte) (*ParsedStatusList, error) {
	return ParseStatusListRules(payload, ListRulesREC)
}

// ParseStatusListRules is ParseStoredStatusList by the given rules.
func ParseStatusListRules(payload []byte, rules ListRules) (*ParsedStatusList, error) {
	var vc statusListVC
	if err := json.Unmarshal(payload, &vc); err != nil {
		return nil, Reject(CodeMalformed, "credential is not a JSON object: %v", err)
	}
	issuer, err := issuerID(vc.Issuer)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(vc.Type, "VerifiableCredential") || !slices.Contains(vc.Type, "BitstringStatusListCredential") {
		return nil, Reject(CodeInvalid, "credential type must include VerifiableCredential and BitstringStatusListCredential, got %v", vc.Type)
	}
	cs := vc.CredentialSubject
	if cs.Type != "BitstringStatusList" {
		return nil, Reject(CodeInvalid, "credentialSubject.type must be BitstringStatusList, got %q", cs.Type)
	}
	purposes, err := parsePurposes(cs.StatusPurpose, rules)
	if err != nil {
		return nil, err
	}
	msgs := cs.StatusMessage
	if rules >= ListRulesREC && cs.StatusMessages != nil {
		if cs.StatusMessage != nil {
			return nil, Reject(CodeInvalid, "credentialSubject has both statusMessages (the Recommendation's name) and statusMessage: keep statusMessages")
		}
		msgs = cs.StatusMessages
	}
	p := &ParsedStatusList{Issuer: issuer, Purposes: purposes, StatusSize: 1, Messages: msgs, ValidFrom: vc.ValidFrom, ValidUntil: vc.ValidUntil, VC: payload}
	if cs.StatusSize != nil {
		p.StatusSize = *cs.StatusSize
	}
	switch {
	case rules < ListRulesREC && !slices.Contains([]int{1, 2, 4, 8}, p.StatusSize):
		return nil, Reject(CodeInvalid, "statusSize %d must be 1, 2, 4 or 8 (any size from 1 to %d from feature level 6 on)", p.StatusSize, MaxStatusSize)
	case p.StatusSize < 1 || p.StatusSize > MaxStatusSize:
		return nil, Reject(CodeInvalid, "statusSize %d must be an integer from 1 to %d (REC §2.1: greater than zero; 2^statusSize messages must fit in an operation)", p.StatusSize, MaxStatusSize)
	case rules >= ListRulesREC && slices.Contains(purposes, PurposeMessage) && cs.StatusSize == nil:
		return nil, Reject(CodeInvalid, "a list with statusPurpose message must name its statusSize (REC §2.2)")
	}
	if err := checkMessages(p.StatusSize, msgs); err != nil {
		return nil, err
	}
	if cs.TTL != nil {
		if *cs.TTL < 0 {
			return nil, Reject(CodeInvalid, "ttl %d must not be negative", *cs.TTL)
		}
		p.TTL = *cs.TTL
	}
	if vc.ValidFrom != nil && vc.ValidUntil != nil && !vc.ValidUntil.After(*vc.ValidFrom) {
		return nil, Reject(CodeInvalid, "validUntil is not after validFrom")
	}
	bits, err := DecodeBitstring(cs.EncodedList)
	if err != nil {
		code := CodeMalformedValue
		if errors.Is(err, ErrStatusListLength) {
			code = CodeStatusListLength
		}
		return nil, Reject(code, "%v", err)
	}
	if n := StatusEntries(bits, p.StatusSize); n < MinStatusListEntries {
		return nil, Reject(CodeStatusListLength, "the list holds %d entries of %d bits; at least %d are required", n, p.StatusSize, MinStatusListEntries)
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
	return "", Reject(CodeInvalid, "credential issuer must be a DID or an object with an id")
}

func parsePurposes(raw json.RawMessage, rules ListRules) ([]string, error) {
	var list []string
	var one string
	switch {
	case json.Unmarshal(raw, &one) == nil && one != "":
		list = []string{one}
	case json.Unmarshal(raw, &list) == nil && len(list) > 0:
	default:
		return nil, Reject(CodeInvalid, "statusPurpose must be a purpose or a list of purposes")
	}
	for _, p := range list {
		switch {
		case p == PurposeRevocation || p == PurposeSuspension || p == PurposeMessage:
		case p == PurposeRefresh && rules >= ListRulesREC:
		default:
			return nil, Reject(CodeInvalid, "statusPurpose %q must be revocation, suspension, message or refresh (refresh from feature level 6 on)", p)
		}
	}
	slices.Sort(list)
	if len(slices.Compact(slices.Clone(list))) != len(list) {
		return nil, Reject(CodeInvalid, "statusPurpose lists a purpose twice")
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
		return Reject(CodeInvalid, "statusSize %d needs statusMessages with %d entries", size, 1<<size)
	}
	if len(msgs) != 1<<size {
		return Reject(CodeInvalid, "statusMessages has %d entries; statusSize %d needs %d", len(msgs), size, 1<<size)
	}
	seen := map[int64]bool{}
	for _, m := range msgs {
		v, err := strconv.ParseInt(strings.TrimPrefix(m.Status, "0x"), 16, 32)
		if err != nil || !strings.HasPrefix(m.Status, "0x") || v < 0 || v >= 1<<size || seen[v] {
			return Reject(CodeInvalid, "statusMessage status %q must be a distinct hex value 0x0..0x%x", m.Status, 1<<size-1)
		}
		seen[v] = true
		if err := Invalid(ValidText("status message", m.Message, 1024)); err != nil {
			return err
		}
	}
	return nil
}

// RDFUnsignedListMembers returns the credentialSubject members of a
// status-list credential that this package reads and that the credentials
// v2 context does not define for a BitstringStatusList (statusSize,
// statusMessage, statusMessages: it defines them for a
// BitstringStatusListEntry only). RDF canonicalization (eddsa-rdfc-2022)
// leaves such members out of what is signed, so a list that carries them
// must be secured otherwise (eddsa-jcs-2022 or VC-JWT).
func RDFUnsignedListMembers(payload []byte) []string {
	var vc struct {
		CredentialSubject map[string]json.RawMessage `json:"credentialSubject"`
	}
	if json.Unmarshal(payload, &vc) != nil {
		return nil
	}
	var out []string
	for _, m := range []string{"statusSize", "statusMessage", "statusMessages"} {
		if _, ok := vc.CredentialSubject[m]; ok {
			out = append(out, m)
		}
	}
	return out
}
