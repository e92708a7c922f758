package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
)

// watchRetries bounds the reconnections in a row that bring no operation;
// watchBackoff is the wait before each.
const (
	watchRetries = 10
	watchBackoff = time.Second
)

func (a *app) watchCmd() *cobra.Command {
	var (
		since             uint64
		framework, entity string
	)
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print accepted operations as the node applies them (GET /v1/watch), until interrupted",
		Long: `Print accepted operations as the node applies them, one line each (one JSON
object per line with --json), until interrupted. --since replays the operations after
that registry index first. When the stream ends (the node restarts, the network
breaks) trustctl reconnects and resumes after the last operation it printed; it gives
up after ` + fmt.Sprint(watchRetries) + ` reconnections in a row that bring nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			enc := json.NewEncoder(a.out)
			show := func(v record.OperationView) error {
				if a.json {
					return enc.Encode(v)
				}
				_, err := fmt.Fprintf(a.out, "%d  %s  %s  %s  signers %s\n", v.Index, v.Time.Format(time.RFC3339), v.Op, resultID(v.Result), strings.Join(v.Signers, ", "))
				return err
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
				last, err := c.Watch(ctx, since, framework, entity, show)
				if ctx.Err() != nil {
					return nil // interrupted: the normal end
				}
				var ae *client.APIError
				if errors.As(err, &ae) {
					return err
				}
				if last > since {
					since, fails = last, 0
				} else if fails++; fails >= watchRetries {
					return fmt.Errorf("watch: %d reconnections in a row brought nothing: %v", fails, err)
				}
				if err != nil {
					a.note("trustctl: watch: %v; reconnecting\n", err)
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(watchBackoff):
				}
			}
		},
	}
	cmd.Flags().Uint64Var(&since, "since", 0, "replay the operations after this registry index first (default: only new ones)")
	cmd.Flags().StringVar(&framework, "framework", "", "only operations of this framework")
	cmd.Flags().StringVar(&entity, "entity", "", "only operations in this entity's history")
	return cmd
}

// resultID names what an accepted operation created or changed.
func resultID(r *record.Result) string {
	if r == nil || r.ID == "" {
		return "-"
	}
	return r.ID
}
