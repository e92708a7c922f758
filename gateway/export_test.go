package gateway

// AyraMaxDecisions is ayraMaxDecisions, for the tests outside the package.
const AyraMaxDecisions = ayraMaxDecisions

// HoldWatchReads takes every read token of the watch streams, as that
// many streams reading the change feed at once would, and returns what
// gives them back.
func (s *Server) HoldWatchReads() (release func()) {
	n := cap(s.watchers.reads)
	for range n {
		s.watchers.reads <- struct{}{}
	}
	return func() {
		for range n {
			<-s.watchers.reads
		}
	}
}

// HoldScans takes every turn of the listings and exports (scanRoutes) and
// returns what gives them back.
func (s *Server) HoldScans() (release func()) {
	n := cap(s.scans)
	for range n {
		s.scans <- struct{}{}
	}
	return func() {
		for range n {
			<-s.scans
		}
	}
}

// TurnsFree is how many turns of scanRoutes (and of the watch streams'
// reads) are free.
func (s *Server) TurnsFree() int { return cap(s.scans) - len(s.scans) }
