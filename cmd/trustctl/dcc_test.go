package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/node"
	"github.com/trustreg/trustreg/registry/record"
)

// TestDCCImportAndExport: a DCC issuer registry file with a bad entry
// imports nothing and names every bad entry; a good one registers its
// issuers (once: a second import keeps them), and the export lists the
// issuers authorized now, which a second registry imports as they were.
func TestDCCImportAndExport(t *testing.T) {
	d := startDevNode(t)
	gov := filepath.Join(d.dir, node.DevGovernanceKey)
	rootKey := filepath.Join(d.dir, node.DevRootAccreditorKey)
	root := strings.TrimSpace(d.must("did", rootKey))
	const fw = "https://example.org/fw"
	d.must("-q", "framework", "create", "--id", fw, "--name", "FW", "--root", root, "--key", gov)
	d.must("-q", "keygen", "--out", filepath.Join(d.dir, "solo.jwk"))
	solo := strings.TrimSpace(d.must("did", filepath.Join(d.dir, "solo.jwk")))
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	entity := func(did string) (record.Entity, error) {
		out, _, err := d.ctl("--json", "entity", "show", did)
		var e record.Entity
		if err == nil {
			err = json.Unmarshal([]byte(out), &e)
		}
		return e, err
	}

	bad := write("bad.json", `{"meta": {"created": "2024-01-01T00:00:00+00:00"}, "registry": {
	  "did:web:college-a.example": {"name": "College A"},
	  "did:web:college-b.example": {"name": " "},
	  "college-c": {"name": "College C"},
	  "did:web:college-d.example": {"name": "College D", "logo": "x.png"}}}`)
	_, _, err := d.ctl("import", "dcc", bad, "--key", gov)
	if err == nil || !strings.Contains(err.Error(), "3 bad entries, nothing imported") || !strings.Contains(err.Error(), "college-b.example: entity name is empty") ||
		!strings.Contains(err.Error(), "college-c: the key is not a DID") || !strings.Contains(err.Error(), `unknown field "logo"`) {
		t.Fatalf("bad file: %v", err)
	}
	if e, err := entity("did:web:college-a.example"); err == nil {
		t.Fatalf("a refused file registered %+v", e)
	}

	good := write("good.json", `{"meta": {"created": "2024-01-01T00:00:00+00:00", "updated": "2024-02-01T00:00:00+00:00"}, "registry": {
	  "did:web:college-a.example": {"name": "College A", "location": "Cambridge, MA, USA", "url": "https://a.example"},
	  "did:web:college-b.example": {"name": "College B"},
	  "`+solo+`": {"name": "Solo Issuer", "url": "https://solo.example"}}}`)
	out := d.must("import", "dcc", good, "--dry-run")
	if strings.Count(out, "would add") != 3 {
		t.Fatalf("dry run: %s", out)
	}
	if _, err := entity("did:web:college-a.example"); err == nil {
		t.Fatal("a dry run registered an entity")
	}
	out = d.must("import", "dcc", good, "--key", gov)
	if strings.Count(out, "registered  ") != 3 {
		t.Fatalf("import: %s", out)
	}
	a, err := entity("did:web:college-a.example")
	if err != nil || a.Name != "College A" || a.Metadata == nil || a.Metadata.Location != "Cambridge, MA, USA" || a.Metadata.Homepage != "https://a.example" {
		t.Fatalf("college A: %+v %v", a, err)
	}
	if out := d.must("import", "dcc", good, "--key", gov); strings.Count(out, "kept") != 3 {
		t.Fatalf("second import: %s", out)
	}

	// A and B may issue; B is suspended. The export lists A only: the
	// solo issuer holds no accreditation.
	d.must("-q", "accredit", "--key", rootKey, "--framework", fw, "--subject", "did:web:college-a.example", "--action", "issue", "--resource", "https://example.org/r")
	accB := strings.TrimSpace(d.must("-q", "accredit", "--key", rootKey, "--framework", fw, "--subject", "did:web:college-b.example", "--action", "issue", "--resource", "https://example.org/r"))
	d.must("-q", "suspend", accB, "--key", rootKey)
	var exp record.DCCRegistry
	if err := json.Unmarshal([]byte(d.must("export", "dcc", "--framework", fw)), &exp); err != nil {
		t.Fatal(err)
	}
	want := record.DCCEntry{Name: "College A", Location: "Cambridge, MA, USA", URL: "https://a.example"}
	if len(exp.Registry) != 1 || exp.Registry["did:web:college-a.example"] != want || exp.Meta.Created == "" || exp.Meta.Updated == "" {
		t.Fatalf("export: %+v", exp)
	}
	if _, _, err := d.ctl("export", "dcc", "--framework", "https://example.org/none"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("export of an unknown framework: %v", err)
	}

	// The exported file is a DCC registry another trustreg imports.
	file := filepath.Join(dir, "export.json")
	d.must("export", "dcc", "--out", file)
	if _, _, err := d.ctl("export", "dcc", "--out", file); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("export over an existing file: %v", err)
	}
	other := startDevNode(t)
	other.must("import", "dcc", file, "--key", filepath.Join(other.dir, node.DevGovernanceKey))
	out, _, err = other.ctl("--json", "entity", "show", "did:web:college-a.example")
	var again record.Entity
	if err == nil {
		err = json.Unmarshal([]byte(out), &again)
	}
	if err != nil || again.Name != a.Name || again.Metadata == nil || again.Metadata.Location != a.Metadata.Location || again.Metadata.Homepage != a.Metadata.Homepage {
		t.Fatalf("imported from the export: %+v %v", again, err)
	}
}
