package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
)

func (a *app) trustCmd() *cobra.Command {
	var entity, fw, action, resource, jurisdiction, at, asOf, proofFile string
	cmd := &cobra.Command{
		Use:   "trust --entity DID --framework ID [--resource IRI] [--at TIME] [--as-of INDEX] [--proof FILE]",
		Short: "Ask whether an entity is authorized, now or at a past time",
		Long: "Ask whether an entity is authorized, now or at a past time. trustctl exits with 0 when the\n" +
			"answer is AUTHORIZED and with 3 when it is NOT AUTHORIZED (the answer is printed either way;\n" +
			"-q prints nothing, for scripts that read only the exit code).\n\n" +
			"--proof FILE asks for the answer's proof bundle and writes it to FILE (- : to stdout, instead\n" +
			"of the answer); trustctl verify FILE --genesis GENESIS checks it offline, and with the same\n" +
			"--entity, --framework, ... --as-of flags checks that it answers this question. With --json the\n" +
			"printed answer also carries the bundle, as its \"proof\" member.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if entity == "" || fw == "" {
				return usagef("trust: --entity and --framework are required: the DID asked about and the framework")
			}
			// Checked here, as the node checks them, so a mistyped value is
			// a usage error that names the flag, not the API's parameter.
			if at != "" && !isTime(at) {
				return usagef("trust: --at %q must be RFC 3339 (2025-06-01T00:00:00Z) or a date (2025-06-01)", at)
			}
			if n, err := strconv.ParseUint(asOf, 10, 64); asOf != "" && (err != nil || n == 0) {
				return usagef("trust: --as-of %q must be a registry index (a positive integer)", asOf)
			}
			q := url.Values{"entity": {entity}, "framework": {fw}, "action": {action}}
			for k, v := range map[string]string{"resource": resource, "jurisdiction": jurisdiction, "at": at, "as_of": asOf} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if proofFile != "" {
				q.Set("proof", "true")
			}
			// -o json prints the answer as the node sent it.
			var raw json.RawMessage
			if err := a.client().Get(cmd.Context(), "/v1/trust", q, &raw); err != nil {
				return err
			}
			var d record.Decision
			if err := json.Unmarshal(raw, &d); err != nil {
				return fmt.Errorf("trust: %w", err)
			}
			var err error
			if !d.Authorized {
				err = errNotAuthorized // exit code 3, after the answer
			}
			if proofFile != "" {
				if perr := a.writeProof(raw, proofFile); perr != nil {
					return perr
				}
				if proofFile == "-" {
					return err
				}
			}
			if a.quiet {
				return err
			}
			if perr := a.printText(raw, func(w *errWriter) {
				verdict := "NOT AUTHORIZED"
				if d.Authorized {
					verdict = "AUTHORIZED"
				}
				w.Printf("%s (%s) at %s, registry index %d\n", verdict, d.Reason, d.At.Format(time.RFC3339), d.Index)
				for i, l := range d.Chain {
					w.Printf("  %d. %s  %s -> %s  %s %s  [%s]\n", i+1, l.Accreditation, l.Accreditor, l.Subject, l.Action, strings.Join(l.Resources, ","), l.Status)
				}
				if d.Root != "" {
					w.Printf("  root accreditor %s\n", d.Root)
				}
			}); perr != nil {
				return perr
			}
			return err
		},
	}
	cmd.Flags().StringVar(&entity, "entity", "", "DID asked about")
	cmd.Flags().StringVar(&fw, "framework", "", "framework id")
	cmd.Flags().StringVar(&action, "action", record.ActionIssue, "issue or accredit")
	cmd.Flags().StringVar(&resource, "resource", "", "credential-type IRI")
	cmd.Flags().StringVar(&jurisdiction, "jurisdiction", "", "ISO 3166 code")
	cmd.Flags().StringVar(&at, "at", "", "valid time (RFC 3339 or date; default now)")
	cmd.Flags().StringVar(&asOf, "as-of", "", "registry index to answer at (default latest)")
	cmd.Flags().StringVar(&proofFile, "proof", "", "write the answer's proof bundle to `FILE` (- : stdout)")
	return cmd
}

// writeProof writes the proof bundle an answer carries (its "proof"
// member) to file, or to stdout for "-".
func (a *app) writeProof(answer json.RawMessage, file string) error {
	var withProof struct {
		Proof json.RawMessage `json:"proof"`
	}
	if err := json.Unmarshal(answer, &withProof); err != nil || len(withProof.Proof) == 0 {
		return fmt.Errorf("trust: the node's answer carries no proof bundle (a build before proofs?)")
	}
	bundle := append(append([]byte(nil), withProof.Proof...), '\n')
	if file == "-" {
		_, err := a.out.Write(bundle)
		return err
	}
	if err := os.WriteFile(file, bundle, 0o644); err != nil {
		return fmt.Errorf("trust: write the proof bundle: %w", err)
	}
	return nil
}

func printAccreditation(w *errWriter, v record.AccreditationView) {
	until := "open"
	if v.ValidUntil != nil {
		until = v.ValidUntil.Format(time.DateOnly)
	}
	w.Printf("%s  %s -> %s  %s %s  %s..%s  [%s]\n", v.ID, v.Accreditor, v.Subject, v.Action,
		strings.Join(v.Resources, ","), v.ValidFrom.Format(time.DateOnly), until, v.Status)
}

func (a *app) accreditationCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "accreditation", Short: "Show and list accreditations"}
	show := &cobra.Command{
		Use: "show ID", Short: "Show an accreditation with its status events", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v record.AccreditationView
			if err := a.client().Get(cmd.Context(), "/v1/accreditations/"+client.PathID(args[0]), nil, &v); err != nil {
				return err
			}
			return a.printText(v, func(w *errWriter) {
				printAccreditation(w, v)
				for _, e := range v.Events {
					w.Printf("  %-9s from %s (index %d) %s\n", e.Status, e.EffectiveAt.Format(time.RFC3339), e.Index, e.Reason)
				}
				if v.Operation != "" {
					w.Printf("  signed operation (byte for byte)\n  %s\n", v.Operation)
				}
			})
		},
	}
	var fw, resource, accreditor, subject, action, status string
	var limit int
	list := &cobra.Command{
		Use:   "list [--framework ID] [--resource IRI] [--accreditor DID] [--subject DID] [--action A] [--status S]",
		Short: "Search accreditations", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"framework": fw, "resource": resource, "accreditor": accreditor, "subject": subject, "action": action, "status": status} {
				if v != "" {
					q.Set(k, v)
				}
			}
			l, err := listPages[record.AccreditationView](cmd.Context(), a.client(), "/v1/accreditations", q, limit)
			if err != nil {
				return err
			}
			return printListing(a, l, "accreditations", printAccreditation)
		},
	}
	list.Flags().StringVar(&fw, "framework", "", "framework id")
	list.Flags().StringVar(&resource, "resource", "", "credential-type IRI")
	list.Flags().StringVar(&accreditor, "accreditor", "", "accreditor DID")
	list.Flags().StringVar(&subject, "subject", "", "subject DID")
	list.Flags().StringVar(&action, "action", "", "issue or accredit")
	list.Flags().StringVar(&status, "status", "", "active, suspended, revoked, expired or not_yet_valid")
	limitFlag(list, &limit)
	cmd.AddCommand(show, list)
	return cmd
}

func (a *app) operationCmd() *cobra.Command {
	return &cobra.Command{
		Use: "operation INDEX|CID", Short: "Show an operation with its exact signed bytes and result", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v record.OperationView
			if err := a.client().Get(cmd.Context(), "/v1/operations/"+client.PathID(args[0]), nil, &v); err != nil {
				return err
			}
			return a.printText(v, func(w *errWriter) {
				state := "accepted"
				if !v.Result.Accepted {
					state = "rejected: " + v.Result.Code + ": " + v.Result.Reason
				}
				w.Printf("index %d  %s  %s  %s\n  signers %s\n  %s\n", v.Index, v.Time.Format(time.RFC3339), v.Op, state, strings.Join(v.Signers, ", "), v.JWS)
			})
		},
	}
}

func (a *app) nodeStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use: "node", Short: "Show the node's view of the cluster (GET /v1/status)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The JSON is passed on as the node sent it (it has fields the
			// text leaves out); the text reads the typed status, so indexes
			// print as integers, not as 1.234567e+06.
			var raw json.RawMessage
			if err := a.client().Get(cmd.Context(), "/v1/status", nil, &raw); err != nil {
				return err
			}
			var st api.NodeStatus
			if err := json.Unmarshal(raw, &st); err != nil {
				return fmt.Errorf("node status: %w", err)
			}
			return a.printText(raw, func(w *errWriter) {
				w.Printf("node %s  %s  leader %s  term %d  commit %d  applied %d  registry index %d\n",
					st.NodeID, st.State, st.Leader, st.Term, st.CommitIndex, st.RaftAppliedIndex, st.AppliedIndex)
			})
		},
	}
}

// isTime reports whether v is a time the gateway takes for a valid time:
// RFC 3339 or a date.
func isTime(v string) bool {
	_, ok := parseTime(v)
	return ok
}
