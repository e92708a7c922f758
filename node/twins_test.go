package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/registry/record"
)

// awaitTwins waits until count, read under tw.mu, returns want.
func awaitTwins(t *testing.T, tw *twins, what string, want int, count func() int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tw.mu.Lock()
		n := count()
		tw.mu.Unlock()
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, n, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// twinsInFlight waits until t holds want flights.
func twinsInFlight(t *testing.T, tw *twins, want int) {
	t.Helper()
	awaitTwins(t, tw, "submissions in flight", want, func() int { return len(tw.flying) })
}

// twinsWaiting waits until want twins wait for the flight of jws.
func twinsWaiting(t *testing.T, tw *twins, jws []byte, want int) {
	t.Helper()
	awaitTwins(t, tw, "twins waiting (-1: nothing in flight)", want, func() int {
		if f, ok := tw.flying[sha256.Sum256(jws)]; ok {
			return f.waiting
		}
		return -1
	})
}

// Submissions of the same bytes while one is in flight are not sent: they
// get the first's answer, as a duplicate when it was accepted. Others are
// sent side by side.
func TestTwinSubmissionsShareTheFirstAnswer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first record.Result
		twin  record.Result
	}{
		{"accepted", record.Result{Index: 7, CID: "a", Signers: []string{"did:key:z1"}, Accepted: true}, record.Result{Index: 7, CID: "a", Signers: []string{"did:key:z1"}, Accepted: true, Duplicate: true}},
		{"duplicate", record.Result{Index: 3, CID: "a", Accepted: true, Duplicate: true}, record.Result{Index: 3, CID: "a", Accepted: true, Duplicate: true}},
		{"rejected", record.Result{Index: 9, CID: "a", Code: "invalid"}, record.Result{Index: 9, CID: "a", Code: "invalid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tw twins
			release := make(chan struct{})
			var sent atomic.Int32
			send := func(res record.Result) func() (*record.Result, error) {
				return func() (*record.Result, error) {
					sent.Add(1)
					<-release
					return &res, nil
				}
			}
			const twinsSent = 4
			results := make([]*record.Result, twinsSent+2)
			var wg sync.WaitGroup
			wg.Go(func() { results[0], _ = tw.submit(t.Context(), []byte("op-a"), send(tc.first)) })
			twinsInFlight(t, &tw, 1)
			for i := 1; i <= twinsSent; i++ {
				wg.Go(func() {
					results[i], _ = tw.submit(t.Context(), []byte("op-a"), func() (*record.Result, error) {
						t.Error("a twin was sent")
						return nil, errors.New("sent")
					})
				})
			}
			other := record.Result{Index: 8, CID: "b", Accepted: true}
			wg.Go(func() { results[twinsSent+1], _ = tw.submit(t.Context(), []byte("op-b"), send(other)) })
			twinsInFlight(t, &tw, 2)
			twinsWaiting(t, &tw, []byte("op-a"), twinsSent)
			close(release)
			wg.Wait()
			if sent.Load() != 2 {
				t.Fatalf("sent %d operations, want 2 (the first of a and b)", sent.Load())
			}
			if !reflect.DeepEqual(*results[0], tc.first) {
				t.Fatalf("first: %+v, want %+v", results[0], tc.first)
			}
			for i := 1; i <= twinsSent; i++ {
				if results[i] == nil || !reflect.DeepEqual(*results[i], tc.twin) {
					t.Fatalf("twin %d: %+v, want %+v", i, results[i], tc.twin)
				}
			}
			if !reflect.DeepEqual(*results[twinsSent+1], other) {
				t.Fatalf("other operation: %+v", results[twinsSent+1])
			}
			twinsInFlight(t, &tw, 0)
		})
	}
}

// A first submission that fails does not fail its twin: the twin is sent
// once the first has ended, and its own answer returned.
func TestTwinOfAFailedSubmissionIsSent(t *testing.T) {
	var tw twins
	release := make(chan struct{})
	var wg sync.WaitGroup
	var firstErr error
	wg.Go(func() {
		_, firstErr = tw.submit(t.Context(), []byte("op"), func() (*record.Result, error) {
			<-release
			return nil, consensus.ErrUnknownOutcome
		})
	})
	twinsInFlight(t, &tw, 1)
	var twin *record.Result
	var twinErr error
	var twinSent atomic.Bool
	wg.Go(func() {
		twin, twinErr = tw.submit(t.Context(), []byte("op"), func() (*record.Result, error) {
			twinSent.Store(true)
			return &record.Result{Index: 4, CID: "x", Accepted: true}, nil
		})
	})
	twinsWaiting(t, &tw, []byte("op"), 1)
	if twinSent.Load() {
		t.Fatal("the twin was sent while the first was in flight")
	}
	close(release)
	wg.Wait()
	if !errors.Is(firstErr, consensus.ErrUnknownOutcome) {
		t.Fatalf("first: %v", firstErr)
	}
	if twinErr != nil || !twinSent.Load() || twin.Duplicate || twin.Index != 4 {
		t.Fatalf("twin: sent %v, %+v, %v", twinSent.Load(), twin, twinErr)
	}
}

// A twin whose caller gives up while the first is in flight is answered
// with an unknown outcome (the first may yet be applied), marked as sent by
// another call (the gateway gives its signers' charge back), and a first
// whose send panics still ends its flight.
func TestTwinWaitEnds(t *testing.T) {
	var tw twins
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer func() { _ = recover() }()
		_, _ = tw.submit(t.Context(), []byte("op"), func() (*record.Result, error) {
			<-release
			panic("send failed")
		})
	})
	twinsInFlight(t, &tw, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := tw.submit(ctx, []byte("op"), func() (*record.Result, error) {
		t.Error("a twin was sent")
		return nil, nil
	})
	if !errors.Is(err, gateway.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, gateway.ErrSentByAnother) {
		t.Fatalf("twin given up: %v", err)
	}
	close(release)
	wg.Wait()
	twinsInFlight(t, &tw, 0)
	res, err := tw.submit(t.Context(), []byte("op"), func() (*record.Result, error) {
		return &record.Result{Index: 5, Accepted: true}, nil
	})
	if err != nil || res.Index != 5 {
		t.Fatalf("after the panic: %+v, %v", res, err)
	}
}

// Node.Submit lets one submission of the same bytes at a time reach raft:
// the others wait for it and are answered as duplicates of it, with its
// index, and never proposed (the leader counts no duplicate).
func TestSubmitSendsTheSameBytesOnce(t *testing.T) {
	c := mustNewCluster(t, 1)
	n := c.node(0)
	c.waitLeader()
	jws := c.accreditOp("did:web:twin.example")
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free) // a failure before the release leaves none held
	var sent atomic.Int32
	n.beforeApply = func([]byte) {
		sent.Add(1)
		<-release
	}
	const copies = 4
	results := make([]*record.Result, copies)
	errs := make([]error, copies)
	var wg sync.WaitGroup
	wg.Go(func() { results[0], errs[0] = c.submit(0, jws) })
	twinsInFlight(t, &n.twins, 1)
	for i := 1; i < copies; i++ {
		wg.Go(func() { results[i], errs[i] = c.submit(0, jws) })
	}
	twinsWaiting(t, &n.twins, jws, copies-1)
	free()
	wg.Wait()
	if sent.Load() != 1 {
		t.Fatalf("%d submissions reached raft, want 1", sent.Load())
	}
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("copy %d: %v", i, errs[i])
		}
		if !res.Accepted || res.Duplicate != (i > 0) || res.Index != results[0].Index || res.CID != record.CIDOf(jws) {
			t.Fatalf("copy %d: %+v (first: %+v)", i, res, results[0])
		}
	}
	m := scrapeMetrics(t, n)
	if v, _ := sample(m, "trustd_registry_operations_total", "result", "duplicate"); v != 0 {
		t.Fatalf("the state applied %v duplicates", v)
	}
	if v, _ := sample(m, "trustd_registry_operations_refused_total", "result", "duplicate"); v != 0 {
		t.Fatalf("the leader refused %v duplicates", v)
	}
}
