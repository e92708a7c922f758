package tlog

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// merkleVector is one file of transparency-dev/merkle's testdata (see
// testdata/merkle/README.md for the commit). Base64 fields decode through
// encoding/json's []byte.
type merkleVector struct {
	LeafIdx  uint64   `json:"leafIdx"`
	TreeSize uint64   `json:"treeSize"`
	Root     []byte   `json:"root"`
	LeafHash []byte   `json:"leafHash"`
	Size1    uint64   `json:"size1"`
	Size2    uint64   `json:"size2"`
	Root1    []byte   `json:"root1"`
	Root2    []byte   `json:"root2"`
	Proof    [][]byte `json:"proof"`
	Desc     string   `json:"desc"`
	WantErr  bool     `json:"wantErr"`
}

func readMerkleVectors(t *testing.T, kind string) map[string]merkleVector {
	t.Helper()
	out := make(map[string]merkleVector)
	root := filepath.Join("testdata", "merkle", kind)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var v merkleVector
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out[filepath.ToSlash(rel)] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rfc6962TestLeaves are the eight leaf inputs of the RFC 6962 test tree the
// happy-path vectors are computed over (transparency-dev/merkle
// testonly/constants.go, LeafInputs; the same leaves as Certificate
// Transparency's reference tests).
var rfc6962TestLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}

// TestMerkleVectors runs every inclusion and consistency vector of
// transparency-dev/merkle through VerifyInclusion and VerifyConsistency, and
// checks that the proofs of the happy paths are the ones Log generates.
func TestMerkleVectors(t *testing.T) {
	leaves := make([][]byte, len(rfc6962TestLeaves))
	for i, h := range rfc6962TestLeaves {
		leaves[i], _ = hex.DecodeString(h)
	}
	_, store := mustBuildLog(t, leaves)

	incl := readMerkleVectors(t, "inclusion")
	cons := readMerkleVectors(t, "consistency")
	if len(incl) < 80 || len(cons) < 90 {
		t.Fatalf("read %d inclusion and %d consistency vectors; testdata/merkle is incomplete", len(incl), len(cons))
	}
	var good, bad, generated int
	for name, v := range incl {
		err := VerifyInclusion(v.LeafIdx, v.TreeSize, v.LeafHash, v.Proof, v.Root)
		if v.WantErr != (err != nil) || err != nil && !errors.Is(err, ErrInclusionProof) {
			t.Errorf("inclusion/%s (%s): err = %v, want error %v", name, v.Desc, err, v.WantErr)
		}
		if v.WantErr {
			bad++
			continue
		}
		good++
		if strings.HasSuffix(name, "/happy-path.json") && v.TreeSize <= uint64(len(leaves)) {
			p, err := InclusionProof(store, v.LeafIdx, v.TreeSize)
			root, err2 := RootAt(store, v.TreeSize)
			if err != nil || err2 != nil || !equalHashes(p, v.Proof) || !bytes.Equal(root, v.Root) {
				t.Errorf("inclusion/%s: generated proof or root differs from the vector (%v, %v)", name, err, err2)
			}
			generated++
		}
	}
	for name, v := range cons {
		err := VerifyConsistency(v.Size1, v.Size2, v.Proof, v.Root1, v.Root2)
		if v.WantErr != (err != nil) || err != nil && !errors.Is(err, ErrConsistencyProof) {
			t.Errorf("consistency/%s (%s): err = %v, want error %v", name, v.Desc, err, v.WantErr)
		}
		if v.WantErr {
			bad++
			continue
		}
		good++
		if strings.HasSuffix(name, "/happy-path.json") && v.Size2 <= uint64(len(leaves)) {
			p, err := ConsistencyProof(store, v.Size1, v.Size2)
			r1, _ := RootAt(store, v.Size1)
			r2, _ := RootAt(store, v.Size2)
			if err != nil || !equalHashes(p, v.Proof) || !bytes.Equal(r1, v.Root1) || !bytes.Equal(r2, v.Root2) {
				t.Errorf("consistency/%s: generated proof or roots differ from the vector (%v)", name, err)
			}
			generated++
		}
	}
	if good == 0 || bad == 0 || generated < 10 {
		t.Fatalf("%d accepted, %d refused, %d regenerated: the vectors did not exercise both outcomes", good, bad, generated)
	}
	t.Logf("%d vectors accepted, %d refused, %d proofs regenerated", good, bad, generated)
}
