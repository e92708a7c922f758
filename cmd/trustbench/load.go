package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
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
	// Paced runs only: how late the generator sent requests after their
	// due time (p99), part of the latency above; a large figure means the
	// load generator, not the server, fell behind.
	SendLagP99 float64 `json:"send_lag_p99_ms,omitempty"`
	// The share of the machine's CPU time the hypervisor gave to other
	// guests during the run (Linux steal time): noise no program here
	// controls.
	StealPct float64 `json:"cpu_steal_pct"`
	// Paced runs against trustd: how long its handler took for the same
	// requests, by its own metrics.
	Handler *handlerTimes `json:"trustd_handler,omitempty"`
	// GeneratorCPUus: the CPU microseconds the load generator's whole
	// process spent per answered request during the run (0 where
	// /proc/self/stat cannot be read): what a request to this server
	// costs the side that sends it.
	GeneratorCPUus float64 `json:"generator_cpu_us_per_request,omitempty"`
	// ServerCPUus, paced runs of the read benchmark: the CPU microseconds
	// the server's process spent per answered request during the run.
	// Paced, a request seldom finds another to share a wake-up with, so
	// it costs more than in the closed loop.
	ServerCPUus float64 `json:"server_cpu_us_per_request,omitempty"`
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
// Requests still unanswered at the end are not counted.
func closedLoop(ctx context.Context, conns int, d time.Duration, next func(worker int, i int64) (request, bool), ok func(status int) bool) stats {
	return closedLoopOf(ctx, conns, d, httpSenders, next, ok)
}

// closedLoopOf is closedLoop with the workers' requests sent by senders
// of newSender's making: another client than HTTP (etcd's own), measured
// by the same loop.
func closedLoopOf(ctx context.Context, conns int, d time.Duration, newSender func(worker int) sender, next func(worker int, i int64) (request, bool), ok func(status int) bool) stats {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return drive(ctx, conns, nil, nil, newSender, next, ok)
}

// sender sends one worker's requests and answers with a status (HTTP's,
// or 200 for a success of another client).
type sender interface {
	do(ctx context.Context, r request) (int, error)
	close()
}

// httpSenders gives each worker an HTTP client of its own (worker).
func httpSenders(int) sender { return newWorker() }

// paced sends requests at a fixed rate (open loop, up to conns in flight)
// for d and reports latencies: the latency under a given load. Request i is
// due at start + i/rate; a dispatcher releases it then (woken by a
// sleeper, exact to tens of microseconds) to the first free worker, and its
// latency counts from the due time, so a request that goes out late
// because every worker was busy shows its wait (no coordinated omission).
// Every request due within d is sent and counted, its answer awaited up
// to the client's timeout.
//
// Before the first request is due each worker connects and sends one GET
// of warm, not counted, as a client's pool of kept-alive connections would
// have: the latency of a steady load, not of conns connections dialled and
// accepted in its first millisecond (up to about 100 answers over 2 ms at
// the start of a run against trustd otherwise, where the slowest 1 % of a
// 3-second run at 7,000 requests/s is 210 answers).
func paced(ctx context.Context, conns int, rate float64, d time.Duration, warm string, next func(worker int, i int64) (request, bool), ok func(status int) bool) stats {
	n := int64(rate * d.Seconds())
	due := make(chan time.Time, min(n, 1<<16))
	ready := make(chan struct{})
	go func() {
		defer close(due)
		select {
		case <-ready:
		case <-ctx.Done():
			return
		}
		sl := newSleeper()
		defer sl.close()
		interval := float64(time.Second) / rate
		start := time.Now()
		for i := range n {
			t := start.Add(time.Duration(float64(i) * interval))
			sl.sleep(time.Until(t))
			select {
			case due <- t:
			case <-ctx.Done():
				return
			}
		}
	}()
	return drive(ctx, conns, due, &warmup{url: warm, ready: ready}, httpSenders, next, ok)
}

// warmup asks drive's workers to GET url first, uncounted, and closes
// ready when all of them have (a failure is not reported: the worker's
// first counted request dials again and reports its error).
type warmup struct {
	url   string
	ready chan struct{}
}

// drive runs conns workers. With due nil each worker sends as soon as it is
// free until ctx ends, and latency counts from the send; otherwise each
// request waits for a due time from due, until it is closed, and latency
// counts from that time. With warm, each worker first sends one GET of
// warm.url, not counted. Requests run under ctx; one cut off by its end
// is not counted.
func drive(ctx context.Context, conns int, due <-chan time.Time, warm *warmup, newSender func(worker int) sender, next func(worker int, i int64) (request, bool), ok func(status int) bool) stats {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		all    []time.Duration
		lags   []time.Duration
		errors atomic.Int64
		seq    atomic.Int64
	)
	end, hasEnd := ctx.Deadline() // the connection's deadline may fire before ctx's
	steal0, total0 := cpuSteal()
	cpu0, _ := selfUsage()
	start := time.Now()
	// With a warm-up the run starts when every worker is warm: the rate,
	// the steal time and the generator's CPU are over the measured part
	// only.
	var warmed sync.WaitGroup
	var warmStart time.Time
	var warmSteal0, warmTotal0 uint64
	var warmCPU0 float64
	if warm != nil {
		warmed.Add(conns)
		go func() {
			warmed.Wait()
			warmStart = time.Now()
			warmSteal0, warmTotal0 = cpuSteal()
			warmCPU0, _ = selfUsage()
			close(warm.ready) // publishes warmStart and the counters
		}()
	}
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := newSender(w)
			defer client.close()
			if warm != nil {
				// The warm-up only opens the connection; a failure shows
				// again in the measured requests, which count errors.
				_, _ = client.do(ctx, request{method: http.MethodGet, url: warm.url})
				warmed.Done()
			}
			lat := make([]time.Duration, 0, 4096)
			var lag []time.Duration
			for {
				var t0 time.Time
				if due != nil {
					t, open := <-due
					if !open {
						break
					}
					t0 = t
				} else if ctx.Err() != nil {
					break
				}
				i := seq.Add(1)
				r, more := next(w, i)
				if !more {
					break
				}
				if due == nil {
					t0 = time.Now()
				} else {
					lag = append(lag, time.Since(t0))
				}
				status, err := client.do(ctx, r)
				if ctx.Err() != nil || (hasEnd && !time.Now().Before(end)) {
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
			lags = append(lags, lag...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if warm != nil {
		select {
		case <-warm.ready:
			start, steal0, total0, cpu0 = warmStart, warmSteal0, warmTotal0, warmCPU0
		default: // ended before every worker was warm
		}
	}
	s := summarize(all, errors.Load(), time.Since(start))
	if cpu1, _ := selfUsage(); cpu0 > 0 && cpu1 > cpu0 && s.Requests > 0 {
		s.GeneratorCPUus = (cpu1 - cpu0) * 1e6 / float64(s.Requests)
	}
	if len(lags) > 0 {
		slices.Sort(lags)
		s.SendLagP99 = ms(percentile(lags, 99))
	}
	if steal1, total1 := cpuSteal(); total1 > total0 {
		s.StealPct = 100 * float64(steal1-steal0) / float64(total1-total0)
	}
	return s
}

func summarize(lat []time.Duration, errors int64, elapsed time.Duration) stats {
	slices.Sort(lat)
	s := stats{Requests: int64(len(lat)), Errors: errors, PerSecond: float64(len(lat)) / elapsed.Seconds()}
	if len(lat) > 0 {
		s.P50 = ms(percentile(lat, 50))
		s.P99 = ms(percentile(lat, 99))
	}
	return s
}

// percentile returns the p-th percentile of sorted, which is not empty.
func percentile(sorted []time.Duration, p int) time.Duration {
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

// parseCPUSteal reads the aggregate "cpu" line of /proc/stat: the steal
// ticks and the total of user, nice, system, idle, iowait, irq, softirq
// and steal (guest time is already inside user).
func parseCPUSteal(procStat []byte) (steal, total uint64) {
	line, _, _ := bytes.Cut(procStat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	for i, x := range f[1:9] {
		v, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return 0, 0
		}
		total += v
		if i == 7 {
			steal = v
		}
	}
	return steal, total
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
