package node

// Forwarding names for what moved out of node, so that code written against
// the old names still compiles while branches merge. Nothing in this module
// uses them: the rename tool (see its README) rewrites every use. Delete
// this file once no branch needs it.

import (
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/record"
)

// ClusterView is api.ClusterView.
type ClusterView = api.ClusterView

// LoadKeyFile is record.LoadKeyFile.
var LoadKeyFile = record.LoadKeyFile
