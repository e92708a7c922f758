package tlog

import (
	"bytes"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
)

// MaxProofHashes bounds the hashes in any proof of a tree of up to 2^64
// leaves: an inclusion proof has at most 64, a consistency proof at most 65.
const MaxProofHashes = 65

// VerifyInclusion checks that leafHash is leaf index of the tree of the given
// size whose root is root, using an RFC 6962 inclusion proof (as
// InclusionProof makes). It returns nil or an error wrapping
// ErrInclusionProof.
func VerifyInclusion(index, size uint64, leafHash []byte, p [][]byte, root []byte) error {
	if len(p) > MaxProofHashes {
		return fmt.Errorf("%w: %d hashes", ErrInclusionProof, len(p))
	}
	if err := proof.VerifyInclusion(hasher, index, size, leafHash, p, root); err != nil {
		return fmt.Errorf("%w: leaf %d of %d: %w", ErrInclusionProof, index, size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of size2 with root2 extends the tree
// of size1 with root1, using an RFC 6962 consistency proof (as
// ConsistencyProof makes). It returns nil or an error wrapping
// ErrConsistencyProof.
//
// A tree of size 0 must have the empty root. A proof from size 0 to a larger
// size proves nothing, since every tree extends the empty one, so it is
// refused here: a caller that starts from nothing (a cosigner that has never
// cosigned) checks the new tree by other means, and needs no proof.
func VerifyConsistency(size1, size2 uint64, p [][]byte, root1, root2 []byte) error {
	switch {
	case len(p) > MaxProofHashes:
		return fmt.Errorf("%w: %d hashes", ErrConsistencyProof, len(p))
	case size1 == 0 && size2 != 0:
		return fmt.Errorf("%w: a proof from the empty tree proves nothing", ErrConsistencyProof)
	case size1 == 0 && !bytes.Equal(root1, EmptyRoot()):
		return fmt.Errorf("%w: a tree of size 0 with a root other than the empty root", ErrConsistencyProof)
	}
	if err := proof.VerifyConsistency(hasher, size1, size2, p, root1, root2); err != nil {
		return fmt.Errorf("%w: from size %d to %d: %w", ErrConsistencyProof, size1, size2, err)
	}
	return nil
}
