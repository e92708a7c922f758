package consensus

import (
	"errors"
	"fmt"
	"testing"
)

// TestAnswersKeepWhatTheErrorSays: an error goes over the RPC protocol and
// comes back as the same kind of error; an unknown outcome is never
// answered as an error that says the request was not carried out, and a
// membership refusal comes back with the leader's reason as it was.
func TestAnswersKeepWhatTheErrorSays(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"unknown outcome", fmt.Errorf("%w: no answer", ErrUnknownOutcome), ErrUnknownOutcome},
		{"unknown outcome after no leader", errors.Join(ErrNoLeader, ErrUnknownOutcome), ErrUnknownOutcome},
		{"not the leader", ErrNotLeader, ErrNotLeader},
		{"no leader", fmt.Errorf("%w: reach x", ErrNoLeader), ErrNoLeader},
		{"timeout", ErrTimeout, ErrTimeout},
		{"another cluster", ErrForeignCluster, ErrForeignCluster},
		{"bad membership", badMembership("%s is not a member of this cluster", "12D3Koo"), ErrBadMembership},
	} {
		status, body := answerOf(tc.err)
		got := answerError(status, body, "leader")
		if !errors.Is(got, tc.want) {
			t.Errorf("%s: answered %d, came back as %v; want %v", tc.name, status, got, tc.want)
		}
		if !errors.Is(tc.want, ErrUnknownOutcome) && errors.Is(got, ErrUnknownOutcome) {
			t.Errorf("%s: came back as an unknown outcome: %v", tc.name, got)
		}
	}
	var me *MembershipError
	status, body := answerOf(badMembership("12D3Koo already leads"))
	got := answerError(status, body, "leader")
	if !errors.As(got, &me) || me.Reason != "12D3Koo already leads" || got.Error() != badMembership("12D3Koo already leads").Error() {
		t.Errorf("a membership refusal came back as %v", got)
	}
	if got := answerError(200, []byte("a status this build does not know"), "leader"); errors.Is(got, ErrNoLeader) || errors.Is(got, ErrUnknownOutcome) {
		t.Errorf("an unknown status came back as %v", got)
	}
}
