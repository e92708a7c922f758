package tlog

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// flakyState wraps MemCosignerState with injectable failures.
type flakyState struct {
	MemCosignerState
	readErr, storeErr error
}

func (s *flakyState) LastCosigned() (Cosigned, bool, error) {
	if s.readErr != nil {
		return Cosigned{}, false, s.readErr
	}
	return s.MemCosignerState.LastCosigned()
}

func (s *flakyState) StoreCosigned(c Cosigned) error {
	if s.storeErr != nil {
		return s.storeErr
	}
	return s.MemCosignerState.StoreCosigned(c)
}

type cosignerFixture struct {
	origin string
	store  *MemStore // the member's own log of testLeaves(20)
	state  *flakyState
	clock  *testClock
	c      *Cosigner
	v      *Verifier
}

func mustCosignerFixture(t *testing.T) *cosignerFixture {
	t.Helper()
	f := &cosignerFixture{origin: mustOrigin(t), state: &flakyState{}, clock: &testClock{t: time.Unix(1_800_000_000, 0)}}
	_, f.store = mustBuildLog(t, testLeaves(20))
	s := mustSigner(t, "member0.example")
	var err error
	if f.c, err = NewCosigner(s, f.origin, f.state, f.clock.now); err != nil {
		t.Fatal(err)
	}
	if f.v, err = NewVerifier(f.origin, []CosignerKey{s.Key()}, 0); err != nil {
		t.Fatal(err)
	}
	return f
}

// request returns the checkpoint at size, this member's own root there, and
// the proof from old.
func (f *cosignerFixture) request(t *testing.T, old, size uint64) (Checkpoint, []byte, [][]byte) {
	t.Helper()
	root, err := RootAt(f.store, size)
	if err != nil {
		t.Fatal(err)
	}
	cp := Checkpoint{Origin: f.origin, Size: size}
	copy(cp.Hash[:], root)
	p, err := ConsistencyProof(f.store, old, size)
	if err != nil {
		t.Fatal(err)
	}
	return cp, root, p
}

func (f *cosignerFixture) last(t *testing.T) Cosigned {
	t.Helper()
	c, _, err := f.state.MemCosignerState.LastCosigned()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCosignerAdvances: the cosigner follows its own log from nothing, signs
// the same checkpoint again with a new timestamp, keeps timestamps from going
// backwards, and every cosignature verifies.
func TestCosignerAdvances(t *testing.T) {
	f := mustCosignerFixture(t)
	steps := []struct {
		old, size uint64
		clock     int64 // seconds after the start
		wantTime  int64
	}{
		{0, 3, 0, 0},
		{3, 5, 10, 10},
		{5, 5, 20, 20},  // the same checkpoint again: a fresh timestamp
		{5, 16, 15, 20}, // the clock went back: the last timestamp is kept
		{16, 20, 30, 30},
	}
	start := f.clock.now()
	for _, s := range steps {
		f.clock.set(start.Add(time.Duration(s.clock) * time.Second))
		cp, root, p := f.request(t, s.old, s.size)
		sig, err := f.c.Cosign(cp, root, s.old, p)
		if err != nil {
			t.Fatalf("Cosign %d -> %d: %v", s.old, s.size, err)
		}
		if want := start.Add(time.Duration(s.wantTime) * time.Second); !sig.Time.Equal(want) {
			t.Errorf("Cosign %d -> %d: time %v, want %v", s.old, s.size, sig.Time, want)
		}
		if _, err := f.v.Verify(SignedNote(cp, sig)); err != nil {
			t.Fatalf("the cosignature of %d does not verify: %v", s.size, err)
		}
		if last := f.last(t); last.Checkpoint != cp || !last.Time.Equal(sig.Time) {
			t.Fatalf("recorded %+v, want %+v at %v", last, cp, sig.Time)
		}
	}
}

func TestCosignerRefusals(t *testing.T) {
	errRead, errWrite := errors.New("read failed"), errors.New("write failed")
	// A forked log: the same first 3 leaves, then others.
	forkLeaves := append(testLeaves(3), testLeaves(20)[10:]...)
	_, fork := mustBuildLog(t, forkLeaves)

	tests := []struct {
		name string
		// do runs after the cosigner has cosigned size 5; it returns the
		// refusal.
		do   func(t *testing.T, f *cosignerFixture) error
		want error
	}{
		{"size 0 with another root", func(t *testing.T, f *cosignerFixture) error {
			cp := Checkpoint{Origin: f.origin, Size: 0}
			cp.Hash[0] = 1
			_, err := f.c.Cosign(cp, cp.Hash[:], 5, nil)
			return err
		}, ErrMalformedCheckpoint},
		{"another log", func(t *testing.T, f *cosignerFixture) error {
			cp, root, p := f.request(t, 5, 9)
			cp.Origin = OriginPrefix + "another"
			_, err := f.c.Cosign(cp, root, 5, p)
			return err
		}, ErrWrongOrigin},
		{"a root this member's state did not produce", func(t *testing.T, f *cosignerFixture) error {
			cp, _, p := f.request(t, 5, 9)
			own, _ := RootAt(f.store, 8)
			_, err := f.c.Cosign(cp, own, 5, p)
			var rm *RootMismatchError
			if !errors.As(err, &rm) || rm.Size != 9 {
				t.Errorf("RootMismatchError = %+v", rm)
			}
			return err
		}, ErrRootMismatch},
		{"the state cannot be read", func(t *testing.T, f *cosignerFixture) error {
			f.state.readErr = errRead
			cp, root, p := f.request(t, 5, 9)
			_, err := f.c.Cosign(cp, root, 5, p)
			if !errors.Is(err, errRead) {
				t.Errorf("err = %v does not wrap the state's error", err)
			}
			return err
		}, ErrCosignState},
		{"an old size other than the last cosigned", func(t *testing.T, f *cosignerFixture) error {
			cp, root, p := f.request(t, 3, 9)
			_, err := f.c.Cosign(cp, root, 3, p)
			var ose *OldSizeError
			if !errors.As(err, &ose) || ose.Last != 5 || ose.Got != 3 {
				t.Errorf("OldSizeError = %+v, want last 5", ose)
			}
			return err
		}, ErrOldSize},
		{"smaller than the last cosigned", func(t *testing.T, f *cosignerFixture) error {
			cp, root, _ := f.request(t, 4, 4)
			_, err := f.c.Cosign(cp, root, 5, nil)
			return err
		}, ErrRollback},
		{"another root at the cosigned size", func(t *testing.T, f *cosignerFixture) error {
			forkRoot, _ := RootAt(fork, 6)
			f2 := mustCosignerFixture(t)
			cp, root, p := f2.request(t, 0, 6)
			if _, err := f2.c.Cosign(cp, root, 0, p); err != nil {
				t.Fatal(err)
			}
			cp.Hash = [HashSize]byte(forkRoot)
			_, err := f2.c.Cosign(cp, forkRoot, 6, nil)
			return err
		}, ErrInconsistent},
		{"a fork: the proof does not verify", func(t *testing.T, f *cosignerFixture) error {
			// Cosigned 5 of the main log; now a fork that diverges after 3
			// is offered at size 9 with the fork's (valid for it) proof.
			root, _ := RootAt(fork, 9)
			cp := Checkpoint{Origin: f.origin, Size: 9, Hash: [HashSize]byte(root)}
			p, _ := ConsistencyProof(fork, 5, 9)
			_, err := f.c.Cosign(cp, root, 5, p)
			if !errors.Is(err, ErrConsistencyProof) {
				t.Errorf("err = %v does not wrap ErrConsistencyProof", err)
			}
			return err
		}, ErrInconsistent},
		{"a proof from nothing that is not empty", func(t *testing.T, f *cosignerFixture) error {
			f2 := mustCosignerFixture(t)
			cp, root, _ := f2.request(t, 0, 9)
			p, _ := ConsistencyProof(f2.store, 5, 9)
			_, err := f2.c.Cosign(cp, root, 0, p)
			return err
		}, ErrInconsistent},
		{"the record cannot be written", func(t *testing.T, f *cosignerFixture) error {
			f.state.storeErr = errWrite
			cp, root, p := f.request(t, 5, 9)
			sig, err := f.c.Cosign(cp, root, 5, p)
			if sig != (Cosignature{}) {
				t.Errorf("a cosignature was returned though it was not recorded")
			}
			if !errors.Is(err, errWrite) {
				t.Errorf("err = %v does not wrap the state's error", err)
			}
			return err
		}, ErrCosignState},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := mustCosignerFixture(t)
			cp, root, p := f.request(t, 0, 5)
			if _, err := f.c.Cosign(cp, root, 0, p); err != nil {
				t.Fatal(err)
			}
			before := f.last(t)
			err := tc.do(t, f)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if after := f.last(t); after != before {
				t.Fatalf("a refusal changed the record from %+v to %+v", before, after)
			}
		})
	}
}

// TestCosignerSerialisesRequests: many requests from the same old size race;
// exactly one is cosigned and the others learn the new size, so no request
// can roll the record back.
func TestCosignerSerialisesRequests(t *testing.T) {
	f := mustCosignerFixture(t)
	cp, root, p := f.request(t, 0, 5)
	if _, err := f.c.Cosign(cp, root, 0, p); err != nil {
		t.Fatal(err)
	}
	sizes := []uint64{6, 7, 8, 9, 10, 11, 12, 13}
	var wg sync.WaitGroup
	errs := make([]error, len(sizes))
	for i, size := range sizes {
		cp, root, p := f.request(t, 5, size)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.c.Cosign(cp, root, 5, p)
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("sizes %d and %d were both cosigned from 5", sizes[won], sizes[i])
		case err == nil:
			won = i
		case !errors.Is(err, ErrOldSize):
			t.Fatalf("size %d: err = %v, want ErrOldSize", sizes[i], err)
		}
	}
	if won < 0 {
		t.Fatal("no request was cosigned")
	}
	if last := f.last(t); last.Checkpoint.Size != sizes[won] {
		t.Fatalf("recorded size %d, want %d", last.Checkpoint.Size, sizes[won])
	}
}

func TestNewCosignerRefusals(t *testing.T) {
	s := mustSigner(t, "member0.example")
	origin := mustOrigin(t)
	for name, err := range map[string]error{
		"no signer": errOnly(NewCosigner(nil, origin, &MemCosignerState{}, nil)),
		"no state":  errOnly(NewCosigner(s, origin, nil, nil)),
		"no origin": errOnly(NewCosigner(s, "", &MemCosignerState{}, nil)),
	} {
		if !errors.Is(err, ErrBadPolicy) {
			t.Errorf("%s: err = %v, want ErrBadPolicy", name, err)
		}
	}
	if _, err := NewCosignatureSigner("member0.example", make([]byte, 10)); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("short private key: err = %v, want ErrMalformedKey", err)
	}
	if !bytes.Equal(s.Key().Key, mustSigner(t, "member0.example").Key().Key) {
		t.Error("mustSigner is not deterministic")
	}
}

// testClockStart is a fixed time for tests that need one.
var testClockStart = time.Unix(1_800_000_000, 0).UTC()
