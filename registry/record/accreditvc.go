package record

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// The credential form of an accreditation: the accreditor-signed Verifiable
// Accreditation of EBSI's trust chain, a VC-JWT (VC Data Model 1.1 JWT
// encoding: the credential under the "vc" claim, its issuer in "iss", its
// subject in "sub", the signing time in "iat") submitted as the operation
// itself. Its bytes are the accreditation's record, and the gateway's EBSI
// Trusted Issuers Registry binding serves them unchanged as the attribute
// body that EBSI clients decode.
//
// What the registry reads from it (the schema is EBSI's "Verifiable
// Accreditation Record", ebsi-accreditation 2022-11_01):
//   - type holds VerifiableAccreditationToAccredit (action accredit) or
//     VerifiableAccreditationToAttest (action issue), not both;
//   - issuer (a string or an object's id) is the accreditor and equals iss;
//     credentialSubject.id is the subject and equals sub when sub is set;
//   - each credentialSubject.accreditedFor entry grants one resource: the
//     last of its types (the most specific, as EBSI lists them after
//     VerifiableCredential and VerifiableAttestation); its limitJurisdiction
//     (a string or an array) names ISO 3166 codes, bare ("US", "US-CA") or as
//     JurisdictionURI writes them, and every entry names the same set;
//   - validFrom (else nbf; without either, the commit time, as for the
//     operation form) and validUntil (else expirationDate, else exp) bound
//     the accreditation; issuanceDate and issued are not read;
//   - termsOfUse (an object or an array) holds one item with an id: the
//     accreditation the accreditor holds and grants under, as the URL of its
//     TIR attribute (…/issuers/{accreditor}/attributes/{id}) or as its CID.
//     For a root accreditor the attribute is its root role in a framework,
//     which names the framework.
//
// Other members (credentialSchema, credentialStatus, evidence, …) are kept
// with the bytes and not read.

// Credential types of EBSI's trust chain.
const (
	TypeAccreditationToAccredit  = "VerifiableAccreditationToAccredit"
	TypeAccreditationToAttest    = "VerifiableAccreditationToAttest"
	TypeAuthorisationForTrustChn = "VerifiableAuthorisationForTrustChain"
)

// JurisdictionURIPrefix is how an accreditation credential names an ISO
// 3166 code as a URI (EBSI's schema types limitJurisdiction as a URI): the
// code's page in ISO's Online Browsing Platform.
const JurisdictionURIPrefix = "https://www.iso.org/obp/ui/#iso:code:3166:"

// MaxAccreditedFor bounds a credential's accreditedFor entries (as
// resources are bounded).
const MaxAccreditedFor = 256

// AccreditationCredential is an accreditation submitted in its credential
// form. Its op is OpAccredit; the framework and parent come from the state
// when it is applied (ParentDigest names the attribute termsOfUse points at).
type AccreditationCredential struct {
	Header
	Accreditor    string
	Subject       string
	Action        string
	Types         []string
	Resources     []string
	Jurisdictions []string
	ValidFrom     *time.Time
	ValidUntil    *time.Time
	// ParentDigest is the SHA-256 that termsOfUse names: a TIR attribute
	// id, which is the digest of the operation that created the role.
	ParentDigest [32]byte
}

// vcJWTClaims are the JWT claims of a VC-JWT (VC Data Model 1.1 §6.3.1).
type vcJWTClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Iat *int64          `json:"iat"`
	Nbf *int64          `json:"nbf"`
	Exp *int64          `json:"exp"`
	Jti string          `json:"jti"`
	VC  accreditationVC `json:"vc"`
}

type accreditationVC struct {
	Context           json.RawMessage `json:"@context"`
	ID                string          `json:"id"`
	Type              []string        `json:"type"`
	Issuer            json.RawMessage `json:"issuer"`
	ValidFrom         *time.Time      `json:"validFrom"`
	ValidUntil        *time.Time      `json:"validUntil"`
	ExpirationDate    *time.Time      `json:"expirationDate"`
	CredentialSubject struct {
		ID            string          `json:"id"`
		AccreditedFor []accreditedFor `json:"accreditedFor"`
	} `json:"credentialSubject"`
	TermsOfUse json.RawMessage `json:"termsOfUse"`
}

type accreditedFor struct {
	SchemaID          string          `json:"schemaId"`
	Types             []string        `json:"types"`
	LimitJurisdiction json.RawMessage `json:"limitJurisdiction"`
}

type termsOfUse struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// isCredentialPayload reports whether a JWS payload is a credential (a JSON
// object with a "vc" member and no "op"), not an operation payload.
func isCredentialPayload(payload []byte) bool {
	var probe struct {
		Op *json.RawMessage `json:"op"`
		VC *json.RawMessage `json:"vc"`
	}
	return json.Unmarshal(payload, &probe) == nil && probe.Op == nil && probe.VC != nil
}

// parseAccreditationCredential reads an accreditation credential's claims.
// Errors wrap ErrMalformed.
func parseAccreditationCredential(payload []byte) (*AccreditationCredential, error) {
	bad := func(format string, a ...any) error {
		return Errorf(ErrMalformed, "accreditation credential: %s", fmt.Sprintf(format, a...))
	}
	var c vcJWTClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, bad("%v", err)
	}
	if c.Iat == nil || *c.Iat == 0 {
		return nil, bad("the JWT has no iat (signing time, seconds since the epoch)")
	}
	vc := &c.VC
	out := &AccreditationCredential{Header: Header{Op: OpAccredit, IAT: *c.Iat}, Types: vc.Type}
	toAccredit, toAttest := slices.Contains(vc.Type, TypeAccreditationToAccredit), slices.Contains(vc.Type, TypeAccreditationToAttest)
	switch {
	case !slices.Contains(vc.Type, "VerifiableCredential"):
		return nil, bad("type %q does not hold VerifiableCredential", vc.Type)
	case toAccredit && toAttest:
		return nil, bad("type holds both %s and %s: grant each in its own credential", TypeAccreditationToAccredit, TypeAccreditationToAttest)
	case toAccredit:
		out.Action = ActionAccredit
	case toAttest:
		out.Action = ActionIssue
	default:
		return nil, bad("type %q holds neither %s nor %s", vc.Type, TypeAccreditationToAccredit, TypeAccreditationToAttest)
	}
	issuer, err := credentialIssuer(vc.Issuer)
	if err != nil {
		return nil, bad("%v", err)
	}
	if issuer != c.Iss {
		return nil, bad("iss %q and vc.issuer %q differ", c.Iss, issuer)
	}
	out.Accreditor = issuer
	out.Subject = vc.CredentialSubject.ID
	if out.Subject == "" {
		return nil, bad("credentialSubject.id (the accredited DID) is missing")
	}
	if c.Sub != "" && c.Sub != out.Subject {
		return nil, bad("sub %q and credentialSubject.id %q differ", c.Sub, out.Subject)
	}
	if err := out.readAccreditedFor(vc.CredentialSubject.AccreditedFor); err != nil {
		return nil, bad("%v", err)
	}
	out.ValidFrom = firstTime(vc.ValidFrom, unixTime(c.Nbf))
	out.ValidUntil = firstTime(vc.ValidUntil, vc.ExpirationDate, unixTime(c.Exp))
	if out.ParentDigest, err = parentOf(vc.TermsOfUse, issuer); err != nil {
		return nil, bad("%v", err)
	}
	return out, nil
}

// readAccreditedFor derives the resources and jurisdictions.
func (a *AccreditationCredential) readAccreditedFor(entries []accreditedFor) error {
	if len(entries) == 0 {
		return fmt.Errorf("credentialSubject.accreditedFor is empty: name what the subject is accredited for")
	}
	if len(entries) > MaxAccreditedFor {
		return fmt.Errorf("%d accreditedFor entries, limit %d", len(entries), MaxAccreditedFor)
	}
	for i, e := range entries {
		if len(e.Types) == 0 {
			return fmt.Errorf("accreditedFor[%d].types is empty: list the credential's types, the most specific last", i)
		}
		a.Resources = append(a.Resources, e.Types[len(e.Types)-1])
		js, err := jurisdictionsOf(e.LimitJurisdiction)
		if err != nil {
			return fmt.Errorf("accreditedFor[%d].limitJurisdiction: %v", i, err)
		}
		if i == 0 {
			a.Jurisdictions = js
		} else if !slices.Equal(js, a.Jurisdictions) {
			return fmt.Errorf("accreditedFor[%d] limits jurisdictions to %v and accreditedFor[0] to %v: an accreditation has one set of jurisdictions; grant the others in another credential", i, js, a.Jurisdictions)
		}
	}
	return nil
}

// jurisdictionsOf reads limitJurisdiction: absent, a string or an array of
// strings, each an ISO 3166 code bare or under JurisdictionURIPrefix. The
// codes are returned sorted, without repeats.
func jurisdictionsOf(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if raw[0] == '"' {
		var one string
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, err
		}
		list = []string{one}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("must be a string or an array of strings")
	}
	out := make([]string, 0, len(list))
	for _, j := range list {
		code := strings.TrimPrefix(j, JurisdictionURIPrefix)
		if strings.Contains(code, ":") || strings.Contains(code, "/") {
			return nil, fmt.Errorf("%q is not an ISO 3166 code: write %sUS (or the bare code)", j, JurisdictionURIPrefix)
		}
		out = append(out, code)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// JurisdictionURI is the URI an accreditation credential names an ISO 3166
// code by.
func JurisdictionURI(code string) string { return JurisdictionURIPrefix + code }

// credentialIssuer reads a credential's issuer: a string or {"id": …}.
func credentialIssuer(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	var s string
	if len(raw) > 0 && raw[0] == '{' {
		var obj struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return "", fmt.Errorf("issuer: %v", err)
		}
		s = obj.ID
	} else if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("issuer must be a DID or an object with its id")
	}
	if s == "" {
		return "", fmt.Errorf("vc.issuer (the accreditor's DID) is missing")
	}
	return s, nil
}

// parentOf reads the one termsOfUse item with an id and returns the digest
// it names: the id of a TIR attribute of the accreditor
// (…/issuers/{accreditor}/attributes/{id}, the id 64 hex digits, "0x" before
// them allowed), or a CID (sha2-256).
func parentOf(raw json.RawMessage, accreditor string) ([32]byte, error) {
	var none [32]byte
	raw = bytes.TrimSpace(raw)
	var items []termsOfUse
	if len(raw) > 0 && raw[0] == '{' {
		var one termsOfUse
		if err := json.Unmarshal(raw, &one); err != nil {
			return none, fmt.Errorf("termsOfUse: %v", err)
		}
		items = []termsOfUse{one}
	} else if len(raw) > 0 {
		if err := json.Unmarshal(raw, &items); err != nil {
			return none, fmt.Errorf("termsOfUse must be an object or an array of objects")
		}
	}
	var ids []string
	for _, it := range items {
		if it.ID != "" {
			ids = append(ids, it.ID)
		}
	}
	if len(ids) != 1 {
		return none, fmt.Errorf("termsOfUse names %d ids; it must name one: the TIR attribute (or the CID) of the accreditation the accreditor grants under, or of its root role", len(ids))
	}
	return ParseAttributeRef(ids[0], accreditor)
}

// ParseAttributeRef reads a reference to the attribute an accreditor grants
// under: a TIR attribute URL of the accreditor or a CID. It returns the
// digest the reference names.
func ParseAttributeRef(ref, accreditor string) ([32]byte, error) {
	var d [32]byte
	if i := strings.LastIndex(ref, "/attributes/"); i >= 0 {
		path := ref[:i]
		j := strings.LastIndex(path, "/issuers/")
		if j < 0 {
			return d, fmt.Errorf("termsOfUse id %q: a TIR attribute URL is …/issuers/{did}/attributes/{id}", ref)
		}
		did, err := url.PathUnescape(path[j+len("/issuers/"):])
		if err != nil || did != accreditor {
			return d, fmt.Errorf("termsOfUse id %q names an attribute of %q, not of the accreditor %q", ref, did, accreditor)
		}
		id := strings.TrimPrefix(strings.ToLower(ref[i+len("/attributes/"):]), "0x")
		b, err := hex.DecodeString(id)
		if err != nil || len(b) != len(d) {
			return d, fmt.Errorf("termsOfUse id %q: the attribute id must be 64 hex digits", ref)
		}
		copy(d[:], b)
		return d, nil
	}
	c, err := cid.Decode(ref)
	if err != nil {
		return d, fmt.Errorf("termsOfUse id %q is neither a TIR attribute URL nor a CID", ref)
	}
	dec, err := multihash.Decode(c.Hash())
	if err != nil || dec.Code != multihash.SHA2_256 || len(dec.Digest) != len(d) {
		return d, fmt.Errorf("termsOfUse id %q: the CID must carry a sha2-256 digest", ref)
	}
	copy(d[:], dec.Digest)
	return d, nil
}

// CIDOfDigest is the CID (raw codec, sha2-256) of the bytes whose SHA-256
// is d: an accreditation's id from its TIR attribute id.
func CIDOfDigest(d [32]byte) string { return cidOfDigest(d) }

func firstTime(ts ...*time.Time) *time.Time {
	for _, t := range ts {
		if t != nil {
			u := t.UTC()
			return &u
		}
	}
	return nil
}

func unixTime(s *int64) *time.Time {
	if s == nil {
		return nil
	}
	t := time.Unix(*s, 0).UTC()
	return &t
}

// checkCredentialJSON is scanJSON for an accreditation credential's JWT
// claims.
func checkCredentialJSON(payload []byte) (number rangeErrs, strict error) {
	return scanJSON("credential", payload, reflect.TypeFor[vcJWTClaims]())
}

// AccreditationCredentialFields is what trustctl puts in an accreditation
// credential.
type AccreditationCredentialFields struct {
	Accreditor    string
	Subject       string
	Action        string // ActionIssue or ActionAccredit
	Resources     []string
	Jurisdictions []string
	ValidFrom     *time.Time
	ValidUntil    *time.Time
	// TermsOfUse is the id of the attribute the accreditor grants under:
	// its TIR attribute URL, or the parent accreditation's CID.
	TermsOfUse string
	IAT        time.Time
}

// NewAccreditationCredential returns the JWT claims of an accreditation
// credential (VC Data Model 1.1 JWT encoding, EBSI's accreditation types),
// to be signed by the accreditor with SignVCJWT.
func NewAccreditationCredential(f AccreditationCredentialFields) ([]byte, error) {
	typ := TypeAccreditationToAttest
	if f.Action == ActionAccredit {
		typ = TypeAccreditationToAccredit
	} else if f.Action != ActionIssue {
		return nil, fmt.Errorf("action %q must be %q or %q", f.Action, ActionIssue, ActionAccredit)
	}
	var limit any
	if len(f.Jurisdictions) > 0 {
		uris := make([]string, len(f.Jurisdictions))
		for i, j := range f.Jurisdictions {
			uris[i] = JurisdictionURI(j)
		}
		limit = uris
	}
	entries := make([]map[string]any, len(f.Resources))
	for i, r := range f.Resources {
		e := map[string]any{"schemaId": r, "types": []string{"VerifiableCredential", "VerifiableAttestation", r}}
		if !strings.Contains(r, ":") {
			e["schemaId"] = "urn:trustreg:type:" + url.PathEscape(r)
		}
		if limit != nil {
			e["limitJurisdiction"] = limit
		}
		entries[i] = e
	}
	iat := f.IAT.Unix()
	vc := map[string]any{
		"@context":          []string{"https://www.w3.org/2018/credentials/v1"},
		"type":              []string{"VerifiableCredential", "VerifiableAttestation", "VerifiableAccreditation", typ},
		"issuer":            f.Accreditor,
		"issuanceDate":      f.IAT.UTC().Format(time.RFC3339),
		"credentialSubject": map[string]any{"id": f.Subject, "accreditedFor": entries},
		"termsOfUse":        []map[string]string{{"id": f.TermsOfUse, "type": "IssuanceCertificate"}},
	}
	claims := map[string]any{"iss": f.Accreditor, "sub": f.Subject, "iat": iat, "vc": vc}
	if f.ValidFrom != nil {
		vc["validFrom"] = f.ValidFrom.UTC().Format(time.RFC3339)
		vc["issuanceDate"] = vc["validFrom"]
		claims["nbf"] = f.ValidFrom.Unix()
	}
	if f.ValidUntil != nil {
		vc["expirationDate"] = f.ValidUntil.UTC().Format(time.RFC3339)
		claims["exp"] = f.ValidUntil.Unix()
	}
	return json.Marshal(claims)
}

// decodeCredentialForm reads a JWS whose payload is no operation payload
// as an accreditation credential. It returns a nil body and no error when
// the payload is no credential either (the caller reports the operation
// payload's error).
func decodeCredentialForm(trimmed []byte, obj *jose.JSONWebSignature, payload []byte) (string, int64, any, error) {
	if !isCredentialPayload(payload) {
		return "", 0, nil, nil
	}
	if trimmed[0] == '{' || len(obj.Signatures) != 1 {
		return "", 0, nil, Errorf(ErrMalformed, "an accreditation credential is submitted as a VC-JWT: a compact JWS with one signature, the accreditor's")
	}
	c, err := parseAccreditationCredential(payload)
	if err != nil {
		return "", 0, nil, err
	}
	return c.Op, c.IAT, c, nil
}

// CompactJWS returns a signed operation as a compact JWS (a JWT's form):
// unchanged when it is compact already; its compact serialization, carrying
// the same protected header, payload and signature, when it is a JSON
// serialization with one signature and no unprotected header; else
// unchanged (several signatures have no compact form).
func CompactJWS(raw []byte) []byte {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return raw
	}
	var g GeneralJWS
	if err := g.From(trimmed); err != nil || len(g.Signatures) != 1 || len(g.Signatures[0].Header) > 0 {
		return raw
	}
	sig := g.Signatures[0]
	return []byte(sig.Protected + "." + g.Payload + "." + sig.Signature)
}

// RootCredential is what the registry reads from a root's
// VerifiableAuthorisationForTrustChain.
type RootCredential struct {
	JWS     *jose.JSONWebSignature
	Issuer  string // iss and vc.issuer
	Subject string // vc.credentialSubject.id
}

// ParseRootCredential reads a root's VerifiableAuthorisationForTrustChain:
// a compact JWS whose claims hold iss, vc.issuer (equal), vc.type with the
// type and vc.credentialSubject.id. It checks structure only; the
// signature is the apply's to check. Errors wrap ErrMalformed.
func ParseRootCredential(s string) (*RootCredential, error) {
	jwt, err := jose.ParseSignedCompact(s, AcceptedAlgs)
	if err != nil || len(jwt.Signatures) != 1 {
		return nil, Errorf(ErrMalformed, "credential: a root's credential is a VC-JWT (a compact JWS with one signature, EdDSA or ES256): %v", err)
	}
	var c struct {
		Iss string `json:"iss"`
		VC  struct {
			Type              []string        `json:"type"`
			Issuer            json.RawMessage `json:"issuer"`
			CredentialSubject struct {
				ID string `json:"id"`
			} `json:"credentialSubject"`
		} `json:"vc"`
	}
	if err := json.Unmarshal(jwt.UnsafePayloadWithoutVerification(), &c); err != nil {
		return nil, Errorf(ErrMalformed, "credential: %v", err)
	}
	issuer, err := credentialIssuer(c.VC.Issuer)
	switch {
	case err != nil:
		return nil, Errorf(ErrMalformed, "credential: %v", err)
	case issuer != c.Iss:
		return nil, Errorf(ErrMalformed, "credential: iss %q and vc.issuer %q differ", c.Iss, issuer)
	case !slices.Contains(c.VC.Type, TypeAuthorisationForTrustChn):
		return nil, Errorf(ErrMalformed, "credential: type %q does not hold %s", c.VC.Type, TypeAuthorisationForTrustChn)
	}
	return &RootCredential{JWS: jwt, Issuer: issuer, Subject: c.VC.CredentialSubject.ID}, nil
}

// NewRootCredential returns the JWT claims of a root's
// VerifiableAuthorisationForTrustChain (VC Data Model 1.1 JWT encoding),
// issued by a governance member to the root accreditor, to be signed by
// the member with SignVCJWT and carried by addRootAccreditor.
func NewRootCredential(member, root string, iat time.Time) ([]byte, error) {
	vc := map[string]any{
		"@context":          []string{"https://www.w3.org/2018/credentials/v1"},
		"type":              []string{"VerifiableCredential", "VerifiableAttestation", TypeAuthorisationForTrustChn},
		"issuer":            member,
		"issuanceDate":      iat.UTC().Format(time.RFC3339),
		"credentialSubject": map[string]any{"id": root},
	}
	return json.Marshal(map[string]any{"iss": member, "sub": root, "iat": iat.Unix(), "vc": vc})
}
