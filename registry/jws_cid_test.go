package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/trustreg/trustreg/registry/record"
)

// CIDs name stored records, so CIDOf must give exactly what hashing the
// bytes through go-multihash gives, for any input.
func TestCIDOfMatchesMultihashSum(t *testing.T) {
	inputs := [][]byte{nil, {}, []byte("x"), []byte("eyJhbGciOiJFZERTQSJ9.e30.c2ln"), make([]byte, 70000)}
	for _, b := range inputs {
		mh, err := multihash.Sum(b, multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		want := cid.NewCidV1(cid.Raw, mh).String()
		if got := record.CIDOf(b); got != want {
			t.Fatalf("CIDOf(%d bytes) = %s, want %s", len(b), got, want)
		}
	}
	// A known value: the CID of "hello".
	if got := record.CIDOf([]byte("hello")); got != "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq" {
		t.Fatalf("CIDOf(hello) = %s", got)
	}
}

// A governance-accepted operation's duplicate key is stored with its record,
// so its bytes may never change: the table of signed content, then the
// SHA-256 of BASE64URL(payload) without padding, for any payload length
// (each remainder of three).
func TestGovernancePayloadKeyIsItsDefinition(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 5, 767, 768, 769, 70000} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i*7 + n)
		}
		d := sha256.Sum256([]byte(base64.RawURLEncoding.EncodeToString(payload)))
		want := append([]byte{tableSignedContent}, d[:]...)
		if got := governancePayloadKey(payload); !bytes.Equal(got, want) {
			t.Fatalf("payload of %d bytes: key %x, want %x", n, got, want)
		}
	}
}
