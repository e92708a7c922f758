package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/registry/record"
)

// cosignersCmd is trustctl cosigners: governance's change of the log's
// checkpoint cosigners (setCosigners).
func (a *app) cosignersCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cosigners", Short: "Change the cosigners of the registry log's checkpoints (a governance operation)"}
	var sg signing
	var vkeys []string
	var quorum int
	set := &cobra.Command{
		Use:   "set --cosigner VKEY [--cosigner VKEY ...] [--quorum N] --key GOVKEY [--key GOVKEY ...]",
		Short: "Replace the checkpoint cosigners and their quorum",
		Long: "Replace the set of checkpoint cosigners (each a vkey, as 'trustd identity --cosigner' prints it)\n" +
			"and their quorum (default n - floor((n-1)/3)). Checkpoints that include the change are cosigned\n" +
			"by the new set. It needs the genesis threshold of governance members signing with their\n" +
			"genesis keys, so a verifier follows it from the genesis alone; sign with several --key, or\n" +
			"write it with --out and collect signatures with 'trustctl cosign'.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := record.ParseCosigners(vkeys, quorum); err != nil {
				return usagef("cosigners set: %v", err)
			}
			f := map[string]any{"cosigners": vkeys}
			if quorum > 0 {
				f["quorum"] = quorum
			}
			return a.send(cmd.Context(), &sg, record.OpSetCosigners, f, true)
		},
	}
	set.Flags().StringSliceVar(&vkeys, "cosigner", nil, "a cosigner's vkey (name+keyid+key), repeatable: the whole new set")
	set.Flags().IntVar(&quorum, "quorum", 0, fmt.Sprintf("cosignatures a checkpoint needs (0: the default n - floor((n-1)/3)); at most %d cosigners", record.MaxCosigners))
	sg.register(set, true)
	cmd.AddCommand(set)
	return cmd
}
