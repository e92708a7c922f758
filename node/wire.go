package node

import (
	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway/api"
)

// raftStatus is consensus's status as the gateway's clients read it.
// consensus imports no trustreg package, so the copy is made here, field
// by field (TestWireStatusCopiesEveryField keeps the two in step).
func raftStatus(st consensus.Status) api.RaftStatus {
	members := make([]api.Member, len(st.Members))
	for i, m := range st.Members {
		members[i] = api.Member(m)
	}
	return api.RaftStatus{
		NodeID:           st.NodeID,
		State:            st.State,
		Leader:           st.Leader,
		Term:             st.Term,
		CommitIndex:      st.CommitIndex,
		AppliedIndex:     st.AppliedIndex,
		RaftAppliedIndex: st.RaftAppliedIndex,
		LastLogIndex:     st.LastLogIndex,
		Members:          members,
		Addrs:            st.Addrs,
	}
}

// memberStatuses is consensus's member statuses as the admin API shows them.
func memberStatuses(ms []consensus.MemberStatus) []api.MemberStatus {
	out := make([]api.MemberStatus, len(ms))
	for i, m := range ms {
		out[i] = api.MemberStatus{
			Member:       api.Member(m.Member),
			Reachable:    m.Reachable,
			State:        m.State,
			AppliedIndex: m.AppliedIndex,
			Lag:          m.Lag,
			FeatureLevel: m.FeatureLevel,
			Addrs:        m.Addrs,
			LastContact:  m.LastContact,
			Connection:   m.Connection,
		}
	}
	return out
}
