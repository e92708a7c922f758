package node

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func peerInfos(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("peer address %q: %w", a, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return nil, fmt.Errorf("peer address %q must end in /p2p/<peer id>: %w", a, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

func peerIDs(addrs []string) ([]peer.ID, error) {
	infos, err := peerInfos(addrs)
	if err != nil {
		return nil, err
	}
	ids := make([]peer.ID, len(infos))
	for i, ai := range infos {
		ids[i] = ai.ID
	}
	return ids, nil
}

// readPSK reads a pre-shared network key: 64 hex digits.
func readPSK(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pre-shared key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("pre-shared key %s must hold 64 hex digits (32 bytes)", path)
	}
	return key, nil
}
