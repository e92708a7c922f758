package record

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/multiformats/go-multibase"
	"github.com/piprate/json-gold/ld"
)

// Data Integrity (W3C VC Data Integrity 1.0 with the EdDSA cryptosuites
// v1.0, vc-di-eddsa): a credential that carries its proof inside it. Two
// cryptosuites are verified here, the ones Open Badges 3.0 and Digital
// Credentials Consortium issuers sign with:
//
//   - eddsa-rdfc-2022: the document and the proof configuration are
//     canonicalized as RDF (RDFC-1.0, the URDNA2015 algorithm) with the
//     contexts bundled below, never fetched;
//   - eddsa-jcs-2022: both are canonicalized as JSON (RFC 8785).
//
// In both, the signed data is SHA-256(proof configuration) followed by
// SHA-256(document without proof), and proofValue is the Ed25519 signature
// over it, multibase base58btc.

// Cryptosuites verified here.
const (
	CryptosuiteEdDSARDFC = "eddsa-rdfc-2022"
	CryptosuiteEdDSAJCS  = "eddsa-jcs-2022"
)

// Context URLs bundled with the build.
const (
	ContextCredentialsV2   = "https://www.w3.org/ns/credentials/v2"
	ContextDataIntegrityV2 = "https://w3id.org/security/data-integrity/v2"
)

var (
	//go:embed contexts/credentials-v2.jsonld
	contextCredentialsV2 []byte
	//go:embed contexts/data-integrity-v2.jsonld
	contextDataIntegrityV2 []byte
)

// bundledContexts are the only JSON-LD contexts a Data Integrity
// credential may use: the apply never reaches the network.
var bundledContexts = map[string][]byte{
	ContextCredentialsV2:   contextCredentialsV2,
	ContextDataIntegrityV2: contextDataIntegrityV2,
}

// ErrDataIntegrity is wrapped by every failure to verify a Data Integrity
// proof.
var ErrDataIntegrity = errors.New("registry: data integrity proof")

// DIProof is what a verified Data Integrity proof says.
type DIProof struct {
	Cryptosuite        string
	VerificationMethod string
	// Document is the credential without its proof, as JSON.
	Document []byte
}

// KeyResolver returns the public key a verification method names.
type KeyResolver func(verificationMethod string) (crypto.PublicKey, error)

// IsDataIntegrity reports whether a published credential is a JSON
// document (secured with Data Integrity) rather than a VC-JWT.
func IsDataIntegrity(credential string) bool {
	return strings.HasPrefix(strings.TrimLeft(credential, " \t\r\n"), "{")
}

// VerifyDataIntegrity verifies the one proof of a credential secured with
// eddsa-rdfc-2022 or eddsa-jcs-2022, with the key resolve returns for the
// proof's verificationMethod. The proof's purpose must be
// assertionMethod. Errors wrap ErrDataIntegrity, and ErrBadSignature when
// the signature is what fails.
func VerifyDataIntegrity(doc []byte, resolve KeyResolver) (*DIProof, error) {
	return verifyDataIntegrity(doc, resolve, bundledContexts)
}

// loader serves JSON-LD contexts from memory and refuses every other URL.
type loader map[string][]byte

// LoadDocument implements ld.DocumentLoader.
func (l loader) LoadDocument(u string) (*ld.RemoteDocument, error) {
	raw, ok := l[u]
	if !ok {
		return nil, fmt.Errorf("%w: context %s is not bundled with this build (bundled: %s, %s)", ErrDataIntegrity, u, ContextCredentialsV2, ContextDataIntegrityV2)
	}
	doc, err := ld.DocumentFromReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return &ld.RemoteDocument{DocumentURL: u, Document: doc}, nil
}

func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: the credential is not a JSON object: %v", ErrDataIntegrity, err)
	}
	return m, nil
}

func verifyDataIntegrity(doc []byte, resolve KeyResolver, contexts loader) (*DIProof, error) {
	secured, err := decodeObject(doc)
	if err != nil {
		return nil, err
	}
	proof, ok := secured["proof"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: the credential must carry one proof object (a proof set or chain is not accepted)", ErrDataIntegrity)
	}
	unsecured := make(map[string]any, len(secured))
	for k, v := range secured {
		if k != "proof" {
			unsecured[k] = v
		}
	}
	if !startsWithV2(unsecured["@context"]) {
		return nil, fmt.Errorf("%w: @context must be a list of context URLs starting with %s", ErrDataIntegrity, ContextCredentialsV2)
	}
	str := func(name string) string { s, _ := proof[name].(string); return s }
	suite, vm := str("cryptosuite"), str("verificationMethod")
	switch {
	case str("type") != "DataIntegrityProof":
		return nil, fmt.Errorf("%w: proof type %q must be DataIntegrityProof", ErrDataIntegrity, str("type"))
	case suite != CryptosuiteEdDSARDFC && suite != CryptosuiteEdDSAJCS:
		return nil, fmt.Errorf("%w: cryptosuite %q must be %s or %s", ErrDataIntegrity, suite, CryptosuiteEdDSARDFC, CryptosuiteEdDSAJCS)
	case str("proofPurpose") != "assertionMethod":
		return nil, fmt.Errorf("%w: proofPurpose %q must be assertionMethod", ErrDataIntegrity, str("proofPurpose"))
	case !strings.Contains(vm, "#"):
		return nil, fmt.Errorf("%w: verificationMethod %q must be a DID URL naming a key", ErrDataIntegrity, vm)
	}
	enc, sig, err := multibase.Decode(str("proofValue"))
	if err != nil || enc != multibase.Base58BTC || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: proofValue must be a multibase base58btc Ed25519 signature", ErrDataIntegrity)
	}
	config := make(map[string]any, len(proof))
	for k, v := range proof {
		if k != "proofValue" {
			config[k] = v
		}
	}
	// The proof's @context, when it has one, must be the start of the
	// document's (vc-di-eddsa, Verify Proof); the configuration is
	// canonicalized in the document's context.
	if pc, ok := config["@context"]; ok {
		if !contextPrefix(pc, unsecured["@context"]) {
			return nil, fmt.Errorf("%w: the proof's @context is not the start of the credential's", ErrDataIntegrity)
		}
	}
	config["@context"] = unsecured["@context"]
	canon := canonicalJCS
	if suite == CryptosuiteEdDSARDFC {
		if err := boundRDF(unsecured); err != nil {
			return nil, err
		}
		canon = func(m map[string]any) ([]byte, error) { return canonicalRDF(m, contexts) }
	}
	configC, err := canon(config)
	if err != nil {
		return nil, fmt.Errorf("%w: proof configuration: %w", ErrDataIntegrity, err)
	}
	docC, err := canon(unsecured)
	if err != nil {
		return nil, fmt.Errorf("%w: credential: %w", ErrDataIntegrity, err)
	}
	ch, dh := sha256.Sum256(configC), sha256.Sum256(docC)
	pub, err := resolve(vm)
	if err != nil {
		return nil, err
	}
	edPub, ok := pub.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: verificationMethod %s is not an Ed25519 key", ErrDataIntegrity, vm)
	}
	if !ed25519.Verify(edPub, append(ch[:], dh[:]...), sig) {
		return nil, fmt.Errorf("%w: %w: the %s proof does not verify against %s", ErrDataIntegrity, ErrBadSignature, suite, vm)
	}
	plain, err := json.Marshal(unsecured)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDataIntegrity, err)
	}
	return &DIProof{Cryptosuite: suite, VerificationMethod: vm, Document: plain}, nil
}

// maxRDFObjects bounds the JSON objects (nodes) of a credential
// canonicalized as RDF.
const maxRDFObjects = 64

// boundRDF keeps RDF canonicalization cheap: RDFC-1.0's cost grows
// exponentially on graphs of blank nodes that refer to each other
// ("poison" datasets, RDFC-1.0 §4.4 and its security considerations).
// JSON-LD nesting alone makes a tree, which canonicalizes quickly; cycles
// need blank node identifiers ("_:b0"), which a credential may not use
// here, and the nodes are bounded.
func boundRDF(doc map[string]any) error {
	objects := 0
	var walk func(v any, key string) error
	walk = func(v any, key string) error {
		switch t := v.(type) {
		case map[string]any:
			if objects++; objects > maxRDFObjects {
				return fmt.Errorf("%w: more than %d JSON objects for eddsa-rdfc-2022", ErrDataIntegrity, maxRDFObjects)
			}
			for k, e := range t {
				if k == "@context" {
					continue
				}
				if err := walk(e, k); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range t {
				if err := walk(e, key); err != nil {
					return err
				}
			}
		case string:
			if strings.HasPrefix(t, "_:") {
				return fmt.Errorf("%w: %s: blank node identifiers (%q) are not accepted with eddsa-rdfc-2022", ErrDataIntegrity, key, t)
			}
		}
		return nil
	}
	return walk(doc, "")
}

// contextPrefix reports whether proof's @context values start doc's.
func contextPrefix(proof, doc any) bool {
	list := func(v any) []any {
		if l, ok := v.([]any); ok {
			return l
		}
		return []any{v}
	}
	p, d := list(proof), list(doc)
	if len(p) > len(d) {
		return false
	}
	for i := range p {
		a, _ := json.Marshal(p[i])
		b, _ := json.Marshal(d[i])
		if !bytes.Equal(a, b) {
			return false
		}
	}
	return true
}

func canonicalJCS(m map[string]any) ([]byte, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

// canonicalRDF is RDFC-1.0 (URDNA2015) N-Quads of a JSON-LD document. A
// member that expands to no IRI is left out of what is signed; json-gold's
// safe mode, set here, does not reach type-scoped contexts, so the members
// a reader relies on are checked by the reader (RDFUnsignedListMembers).
func canonicalRDF(m map[string]any, contexts loader) ([]byte, error) {
	// json-gold reads numbers as float64 and strings; json.Number is
	// neither, so the document is read again without it.
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	opts := ld.NewJsonLdOptions("")
	opts.Format = "application/n-quads"
	opts.Algorithm = ld.AlgorithmURDNA2015
	opts.DocumentLoader = contexts
	opts.SafeMode = true
	out, err := ld.NewJsonLdProcessor().Normalize(doc, opts)
	if err != nil {
		return nil, err
	}
	s, ok := out.(string)
	if !ok {
		return nil, fmt.Errorf("canonicalization gave %T", out)
	}
	return []byte(s), nil
}

// startsWithV2 reports whether a credential's @context starts with the
// credentials v2 context, as the Recommendation requires.
func startsWithV2(ctx any) bool {
	l, ok := ctx.([]any)
	if !ok {
		return ctx == ContextCredentialsV2
	}
	return len(l) > 0 && l[0] == ContextCredentialsV2 && !slices.ContainsFunc(l, func(v any) bool { _, ok := v.(string); return !ok })
}

// SignDataIntegrity secures a credential as an issuer does: a
// DataIntegrityProof of suite (eddsa-rdfc-2022 or eddsa-jcs-2022) for
// assertionMethod, created at created, signed with the signer's Ed25519
// key for its KID. The result is a new JSON document.
func (s *Signer) SignDataIntegrity(doc []byte, suite string, created time.Time) ([]byte, error) {
	key, ok := s.key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s signs with Ed25519 keys only", ErrDataIntegrity, suite)
	}
	unsecured, err := decodeObject(doc)
	if err != nil {
		return nil, err
	}
	config := map[string]any{
		"type": "DataIntegrityProof", "cryptosuite": suite, "created": created.UTC().Format(time.RFC3339),
		"verificationMethod": s.KID, "proofPurpose": "assertionMethod", "@context": unsecured["@context"],
	}
	var canon func(map[string]any) ([]byte, error)
	switch suite {
	case CryptosuiteEdDSAJCS:
		canon = canonicalJCS
	case CryptosuiteEdDSARDFC:
		canon = func(m map[string]any) ([]byte, error) { return canonicalRDF(m, bundledContexts) }
	default:
		return nil, fmt.Errorf("%w: cryptosuite %q must be %s or %s", ErrDataIntegrity, suite, CryptosuiteEdDSARDFC, CryptosuiteEdDSAJCS)
	}
	configC, err := canon(config)
	if err != nil {
		return nil, fmt.Errorf("%w: proof configuration: %w", ErrDataIntegrity, err)
	}
	docC, err := canon(unsecured)
	if err != nil {
		return nil, fmt.Errorf("%w: credential: %w", ErrDataIntegrity, err)
	}
	ch, dh := sha256.Sum256(configC), sha256.Sum256(docC)
	value, err := multibase.Encode(multibase.Base58BTC, ed25519.Sign(key, append(ch[:], dh[:]...)))
	if err != nil {
		return nil, err
	}
	config["proofValue"] = value
	if suite == CryptosuiteEdDSARDFC {
		delete(config, "@context") // as the suite's own vectors carry it
	}
	unsecured["proof"] = config
	return json.Marshal(unsecured)
}
