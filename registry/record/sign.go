package record

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Key algorithms for GenerateKey.
const (
	KeyEd25519 = "Ed25519"
	KeyP256    = "P-256"
)

// Signer signs operations with one private key named by a DID URL.
type Signer struct {
	DID string
	KID string
	key crypto.Signer
}

// GenerateKey creates a new did:key signer.
func GenerateKey(kind string) (*Signer, error) {
	var priv crypto.Signer
	var err error
	switch kind {
	case KeyEd25519, "":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case KeyP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("key type %q: want %s or %s", kind, KeyEd25519, KeyP256)
	}
	if err != nil {
		return nil, err
	}
	return NewSigner(priv, "")
}

// NewSigner wraps a private key. An empty kid makes the signer a did:key.
func NewSigner(priv crypto.Signer, kid string) (*Signer, error) {
	if kid == "" {
		did, k, err := DIDKey(priv.Public())
		if err != nil {
			return nil, err
		}
		return &Signer{DID: did, KID: k, key: priv}, nil
	}
	did, _, ok := cutFragment(kid)
	if !ok {
		return nil, fmt.Errorf("kid %q is not a DID URL (did#fragment)", kid)
	}
	return &Signer{DID: did, KID: kid, key: priv}, nil
}

func cutFragment(kid string) (string, string, bool) {
	for i := len(kid) - 1; i >= 0; i-- {
		if kid[i] == '#' {
			return kid[:i], kid[i+1:], i > 0 && i < len(kid)-1
		}
	}
	return "", "", false
}

func (s *Signer) alg() jose.SignatureAlgorithm {
	if _, ok := s.key.(*ecdsa.PrivateKey); ok {
		return jose.ES256
	}
	return jose.EdDSA
}

// PublicJWK returns the signer's public key as a JWK whose kid is the
// signer's key id, ready for registerEntity or rotateKeys.
func (s *Signer) PublicJWK() (json.RawMessage, error) {
	k := jose.JSONWebKey{Key: s.key.Public(), KeyID: s.KID, Algorithm: string(s.alg()), Use: "sig"}
	return k.MarshalJSON()
}

// PrivateJWK returns the private key as a JWK (for the key file).
func (s *Signer) PrivateJWK() ([]byte, error) {
	k := jose.JSONWebKey{Key: s.key, KeyID: s.KID, Algorithm: string(s.alg()), Use: "sig"}
	return json.MarshalIndent(k, "", "  ")
}

// ParseSignerJWK reads a private JWK written by PrivateJWK.
func ParseSignerJWK(raw []byte) (*Signer, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if k.IsPublic() {
		return nil, fmt.Errorf("key file holds a public key only: signing needs the private key")
	}
	priv, ok := k.Key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key file: unsupported key type %T", k.Key)
	}
	if p, ok := priv.(ed25519.PrivateKey); ok {
		priv = p
	}
	return NewSigner(priv, k.KeyID)
}

// SignCompact signs payload as a compact JWS.
func (s *Signer) SignCompact(payload []byte) ([]byte, error) {
	return s.signCompact(payload, "trustreg-op+jws")
}

// signCompact signs payload as a compact JWS whose protected header names
// the signer's key and the media type typ.
func (s *Signer) signCompact(payload []byte, typ jose.ContentType) ([]byte, error) {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg(), Key: s.key},
		(&jose.SignerOptions{}).WithHeader("kid", s.KID).WithType(typ))
	if err != nil {
		return nil, err
	}
	obj, err := sig.Sign(payload)
	if err != nil {
		return nil, err
	}
	s.normaliseLowS(obj)
	out, err := obj.CompactSerialize()
	return []byte(out), err
}

// SignJSON signs payload with every signer in the JWS general JSON
// serialization: a governance operation carries one signature per member.
func SignJSON(payload []byte, signers ...*Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, fmt.Errorf("no signers")
	}
	var out GeneralJWS
	for _, s := range signers {
		one, err := s.signFlattened(payload)
		if err != nil {
			return nil, err
		}
		if out.Payload == "" {
			out.Payload = one.Payload
		}
		out.Signatures = append(out.Signatures, JWSSignature{Protected: one.Protected, Signature: one.Signature})
	}
	return json.Marshal(out)
}

// CoSign adds s's signature to a JWS (compact or JSON serialization) and
// returns the general JSON serialization. Members co-sign a governance
// operation one after another this way.
func CoSign(jws []byte, s *Signer) ([]byte, error) {
	op, err := ParseOperation(jws)
	if err != nil {
		return nil, err
	}
	// The registry refuses an operation its signer signed twice.
	for _, sig := range op.Signatures() {
		if did, _, _ := strings.Cut(sig.Protected.KeyID, "#"); did == s.DID {
			return nil, fmt.Errorf("%s signed this operation already (kid %q)", s.DID, sig.Protected.KeyID)
		}
	}
	var out GeneralJWS
	if err := out.From(jws); err != nil {
		return nil, err
	}
	one, err := s.signFlattened(op.Payload)
	if err != nil {
		return nil, err
	}
	if one.Payload != out.Payload {
		return nil, fmt.Errorf("payload encodings differ")
	}
	out.Signatures = append(out.Signatures, JWSSignature{Protected: one.Protected, Signature: one.Signature})
	return json.Marshal(out)
}

// normaliseLowS replaces each signature of obj, signed by s with ES256,
// whose s exceeds n/2 with the other encoding (r, n − s), which verifies
// alike. The registry accepts only low-s signatures (checkLowS), and
// crypto/ecdsa, under go-jose, emits a high s about half the time.
func (s *Signer) normaliseLowS(obj *jose.JSONWebSignature) {
	if s.alg() != jose.ES256 {
		return
	}
	for i, sig := range obj.Signatures {
		if HighS(sig.Signature) {
			obj.Signatures[i].Signature = LowSTwin(sig.Signature)
		}
	}
}

// JWSSignature is one signature of a JWS in the JSON serialization.
type JWSSignature struct {
	Protected string          `json:"protected"`
	Header    json.RawMessage `json:"header,omitempty"`
	Signature string          `json:"signature"`
}

// GeneralJWS is a JWS in the JSON general serialization.
type GeneralJWS struct {
	Payload    string         `json:"payload"`
	Signatures []JWSSignature `json:"signatures"`
}

type flattenedJWS struct {
	Payload   string `json:"payload"`
	Protected string `json:"protected"`
	Signature string `json:"signature"`
}

func (s *Signer) signFlattened(payload []byte) (*flattenedJWS, error) {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg(), Key: s.key},
		(&jose.SignerOptions{}).WithHeader("kid", s.KID).WithType("trustreg-op+jws"))
	if err != nil {
		return nil, err
	}
	obj, err := sig.Sign(payload)
	if err != nil {
		return nil, err
	}
	s.normaliseLowS(obj)
	var f flattenedJWS
	if err := json.Unmarshal([]byte(obj.FullSerialize()), &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// From reads an existing JWS, compact or JSON, into the general form.
func (g *GeneralJWS) From(jws []byte) error {
	trimmed := bytes.TrimSpace(jws)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var probe struct {
			Payload    string         `json:"payload"`
			Protected  string         `json:"protected"`
			Signature  string         `json:"signature"`
			Signatures []JWSSignature `json:"signatures"`
		}
		if err := json.Unmarshal(trimmed, &probe); err != nil {
			return err
		}
		g.Payload = probe.Payload
		g.Signatures = probe.Signatures
		// The flattened form's members count only without signatures, as
		// go-jose (and so the registry) reads a JWS: beside signatures they
		// are no signature of it.
		if len(probe.Signatures) == 0 && probe.Signature != "" {
			g.Signatures = []JWSSignature{{Protected: probe.Protected, Signature: probe.Signature}}
		}
		return nil
	}
	parts := strings.Split(string(trimmed), ".")
	if len(parts) != 3 {
		return fmt.Errorf("compact JWS must have three parts")
	}
	g.Payload = parts[1]
	g.Signatures = []JWSSignature{{Protected: parts[0], Signature: parts[2]}}
	return nil
}

// Key returns the private key s signs with.
func (s *Signer) Key() crypto.Signer { return s.key }

// WithKID returns a signer of the same key under another key id (a DID URL
// of a registered entity).
func (s *Signer) WithKID(kid string) (*Signer, error) {
	return NewSigner(s.key, kid)
}

// SignVCJWT signs a credential as a VC-JWT (compact JWS, typ vc+jwt), the
// form status-list credentials are published in.
func (s *Signer) SignVCJWT(credential []byte) ([]byte, error) {
	return s.signCompact(credential, "vc+jwt")
}

// StatusListCredential builds an unsigned BitstringStatusListCredential
// (VC Data Model 2.0) for the issuer's list id with the given bitstring.
func StatusListCredential(issuer, id string, purposes []string, size int, messages []StatusMessage, ttl int64, bits []byte) ([]byte, error) {
	encoded, err := EncodeBitstring(bits)
	if err != nil {
		return nil, err
	}
	subject := map[string]any{
		"id":            issuer + "#status-list-" + id,
		"type":          "BitstringStatusList",
		"statusPurpose": purposes,
		"encodedList":   encoded,
	}
	if len(purposes) == 1 {
		subject["statusPurpose"] = purposes[0]
	}
	if size > 1 || slices.Contains(purposes, PurposeMessage) {
		subject["statusSize"] = size
	}
	if len(messages) > 0 {
		subject["statusMessage"] = messages
	}
	if ttl > 0 {
		subject["ttl"] = ttl
	}
	return json.Marshal(map[string]any{
		"@context":          []string{"https://www.w3.org/ns/credentials/v2"},
		"id":                "urn:trustreg:status-list:" + issuer + ":" + id,
		"type":              []string{"VerifiableCredential", "BitstringStatusListCredential"},
		"issuer":            issuer,
		"credentialSubject": subject,
	})
}

// LoadKeyFile reads a private JWK key file (as trustctl and the
// development genesis write them).
func LoadKeyFile(path string) (*Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ParseSignerJWK(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
