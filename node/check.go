package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// newRefusedCounter counts the writes answered by the leader's check
// instead of the log, by result: the rejection code, or "duplicate".
func newRefusedCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "trustd", Subsystem: "registry", Name: "operations_refused_total",
		Help: "Operations the leader answered without proposing them, by result (the rejection code, or duplicate): they never entered the log.",
	}, []string{"result"})
}

// prepare is the leader's look at a write before it proposes it (its own
// writes and those forwarded to it): the registry checks it against the
// state applied so far, and a write the state refuses, or one applied
// before, is answered here and never enters the log. Unless the node is
// closing: then the write is proposed and the apply decides.
func (n *Node) prepare(cmd []byte) (any, bool) {
	defer n.calls.leave()
	if !n.calls.enter() {
		return nil, false
	}
	res := n.State.CheckCommand(cmd, time.Now())
	if res == nil {
		return nil, false
	}
	code := res.Code
	if res.Duplicate {
		code = "duplicate"
	}
	n.refused.WithLabelValues(code).Inc()
	return res, true
}
