package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/registry/record"
)

// TestReadsReportTheirSnapshotIndex writes root accreditors and grants
// into a framework while readers fetch the framework (its roots) and its
// accreditations. Every answer must be exactly the state at the index it
// reports in X-Trustreg-Index: each root and accreditation in it was
// applied at or below that index, and every one applied at or below it is
// in it. An answer read from the live database while commits land, or
// whose index is read after its body was built, fails this.
func TestReadsReportTheirSnapshotIndex(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	const writes = 40
	var (
		mu         sync.Mutex
		rootIdx    []uint64 // indexes the added roots were applied at
		grantIdx   []uint64
		stop       atomic.Bool
		frameworks []frameworkSample
		listings   []listingSample
	)
	var wg sync.WaitGroup
	failed := make(chan string, 4)
	for range 2 {
		wg.Go(func() {
			for i := 0; i < 100_000 && !stop.Load(); i++ {
				f, err := e.readFramework()
				if err != nil {
					failed <- err.Error()
					return
				}
				l, err := e.readListing()
				if err != nil {
					failed <- err.Error()
					return
				}
				mu.Lock()
				frameworks, listings = append(frameworks, f), append(listings, l)
				mu.Unlock()
			}
		})
	}
	for i := range writes {
		did := fmt.Sprintf("did:web:root-%d.example", i)
		res := e.mustSubmit(e.govSign(record.OpAddRootAccreditor, map[string]any{"framework": fw, "accreditor": did}))
		if !res.Accepted {
			t.Fatalf("root %d: %s", i, res.Reason)
		}
		g := e.mustSubmit(e.sign(e.root, record.OpAccredit, map[string]any{"framework": fw, "accreditor": e.root.DID,
			"subject": fmt.Sprintf("did:web:college-%d.example", i), "action": "issue", "resources": []string{nurse},
			"validFrom": "2020-01-01T00:00:00Z"}))
		if !g.Accepted {
			t.Fatalf("grant %d: %s", i, g.Reason)
		}
		mu.Lock()
		rootIdx, grantIdx = append(rootIdx, res.Index), append(grantIdx, g.Index)
		mu.Unlock()
	}
	stop.Store(true)
	wg.Wait()
	select {
	case msg := <-failed:
		t.Fatal(msg)
	default:
	}
	upTo := func(idx []uint64, h uint64) int {
		n := 0
		for _, x := range idx {
			if x <= h {
				n++
			}
		}
		return n
	}
	for _, f := range frameworks {
		if want := 1 + upTo(rootIdx, f.index); len(f.roots) != want || f.maxRoot > f.index {
			t.Fatalf("framework answered at index %d holds %d roots (the last applied at %d); at that index it had %d",
				f.index, len(f.roots), f.maxRoot, want)
		}
	}
	for _, l := range listings {
		if want := 2 + upTo(grantIdx, l.index); len(l.created) != want || l.maxCreated > l.index {
			t.Fatalf("accreditations answered at index %d list %d (the last created at %d); at that index there were %d",
				l.index, len(l.created), l.maxCreated, want)
		}
	}
	if len(frameworks) < writes {
		t.Fatalf("only %d answers were read while writes went on; this test would prove little", len(frameworks))
	}
}

type frameworkSample struct {
	index   uint64
	roots   []record.RootAccreditor
	maxRoot uint64
}

type listingSample struct {
	index      uint64
	created    []uint64
	maxCreated uint64
}

func (e *env) answerIndex(path string) (uint64, []byte, error) {
	resp, body := e.get(path)
	if resp.StatusCode != 200 {
		return 0, nil, fmt.Errorf("%s: %d %s", path, resp.StatusCode, body)
	}
	n, err := strconv.ParseUint(resp.Header.Get(gateway.IndexHeader), 10, 64)
	return n, body, err
}

func (e *env) readFramework() (frameworkSample, error) {
	var s frameworkSample
	idx, body, err := e.answerIndex("/v1/frameworks/" + url.PathEscape(fw))
	if err != nil {
		return s, err
	}
	var v record.FrameworkView
	if err := json.Unmarshal(body, &v); err != nil {
		return s, err
	}
	s.index, s.roots = idx, v.Roots
	for _, r := range v.Roots {
		for _, ev := range r.Events {
			s.maxRoot = max(s.maxRoot, ev.Index)
		}
	}
	return s, nil
}

func (e *env) readListing() (listingSample, error) {
	var s listingSample
	idx, body, err := e.answerIndex("/v1/accreditations?limit=1000&framework=" + url.QueryEscape(fw))
	if err != nil {
		return s, err
	}
	var page struct {
		Items []record.AccreditationView `json:"items"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return s, err
	}
	s.index = idx
	for _, a := range page.Items {
		s.created = append(s.created, a.CreatedIndex)
		s.maxCreated = max(s.maxCreated, a.CreatedIndex)
	}
	return s, nil
}
