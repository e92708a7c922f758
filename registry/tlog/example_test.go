package tlog_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/trustreg/trustreg/registry/tlog"
)

// Example follows one entry from the apply to an offline check: the log
// appends its leaf, two of three members cosign the checkpoint from their own
// roots, and a verifier holding only the genesis-derived origin and keys
// checks the quorum and the leaf's inclusion.
func Example() {
	origin, _ := tlog.Origin("bafkreiexamplegenesis")
	store := tlog.NewMemStore()
	log := tlog.NewLog()
	leaf := tlog.Leaf{
		Index:      7,
		CommitTime: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC),
		Ops:        []tlog.Op{{CID: []byte{0x01, 0x55}, ResultCID: []byte{0x01, 0x71}}},
	}
	encoded, err := log.AppendLeaf(store, leaf)
	if err != nil {
		panic(err)
	}
	cp := tlog.Checkpoint{Origin: origin, Size: log.Size(), Hash: [tlog.HashSize]byte(log.Root())}

	var keys []tlog.CosignerKey
	var sigs []tlog.Cosignature
	for i, name := range []string{"member-a.example", "member-b.example", "member-c.example"} {
		seed := sha256.Sum256([]byte(name))
		signer, _ := tlog.NewCosignatureSigner(name, ed25519.NewKeyFromSeed(seed[:]))
		keys = append(keys, signer.Key())
		if i == 2 {
			continue // member c is offline
		}
		c, _ := tlog.NewCosigner(signer, origin, &tlog.MemCosignerState{}, func() time.Time { return leaf.CommitTime })
		own, _ := tlog.RootAt(store, cp.Size)
		sig, err := c.Cosign(cp, own, 0, nil)
		if err != nil {
			panic(err)
		}
		sigs = append(sigs, sig)
	}
	note := tlog.SignedNote(cp, sigs...)

	// Offline: the verifier knows the origin and the keys, nothing else.
	v, _ := tlog.NewVerifier(origin, keys, 2)
	got, err := v.Verify(note)
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	proof, _ := tlog.InclusionProof(store, 0, got.Checkpoint.Size)
	err = tlog.VerifyInclusion(0, got.Checkpoint.Size, tlog.LeafHash(encoded), proof, got.Checkpoint.Hash[:])
	fmt.Println("cosigned by", got.Cosigners(), "as of", got.FreshAsOf().Format(time.RFC3339))
	fmt.Println("leaf included:", err == nil)
	// Output:
	// cosigned by [member-a.example member-b.example] as of 2026-12-03T12:00:00Z
	// leaf included: true
}
