package proof_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/proof/prooftest"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// TestVerifyByHand follows DESIGN.md's "Verifying a bundle by hand" with
// the standard library alone, steps 1 to 5 up to the map keys (the batch
// proof walk is smt's, tested there): the genesis CID and the origin, each
// cosignature, the leaf's inclusion in the checkpoint's tree, the map root
// in the leaf, and the records' map keys and values.
func TestVerifyByHand(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{LogPad: 37})
	b := w.Bundle(collegeQuestion())

	// 1. Genesis: CIDv1, raw codec, sha2-256, base32 lower case, "b".
	d := sha256.Sum256(w.Genesis)
	cid := "b" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(append([]byte{0x01, 0x55, 0x12, 0x20}, d[:]...)))
	origin := "trustreg/log/" + cid
	var g struct{ Cosigners []string }
	if err := json.Unmarshal(w.Genesis, &g); err != nil {
		t.Fatal(err)
	}
	keys := map[string][]byte{}
	for _, v := range g.Cosigners {
		parts := strings.SplitN(v, "+", 3) // name, key id, base64 (which may hold "+")
		raw, err := base64.StdEncoding.DecodeString(parts[2])
		if err != nil || raw[0] != 0x04 {
			t.Fatalf("cosigner key %s", v)
		}
		keys[parts[0]] = raw[1:]
	}

	// 2. Checkpoint: text, then signature lines.
	i := strings.LastIndex(b.Checkpoint, "\n\n")
	text, sigs := b.Checkpoint[:i+1], strings.Split(strings.TrimSuffix(b.Checkpoint[i+2:], "\n"), "\n")
	lines := strings.Split(text, "\n")
	if lines[0] != origin {
		t.Fatalf("origin %q, computed %q", lines[0], origin)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	valid := 0
	for _, line := range sigs {
		f := strings.Fields(line) // "—", name, base64
		sig, err := base64.StdEncoding.DecodeString(f[2])
		if err != nil || len(sig) != 4+8+64 {
			t.Fatalf("signature line %q", line)
		}
		pub := keys[f[1]]
		id := sha256.Sum256(append([]byte(f[1]+"\n\x04"), pub...))
		if !bytes.Equal(id[:4], sig[:4]) {
			t.Fatalf("key id of %s", f[1])
		}
		msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", binary.BigEndian.Uint64(sig[4:12]), text)
		if ed25519.Verify(pub, []byte(msg), sig[12:]) {
			valid++
		}
	}
	if valid != len(g.Cosigners) {
		t.Fatalf("%d cosignatures verify by hand, want %d", valid, len(g.Cosigners))
	}

	// 3. The leaf in the log: RFC 9162 §2.1.3.2.
	lh := sha256.Sum256(append([]byte{0}, b.Leaf...))
	if got := rootFromInclusion(b.LeafIndex, size, lh[:], b.Inclusion); !bytes.Equal(got, root) {
		t.Fatalf("inclusion by hand leads to %x, the checkpoint's root is %x", got, root)
	}

	// 4. The map root, after version, raft index and commit time.
	if b.Leaf[0] != 0x01 || binary.BigEndian.Uint64(b.Leaf[1:9]) != b.Question.Applied {
		t.Fatalf("leaf %x", b.Leaf[:9])
	}
	leaf, err := tlog.DecodeLeaf(b.Leaf)
	if err != nil || !bytes.Equal(leaf.MapRoot[:], b.Leaf[17:49]) {
		t.Fatalf("map root: %v", err)
	}

	// 5. The records' map keys and values.
	tables := map[string]byte{"framework": 0x05, "root": 0x06, "entity": 0x07, "accreditation": 0x08, "recognition": 0x0d}
	for _, r := range b.Records {
		var sk []byte
		if r.Kind == "received" {
			sk = append(append(append(append([]byte{0x09}, r.A...), 0), r.B...), 0)
		} else {
			sk = append([]byte{tables[r.Kind]}, r.A...)
			if r.B != "" {
				sk = append(append(sk, 0), r.B...)
			}
		}
		k, err := r.Key()
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(sk) != [32]byte(proof.MapKey(k)) || !bytes.Equal(sk, decide.StoreKey(k)) {
			t.Fatalf("%s %s: map key by hand differs", r.Kind, r.A)
		}
		if v := sha256.Sum256(r.Bytes); r.Bytes != nil && v != [32]byte(proof.MapValue(r.Bytes)) {
			t.Fatalf("%s %s: map value by hand differs", r.Kind, r.A)
		}
	}
	if record.CIDOf(w.Genesis) != cid {
		t.Fatalf("genesis CID by hand %s, record.CIDOf %s", cid, record.CIDOf(w.Genesis))
	}
}

// rootFromInclusion is RFC 9162 §2.1.3.2's verification loop, returning
// the root it computes.
func rootFromInclusion(index, size uint64, leafHash []byte, p [][]byte) []byte {
	node := func(l, r []byte) []byte {
		h := sha256.Sum256(append(append([]byte{1}, l...), r...))
		return h[:]
	}
	fn, sn := index, size-1
	r := leafHash
	for _, pi := range p {
		if sn == 0 {
			return nil
		}
		if fn&1 == 1 || fn == sn {
			r = node(pi, r)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			r = node(r, pi)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return nil
	}
	return r
}
