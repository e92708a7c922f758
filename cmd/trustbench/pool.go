package main

import (
	"fmt"
	"os"
	"sync/atomic"
)

// opsPerSecond is the rate a round's pre-signed operations cover: about
// 3,000 op/s is the most seen on a 2-core machine (the held cluster at 256
// clients); a faster machine that runs out is told so.
const opsPerSecond = 3500

// opPool hands a write run its accredit operations, pre-signed so that
// signing costs the timed client nothing, and signed afresh before each
// run: an operation is accepted only within the registry's iat window
// (registry.DefaultIATWindow, 10 minutes) of its commit, and a full run's
// write part, with its settles, lasts longer than that. Each operation
// accredits a college no earlier one did.
type opPool struct {
	name      string // "" for the measured cluster, or which one it serves
	d         *dataset
	ops       [][]byte
	next      int // the college the next operation signed accredits
	exhausted atomic.Bool
}

func newOpPool(name string, d *dataset) *opPool { return &opPool{name: name, d: d} }

// refill signs the operations of one run of the given length in seconds.
func (p *opPool) refill(seconds float64) {
	n := max(10000, int(opsPerSecond*seconds))
	p.ops = p.ops[:0]
	for range n {
		op, _ := p.d.collegeOp(p.next)
		p.next++
		p.ops = append(p.ops, op)
	}
}

// nextFor returns the closed loop's request source for this run's
// operations, sent to bases round robin by client.
func (p *opPool) nextFor(bases []string) func(w int, i int64) (request, bool) {
	return func(w int, i int64) (request, bool) {
		j := i - 1
		if j >= int64(len(p.ops)) {
			p.exhausted.Store(true)
			return request{}, false
		}
		return request{method: "POST", url: bases[w%len(bases)] + "/v1/operations", contentType: "application/jose", body: p.ops[j]}, true
	}
}

// report says, once the runs are over, whether a run ran out.
func (p *opPool) report() {
	if p == nil || !p.exhausted.Load() {
		return
	}
	who := "a trustd run"
	if p.name != "" {
		who = "a run of " + p.name
	}
	fmt.Fprintf(os.Stderr, "writes: the %d operations signed for each run ran out before %s ended; that run's rate is over its shorter length\n", len(p.ops), who)
}
