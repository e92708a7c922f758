package main

import (
	"encoding/json"
	"errors"
	"fmt"
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
	  "did:web:college-d.example": {"name": "College D", "logo": "x.png"},
	  "did:web:college-e.example": {"name": "College E", "url": "college-e.example"}}}`)
	_, _, err := d.ctl("import", "dcc", bad, "--key", gov)
	if err == nil || !strings.Contains(err.Error(), "4 bad entries, nothing imported") || !strings.Contains(err.Error(), "college-b.example: entity name is empty") ||
		!strings.Contains(err.Error(), "college-c: the key is not a DID") || !strings.Contains(err.Error(), `unknown field "logo"`) ||
		!strings.Contains(err.Error(), `college-e.example: homepage "college-e.example" is not an http or https URL`) {
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
	if y := d.must("-o", "yaml", "export", "dcc", "--framework", fw); !strings.Contains(y, "did:web:college-a.example:") || !strings.Contains(y, "url: https://a.example") {
		t.Fatalf("export dcc -o yaml printed %q", y)
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

// dccFixture is a development node with a framework whose root accreditor
// key is rootKey, and a directory for DCC files.
type dccFixture struct {
	devNode
	gov, rootKey, fw string
	files            string
}

func mustNewDCCFixture(t *testing.T) dccFixture {
	t.Helper()
	d := startDevNode(t)
	f := dccFixture{devNode: d, gov: filepath.Join(d.dir, node.DevGovernanceKey),
		rootKey: filepath.Join(d.dir, node.DevRootAccreditorKey), fw: "https://example.org/fw", files: t.TempDir()}
	root := strings.TrimSpace(d.must("did", f.rootKey))
	d.must("-q", "framework", "create", "--id", f.fw, "--name", "FW", "--root", root, "--key", f.gov)
	return f
}

// write writes a DCC file and returns its path.
func (f dccFixture) write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(f.files, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// entity reads a registered entity; ok is false when there is none.
func (f dccFixture) entity(t *testing.T, did string) (record.Entity, bool) {
	t.Helper()
	out, _, err := f.ctl("--json", "entity", "show", did)
	var e record.Entity
	if err != nil {
		return e, false
	}
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatal(err)
	}
	return e, e.Registered
}

// TestDCCImportReportsRepeatsAndConflicts: a DID a DCC file lists twice
// with different details is a bad entry naming both lines and both
// details, and nothing is imported; listed twice with the same details it
// is imported once and reported with its lines. An issuer registered
// already with other details is reported with the registered and the
// file's details and kept, or updated with --update. Every run ends
// saying that an export lists only accredited issuers, and which of the
// file's issuers it leaves out.
func TestDCCImportReportsRepeatsAndConflicts(t *testing.T) {
	f := mustNewDCCFixture(t)

	clash := f.write(t, "clash.json", `{"meta": {"created": "2024-01-01T00:00:00+00:00"}, "registry": {
	  "did:web:a.example": {"name": "College A"},
	  "did:web:c.example": {"name": "College C"},
	  "did:web:a.example": {"name": "College A", "url": "https://other.example"}}}`)
	_, _, err := f.ctl("import", "dcc", clash, "--key", f.gov)
	if !errors.Is(err, errDCCRepeated) || !strings.Contains(err.Error(), "1 bad entries, nothing imported") ||
		!strings.Contains(err.Error(), `line 2: did:web:a.example: listed 2 times with different details (line 2: name "College A"; line 4: name "College A", url "https://other.example")`) {
		t.Fatalf("a DID listed twice with different details: %v", err)
	}
	if _, ok := f.entity(t, "did:web:c.example"); ok {
		t.Fatal("a refused file registered an issuer")
	}

	// B is registered already under another name and without a url.
	f.must("-q", "entity", "register", "--id", "did:web:b.example", "--name", "B College", "--country", "US", "--key", f.gov)
	b0, _ := f.entity(t, "did:web:b.example")
	good := f.write(t, "good.json", `{"meta": {"created": "2024-01-01T00:00:00+00:00"}, "registry": {
	  "did:web:a.example": {"name": "College A", "url": "https://a.example"},
	  "did:web:b.example": {"name": "College B", "location": "US", "url": "https://b.example"},
	  "did:web:a.example": {"name": "College A", "url": "https://a.example"}}}`)
	out := f.must("import", "dcc", good, "--key", f.gov)
	for _, want := range []string{
		"repeated    did:web:a.example on lines 2 and 4 with the same details: imported once\n",
		"registered  did:web:a.example \"College A\" at index",
		fmt.Sprintf(`differs     did:web:b.example (line 3): registered at index %d with name "B College", no url; the file says name "College B", url "https://b.example": kept the registered details (--update takes the file's)`, b0.UpdatedIndex),
		"note: an exported DCC registry (trustctl export dcc, GET /v1/export/dcc) lists only issuers holding an issue accreditation in force: " +
			"2 of the 2 issuers of this file hold none and are left out of it (did:web:a.example, did:web:b.example): accredit them in this run with --accredit",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("import: no %q in\n%s", want, out)
		}
	}
	if strings.Count(out, "registered  ") != 1 {
		t.Errorf("import registered other than one issuer:\n%s", out)
	}
	if b, _ := f.entity(t, "did:web:b.example"); b.Name != "B College" || b.Metadata.Homepage != "" {
		t.Fatalf("an import without --update changed a registered issuer: %+v", b)
	}

	out = f.must("import", "dcc", good, "--key", f.gov, "--update")
	if !strings.Contains(out, `the file says name "College B", url "https://b.example": updated to the file's at index`) || !strings.Contains(out, "kept        did:web:a.example") {
		t.Fatalf("import --update:\n%s", out)
	}
	b, _ := f.entity(t, "did:web:b.example")
	if b.Name != "College B" || b.Metadata == nil || b.Metadata.Homepage != "https://b.example" || b.Metadata.Country != "US" {
		t.Fatalf("after --update: %+v", b)
	}
	if out := f.must("import", "dcc", good, "--key", f.gov, "--update"); strings.Count(out, "kept        ") != 2 || strings.Contains(out, "differs") {
		t.Fatalf("a third import of the same file:\n%s", out)
	}
}

// TestDCCImportAccredits: one run registers a DCC file's issuers and
// accredits them in a framework, after which an export of the framework
// lists them all; a second run keeps both. An accreditor that may not
// accredit there stops the run before anything is registered.
func TestDCCImportAccredits(t *testing.T) {
	f := mustNewDCCFixture(t)
	const resource = "https://example.org/credentials/Nursing"
	file := f.write(t, "issuers.json", `{"meta": {"created": "2024-01-01T00:00:00+00:00"}, "registry": {
	  "did:web:a.example": {"name": "College A", "location": "Cambridge, MA, USA"},
	  "did:web:b.example": {"name": "College B"}}}`)

	if _, _, err := f.ctl("import", "dcc", file, "--key", f.rootKey, "--accredit", f.fw); !isUsage(err) || !strings.Contains(err.Error(), "--accredit needs --resource") {
		t.Fatalf("--accredit without --resource: %v", err)
	}
	if _, _, err := f.ctl("import", "dcc", file, "--key", f.rootKey, "--resource", resource); !isUsage(err) || !strings.Contains(err.Error(), "--resource is a flag of --accredit") {
		t.Fatalf("--resource without --accredit: %v", err)
	}
	f.must("-q", "keygen", "--out", filepath.Join(f.files, "nobody.jwk"))
	_, _, err := f.ctl("import", "dcc", file, "--key", f.gov, "--accredit", f.fw, "--resource", resource, "--accreditor-key", filepath.Join(f.files, "nobody.jwk"))
	if err == nil || !strings.Contains(err.Error(), "is neither a root accreditor of "+f.fw) {
		t.Fatalf("an accreditor that may not accredit: %v", err)
	}
	if _, ok := f.entity(t, "did:web:a.example"); ok {
		t.Fatal("an import refused for its accreditor registered an issuer")
	}

	out := f.must("import", "dcc", file, "--dry-run", "--accredit", f.fw, "--resource", resource)
	if strings.Count(out, "would add") != 2 || strings.Count(out, "would accredit") != 2 {
		t.Fatalf("dry run:\n%s", out)
	}
	// Given the accreditor's key, a dry run checks what it may grant and
	// still submits nothing.
	before := f.n.State.AppliedIndex()
	out = f.must("import", "dcc", file, "--dry-run", "--key", f.rootKey, "--accredit", f.fw, "--resource", resource)
	if strings.Count(out, "would add") != 2 || strings.Count(out, "would accredit") != 2 || strings.Contains(out, "accredited  ") {
		t.Fatalf("dry run with the accreditor's key:\n%s", out)
	}
	if after := f.n.State.AppliedIndex(); after != before {
		t.Fatalf("a dry run with the accreditor's key wrote: applied index %d, then %d", before, after)
	}
	if _, _, err := f.ctl("trust", "--entity", "did:web:a.example", "--framework", f.fw, "--action", "issue", "--resource", resource); exitCode(err) != exitNo {
		t.Fatalf("after dry runs, did:web:a.example is trusted (or the question failed): %v", err)
	}
	out = f.must("import", "dcc", file, "--key", f.rootKey, "--accredit", f.fw, "--resource", resource)
	if strings.Count(out, "registered  ") != 2 || strings.Count(out, "accredited  ") != 2 ||
		!strings.Contains(out, "accredited  did:web:a.example in "+f.fw+" for "+resource+": accreditation ") ||
		!strings.Contains(out, "lists only issuers holding an issue accreditation in force in "+f.fw+": all 2 issuers of this file hold one and are listed") {
		t.Fatalf("import --accredit:\n%s", out)
	}
	var exp record.DCCRegistry
	if err := json.Unmarshal([]byte(f.must("export", "dcc", "--framework", f.fw)), &exp); err != nil {
		t.Fatal(err)
	}
	if len(exp.Registry) != 2 || exp.Registry["did:web:a.example"] != (record.DCCEntry{Name: "College A", Location: "Cambridge, MA, USA"}) {
		t.Fatalf("export after import --accredit: %+v", exp)
	}
	for _, did := range []string{"did:web:a.example", "did:web:b.example"} {
		if _, _, err := f.ctl("trust", "--entity", did, "--framework", f.fw, "--action", "issue", "--resource", resource); err != nil {
			t.Errorf("trust %s: %v", did, err)
		}
	}

	out = f.must("import", "dcc", file, "--key", f.rootKey, "--accredit", f.fw, "--resource", resource)
	if strings.Count(out, "kept        ") != 2 || strings.Count(out, "holds       ") != 2 || strings.Contains(out, "accredited  ") {
		t.Fatalf("second import --accredit:\n%s", out)
	}
	var accs listing[record.AccreditationView]
	if err := json.Unmarshal([]byte(f.must("--json", "entity", "accreditations", "did:web:a.example")), &accs); err != nil || len(accs.Items) != 1 {
		t.Fatalf("accreditations of A after two imports: %+v %v", accs, err)
	}

	// A QA agency the root accredited to accredit registers and accredits
	// another file's issuers under its own accreditation, with one key.
	qaKey := filepath.Join(f.files, "qa.jwk")
	qa := strings.TrimSpace(f.must("keygen", "--out", qaKey))
	qaAcc := strings.TrimSpace(f.must("-q", "accredit", "--key", f.rootKey, "--framework", f.fw, "--subject", qa, "--action", "accredit", "--resource", resource))
	more := f.write(t, "more.json", `{"meta": {}, "registry": {"did:web:c.example": {"name": "College C"}}}`)
	out = f.must("import", "dcc", more, "--key", qaKey, "--accredit", f.fw, "--resource", resource)
	if !strings.Contains(out, "registered  did:web:c.example") || !strings.Contains(out, "accredited  did:web:c.example") {
		t.Fatalf("import --accredit by a QA agency:\n%s", out)
	}
	if err := json.Unmarshal([]byte(f.must("--json", "entity", "accreditations", "did:web:c.example")), &accs); err != nil ||
		len(accs.Items) != 1 || accs.Items[0].Accreditor != qa || accs.Items[0].Parent != qaAcc {
		t.Fatalf("accreditations of C: %+v %v", accs, err)
	}
}

// isUsage reports whether err is an error in the command line itself.
func isUsage(err error) bool {
	var ue *usageError
	return errors.As(err, &ue)
}

// TestParseDCCFileShape: the file's own shape is checked as strictly as
// its entries: a second "registry" (whose issuers a decoder would merge
// or drop), an unknown member, trailing data and a registry that is no
// object are refused with the line where it is found.
func TestParseDCCFileShape(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"registry twice", "{\"registry\": {\"did:web:a.example\": {\"name\": \"A\"}},\n \"registry\": {}}", `"registry" given twice (line 2)`},
		{"unknown member", "{\"registry\": {},\n\n \"issuers\": {}}", `unknown field "issuers" (line 3)`},
		{"trailing data", `{"registry": {}} {}`, "data after the registry's closing brace"},
		{"registry not an object", `{"registry": ["did:web:a.example"]}`, `"registry": want "{", found "["`},
		{"no registry", `{"meta": {}}`, `no "registry" object`},
	} {
		_, err := parseDCC([]byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	entries, err := parseDCC([]byte("{\"registry\": {\n\"did:web:b.example\": {\"name\": \"B\"},\n\"did:web:a.example\": {\"name\": \"A\"}}}"))
	if err != nil || len(entries) != 2 || entries[0].DID != "did:web:a.example" || entries[0].Lines[0] != 3 || entries[1].Lines[0] != 2 {
		t.Fatalf("a good file: %+v %v", entries, err)
	}
}
