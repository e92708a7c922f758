package gateway

// Forwarding names for what moved to gateway/api, so that code written
// against the old names still compiles while branches merge. Nothing in
// this module uses them: the rename tool (see its README) rewrites every
// use. Delete this file once no branch needs it.

import "github.com/trustreg/trustreg/gateway/api"

type (
	// Problem is api.Problem.
	Problem = api.Problem
	// MembershipRequest is api.MembershipRequest.
	MembershipRequest = api.MembershipRequest
	// StatusListDocument is api.StatusListDocument.
	StatusListDocument = api.StatusListDocument
)
