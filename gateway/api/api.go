// Package api holds the JSON documents the gateway and its clients
// exchange that are not registry records: problem details, the cluster's
// status and membership, and the status-list document. It imports only
// registry/record, so a client (trustctl, gateway/client) links neither the
// gateway nor the node.
//
// The node fills the cluster documents from consensus's types field by
// field (consensus imports no trustreg package, so it cannot use these).
package api

import (
	"encoding/json"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// Problem is an RFC 9457 problem details document.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Result carries the registry's result for a rejected operation.
	Result *record.Result `json:"result,omitempty"`
}

// MembershipRequest is the body of POST /admin/v1/cluster/{action}: a
// peer id, or a multiaddr ending in /p2p/<peer id> for a new member.
type MembershipRequest struct {
	ID   string `json:"id,omitempty"`
	Addr string `json:"addr,omitempty"`
}

// StatusListDocument is the JSON form of a status-list version.
type StatusListDocument struct {
	Issuer     string          `json:"issuer"`
	List       string          `json:"list"`
	CID        string          `json:"cid"`
	Index      uint64          `json:"index"`
	Time       time.Time       `json:"time"`
	Previous   string          `json:"previous,omitempty"`
	Purposes   []string        `json:"purposes"`
	StatusSize int             `json:"statusSize"`
	Entries    int             `json:"entries"`
	Credential json.RawMessage `json:"credential"`    // the credential's JSON (a VC-JWT's payload)
	JWT        string          `json:"jwt,omitempty"` // the exact signed VC-JWT, for a VC-JWT list
	// MediaType is how the issuer secured it: application/vc+jwt, or
	// application/vc for a credential with a Data Integrity proof (then
	// Credential holds its bytes as issued).
	MediaType string `json:"mediaType"`
}

// Member is one server of the raft configuration.
type Member struct {
	ID       string `json:"id"`
	Suffrage string `json:"suffrage"` // voter or nonvoter
	Leader   bool   `json:"leader"`
}

// RaftStatus is one node's view of the cluster (consensus.Status).
type RaftStatus struct {
	NodeID      string `json:"node_id"`
	State       string `json:"state"`
	Leader      string `json:"leader"`
	Term        uint64 `json:"term"`
	CommitIndex uint64 `json:"commit_index"`
	// AppliedIndex is the registry's: the log index of the last registry
	// operation applied, the index reads are answered at.
	AppliedIndex uint64 `json:"applied_index"`
	// RaftAppliedIndex also counts raft's own entries (configurations, a
	// new leader's no-op); it is the index members' lag is counted in.
	RaftAppliedIndex uint64   `json:"raft_applied_index"`
	LastLogIndex     uint64   `json:"last_log_index"`
	Members          []Member `json:"members"`
	Addrs            []string `json:"addrs"`
}

// NodeStatus is the answer to GET /v1/status: the node's raft status, the
// genesis CID and the feature levels.
type NodeStatus struct {
	RaftStatus
	Genesis string `json:"genesis"`
	// FeatureLevel is the cluster's (the applied state's); the build's
	// is the highest this node's trustd applies.
	FeatureLevel      int `json:"feature_level"`
	BuildFeatureLevel int `json:"build_feature_level"`
}

// MemberStatus is one member with what it reports about itself
// (consensus.MemberStatus).
type MemberStatus struct {
	Member
	Reachable    bool   `json:"reachable"`
	State        string `json:"state,omitempty"`
	AppliedIndex uint64 `json:"applied_index"`
	Lag          uint64 `json:"lag"`
	// FeatureLevel is the highest feature level the member's build
	// applies (0 when it does not answer).
	FeatureLevel int `json:"feature_level,omitempty"`
	// Addrs are the member's multiaddrs (with /p2p/<id>) as this node
	// knows them; empty when it knows none.
	Addrs []string `json:"addrs,omitempty"`
	// LastContact is when this node last heard from the member. Zero, and
	// left out, for this node itself and for a member it never reached.
	LastContact time.Time `json:"last_contact,omitzero"`
	// Connection is how this node is connected to the member now:
	// ConnDirect, ConnRelayed (only through another member's relay), or
	// empty when it is not connected (and for itself).
	Connection string `json:"connection,omitempty"`
}

// Connection kinds of MemberStatus.Connection.
const (
	ConnDirect  = "direct"
	ConnRelayed = "relayed"
)

// ClusterView is the admin API's view (GET /admin/v1/cluster): this node's
// raft status and every member with its applied index and lag.
type ClusterView struct {
	Node    RaftStatus     `json:"node"`
	Members []MemberStatus `json:"members"`
	// FeatureLevel is the cluster's (registry/features.go); each member's
	// build reports its own in Members.
	FeatureLevel int `json:"feature_level"`
	// Genesis is the CID of the node's genesis document: the consortium
	// it belongs to.
	Genesis string `json:"genesis"`
}
