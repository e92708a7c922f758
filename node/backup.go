package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/registry"
)

// Backup streams a consistent snapshot of the registry state.
func (n *Node) Backup(w io.Writer) error {
	if err := n.enter(); err != nil {
		return err
	}
	defer n.calls.leave()
	snap := n.State.Snapshot()
	defer snap.Release()
	_, err := snap.WriteTo(w)
	return err
}

// RestoreBackup prepares a new data directory from a backup: the registry
// state is restored and seeded as a raft snapshot of a one-node cluster, so
// trustd started on dataDir resumes at the backup's index. Other nodes then
// join it (trustctl cluster add-voter): until one has, the directory holds
// restoredMarker, written first, and New refuses it with p2p.peers or
// raft.join set. The genesis must be the backup's.
func RestoreBackup(dataDir string, genesis []byte, backup io.Reader) (index uint64, err error) {
	if entries, err := os.ReadDir(dataDir); err == nil {
		for _, e := range entries {
			if e.Name() == "state" || e.Name() == "raft" {
				return 0, fmt.Errorf("%s already holds a node's data (or a restore that was stopped before it finished): restore into a new directory", dataDir)
			}
		}
	}
	stateDir, raftDir, keyFile := filepath.Join(dataDir, "state"), filepath.Join(dataDir, "raft"), filepath.Join(dataDir, "node.key")
	_, statErr := os.Stat(dataDir)
	madeDir := os.IsNotExist(statErr)
	_, statErr = os.Stat(keyFile)
	hadKey := statErr == nil // made beforehand (trustd identity) to learn the peer id: kept
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return 0, err
	}
	// A failed restore (a corrupt or foreign backup, a full disk) leaves
	// nothing behind, so the same command can be run again on a good backup.
	defer func() {
		if err == nil {
			return
		}
		cleanup := []error{os.RemoveAll(stateDir), os.RemoveAll(raftDir), ignoreNotExist(os.Remove(filepath.Join(dataDir, restoredMarker)))}
		if !hadKey {
			cleanup = append(cleanup, ignoreNotExist(os.Remove(keyFile)))
		}
		if madeDir {
			cleanup = append(cleanup, os.Remove(dataDir))
		}
		if cerr := errors.Join(cleanup...); cerr != nil {
			err = fmt.Errorf("%w (and removing what it made in %s: %v)", err, dataDir, cerr)
		}
	}()
	// The marker goes first, durably: a restore cut short and then started
	// is refused with peers as a finished one is.
	if err := writeRestoredMarker(dataDir); err != nil {
		return 0, err
	}
	state, err := registry.Open(stateDir, genesis, registry.Options{})
	if err != nil {
		return 0, err
	}
	// Closed before the cleanup above (deferred calls run last-in first-out),
	// and checked: the restored state is flushed at the close, so a failed
	// close is a failed restore.
	defer func() {
		if cerr := state.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close the restored state: %w", cerr)
		}
	}()
	if err := state.Restore(backup); err != nil {
		return 0, fmt.Errorf("restore backup: %w", err)
	}
	key, err := consensus.LoadOrCreateIdentity(keyFile)
	if err != nil {
		return 0, err
	}
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return 0, err
	}
	index = state.AppliedIndex()
	err = consensus.SeedSnapshot(raftDir, self, index, func(w io.Writer) error {
		snap := state.Snapshot()
		defer snap.Release()
		_, err := snap.WriteTo(w)
		return err
	})
	return index, err
}

// writeRestoredMarker writes restoredMarker into dataDir and syncs it and
// the directory.
func writeRestoredMarker(dataDir string) error {
	f, err := os.OpenFile(filepath.Join(dataDir, restoredMarker), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString("restored from a backup as a one-node cluster: trustd refuses p2p.peers and raft.join on this directory " +
		"until the cluster has another voter, and then removes this file (docs/OPERATIONS.md, Backup and restore)\n")
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return err
	}
	d, err := os.Open(dataDir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// restoredMarker is the file RestoreBackup leaves in a data directory: its
// raft state is a one-node cluster seeded from a backup, a history of its
// own. A member of a running cluster restored into such a directory and
// started with its configuration would lead a cluster of its own beside
// the others, and what it accepted there would never reach the registry
// (docs/OPERATIONS.md); so New refuses such a directory with p2p.peers or
// raft.join set until the cluster has another voter (an operator added
// one with trustctl cluster add-voter, or promoted a non-voter), and then
// removes the file (watchRestored).
const restoredMarker = "restored-one-node-cluster"

// refuseRestoredMember reports whether dataDir holds the restore marker,
// and an error when cfg would start it as a member of another cluster.
func refuseRestoredMember(cfg configs.Config) (bool, error) {
	marker := filepath.Join(cfg.DataDir, restoredMarker)
	if _, err := os.Stat(marker); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if len(cfg.P2P.Peers) == 0 && len(cfg.Raft.Join) == 0 {
		return true, nil
	}
	return true, fmt.Errorf("%s was restored from a backup as a new one-node cluster (%s), and the configuration names other nodes (p2p.peers or raft.join): "+
		"a member of a running cluster restored this way would lead a cluster of its own beside it, and the writes it accepted would never reach the registry. "+
		"To bring back a member, remove it (trustctl cluster remove) and add it again with an empty data directory; it catches up from the others. "+
		"To start the registry again from this backup, start this node without p2p.peers and raft.join and add the others with trustctl cluster add-voter; "+
		"once it has another voter the file goes and the settings are accepted (if the cluster has one already, remove the file by hand)",
		cfg.DataDir, marker)
}

// watchRestored removes the restore marker once the cluster has a voter
// besides this node, checking every restoredCheckEvery.
func (n *Node) watchRestored(ctx context.Context) {
	t := time.NewTicker(restoredCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !hasOtherVoter(n.cluster.Status()) {
			continue
		}
		marker := filepath.Join(n.cfg.DataDir, restoredMarker)
		if err := ignoreNotExist(os.Remove(marker)); err != nil {
			n.log.Warn("the cluster restored from a backup has another voter, but its restore marker stays; remove it by hand", "file", marker, "err", err)
		} else {
			n.log.Info("the cluster restored from a backup has another voter: p2p.peers and raft.join are accepted on this data directory from now on")
		}
		return
	}
}

const restoredCheckEvery = time.Second

// hasOtherVoter reports whether the configuration st shows holds a voter
// besides this node. A voter is added only once it answers (trustctl
// cluster add-voter, promote); a non-voter may be added before it runs
// and removed again, which would leave the restored cluster alone without
// its marker.
func hasOtherVoter(st consensus.Status) bool {
	for _, m := range st.Members {
		if m.ID != st.NodeID && m.Suffrage == "voter" {
			return true
		}
	}
	return false
}

func ignoreNotExist(err error) error {
	if os.IsNotExist(err) {
		return nil
	}
	return err
}
