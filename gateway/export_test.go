package gateway

import "time"

// AyraMaxDecisions is ayraMaxDecisions, for the tests outside the package.
const AyraMaxDecisions = ayraMaxDecisions

// MaxBatchReads is maxBatchReads, for the tests outside the package.
const MaxBatchReads = maxBatchReads

// HoldTurns takes every turn (takeTurn), as that many listings or watch
// pages being read at once would, and returns what gives them back.
func (s *Server) HoldTurns() (release func()) {
	n := cap(s.turns)
	for range n {
		s.turns <- struct{}{}
	}
	return func() {
		for range n {
			<-s.turns
		}
	}
}

// TurnsFree is how many turns are free.
func (s *Server) TurnsFree() int { return cap(s.turns) - len(s.turns) }

// SetWatchKeepAlive sets how long a watch stream that sent nothing waits
// before a keep-alive, for the streams opened after it, and returns what
// sets it back.
func SetWatchKeepAlive(d time.Duration) (restore func()) {
	old := watchKeepAlive.Swap(int64(d))
	return func() { watchKeepAlive.Store(old) }
}

// SetBatchReads lowers the listed accreditations one batch of trust
// questions may read (maxBatchReads), so a test passes it with few.
func (s *Server) SetBatchReads(n int) { s.batchReads = n }
