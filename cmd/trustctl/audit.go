package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/registry/audit"
	"github.com/trustreg/trustreg/registry/tlog"
)

// errAuditFailed is returned after audit printed AUDIT FAILED.
var errAuditFailed = errors.New("audit failed")

// auditReport is what audit prints with -o json or yaml: ok with the
// checkpoint checked, or the first divergence.
type auditReport struct {
	OK              bool     `json:"ok"`
	Size            uint64   `json:"size,omitempty"`
	Root            string   `json:"root,omitempty"` // hex, as the text says it
	Cosigners       []string `json:"cosigners,omitempty"`
	CosignerChanges *int     `json:"cosignerChanges,omitempty"` // on ok, 0 included
	Leaf            *uint64  `json:"leaf,omitempty"`
	What            string   `json:"what,omitempty"`
	Want            string   `json:"want,omitempty"`
	Got             string   `json:"got,omitempty"`
}

func (a *app) auditCmd() *cobra.Command {
	var fromDir, since, save, mirror string
	cmd := &cobra.Command{
		Use:   "audit --genesis GENESIS_FILE [--from-dir MIRROR] [--since CHECKPOINT] [--save CHECKPOINT] [--mirror DIR]",
		Short: "Check the registry's transparency log against its cosigned checkpoint",
		Long: "Check what needs no state machine: the latest checkpoint (GET /v1/log/checkpoint of --server, or\n" +
			"MIRROR/checkpoint) carries a quorum of the cosignatures of the set in force at its size (the\n" +
			"genesis cosigners, or those the last setCosigners in the log named: the change feed and results of\n" +
			"--server, checked against the leaves, show the changes); the entry bundles and\n" +
			"hash tiles (the C2SP tlog-tiles API, or the same layout under MIRROR) hash to its root; every leaf\n" +
			"decodes, with raft indices increasing; and, with --since, the log extends a checkpoint saved\n" +
			"earlier (--save writes the checkpoint just checked, for the next run; --mirror writes the checked\n" +
			"log as files). It prints AUDIT OK or the\n" +
			"first divergence. Recomputing the state roots the leaves commit to needs the state machine:\n" +
			"run `trustd audit --from URL --genesis FILE` for that replay.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.genesisArg == "" {
				return usagef("audit: --genesis is required: the consortium's genesis file, whose cosigners the checkpoint must carry")
			}
			genesis, err := os.ReadFile(a.genesisArg)
			if err != nil {
				return fmt.Errorf("audit: --genesis must name the genesis file itself: %w", err)
			}
			var prev []byte
			if since != "" {
				if prev, err = os.ReadFile(since); err != nil {
					return fmt.Errorf("audit: %w", err)
				}
			}
			var src audit.Source = audit.HTTP{Base: a.serverName(), Client: a.gw.HTTP}
			if fromDir != "" {
				src = audit.Dir{Root: fromDir}
			}
			v, err := audit.NewVerifier(genesis)
			if err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			// The checkpoints are verified with the set in force at their
			// sizes, from the cosigner changes the log applied.
			ops := audit.HTTP{Base: a.serverName(), Client: a.gw.HTTP}
			var at audit.VerifierAt
			var changes []audit.CosignerChange
			verifierAt := func(l *audit.Log, size uint64) (*tlog.Verifier, error) {
				if at == nil {
					var err error
					if changes, at, err = audit.FollowCosigners(l, genesis, ops); err != nil {
						return nil, err
					}
				}
				return at(l, size)
			}
			l, err := audit.ReadLogAt(src, verifierAt, prev, audit.Bound{Known: v})
			var div *audit.Divergence
			if errors.As(err, &div) {
				_ = a.printText(auditReport{Leaf: &div.Leaf, What: div.What, Want: div.Want, Got: div.Got}, func(w *errWriter) {
					w.Printf("AUDIT FAILED at leaf %d: %s\n  want %s\n  got  %s\n", div.Leaf, div.What, div.Want, div.Got)
				})
				return fmt.Errorf("%w: %w", errAuditFailed, err)
			}
			if err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			cp := l.Checkpoint.Checkpoint
			if mirror != "" {
				if err := l.WriteMirror(mirror); err != nil {
					return fmt.Errorf("audit: write the mirror: %w", err)
				}
			}
			if save != "" {
				if err := os.WriteFile(save, l.Note, 0o644); err != nil {
					return fmt.Errorf("audit: save the checkpoint: %w", err)
				}
			}
			report := auditReport{OK: true, Size: cp.Size, Root: fmt.Sprintf("%x", cp.Hash), Cosigners: l.Checkpoint.Cosigners(), CosignerChanges: new(len(changes))}
			return a.printText(report, func(w *errWriter) {
				w.Printf("AUDIT OK size %d root %x (cosigned by %v; %d cosigner changes followed; the leaves' state roots are not replayed: trustd audit does that)\n",
					cp.Size, cp.Hash, l.Checkpoint.Cosigners(), len(changes))
			})
		},
	}
	cmd.Flags().StringVar(&fromDir, "from-dir", "", "read the log from a mirror in the tlog-tiles layout (checkpoint, tile/...) instead of --server")
	cmd.Flags().StringVar(&since, "since", "", "a checkpoint saved earlier (--save): the log must extend it")
	cmd.Flags().StringVar(&save, "save", "", "write the checkpoint checked here to this file, for a later --since")
	cmd.Flags().StringVar(&mirror, "mirror", "", "after the checks pass, write the log into this directory in the tlog-tiles layout (for --from-dir, or to serve as static files)")
	return cmd
}
