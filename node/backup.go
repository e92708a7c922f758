package node

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"

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
// join it. The genesis must be the backup's.
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
		cleanup := []error{os.RemoveAll(stateDir), os.RemoveAll(raftDir)}
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

func ignoreNotExist(err error) error {
	if os.IsNotExist(err) {
		return nil
	}
	return err
}
