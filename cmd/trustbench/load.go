package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// request is one HTTP request the load generator sends.
type request struct {
	method, url, contentType string
	body                     []byte
}

// stats summarizes one measured run.
type stats struct {
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	PerSecond float64 `json:"per_second"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
}

func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, MaxConnsPerHost: conns * 2,
			IdleConnTimeout: time.Minute, DisableCompression: true,
		},
	}
}

// closedLoop runs conns workers, each sending its next request as soon as
// the previous one is answered, for d. next(worker, i) gives the request;
// ok judges the answer. The same generator drives every system measured.
func closedLoop(ctx context.Context, conns int, d time.Duration, next func(worker int, i int64) (request, bool), ok func(status int) bool) stats {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return drive(ctx, conns, nil, next, ok)
}

// paced sends requests at a fixed rate (open loop, up to conns in flight)
// for d and reports latencies: the latency under a given load. Request i is
// due at start + i/rate; the worker that takes it sleeps until then, and
// its latency counts from the due time, so a request that goes out late
// because every worker was busy shows its wait (no coordinated omission).
func paced(ctx context.Context, conns int, rate float64, d time.Duration, next func(worker int, i int64) (request, bool), ok func(status int) bool) stats {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	interval := float64(time.Second) / rate
	start := time.Now()
	return drive(ctx, conns, func(i int64) time.Time {
		return start.Add(time.Duration(float64(i-1) * interval))
	}, next, ok)
}

// drive runs conns workers until ctx ends. With dueAt nil each worker sends
// as soon as it is free and latency counts from the send; otherwise request
// i waits for dueAt(i) and latency counts from it.
func drive(ctx context.Context, conns int, dueAt func(i int64) time.Time, next func(worker int, i int64) (request, bool), ok func(status int) bool) stats {
	client := newClient(conns)
	defer client.CloseIdleConnections()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		all    []time.Duration
		errors atomic.Int64
		seq    atomic.Int64
	)
	deadline, _ := ctx.Deadline()
	start := time.Now()
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				i := seq.Add(1)
				var t0 time.Time
				if dueAt != nil {
					t0 = dueAt(i)
					if !deadline.IsZero() && t0.After(deadline) {
						break
					}
					if wait := time.Until(t0); wait > 0 {
						select {
						case <-time.After(wait):
						case <-ctx.Done():
						}
					}
				}
				r, more := next(w, i)
				if !more || ctx.Err() != nil {
					break
				}
				if dueAt == nil {
					t0 = time.Now()
				}
				status, err := do(ctx, client, r)
				if ctx.Err() != nil {
					break // cut off by the end of the run: not counted
				}
				if err != nil || !ok(status) {
					if errors.Add(1) <= 3 {
						fmt.Fprintf(os.Stderr, "trustbench: %s %s: status %d, %v\n", r.method, r.url, status, err)
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return summarize(all, errors.Load(), time.Since(start))
}

func do(ctx context.Context, client *http.Client, r request) (int, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return 0, err
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func summarize(lat []time.Duration, errors int64, elapsed time.Duration) stats {
	slices.Sort(lat)
	s := stats{Requests: int64(len(lat)), Errors: errors, PerSecond: float64(len(lat)) / elapsed.Seconds()}
	if len(lat) > 0 {
		s.P50 = ms(lat[len(lat)/2])
		s.P99 = ms(lat[min(len(lat)-1, len(lat)*99/100)])
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
