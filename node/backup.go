package node

import (
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
	snap := n.State.Snapshot()
	defer snap.Release()
	_, err := snap.WriteTo(w)
	return err
}

// RestoreBackup prepares a new data directory from a backup: the registry
// state is restored and seeded as a raft snapshot of a one-node cluster, so
// trustd started on dataDir resumes at the backup's index. Other nodes then
// join it. The genesis must be the backup's.
func RestoreBackup(dataDir string, genesis []byte, backup io.Reader) (uint64, error) {
	if entries, err := os.ReadDir(dataDir); err == nil {
		for _, e := range entries {
			if e.Name() == "state" || e.Name() == "raft" {
				return 0, fmt.Errorf("%s already holds a node's data: restore into a new directory", dataDir)
			}
		}
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return 0, err
	}
	state, err := registry.Open(filepath.Join(dataDir, "state"), genesis, registry.Options{})
	if err != nil {
		return 0, err
	}
	defer state.Close()
	if err := state.Restore(backup); err != nil {
		return 0, fmt.Errorf("restore backup: %w", err)
	}
	key, err := consensus.LoadOrCreateIdentity(filepath.Join(dataDir, "node.key"))
	if err != nil {
		return 0, err
	}
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return 0, err
	}
	index := state.AppliedIndex()
	err = consensus.SeedSnapshot(filepath.Join(dataDir, "raft"), self, index, func(w io.Writer) error {
		snap := state.Snapshot()
		defer snap.Release()
		_, err := snap.WriteTo(w)
		return err
	})
	return index, err
}
