// Command trustctl is trustreg's command line: keys, signing and submitting
// operations, co-signing governance operations, and queries.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/cmd/internal/textout"
	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, errNotAuthorized) && !errors.Is(err, errNotVerified) { // trust and verify printed their answer
		// The error may carry a node's words, or a bundle's strings.
		fmt.Fprintln(os.Stderr, "trustctl:", textout.Escape(err.Error()))
	}
	os.Exit(exitCode(err))
}

// unavailableHint is added to a read's error when a linearizable read
// found no leader: the node's own state can still be read.
const unavailableHint = "(reads ask the leader; --consistency local reads this node's state without one)"

// app holds the global flags and the output streams.
type app struct {
	server      []string // --server, as given
	genesisArg  string   // --genesis, as given
	genesis     string   // the CID --genesis names, or ""
	verbose     bool
	gw          *client.Client // the gateway client of --server
	consistency string
	json        bool   // --json: an alias of -o json
	output      string // -o: table, json or yaml
	outputSet   bool   // -o was given
	quiet       bool
	stdin       io.Reader
	out         io.Writer
	errw        io.Writer
}

// client returns the client of the gateways --server names.
func (a *app) client() *client.Client { return a.gw }

// print writes v as JSON with -o json (or --json), as YAML with -o yaml,
// or calls human otherwise.
func (a *app) print(v any, human func(w io.Writer)) error {
	switch a.output {
	case outputJSON:
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case outputYAML:
		return writeYAML(a.out, v)
	}
	human(a.out)
	return nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	a := &app{stdin: stdin, out: stdout, errw: stderr}
	root := &cobra.Command{
		Use:           "trustctl",
		Short:         "Sign, submit and query trustreg operations",
		Long:          "Sign, submit and query trustreg operations.\n\n" + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
		Args:          cobra.NoArgs, // an unknown command is a usage error
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.outputSet = cmd.Flags().Changed("output")
			if err := a.outputFormat(); err != nil {
				return err
			}
			if err := outputOffered(cmd, a.output); err != nil {
				return err
			}
			return a.setEndpoints()
		},
	}
	root.PersistentFlags().StringArrayVar(&a.server, "server", []string{envOr(envServer, defaultServer)}, endpointsHelp("the gateway (public API) of trustd nodes", envServer))
	root.PersistentFlags().StringVar(&a.genesisArg, "genesis", os.Getenv(envGenesis),
		"refuse nodes of any consortium but this one: its genesis file or genesis CID (env "+envGenesis+")")
	root.PersistentFlags().BoolVar(&a.verbose, "verbose", false, "say on stderr which node and consortium (genesis CID) each endpoint is")
	root.PersistentFlags().StringVar(&a.consistency, "consistency", "linearizable",
		"reads: linearizable (see every write acknowledged by any node) or local (the node's own state, also without a leader)")
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print JSON for scripts (the same as -o json)")
	root.PersistentFlags().StringVarP(&a.output, "output", "o", outputTable, "output: table (for people), json (the node's JSON) or yaml")
	root.PersistentFlags().BoolVarP(&a.quiet, "quiet", "q", false, "after a write, print only the id of the record it created or changed; trust prints nothing (its exit code is the answer)")
	root.AddCommand(
		a.keygenCmd(), a.didCmd(), a.jwkCmd(),
		a.frameworkCmd(), a.entityCmd(), a.accreditCmd(),
		a.statusChangeCmd("suspend", "Suspend an accreditation"),
		a.statusChangeCmd("reinstate", "Reinstate a suspended accreditation"),
		a.statusChangeCmd("revoke", "Revoke an accreditation (final)"),
		a.recognitionCmd("recognize", "Make a framework recognize another (governance)"),
		a.recognitionCmd("unrecognize", "Withdraw a recognition (governance)"),
		a.cosignersCmd(),
		offers(a.signCmd(), outputTable, outputJSON), offers(a.cosignCmd(), outputTable, outputJSON), a.submitCmd(),
		a.trustCmd(), a.accreditationCmd(), a.operationCmd(), a.nodeStatusCmd(), a.clusterCmd(), a.statusListCmd(), offers(a.watchCmd(), outputTable, outputJSON),
		a.exportCmd(), a.importCmd(), a.verifyCmd(), a.auditCmd(),
	)
	markUsageErrors(root)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	// A watch stream is served from the node's own state whatever
	// --consistency says: the hint is not for it.
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Method == http.MethodGet && strings.HasPrefix(ae.Path, "/v1/") && ae.Path != "/v1/watch" &&
		ae.Problem.Status == http.StatusServiceUnavailable && a.consistency == "linearizable" {
		err = fmt.Errorf("%w %s", err, unavailableHint)
	}
	return err
}
