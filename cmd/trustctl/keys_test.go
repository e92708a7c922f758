package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/node"
)

// TestDIDChecksTheKeyID: trustctl did refuses a key file whose kid names
// another key than the one it holds: a did:key kid of another key (or
// another method of the same key's DID, which has one), and a kid of a
// registered DID that the registry binds to another key or does not list.
// Signing with such a file is refused the same way, before anything is
// submitted. Matching files print their DID.
func TestDIDChecksTheKeyID(t *testing.T) {
	d := startDevNode(t)
	dir := t.TempDir()
	gov := filepath.Join(d.dir, node.DevGovernanceKey)
	keygen := func(name string, args ...string) string {
		p := filepath.Join(dir, name)
		d.must(append([]string{"-q", "keygen", "--out", p}, args...)...)
		return p
	}
	// withKID writes a copy of the key file src under name with kid.
	withKID := func(src, name, kid string) string {
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		var jwk map[string]any
		if err := json.Unmarshal(raw, &jwk); err != nil {
			t.Fatal(err)
		}
		jwk["kid"] = kid
		if raw, err = json.Marshal(jwk); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := keygen("a.jwk"), keygen("b.jwk")
	didA, didB := strings.TrimSpace(d.must("did", a)), strings.TrimSpace(d.must("did", b))
	// jwk prints the public key in the output asked for.
	var pub map[string]any
	if err := json.Unmarshal([]byte(d.must("jwk", a)), &pub); err != nil || pub["kty"] != "OKP" || pub["d"] != nil {
		t.Fatalf("jwk: %v %v", pub, err)
	}
	if y := d.must("-o", "yaml", "jwk", a); !strings.Contains(y, "kty: OKP") || !strings.Contains(y, "x: "+pub["x"].(string)) {
		t.Fatalf("jwk -o yaml printed %q", y)
	}
	fragB := strings.TrimPrefix(didB, "did:key:")

	for _, tc := range []struct{ name, kid, want string }{
		{"another did:key", didB + "#" + fragB, "but the key in the file is " + didA},
		{"another method of the same did:key", didA + "#key-1", "whose only key id is " + didA + "#" + strings.TrimPrefix(didA, "did:key:")},
	} {
		bad := withKID(a, "bad.jwk", tc.kid)
		for _, args := range [][]string{
			{"did", bad},
			{"jwk", bad},
			{"entity", "register", "--id", "did:web:x.example", "--name", "X", "--key", bad},
		} {
			_, _, err := d.ctl(args...)
			if !errors.Is(err, errKIDMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: trustctl %s: %v", tc.name, args[0], err)
			}
		}
	}
	if _, _, err := d.ctl("did", withKID(a, "nodid.jwk", "college#key-1")); err == nil || !strings.Contains(err.Error(), "is not a DID URL") {
		t.Errorf("a kid that is no DID URL: %v", err)
	}
	if e, _, err := d.ctl("--json", "entity", "show", "did:web:x.example"); err == nil {
		t.Fatalf("a refused key registered an entity: %s", e)
	}

	// A did:web key: unchecked (and said so) until the registry lists keys
	// of the DID, then checked against them.
	const web = "did:web:college.example"
	k1 := keygen("k1.jwk", "--kid", web+"#key-1")
	if out, errw, err := d.ctl("did", k1); err != nil || strings.TrimSpace(out) != web || !strings.Contains(errw, "not registered") {
		t.Fatalf("did of an unregistered did:web key: %v %q %q", err, out, errw)
	}
	d.must("-q", "entity", "register", "--id", web, "--name", "College", "--public-key", k1, "--key", gov)
	if out, errw, err := d.ctl("did", k1); err != nil || strings.TrimSpace(out) != web || errw != "" {
		t.Fatalf("did of a registered key: %v %q %q", err, out, errw)
	}
	impostor := keygen("impostor.jwk", "--kid", web+"#key-1")
	if _, _, err := d.ctl("did", impostor); !errors.Is(err, errKIDMismatch) || !strings.Contains(err.Error(), "holds another key under kid "+web+"#key-1") {
		t.Errorf("another key under a registered kid: %v", err)
	}
	k9 := keygen("k9.jwk", "--kid", web+"#key-9")
	if _, _, err := d.ctl("did", k9); !errors.Is(err, errKIDMismatch) || !strings.Contains(err.Error(), "is not among the keys") {
		t.Errorf("a kid the registry does not list: %v", err)
	}
	if out := d.must("did", "--offline", k9); strings.TrimSpace(out) != web {
		t.Errorf("did --offline: %q", out)
	}
}
