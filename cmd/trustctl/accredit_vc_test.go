package main

import (
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/trustreg/trustreg/node"
	"github.com/trustreg/trustreg/registry/record"
)

// TestAccreditWritesVerifiableAccreditation: trustctl accredit writes the
// accreditation as the accreditor's EBSI Verifiable Accreditation (a
// VC-JWT) by default, its termsOfUse the TIR attribute it grants under;
// --form operation writes the older accredit operation.
func TestAccreditWritesVerifiableAccreditation(t *testing.T) {
	d := startDevNode(t)
	dir, ctl, must := d.dir, d.ctl, d.must
	gov, rootKey := filepath.Join(dir, node.DevGovernanceKey), filepath.Join(dir, node.DevRootAccreditorKey)
	root := strings.TrimSpace(must("did", rootKey))
	fw := "https://example.org/fw"
	must("-q", "framework", "create", "--id", fw, "--name", "FW", "--root", root, "--key", gov)
	qaKey := filepath.Join(dir, "qa.jwk")
	must("keygen", "--out", qaKey)
	qa := strings.TrimSpace(must("did", qaKey))
	res := "https://example.org/credentials/Nurse"

	// claims reads an accreditation's signed bytes as a JWT.
	claims := func(id string) map[string]any {
		t.Helper()
		var v record.AccreditationView
		if err := json.Unmarshal([]byte(must("--json", "accreditation", "show", id)), &v); err != nil {
			t.Fatal(err)
		}
		jwt, err := jose.ParseSignedCompact(v.Operation, record.AcceptedAlgs)
		if err != nil {
			t.Fatalf("accreditation %s is no JWT: %v", id, err)
		}
		var m map[string]any
		if err := json.Unmarshal(jwt.UnsafePayloadWithoutVerification(), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	vcOf := func(m map[string]any) (types []any, terms string) {
		vc, _ := m["vc"].(map[string]any)
		types, _ = vc["type"].([]any)
		if tou, _ := vc["termsOfUse"].([]any); len(tou) == 1 {
			terms, _ = tou[0].(map[string]any)["id"].(string)
		}
		return types, terms
	}

	qaAcc := strings.TrimSpace(must("-q", "accredit", "--key", rootKey, "--framework", fw, "--subject", qa, "--action", "accredit", "--resource", res, "--jurisdiction", "US"))
	types, terms := vcOf(claims(qaAcc))
	if !slices.Contains(types, any(record.TypeAccreditationToAccredit)) || !strings.Contains(terms, "/trusted-issuers-registry/v4/issuers/"+root+"/attributes/") {
		t.Fatalf("root's grant: types %v, termsOfUse %q", types, terms)
	}
	colAcc := strings.TrimSpace(must("-q", "accredit", "--key", qaKey, "--framework", fw, "--subject", "did:web:college.example", "--action", "issue", "--resource", res, "--jurisdiction", "US"))
	d256, err := record.ParseAttributeRef(qaAcc, "")
	if err != nil {
		t.Fatal(err)
	}
	types, terms = vcOf(claims(colAcc))
	if !slices.Contains(types, any(record.TypeAccreditationToAttest)) || !strings.HasSuffix(terms, "/issuers/"+qa+"/attributes/"+hex.EncodeToString(d256[:])) {
		t.Fatalf("agency's grant: types %v, termsOfUse %q (parent %s)", types, terms, qaAcc)
	}

	old := strings.TrimSpace(must("-q", "accredit", "--form", "operation", "--key", qaKey, "--framework", fw, "--subject", "did:web:other.example", "--action", "issue", "--resource", res, "--jurisdiction", "US", "--evidence", "https://example.org/report"))
	if m := claims(old); m["op"] != record.OpAccredit || m["vc"] != nil {
		t.Fatalf("--form operation wrote %v", m)
	}
	for _, args := range [][]string{
		{"--form", "vc"},
		{"--evidence", "https://example.org/report"},
	} {
		full := append([]string{"accredit", "--key", qaKey, "--framework", fw, "--subject", "did:web:x.example", "--resource", res}, args...)
		if _, _, err := ctl(full...); err == nil {
			t.Errorf("accredit %v: no error", args)
		}
	}
}
