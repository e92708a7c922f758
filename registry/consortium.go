package registry

import (
	"sync/atomic"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// consortium is what the rules know of the consortium besides the records:
// its genesis (members, threshold, iat window) and the cluster's feature
// level. The applier changes the level; the verifier and the applier read
// it to choose the rules of the keys a signer may use (authority.go).
type consortium struct {
	genesis   record.Genesis
	members   map[string]record.Member
	iatWindow time.Duration

	level atomic.Int32 // the cluster's feature level (features.go)
	// levelSeq is odd while a batch that raised the feature level is
	// applied and not yet committed (applier.levelRaised): the level in
	// memory is ahead of the committed state then.
	levelSeq atomic.Uint64
}

func newConsortium(g *record.Genesis) *consortium {
	c := &consortium{genesis: *g, members: map[string]record.Member{}, iatWindow: DefaultIATWindow}
	for _, m := range g.Members {
		c.members[m.ID] = m
	}
	if g.IATWindow != "" {
		c.iatWindow, _ = time.ParseDuration(g.IATWindow) // validated by ParseGenesis
	}
	return c
}
