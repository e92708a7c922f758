package record

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/registry/tlog"
)

func cosignerVKey(t *testing.T, name string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := tlog.NewCosignerKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	return k.String()
}

func TestGenesisCosigners(t *testing.T) {
	member, err := GenerateKey(KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c, d := cosignerVKey(t, "a.example"), cosignerVKey(t, "b.example"), cosignerVKey(t, "c.example"), cosignerVKey(t, "d.example")
	base := Genesis{Consortium: "c", Members: []Member{{ID: member.DID}}, Threshold: 1}
	for _, tc := range []struct {
		name      string
		cosigners []string
		quorum    int
		want      int    // quorum when valid
		refused   string // part of the error when refused
	}{
		{name: "none", want: 0},
		{name: "four, default quorum", cosigners: []string{a, b, c, d}, want: 3},
		{name: "one", cosigners: []string{a}, want: 1},
		{name: "explicit quorum", cosigners: []string{a, b, c, d}, quorum: 4, want: 4},
		{name: "quorum above n", cosigners: []string{a, b}, quorum: 3, refused: "between 1 and the 2"},
		{name: "quorum without cosigners", quorum: 1, refused: "no cosigners"},
		{name: "twice", cosigners: []string{a, a}, refused: "twice"},
		{name: "not a vkey", cosigners: []string{"a.example+00000000+AAAA"}, refused: "genesis cosigner"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := base
			g.Cosigners, g.CosignerQuorum = tc.cosigners, tc.quorum
			raw, err := json.Marshal(g)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseGenesis(raw)
			if tc.refused != "" {
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("ParseGenesis = %v, want an ErrInvalid naming %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if q := got.CosignerQuorumOf(); q != tc.want {
				t.Fatalf("quorum %d, want %d", q, tc.want)
			}
		})
	}
}
