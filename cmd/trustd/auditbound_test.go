package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/audit"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// mustNewSigner returns a cosignature signer named name with a fresh key.
func mustNewSigner(t *testing.T, name string) *tlog.CosignatureSigner {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tlog.NewCosignatureSigner(name, priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAuditRefusesAHugeUnsignedCheckpointBeforeReading: a mirror serving a
// checkpoint note that claims a huge log, with no cosignature the genesis
// set verifies, makes trustd audit fail at once with a checkpoint error,
// without requesting a tile; a note the genesis set does not sign is read
// only up to --max-unverified-size leaves.
func TestAuditRefusesAHugeUnsignedCheckpointBeforeReading(t *testing.T) {
	gov, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	cosigner := mustNewSigner(t, "cosigner.example")
	g, err := json.Marshal(record.Genesis{Consortium: "audit bound", Threshold: 1,
		Members:   []record.Member{{ID: gov.DID, Name: "governance"}},
		Cosigners: []string{cosigner.Key().String()}})
	if err != nil {
		t.Fatal(err)
	}
	genesis := filepath.Join(t.TempDir(), "genesis.json")
	if err := os.WriteFile(genesis, g, 0o600); err != nil {
		t.Fatal(err)
	}
	origin, err := tlog.Origin(record.CIDOf(g))
	if err != nil {
		t.Fatal(err)
	}
	// note is a checkpoint of size leaves cosigned by signers.
	note := func(size uint64, signers ...*tlog.CosignatureSigner) []byte {
		cp := tlog.Checkpoint{Origin: origin, Size: size}
		var sigs []tlog.Cosignature
		for _, s := range signers {
			c, err := s.Sign(cp, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			sigs = append(sigs, c)
		}
		return tlog.SignedNote(cp, sigs...)
	}
	// forged is cp cosigned under the genesis cosigner's name and key ID
	// with another key: a bad signature by a genesis key.
	forged := func(size uint64) []byte {
		impostor := mustNewSigner(t, "impostor.example")
		n := note(size, impostor)
		real := note(size, cosigner)
		i, j := bytes.LastIndex(n, []byte("\n\n")), bytes.LastIndex(real, []byte("\n\n"))
		// The real line's name and key ID, the impostor's timestamp and
		// signature: the first 4 bytes of the base64 are the key ID (the
		// first 5 characters cover them and one more bit, so keep 8).
		realLine, fakeLine := string(real[j+2:]), string(n[i+2:])
		rb := strings.Fields(realLine)[2]
		fb := strings.Fields(fakeLine)[2]
		line := "— cosigner.example " + rb[:8] + fb[8:] + "\n"
		return append(n[:i+2:i+2], line...)
	}
	const huge = uint64(1) << 40
	for _, tc := range []struct {
		name      string
		note      []byte
		maxSize   uint64
		maxTiles  int64
		wantError string
	}{
		{"a huge size signed by a key outside the set", note(huge, mustNewSigner(t, "outsider.example")), 0, 0, "1099511627776 leaves"},
		{"a huge size with no cosignature", append(note(huge), "— cosigner.example AAAAAAAA\n"...), 0, 0, ""},
		{"a huge size with a forged genesis cosignature", forged(huge), 0, 0, "does not verify"},
		{"another log's checkpoint", func() []byte {
			other, err := tlog.Origin(record.CIDOf([]byte("another genesis")))
			if err != nil {
				t.Fatal(err)
			}
			cp := tlog.Checkpoint{Origin: other, Size: 3}
			sig, err := cosigner.Sign(cp, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return tlog.SignedNote(cp, sig)
		}(), 0, 0, "origin"},
		{"one leaf over the limit", note(513, mustNewSigner(t, "outsider.example")), 512, 0, "513 leaves"},
		// Within the limit the leaves are read (the mirror has none), at
		// most the limit's tiles.
		{"at the limit", note(512, mustNewSigner(t, "outsider.example")), 512, 2 + 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tiles atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/v1/log/checkpoint":
					_, _ = w.Write(tc.note)
				case strings.HasPrefix(r.URL.Path, "/v1/log/tile/"):
					tiles.Add(1)
					http.NotFound(w, r)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			args := []string{"audit", "--from", srv.URL, "--genesis", genesis, "--scratch-dir", t.TempDir()}
			if tc.maxSize != 0 {
				args = append(args, "--max-unverified-size", fmt.Sprint(tc.maxSize))
			}
			var out, errw bytes.Buffer
			err := run(context.Background(), args, nil, &out, &errw)
			t.Logf("%v; %d tile requests", err, tiles.Load())
			if err == nil {
				t.Fatal("the audit passed")
			}
			if tc.maxTiles == 0 && !errors.Is(err, audit.ErrCheckpoint) {
				t.Fatalf("%v, want audit.ErrCheckpoint", err)
			}
			if tc.wantError != "" && !strings.Contains(err.Error(), tc.wantError) {
				t.Fatalf("%v: the message does not say %q", err, tc.wantError)
			}
			if n := tiles.Load(); n > tc.maxTiles {
				t.Fatalf("%d tile requests, at most %d", n, tc.maxTiles)
			}
		})
	}
}
