package node

import (
	"context"
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

// twinsInFlight waits until t holds want flights.
func twinsInFlight(t *testing.T, tw *twins, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tw.mu.Lock()
		n := len(tw.flying)
		tw.mu.Unlock()
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d submissions in flight, want %d", n, want)
		}
		time.Sleep(time.Millisecond)
	}
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
			time.Sleep(20 * time.Millisecond) // let the twins reach their wait
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
	time.Sleep(20 * time.Millisecond)
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
// with an unknown outcome (the first may yet be applied), and a first whose
// send panics still ends its flight.
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
	if !errors.Is(err, gateway.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
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
