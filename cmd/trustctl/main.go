// Command trustctl is trustreg's command line: keys, signing and submitting
// operations, co-signing governance operations, and queries.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/gateway/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "trustctl:", err)
		os.Exit(1)
	}
}

// app holds the global flags and the output streams.
type app struct {
	server string
	json   bool
	quiet  bool
	stdin  io.Reader
	out    io.Writer
	errw   io.Writer
}

func (a *app) client() *client.Client { return client.New(a.server) }

// print writes v as JSON with --json, or calls human otherwise.
func (a *app) print(v any, human func(w io.Writer)) error {
	if a.json {
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(a.out)
	return nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	a := &app{stdin: stdin, out: stdout, errw: stderr}
	root := &cobra.Command{
		Use:           "trustctl",
		Short:         "Sign, submit and query trustreg operations",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	server := os.Getenv("TRUSTCTL_SERVER")
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	root.PersistentFlags().StringVar(&a.server, "server", server, "gateway URL of a trustd node (env TRUSTCTL_SERVER)")
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print JSON for scripts")
	root.PersistentFlags().BoolVarP(&a.quiet, "quiet", "q", false, "after a write, print only the id of the record it created or changed")
	root.AddCommand(
		a.keygenCmd(), a.didCmd(), a.jwkCmd(),
		a.frameworkCmd(), a.entityCmd(), a.accreditCmd(),
		a.statusChangeCmd("suspend", "Suspend an accreditation"),
		a.statusChangeCmd("reinstate", "Reinstate a suspended accreditation"),
		a.statusChangeCmd("revoke", "Revoke an accreditation (final)"),
		a.recognitionCmd("recognize", "Make a framework recognize another (governance)"),
		a.recognitionCmd("unrecognize", "Withdraw a recognition (governance)"),
		a.signCmd(), a.cosignCmd(), a.submitCmd(),
		a.trustCmd(), a.accreditationCmd(), a.operationCmd(), a.nodeStatusCmd(), a.clusterCmd(), a.statusListCmd(),
	)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}
