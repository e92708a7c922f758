package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/audit"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// errAuditFailed is returned after audit printed the divergence: the
// command exits non-zero.
var errAuditFailed = errors.New("audit failed")

// auditCmd is trustd audit: trustctl audit's checks of the log, then a
// replay of every leaf's operations through a scratch state machine.
func auditCmd(stdout io.Writer) *cobra.Command {
	var from, fromDir, genesis, since, scratch string
	var maxUnverified uint64
	cmd := &cobra.Command{
		Use:   "audit --from URL [--from-dir MIRROR] --genesis FILE [--since CHECKPOINT]",
		Short: "Replay the registry's transparency log and check every state root it commits to",
		Long: "audit reads the latest cosigned checkpoint and the log's tiles from a node (--from) or a mirror\n" +
			"(--from-dir, the tlog-tiles layout: checkpoint, tile/...), checks the cosignatures against the\n" +
			"genesis and the tiles against the checkpoint, then applies every leaf's operations (read from\n" +
			"--from by CID) to a fresh state with the same genesis, at the leaf's raft index and commit time,\n" +
			"and compares each recomputed leaf (map root included) with the log's. It prints AUDIT OK or the\n" +
			"first divergence, and exits non-zero on a divergence.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || genesis == "" {
				return fmt.Errorf("--from (the node whose operations are replayed) and --genesis are required")
			}
			g, err := os.ReadFile(genesis)
			if err != nil {
				return err
			}
			var since0 []byte
			if since != "" {
				if since0, err = os.ReadFile(since); err != nil {
					return err
				}
			}
			node := audit.HTTP{Base: from}
			var src audit.Source = node
			if fromDir != "" {
				src = audit.Dir{Root: fromDir}
			}
			if scratch == "" {
				dir, err := os.MkdirTemp("", "trustd-audit-")
				if err != nil {
					return err
				}
				defer func() { _ = os.RemoveAll(dir) }() // a scratch state: nothing in it is kept
				scratch = dir
			}
			return runAudit(stdout, src, node, g, since0, scratch, maxUnverified)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the node's gateway URL: the log (unless --from-dir) and the operations")
	cmd.Flags().StringVar(&fromDir, "from-dir", "", "a mirror of the log in the tlog-tiles layout (checkpoint, tile/...)")
	cmd.Flags().StringVar(&genesis, "genesis", "", "the consortium's genesis document: the cosigner keys and the replay's first state")
	cmd.Flags().StringVar(&since, "since", "", "a checkpoint saved earlier (a signed note): the log must extend it")
	cmd.Flags().Uint64Var(&maxUnverified, "max-unverified-size", audit.DefaultMaxUnverifiedSize,
		"the most leaves read for a checkpoint the genesis cosigners do not sign (one a cosigner change's set signed), before its signatures can be checked")
	cmd.Flags().StringVar(&scratch, "scratch-dir", "", "an empty directory for the replay's state (default: a temporary one, removed after)")
	return cmd
}

// operations serves what the replay applies: accepted operations by CID,
// and the results of the others by raft index (audit.HTTP).
type operations interface {
	Operation(cid string) ([]byte, error)
	Result(index uint64) (*record.Result, error)
}

// runAudit checks the log src serves and replays it. The checkpoints are
// verified with the cosigner set in force at their sizes, which the replay
// follows from the genesis: the changes (setCosigners) the replayed
// entries applied, each signed by the genesis threshold of members.
//
// Before any tile is read, the checkpoint must verify with the genesis set,
// or claim at most maxUnverified leaves (audit.Bound): its set, if a change
// named it, is known only once the leaves are replayed.
func runAudit(stdout io.Writer, src audit.Source, ops operations, genesis, since []byte, scratch string, maxUnverified uint64) error {
	known, err := audit.NewVerifier(genesis)
	if err != nil {
		return err
	}
	origin, err := tlog.Origin(record.CIDOf(genesis))
	if err != nil {
		return err
	}
	st, err := registry.Open(scratch, genesis, registry.Options{DiskReserveBytes: 1})
	if err != nil {
		return fmt.Errorf("open the replay's state in %s: %w", scratch, err)
	}
	defer func() { _ = st.Close() }() // a scratch state: nothing in it is kept
	var rdiv *audit.Divergence
	var rejected int
	ran := false
	verifierAt := func(l *audit.Log, size uint64) (*tlog.Verifier, error) {
		if !ran {
			ran = true
			var err error
			if rdiv, rejected, err = replay(st, l, ops); err != nil {
				return nil, err
			}
		}
		return replayedVerifier(st, l, origin, size)
	}
	l, err := audit.ReadLogAt(src, verifierAt, since, audit.Bound{Known: known, MaxUnverifiedSize: maxUnverified})
	var div *audit.Divergence
	switch {
	case errors.Is(err, audit.ErrCheckpoint) && rdiv != nil:
		// The replay stopped short of the changes the checkpoint's set
		// follows from: the divergence is the finding.
		div = rdiv
	case err != nil && !errors.As(err, &div):
		return err
	}
	if div = audit.First(div, rdiv); div != nil {
		_, _ = fmt.Fprintf(stdout, "AUDIT FAILED at leaf %d: %s\n  want %s\n  got  %s\n", div.Leaf, div.What, div.Want, div.Got)
		return fmt.Errorf("%w: %w", errAuditFailed, div)
	}
	cp := l.Checkpoint.Checkpoint
	replayed := "every leaf replayed"
	if rejected > 0 {
		replayed = fmt.Sprintf("every leaf replayed but %d rejected at apply, whose recorded results were checked, not recomputed: the registry keeps no bytes of rejected operations", rejected)
	}
	_, err = fmt.Fprintf(stdout, "AUDIT OK size %d root %x (cosigned by %v; %s)\n", cp.Size, cp.Hash, l.Checkpoint.Cosigners(), replayed)
	return err
}

// replayedVerifier is the checkpoint verifier of the cosigner set in force
// at log size size of l, as the replay in st followed it: the set after the
// changes applied at or below the raft index of l's leaf size − 1.
func replayedVerifier(st *registry.State, l *audit.Log, origin string, size uint64) (*tlog.Verifier, error) {
	through := uint64(0)
	if size > 0 && size <= uint64(len(l.Decoded)) {
		through = l.Decoded[size-1].Index
	}
	set, err := st.CosignersThrough(through)
	if err != nil {
		return nil, fmt.Errorf("%w: the cosigner set at size %d: %w", audit.ErrCheckpoint, size, err)
	}
	return audit.SetVerifier(origin, set.Keys, set.QuorumOf())
}

// replay applies each leaf's entry to st, a fresh state of the same
// genesis, at the leaf's raft index and commit time, and compares the leaf
// the state's own log then holds with the source's. It stops at the first
// divergence.
//
// An operation rejected at apply has no bytes to apply (the registry keeps
// only accepted ones): its leaf is checked instead against the result the
// source recorded at its raft index (a rejection whose CID is the leaf's
// result CID, leaving the map root as it was) and left out of st, whose
// log is then one leaf shorter. Leaving it out changes nothing the leaves
// after it commit to: a rejection writes no record, only its result,
// which the state map does not hold. rejected counts them.
func replay(st *registry.State, l *audit.Log, ops operations) (div *audit.Divergence, rejected int, err error) {
	var prevRoot [tlog.HashSize]byte
	for i, want := range l.Leaves {
		i := uint64(i)
		leaf := l.Decoded[i]
		if leaf.Index == 0 {
			return nil, rejected, nil // it does not decode: ReadLog reported it
		}
		if len(leaf.Ops) != 1 {
			return &audit.Divergence{Leaf: i, What: "operations in the entry", Want: "1", Got: fmt.Sprint(len(leaf.Ops))}, rejected, nil
		}
		cmd, err := command(leaf.Ops[0].CID, ops.Operation)
		var d *audit.Divergence
		switch {
		case errors.As(err, &d):
			d.Leaf = i
			return d, rejected, nil
		case errors.Is(err, audit.ErrNotServed) && i > 0:
			if d, err := checkRejection(leaf, prevRoot, ops); err != nil || d != nil {
				if d != nil {
					d.Leaf = i
				}
				return d, rejected, err
			}
			rejected++
			continue
		case err != nil:
			return nil, rejected, fmt.Errorf("leaf %d (raft index %d): %w", i, leaf.Index, err)
		}
		st.ApplyBatch([]registry.Entry{{Index: leaf.Index, Time: leaf.CommitTime, Data: cmd}})
		view := st.View()
		got, err := lastLeaf(view)
		view.Close()
		if err != nil {
			return &audit.Divergence{Leaf: i, What: fmt.Sprintf("the replay's log after raft index %d", leaf.Index), Want: "a leaf for the entry", Got: err.Error()}, rejected, nil
		}
		if !bytes.Equal(got, want) {
			return leafDivergence(i, want, got), rejected, nil
		}
		prevRoot = leaf.MapRoot
	}
	return nil, rejected, nil
}

// lastLeaf is the last leaf of the view's log.
func lastLeaf(v *registry.View) ([]byte, error) {
	c, err := v.Commitment()
	if err != nil {
		return nil, err
	}
	if c.LogSize == 0 {
		return nil, fmt.Errorf("the log is empty")
	}
	return v.Leaf(c.LogSize - 1)
}

// checkRejection checks a leaf whose operation the source does not serve:
// the result the source recorded at its raft index is a rejection, its
// bytes have the leaf's result CID, and the map root did not move.
func checkRejection(leaf tlog.Leaf, prevRoot [tlog.HashSize]byte, ops operations) (*audit.Divergence, error) {
	res, err := ops.Result(leaf.Index)
	if err != nil {
		return nil, fmt.Errorf("raft index %d: its operation is not served, nor its result: %w", leaf.Index, err)
	}
	opCID := audit.CIDText(leaf.Ops[0].CID)
	if d := audit.CheckResult(leaf, res); d != nil {
		d.What = fmt.Sprintf("result of the unserved operation %s at raft index %d", opCID, leaf.Index)
		return d, nil
	}
	switch {
	case res.Accepted || res.CID != opCID:
		return &audit.Divergence{What: fmt.Sprintf("operation %s at raft index %d", opCID, leaf.Index),
			Want: "its bytes (it was accepted, so the registry keeps them)", Got: "not served"}, nil
	case leaf.MapRoot != prevRoot:
		return &audit.Divergence{What: fmt.Sprintf("map root after the rejection at raft index %d (a rejection changes no record)", leaf.Index),
			Want: fmt.Sprintf("%x", prevRoot), Got: fmt.Sprintf("%x", leaf.MapRoot)}, nil
	}
	return nil, nil
}

// leafDivergence describes how the replay's leaf got differs from the
// log's leaf want.
func leafDivergence(i uint64, want, got []byte) *audit.Divergence {
	w, _ := tlog.DecodeLeaf(want)
	g, err := tlog.DecodeLeaf(got)
	if err != nil {
		return &audit.Divergence{Leaf: i, What: "leaf", Want: fmt.Sprintf("%x", want), Got: fmt.Sprintf("%x", got)}
	}
	d := &audit.Divergence{Leaf: i}
	switch {
	case w.MapRoot != g.MapRoot:
		d.What = fmt.Sprintf("map root after raft index %d", w.Index)
		d.Want, d.Got = fmt.Sprintf("%x", w.MapRoot), fmt.Sprintf("%x (replayed)", g.MapRoot)
		if i == 0 {
			d.What += " (the log's first leaf: a state with entries applied before the log began cannot be replayed from the log alone)"
		}
	case len(w.Ops) == 1 && len(g.Ops) == 1 && !bytes.Equal(w.Ops[0].ResultCID, g.Ops[0].ResultCID):
		d.What = fmt.Sprintf("result of the operation at raft index %d", w.Index)
		d.Want, d.Got = audit.CIDText(w.Ops[0].ResultCID), audit.CIDText(g.Ops[0].ResultCID)+" (replayed)"
	default:
		d.What = "leaf"
		d.Want, d.Got = fmt.Sprintf("%x", want), fmt.Sprintf("%x (replayed)", got)
	}
	return d
}

// command is the log command a leaf's operation CID names: a feature level
// raise (the CID of the command's own bytes), or the operation ops serves
// by that CID, wrapped as the node wraps it.
func command(opCID []byte, ops func(string) ([]byte, error)) ([]byte, error) {
	for level := registry.FeatureLevelBase; level <= registry.FeatureLevel; level++ {
		cmd := registry.EncodeFeatureLevel(level)
		if bytes.Equal(audit.RawCID(cmd), opCID) {
			return cmd, nil
		}
	}
	c, err := cid.Cast(opCID)
	if err != nil {
		return nil, &audit.Divergence{What: "operation CID", Want: "a CID", Got: fmt.Sprintf("%x: %v", opCID, err)}
	}
	raw, err := ops(c.String())
	switch {
	case errors.Is(err, audit.ErrOperationBytes):
		return nil, &audit.Divergence{What: "operation " + c.String(), Want: "bytes with that CID", Got: err.Error()}
	case errors.Is(err, audit.ErrNotServed):
		return nil, fmt.Errorf("operation %s is not served by the source (the registry keeps the bytes of accepted operations only): %w", c, err)
	case err != nil:
		return nil, err
	}
	return registry.EncodeOperation(raw), nil
}
