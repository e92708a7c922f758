package record

import (
	"encoding/json"
	"time"
)

// Actions an accreditation may grant.
const (
	ActionIssue    = "issue"    // the subject may issue credentials of the resources
	ActionAccredit = "accredit" // the subject may grant accreditations within its own scope
)

// Status values of an accreditation, a root accreditor or a recognition.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
	StatusRevoked   = "revoked"
)

// Reason codes of a trust decision.
const (
	ReasonActive           = "active"
	ReasonNeverAuthorized  = "never_authorized"
	ReasonNotYetValid      = "not_yet_valid"
	ReasonExpired          = "expired"
	ReasonSuspended        = "suspended"
	ReasonRevoked          = "revoked"
	ReasonChainBroken      = "chain_broken"
	ReasonUnknownFramework = "unknown_framework"
)

// Wildcard is the resource that stands for every credential type.
const Wildcard = "*"

// DefaultMaxChainLength bounds how many accreditations a chain may hold from
// the entity up to (but not counting) the root accreditor, unless a framework
// sets its own.
const DefaultMaxChainLength = 4

// Genesis defines a consortium: its governance members and the threshold of
// member signatures that a governance operation needs. Its CID identifies the
// cluster.
type Genesis struct {
	Consortium string   `json:"consortium"`
	Members    []Member `json:"members"`
	Threshold  int      `json:"threshold"`
	// IATWindow bounds how far an operation's iat may lie from the commit
	// time (a Go duration string; default 10m).
	IATWindow string `json:"iatWindow,omitempty"`
	// Cosigners are the keys that cosign the registry log's checkpoints
	// (SPEC §7), as C2SP signed-note verifier keys
	// ("name+hex keyid+base64(0x04 || Ed25519 public key)",
	// tlog-cosignature/v1). Without cosigners a consortium serves no
	// proofs. They change only through governance operations in the log.
	Cosigners []string `json:"cosigners,omitempty"`
	// CosignerQuorum is how many cosigners a checkpoint needs; 0 means
	// the default n − ⌊(n−1)/3⌋ (CosignerQuorumOf).
	CosignerQuorum int `json:"cosignerQuorum,omitempty"`
}

// Member is a governance member: a DID and the public keys it signs with.
// A did:key member needs no keys listed.
type Member struct {
	ID   string            `json:"id"`
	Name string            `json:"name,omitempty"`
	Keys []json.RawMessage `json:"keys,omitempty"`
}

// Framework is a governance framework (TRQP's authority).
type Framework struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Description    string    `json:"description,omitempty"`
	URL            string    `json:"url,omitempty"`
	MaxChainLength int       `json:"maxChainLength"`
	CreatedIndex   uint64    `json:"createdIndex"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedIndex   uint64    `json:"updatedIndex"`
	Operation      string    `json:"operation"`
}

// RootAccreditor is an accreditor at the top of a framework's chains. Its
// membership is bitemporal: each add or removal is a status event.
type RootAccreditor struct {
	Framework  string        `json:"framework"`
	Accreditor string        `json:"accreditor"`
	Events     []StatusEvent `json:"events"`
}

// Entity is a registered DID with its display data and verification keys.
type Entity struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Metadata     *EntityMetadata   `json:"metadata,omitempty"`
	Keys         []json.RawMessage `json:"keys"`
	Registered   bool              `json:"registered"`
	CreatedIndex uint64            `json:"createdIndex,omitempty"`
	UpdatedIndex uint64            `json:"updatedIndex,omitempty"`
	// KeysBoundBy says who bound Keys: the DID that signed the
	// registerEntity or rotateKeys (the entity itself, or the accreditor
	// that registered it), or KeysByGovernance for M of N members. It is
	// empty for an entity without keys and for keys bound before the
	// cluster reached FeatureLevelKeyAuthority (authority.go).
	KeysBoundBy string `json:"keysBoundBy,omitempty"`
}

// EntityMetadata is optional descriptive data about an entity.
type EntityMetadata struct {
	LegalName string `json:"legalName,omitempty"`
	Country   string `json:"country,omitempty"`
	Homepage  string `json:"homepage,omitempty"`
	// Location is a place in words ("Cambridge, MA, USA"), as the DCC
	// issuer registry format carries it.
	Location    string            `json:"location,omitempty"`
	Identifiers map[string]string `json:"identifiers,omitempty"`
}

// Accreditation is an authorization statement: accreditor grants subject the
// action on resources within framework, for a validity window.
type Accreditation struct {
	ID            string        `json:"id"`
	Framework     string        `json:"framework"`
	Accreditor    string        `json:"accreditor"`
	Subject       string        `json:"subject"`
	Action        string        `json:"action"`
	Resources     []string      `json:"resources"`
	Jurisdictions []string      `json:"jurisdictions,omitempty"`
	ValidFrom     time.Time     `json:"validFrom"`
	ValidUntil    *time.Time    `json:"validUntil,omitempty"`
	Parent        string        `json:"parent,omitempty"`
	Evidence      []string      `json:"evidence,omitempty"`
	Depth         int           `json:"depth"`
	CreatedIndex  uint64        `json:"createdIndex"`
	CreatedAt     time.Time     `json:"createdAt"`
	Events        []StatusEvent `json:"events"`
}

// StatusEvent changes the status of an accreditation (or root accreditor, or
// recognition) from EffectiveAt on, as recorded at Index.
type StatusEvent struct {
	Status      string    `json:"status"`
	EffectiveAt time.Time `json:"effectiveAt"`
	Reason      string    `json:"reason,omitempty"`
	Index       uint64    `json:"index"`
	Operation   string    `json:"operation"`
}

// Recognition records that Framework recognizes Recognized, optionally only
// for some resources.
type Recognition struct {
	Framework  string `json:"framework"`
	Recognized string `json:"recognized"`
	// Resources are those of the recognize recorded last.
	Resources []string      `json:"resources,omitempty"`
	Events    []StatusEvent `json:"events"`
	// ResourceChanges are the resources of each recognize recorded from
	// feature level 14 on, by the index of its event, in index order; the
	// first of a recognition recorded before the level is the resources it
	// held then, at the index of the recognize that set them. Answers read
	// the resources of the recognize in force (decide.RecognitionResources).
	ResourceChanges []ResourceChange `json:"resourceChanges,omitempty"`
}

// ResourceChange is the resources a recognize recorded at Index set.
type ResourceChange struct {
	Index     uint64   `json:"index"`
	Resources []string `json:"resources"`
}
