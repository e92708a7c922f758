package record

import (
	"time"

	"github.com/trustreg/trustreg/registry/tlog"
)

// ParseGenesis decodes and validates a genesis document.
func ParseGenesis(raw []byte) (*Genesis, error) {
	var g Genesis
	if err := DecodeStrict(raw, &g); err != nil {
		return nil, Errorf(ErrInvalid, "genesis: %v", err)
	}
	if g.Consortium == "" {
		return nil, Errorf(ErrInvalid, "genesis names no consortium")
	}
	if len(g.Members) == 0 {
		return nil, Errorf(ErrInvalid, "genesis has no governance members")
	}
	if g.Threshold < 1 || g.Threshold > len(g.Members) {
		return nil, Errorf(ErrInvalid, "genesis threshold %d must be between 1 and the %d members", g.Threshold, len(g.Members))
	}
	if g.IATWindow != "" {
		if d, err := time.ParseDuration(g.IATWindow); err != nil || d <= 0 {
			return nil, Errorf(ErrInvalid, "genesis iatWindow %q is not a positive duration", g.IATWindow)
		}
	}
	seen := map[string]bool{}
	for _, m := range g.Members {
		if err := ValidateID("member id", m.ID); err != nil {
			return nil, Errorf(ErrInvalid, "genesis: %v", err)
		}
		if seen[m.ID] {
			return nil, Errorf(ErrInvalid, "genesis lists member %s twice", m.ID)
		}
		seen[m.ID] = true
		for _, k := range m.Keys {
			if _, err := ParsePublicJWK(k); err != nil {
				return nil, Errorf(ErrInvalid, "genesis member %s: %v", m.ID, err)
			}
		}
		if len(m.Keys) == 0 {
			if _, err := ParseDIDKey(m.ID); err != nil {
				return nil, Errorf(ErrInvalid, "genesis member %s has no keys and is not a did:key", m.ID)
			}
		}
	}
	if len(g.Cosigners) == 0 && g.CosignerQuorum != 0 {
		return nil, Errorf(ErrInvalid, "genesis cosignerQuorum %d but no cosigners", g.CosignerQuorum)
	}
	if len(g.Cosigners) > 0 && (g.CosignerQuorum < 0 || g.CosignerQuorum > len(g.Cosigners)) {
		return nil, Errorf(ErrInvalid, "genesis cosignerQuorum %d must be between 1 and the %d cosigners (0: the default)", g.CosignerQuorum, len(g.Cosigners))
	}
	names := map[string]bool{}
	for _, v := range g.Cosigners {
		k, err := tlog.ParseCosignerKey(v)
		if err != nil {
			return nil, Errorf(ErrInvalid, "genesis cosigner %q: %v", v, err)
		}
		if names[k.Name] {
			return nil, Errorf(ErrInvalid, "genesis lists cosigner %s twice", k.Name)
		}
		names[k.Name] = true
	}
	return &g, nil
}

// CosignerQuorumOf is how many of the genesis cosigners must cosign a
// checkpoint: CosignerQuorum, or by default n − ⌊(n−1)/3⌋ of n, as
// Hyperledger Indy's state proofs ask (0 when there are no cosigners).
func (g *Genesis) CosignerQuorumOf() int {
	if g.CosignerQuorum > 0 {
		return g.CosignerQuorum
	}
	return tlog.DefaultQuorum(len(g.Cosigners))
}
