package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/trustreg/trustreg/registry/proof"
)

// The proof row of the read benchmark: the same trust questions asked
// with &proof=true (GET /v1/trust answers with its proof bundle, docs/API.md
// "proof"), closed loop against the same node as the plain reads.

// ErrNoProof: a proof answer carries no `proof` member.
var ErrNoProof = errors.New("the answer carries no proof member")

// ErrNoCheckpoint: the node had no cosigned checkpoint before the
// deadline, so no proof answer can be measured.
var ErrNoCheckpoint = errors.New("no cosigned checkpoint")

// proofResult is the proof row of one read level.
type proofResult struct {
	// Trustd: the best closed-loop run of proof answers.
	Trustd stats `json:"trustd"`
	// RatioToPlain: Trustd's rate over the plain trustd rate of the same
	// level (issue #32's budget: at least 0.3).
	RatioToPlain float64 `json:"ratio_to_plain"`
	// CPUus: trustd's CPU microseconds per proof answer in the run kept.
	CPUus float64 `json:"cpu_us_per_query"`
	// Bundle: the size of the answers' `proof` members.
	Bundle bundleSizes `json:"bundle"`
	// Uncached: the same questions, each request pinned to its own
	// instant (at=, a few milliseconds apart in the recent past), so that
	// no answer is served again from the node's proof cache (every one is
	// computed and proven afresh); its CPU per answer and rate over the
	// plain rate. Trustd's run asks about now: within a second the node
	// serves a question asked again from the cache.
	Uncached             stats   `json:"uncached,omitzero"`
	UncachedCPUus        float64 `json:"uncached_cpu_us_per_query,omitempty"`
	UncachedRatioToPlain float64 `json:"uncached_ratio_to_plain,omitempty"`
}

// uncachedProofs returns the closed loop's requests of the uncached proof
// run: the proof questions of urls, request i pinned to the instant i
// microseconds before from, so that no two requests are the same.
func uncachedProofs(urls []string, from time.Time) func(int, int64) (request, bool) {
	return func(w int, i int64) (request, bool) {
		at := from.Add(-time.Duration(i) * time.Microsecond).UTC().Format(time.RFC3339Nano)
		return request{method: "GET", url: proofURL(urls[i%int64(len(urls))]) + "&at=" + at}, true
	}
}

// bundleSizes: the bytes of the `proof` member over the questions asked,
// as served and gzipped.
type bundleSizes struct {
	Answers  int     `json:"answers"`
	Mean     float64 `json:"mean_bytes"`
	Max      int     `json:"max_bytes"`
	GzipMean float64 `json:"gzip_mean_bytes"`
	GzipMax  int     `json:"gzip_max_bytes"`
	// CompactMean and CompactMax: the same bundles in their compact form
	// (CBOR, gzip'd: what Accept: application/cbor with gzip serves), the
	// form issue #32's 8 KiB budget is held on.
	CompactMean float64 `json:"compact_mean_bytes,omitempty"`
	CompactMax  int     `json:"compact_max_bytes,omitempty"`
}

// proofURL is a trust question's URL asking for the proof bundle too.
func proofURL(u string) string { return u + "&proof=true" }

// proofMember returns the `proof` member of a proof answer's body.
func proofMember(body []byte) (json.RawMessage, error) {
	var a struct {
		Proof json.RawMessage `json:"proof"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("a proof answer: %w", err)
	}
	if len(a.Proof) == 0 || bytes.Equal(a.Proof, []byte("null")) {
		return nil, ErrNoProof
	}
	return a.Proof, nil
}

// measureBundles sizes the `proof` member of each body.
func measureBundles(bodies [][]byte) (bundleSizes, error) {
	var s bundleSizes
	var sum, gzSum, compactSum int
	for _, body := range bodies {
		p, err := proofMember(body)
		if err != nil {
			return bundleSizes{}, err
		}
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		if _, err := w.Write(p); err != nil {
			return bundleSizes{}, err
		}
		if err := w.Close(); err != nil {
			return bundleSizes{}, err
		}
		b, err := proof.ParseBundle(p)
		if err != nil {
			return bundleSizes{}, fmt.Errorf("a proof answer's bundle: %w", err)
		}
		cb, err := b.MarshalCBOR()
		if err != nil {
			return bundleSizes{}, err
		}
		compact := len(proof.Compress(cb))
		compactSum += compact
		s.CompactMax = max(s.CompactMax, compact)
		s.Answers++
		sum += len(p)
		gzSum += gz.Len()
		s.Max = max(s.Max, len(p))
		s.GzipMax = max(s.GzipMax, gz.Len())
	}
	if s.Answers > 0 {
		s.Mean = float64(sum) / float64(s.Answers)
		s.GzipMean = float64(gzSum) / float64(s.Answers)
		s.CompactMean = float64(compactSum) / float64(s.Answers)
	}
	return s, nil
}

// waitCheckpoint polls GET /v1/checkpoint at base until the node serves
// a cosigned checkpoint, for at most limit.
func waitCheckpoint(ctx context.Context, base string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/checkpoint", nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			closeRead(resp.Body)
			switch resp.StatusCode {
			case http.StatusOK:
				return nil
			case http.StatusNotFound:
				// no_cosigners: the genesis lists none, none will come.
				return fmt.Errorf("%w at %s: %s (the genesis lists no cosigners)", ErrNoCheckpoint, base, resp.Status)
			}
			last = resp.Status
		} else if ctx.Err() == nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w at %s within %s (last: %s)", ErrNoCheckpoint, base, limit, last)
		case <-tick.C:
		}
	}
}

// fetchProofs asks each question once with its proof, a few at a time,
// and returns the bodies; every answer must be 200.
func fetchProofs(ctx context.Context, urls []string) ([][]byte, error) {
	const workers = 8
	bodies := make([][]byte, len(urls))
	errs := make(chan error, workers)
	next := make(chan int)
	for range workers {
		go func() {
			var first error
			for i := range next {
				if first != nil {
					continue
				}
				first = func() error {
					req, err := http.NewRequestWithContext(ctx, "GET", proofURL(urls[i]), nil)
					if err != nil {
						return err
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						return err
					}
					defer closeRead(resp.Body)
					body, err := io.ReadAll(resp.Body)
					if err != nil {
						return err
					}
					if resp.StatusCode != http.StatusOK {
						return fmt.Errorf("a proof answer is %s: %s", resp.Status, body)
					}
					bodies[i] = body
					return nil
				}()
			}
			errs <- first
		}()
	}
	for i := range urls {
		next <- i
	}
	close(next)
	var err error
	for range workers {
		err = errors.Join(err, <-errs)
	}
	return bodies, err
}

// printProofRows prints the proof row of each read level that has one.
func printProofRows(ew *errWriter, reads []readResult) {
	var any bool
	for _, x := range reads {
		any = any || x.Proof != nil
	}
	if !any {
		return
	}
	ew.Printf("Proof answers: GET /v1/trust?...&proof=true, the same questions, same node, closed loop (issue #32: ratio to plain at least 0.3)\n")
	ew.Printf("%10s %12s %9s %9s %14s %14s %16s %16s %18s\n", "entities", "proof r/s", "p50 ms", "p99 ms", "ratio to plain", "cpu/q", "bundle mean/max", "gzip mean/max", "compact mean/max")
	for _, x := range reads {
		p := x.Proof
		if p == nil {
			continue
		}
		ew.Printf("%10d %12.0f %9.2f %9.2f %14.2f %11.1f us %16s %16s %18s\n", x.Entities, p.Trustd.PerSecond, p.Trustd.P50, p.Trustd.P99,
			p.RatioToPlain, p.CPUus, fmt.Sprintf("%.0f/%d B", p.Bundle.Mean, p.Bundle.Max), fmt.Sprintf("%.0f/%d B", p.Bundle.GzipMean, p.Bundle.GzipMax),
			fmt.Sprintf("%.0f/%d B", p.Bundle.CompactMean, p.Bundle.CompactMax))
		if p.Uncached.PerSecond > 0 {
			ew.Printf("%10s %12.0f %9.2f %9.2f %14.2f %11.1f us   (each request at its own instant: none from the proof cache)\n", "uncached", p.Uncached.PerSecond, p.Uncached.P50, p.Uncached.P99,
				p.UncachedRatioToPlain, p.UncachedCPUus)
		}
	}
}

// proofRows adds the proof figures of two read results to a comparison.
func proofRows(add func(string, float64, float64), p string, a, b *proofResult) {
	if a == nil && b == nil {
		return
	}
	var za, zb proofResult
	if a != nil {
		za = *a
	}
	if b != nil {
		zb = *b
	}
	add(p+"proof r/s", za.Trustd.PerSecond, zb.Trustd.PerSecond)
	add(p+"proof p50 (ms)", za.Trustd.P50, zb.Trustd.P50)
	add(p+"proof p99 (ms)", za.Trustd.P99, zb.Trustd.P99)
	add(p+"proof r/s / plain trustd r/s", za.RatioToPlain, zb.RatioToPlain)
	add(p+"proof CPU per query (µs)", za.CPUus, zb.CPUus)
	add(p+"uncached proof r/s / plain trustd r/s", za.UncachedRatioToPlain, zb.UncachedRatioToPlain)
	add(p+"uncached proof CPU per query (µs)", za.UncachedCPUus, zb.UncachedCPUus)
	add(p+"proof bundle mean (bytes)", za.Bundle.Mean, zb.Bundle.Mean)
	add(p+"proof bundle max (bytes)", float64(za.Bundle.Max), float64(zb.Bundle.Max))
	add(p+"proof bundle gzip mean (bytes)", za.Bundle.GzipMean, zb.Bundle.GzipMean)
	add(p+"proof bundle compact max (bytes)", float64(za.Bundle.CompactMax), float64(zb.Bundle.CompactMax))
}

// checkpointLimit bounds the wait for the read node's first cosigned
// checkpoint.
const checkpointLimit = 30 * time.Second

// prepareProofs waits for the node at base to serve a cosigned
// checkpoint, asks each of urls once with its proof to size the bundles
// (which also warms the node for them), and returns the proof row to fill
// and the closed loop's requests.
func prepareProofs(ctx context.Context, base string, urls []string) (*proofResult, func(int, int64) (request, bool), error) {
	start := time.Now()
	if err := waitCheckpoint(ctx, base, checkpointLimit); err != nil {
		return nil, nil, fmt.Errorf("proof answers: %w", err)
	}
	waited := time.Since(start)
	bodies, err := fetchProofs(ctx, urls)
	if err != nil {
		return nil, nil, fmt.Errorf("proof answers: %w", err)
	}
	sizes, err := measureBundles(bodies)
	if err != nil {
		return nil, nil, fmt.Errorf("proof answers: %w", err)
	}
	fmt.Fprintf(os.Stderr, "reads: a cosigned checkpoint after %s; %d proof bundles sized in %s\n",
		waited.Round(time.Millisecond), sizes.Answers, (time.Since(start) - waited).Round(time.Millisecond))
	purls := make([]string, len(urls))
	for i, u := range urls {
		purls[i] = proofURL(u)
	}
	next := func(w int, i int64) (request, bool) {
		return request{method: "GET", url: purls[i%int64(len(purls))]}, true
	}
	return &proofResult{Bundle: sizes}, next, nil
}
