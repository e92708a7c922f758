package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustreg/trustreg/version"
)

// VersionView is GET /v1/version's answer: this build, the feature levels
// it and the cluster are at, and the genesis that names the cluster.
type VersionView struct {
	version.Info
	// FeatureLevel is the cluster's (the applied state's); it is below
	// BuildFeatureLevel while a member runs an older build.
	FeatureLevel int `json:"feature_level"`
	// BuildFeatureLevel is the highest feature level this node offers the
	// cluster: its build's, or raft.max_feature_level when that is lower.
	BuildFeatureLevel int `json:"build_feature_level"`
	// Genesis is the CID of the genesis document.
	Genesis string `json:"genesis"`
}

// Version reports the node's build and the cluster's feature level.
func (n *Node) Version() any {
	return VersionView{Info: version.Get(), FeatureLevel: n.State.ClusterFeatureLevel(), BuildFeatureLevel: n.buildLevel, Genesis: n.State.GenesisCID()}
}

// newBuildInfoGauge is trustd_build_info: 1, labelled with the build, so
// a query can join it to other series or count the builds a cluster runs.
func newBuildInfoGauge(info version.Info) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustd", Name: "build_info",
		Help:        "1, labelled with the build of trustd this node runs: its version, VCS revision and Go version.",
		ConstLabels: prometheus.Labels{"version": info.Version, "revision": info.Revision, "go": info.Go}},
		func() float64 { return 1 })
}
