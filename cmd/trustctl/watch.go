package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/cmd/internal/textout"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
)

// Reconnections of trustctl watch. A stream ends when the node restarts or
// the network breaks, and the node refuses one for now while the client's
// address (429 too_many_streams) or the node (503 streams_full) holds as
// many streams as it may; trustctl waits and reconnects after the last
// operation it printed.
const (
	// watchRetriesDefault is --retries: the reconnections in a row (none
	// after a healthy stream: watchHealthyAfter) before trustctl gives up.
	watchRetriesDefault = 10
	// watchBackoffFirst is the wait before the first reconnection in a
	// row; each further one doubles it, up to watchBackoffMax.
	watchBackoffFirst = time.Second
	watchBackoffMax   = 30 * time.Second
	// watchRetryAfterMax caps the wait a refusal's Retry-After asks for.
	watchRetryAfterMax = 30 * time.Second
)

// watchHealthyAfter is how long a stream must stay open to be healthy. A
// healthy stream, or one that brought an operation, ends a row of
// reconnections: the next one counts from 1 again toward --retries, and
// waits watchBackoffFirst again. So a watch that runs for days survives
// any number of hiccups apart, and gives up only on --retries in a row,
// each on a stream refused, not answered, or ended within a minute
// without an operation. A minute is twice watchBackoffMax: a node that
// takes streams and drops them at once is still backed off from, and
// given up on. Time, not the node's keep-alive comments, tells it: a
// stream filtered by --framework or --entity on a busy registry may send
// nothing at all for hours. (A var: tests shorten it.)
var watchHealthyAfter = time.Minute

// errStreamEnded: the node ended a stream without an error (it shut down).
var errStreamEnded = errors.New("the node ended the stream")

func (a *app) watchCmd() *cobra.Command {
	var (
		since             uint64
		framework, entity string
		retries           int
	)
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print accepted operations as the node applies them (GET /v1/watch), until interrupted",
		Long: `Print accepted operations as the node applies them, one line each (one JSON
object per line with --json), until interrupted. --since replays the operations after
that registry index first.

When the stream ends (the node restarts, the network breaks) or the node refuses it
for now (429: this address holds as many streams as the node serves one address;
503: the node serves as many as it may, or has no leader), trustctl waits and
reconnects after the last operation it printed, so none is printed twice or missed.
The wait doubles from ` + watchBackoffFirst.String() + ` up to ` + watchBackoffMax.String() + `, with jitter, and is at least the
node's Retry-After (up to ` + watchRetryAfterMax.String() + `); each reconnection is noted on stderr. trustctl
gives up after --retries reconnections in a row. A stream that brought an operation,
or stayed open ` + healthyFor() + ` (healthy, even with no operation to print), ends the row: the
next reconnection counts from 1 again and waits ` + watchBackoffFirst.String() + `, so a watch that runs for days
survives any number of hiccups apart. Any other refusal (a 400 for a --since past
the registry's log, say) ends it at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if retries < 0 {
				return usagef("--retries %d: give 0 (never reconnect) or more", retries)
			}
			ctx := cmd.Context()
			enc := json.NewEncoder(a.out)
			var printErr error // stdout failed: the watch ends, it is not retried
			show := func(v record.OperationView) error {
				if a.json {
					printErr = enc.Encode(v)
				} else {
					_, printErr = fmt.Fprintf(a.out, "%d  %s  %s  %s  signers %s\n", v.Index, v.Time.Format(time.RFC3339), v.Op, resultID(v.Result), strings.Join(v.Signers, ", "))
				}
				return printErr
			}
			c := a.client()
			c.Consistency = "" // a stream is served from the node's own state
			if !cmd.Flags().Changed("since") {
				// Only new operations: after the node's applied index now.
				var st api.NodeStatus
				if err := c.Get(ctx, "/v1/status", nil, &st); err != nil {
					return err
				}
				since = st.AppliedIndex
			}
			if !a.quiet {
				a.note("trustctl: watching the operations after index %d\n", since)
			}
			for fails := 0; ; {
				end, err := c.Watch(ctx, since, framework, entity, show)
				if ctx.Err() != nil {
					return nil // interrupted: the normal end
				}
				if printErr != nil {
					return printErr
				}
				var ae *client.APIError
				refused := errors.As(err, &ae)
				if refused && !refusedForNow(ae) {
					return err
				}
				if healthyStream(end, since, time.Now()) {
					fails = 0
				}
				since = end.Last
				if err == nil {
					err = errStreamEnded
				}
				if fails++; fails > retries {
					return fmt.Errorf("watch: gave up after %d reconnections in a row (--retries; a stream that brings an operation or stays open %s ends a row): %w", fails-1, healthyFor(), err)
				}
				var retryAfter time.Duration
				if refused {
					retryAfter = ae.RetryAfter
				}
				wait := watchWait(fails, retryAfter, rand.Int64N)
				a.note("trustctl: watch: %s; reconnecting after index %d in %s (%d of %d)\n", textout.Escape(err.Error()), since, wait.Round(100*time.Millisecond), fails, retries)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
			}
		},
	}
	cmd.Flags().Uint64Var(&since, "since", 0, "replay the operations after this registry index first (default: only new ones)")
	cmd.Flags().StringVar(&framework, "framework", "", "only operations of this framework")
	cmd.Flags().StringVar(&entity, "entity", "", "only operations in this entity's history")
	cmd.Flags().IntVar(&retries, "retries", watchRetriesDefault, "reconnections in a row before giving up (0: never reconnect); a stream that brings an operation or stays open "+healthyFor()+" ends a row")
	return cmd
}

// healthyStream reports whether a stream from since that ended at now
// ends a row of reconnections: it brought an operation, or it stayed open
// for watchHealthyAfter.
func healthyStream(end client.WatchEnd, since uint64, now time.Time) bool {
	return end.Last > since || !end.Opened.IsZero() && now.Sub(end.Opened) >= watchHealthyAfter
}

// healthyFor is watchHealthyAfter for people: "1 min".
func healthyFor() string {
	return strconv.FormatFloat(watchHealthyAfter.Minutes(), 'g', -1, 64) + " min"
}

// refusedForNow reports whether a refused stream may open later: 429 (the
// client's address holds as many streams as it may) or 503 (the node
// does, or it has no leader, or it is shutting down).
func refusedForNow(ae *client.APIError) bool {
	return ae.Problem.Status == http.StatusTooManyRequests || ae.Problem.Status == http.StatusServiceUnavailable
}

// watchWait is the wait before reconnection n in a row (from 1):
// watchBackoffFirst doubled n-1 times, up to watchBackoffMax, and at least
// retryAfter (the node's Retry-After, 0 if none) up to watchRetryAfterMax;
// plus a jitter of up to a quarter of that, drawn with jitter (rand.Int64N),
// so watchers the node refused together do not come back together. The
// jitter only adds: a Retry-After is honoured.
func watchWait(n int, retryAfter time.Duration, jitter func(int64) int64) time.Duration {
	n = max(n, 1)
	wait := watchBackoffMax
	if n <= 8 { // past 1 s << 7 the bound holds; a larger shift could overflow
		wait = min(watchBackoffFirst<<(n-1), watchBackoffMax)
	}
	wait = max(wait, min(retryAfter, watchRetryAfterMax))
	return wait + time.Duration(jitter(int64(wait/4)+1))
}

// resultID names what an accepted operation created or changed.
func resultID(r *record.Result) string {
	if r == nil || r.ID == "" {
		return "-"
	}
	return r.ID
}
