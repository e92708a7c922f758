package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// Development-mode files, relative to the data directory.
const (
	DevGenesisFile       = "genesis.json"
	DevGovernanceKey     = "keys/governance.jwk"
	DevRootAccreditorKey = "keys/root-accreditor.jwk"
)

// ensureDevGenesis returns the development genesis in dataDir, creating it
// and its keys on first start: one governance member (threshold 1 of 1),
// a root-accreditor key for the frameworks a developer creates, and the
// node's own key as the one cosigner of the log's checkpoints. A genesis
// written before cosigners existed is returned as it is: it has none, and
// the node then serves no checkpoints.
func ensureDevGenesis(dataDir string, cosigner tlog.CosignerKey) ([]byte, bool, error) {
	path := filepath.Join(dataDir, DevGenesisFile)
	raw, err := os.ReadFile(path)
	if err == nil {
		return raw, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	// A registry without a development genesis beside it is a
	// consortium's, started without its genesis: it would refuse the new
	// one after the keys and the file were written into its directory.
	if _, err := os.Stat(filepath.Join(dataDir, "state")); err == nil {
		return nil, false, fmt.Errorf("%s holds a registry and no %s: it belongs to a consortium; start it with --genesis (that consortium's genesis document)", dataDir, DevGenesisFile)
	}
	gov, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		return nil, false, err
	}
	root, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		return nil, false, err
	}
	for file, k := range map[string]*record.Signer{DevGovernanceKey: gov, DevRootAccreditorKey: root} {
		if err := writeKey(filepath.Join(dataDir, file), k); err != nil {
			return nil, false, err
		}
	}
	g := record.Genesis{
		Consortium: "trustreg development consortium",
		Members:    []record.Member{{ID: gov.DID, Name: "development governance"}},
		Threshold:  1,
		Cosigners:  []string{cosigner.String()},
	}
	raw, err = json.MarshalIndent(g, "", "  ")
	if err != nil {
		return nil, false, err
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return nil, false, fmt.Errorf("write development genesis: %w", err)
	}
	return raw, true, nil
}

func writeKey(path string, k *record.Signer) error {
	raw, err := k.PrivateJWK()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
}
