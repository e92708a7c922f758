package record

import (
	"encoding/json"
	"time"
)

// Page limits for listings.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// FrameworkView is a framework with its root accreditors and recognitions.
type FrameworkView struct {
	Framework
	Roots        []RootAccreditor `json:"roots"`
	Recognitions []Recognition    `json:"recognitions"`
}

// AccreditationView is an accreditation with its status now and the exact
// signed operation that created it.
type AccreditationView struct {
	Accreditation
	Status    string `json:"status"`
	Operation string `json:"operation"` // the signed operation, byte for byte
}

// OperationView is an operation as the history shows it.
type OperationView struct {
	CID     string          `json:"cid,omitempty"`
	Index   uint64          `json:"index"`
	Time    time.Time       `json:"time"`
	Op      string          `json:"op,omitempty"`
	Signers []string        `json:"signers,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	JWS     string          `json:"jws,omitempty"` // exact signed bytes
	Result  *Result         `json:"result"`
}

// Decision answers a trust question (registry.Question): whether an entity
// holds an action over a resource in a framework at a time, and why.
type Decision struct {
	Entity     string    `json:"entity"`
	Framework  string    `json:"framework"`
	Action     string    `json:"action"`
	Resource   string    `json:"resource,omitempty"`
	Authorized bool      `json:"authorized"`
	Reason     string    `json:"reason"`
	Chain      []Link    `json:"chain"`
	Root       string    `json:"root,omitempty"`
	At         time.Time `json:"at"`
	Index      uint64    `json:"index"`
}

// Link is one accreditation of a decision's chain, with its status at the
// evaluated time.
type Link struct {
	Accreditation string     `json:"accreditation"`
	Accreditor    string     `json:"accreditor"`
	Subject       string     `json:"subject"`
	Action        string     `json:"action"`
	Resources     []string   `json:"resources"`
	Jurisdictions []string   `json:"jurisdictions,omitempty"`
	ValidFrom     time.Time  `json:"validFrom"`
	ValidUntil    *time.Time `json:"validUntil,omitempty"`
	Status        string     `json:"status"`
}

// StatusListView is a list with its current version.
type StatusListView struct {
	StatusList
	Version StatusListVersion `json:"version"`
}

// EntryStatus is one entry of a list.
type EntryStatus struct {
	Issuer string `json:"issuer"`
	List   string `json:"list"`
	Index  int    `json:"index"`
	Status int    `json:"status"`
	// Purpose is the purpose checked (REC §3.2's result.purpose, a
	// string); Purposes are all the list's.
	Purpose  string   `json:"purpose"`
	Purposes []string `json:"statusPurposes"`
	// Valid is true only when the status is 0 (REC §3.2).
	Valid   bool   `json:"valid"`
	Message string `json:"message,omitempty"`
	Version string `json:"version"`
	Checked string `json:"privacy"`
}

// DCCRegistry is the issuer registry format of the Digital Credentials
// Consortium: known issuers by DID, with a name, a location and a URL.
type DCCRegistry struct {
	Meta     DCCMeta             `json:"meta"`
	Registry map[string]DCCEntry `json:"registry"`
}

// DCCMeta dates a DCC registry.
type DCCMeta struct {
	Created string `json:"created"`
	Updated string `json:"updated"`
}

// DCCEntry is one known issuer.
type DCCEntry struct {
	Name     string `json:"name"`
	Location string `json:"location,omitempty"`
	URL      string `json:"url,omitempty"`
}
