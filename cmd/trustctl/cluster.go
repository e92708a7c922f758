package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/gateway/client"
)

func (a *app) clusterCmd() *cobra.Command {
	admin := []string{envOr(envAdmin, defaultAdmin)}
	token := os.Getenv("TRUSTCTL_ADMIN_TOKEN")
	cmd := &cobra.Command{Use: "cluster", Short: "Cluster membership, through a node's admin API (--admin, not --server)"}
	cmd.PersistentFlags().StringArrayVar(&admin, "admin", admin, endpointsHelp("the admin API of trustd nodes (its admin.addr, not the gateway)", envAdmin))
	cmd.PersistentFlags().StringVar(&token, "admin-token", token, "admin API token (env TRUSTCTL_ADMIN_TOKEN)")
	var ac *client.Client
	adminClient := func() (*client.Client, error) {
		if ac != nil {
			return ac, nil
		}
		eps, err := client.ParseEndpoints(admin)
		if err != nil {
			return nil, usagef("--admin: %w", err)
		}
		ac = client.NewFailover(eps, "--admin")
		ac.Token = token
		ac.Identify = a.identify("--admin", "/admin/v1/cluster", token)
		return ac, nil
	}
	printMembers := func(w *errWriter, v api.ClusterView) {
		w.Printf("node %s  %s  leader %s  term %d  commit %d  applied %d  registry index %d  feature level %d\n\n",
			v.Node.NodeID, v.Node.State, v.Node.Leader, v.Node.Term, v.Node.CommitIndex, v.Node.RaftAppliedIndex, v.Node.AppliedIndex, v.FeatureLevel)
		members := v.Members
		w.Printf("%-54s %-9s %-7s %-10s %8s %6s %5s  %s\n", "PEER", "SUFFRAGE", "LEADER", "STATE", "APPLIED", "LAG", "LEVEL", "LAST CONTACT")
		now := time.Now()
		for _, m := range members {
			leader := ""
			if m.Leader {
				leader = "yes"
			}
			state, applied, lag, level := m.State, strconv.FormatUint(m.AppliedIndex, 10), strconv.FormatUint(m.Lag, 10), strconv.Itoa(m.FeatureLevel)
			if !m.Reachable {
				state, applied, lag, level = "unreachable", "-", "-", "-" // not known, not zero
			}
			contact := lastContact(m, v.Node.NodeID, now)
			if m.Connection == api.ConnRelayed {
				contact += " (through a relay)"
			}
			w.Printf("%-54s %-9s %-7s %-10s %8s %6s %5s  %s\n", m.ID, m.Suffrage, leader, state, applied, lag, level, contact)
			for _, addr := range m.Addrs {
				w.Printf("    %s\n", strings.TrimSuffix(addr, "/p2p/"+m.ID))
			}
		}
	}
	status := &cobra.Command{
		Use: "status", Aliases: []string{"members"}, Args: cobra.NoArgs,
		Short: "Every member with suffrage, leader, applied index, lag, its build's feature level, last contact and addresses",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out api.ClusterView
			ac, err := adminClient()
			if err != nil {
				return err
			}
			if err := ac.Get(cmd.Context(), "/admin/v1/cluster", nil, &out); err != nil {
				return err
			}
			return a.printText(out, func(w *errWriter) { printMembers(w, out) })
		},
	}
	change := func(action, use, short string, takesAddr bool, optional bool) *cobra.Command {
		args := cobra.ExactArgs(1)
		if optional {
			args = cobra.MaximumNArgs(1)
		}
		return &cobra.Command{
			Use: action + " " + use, Short: short, Args: args,
			RunE: func(cmd *cobra.Command, args []string) error {
				var req api.MembershipRequest
				if len(args) == 1 {
					if takesAddr && strings.HasPrefix(args[0], "/") {
						req.Addr = args[0]
					} else {
						req.ID = args[0]
					}
				}
				var out api.ClusterView
				ac, err := adminClient()
				if err != nil {
					return err
				}
				if err := ac.Post(cmd.Context(), "/admin/v1/cluster/"+action, req, &out); err != nil {
					return err
				}
				return a.printText(out, func(w *errWriter) {
					w.Printf("%s done\n", action)
					printMembers(w, out)
				})
			},
		}
	}
	var (
		out   string
		force bool
	)
	backup := &cobra.Command{
		Use: "backup --out FILE", Short: "Save a consistent snapshot of a node's state (restore with trustd restore)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out is required")
			}
			ac, err := adminClient()
			if err != nil {
				return err
			}
			n, err := ac.Download(cmd.Context(), "/admin/v1/backup", out, force)
			if errors.Is(err, client.ErrFileExists) {
				return fmt.Errorf("%w; choose another file or pass --force to replace it", err)
			}
			if err != nil {
				return err
			}
			a.note("wrote %s (%d bytes)\n", out, n)
			return nil
		},
	}
	backup.Flags().StringVar(&out, "out", "", "file to write")
	backup.Flags().BoolVar(&force, "force", false, "replace the file if it exists")
	cmd.AddCommand(status, backup,
		change("add-voter", "MULTIADDR", "Add a voting member (a governance body's node): /ip4/.../tcp/4001/p2p/<peer id>", true, false),
		change("add-nonvoter", "MULTIADDR", "Add a non-voting read replica", true, false),
		change("promote", "PEER-ID", "Promote a non-voter to voter", false, false),
		change("demote", "PEER-ID", "Demote a voter to non-voter", false, false),
		change("remove", "PEER-ID", "Remove a member", false, false),
		change("transfer-leader", "[PEER-ID]", "Hand leadership to another voter (any, without an id)", false, true),
	)
	return cmd
}

// lastContact is how long ago the node answering heard from member m, by
// this machine's clock: "self" for that node, "never" when it has not.
func lastContact(m api.MemberStatus, self string, now time.Time) string {
	switch {
	case m.ID == self:
		return "self"
	case m.LastContact.IsZero():
		return "never"
	}
	return max(now.Sub(m.LastContact), 0).Round(time.Second).String() + " ago"
}
