package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// compareOut runs "trustbench compare args..." and returns what it printed.
func compareOut(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(t.Context(), append([]string{"compare"}, args...), &out); err != nil {
		t.Fatalf("compare %v: %v", args, err)
	}
	return out.String()
}

// mustNewResultsDir writes three runs whose file names sort otherwise than
// their dates, and returns the directory.
func mustNewResultsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeReport(t, dir, "b-oldest.json", &report{Mode: "full", Machine: "m", Date: "2026-11-23",
		Writes: []writeResult{{Clients: 64, Ratio: 0.50}}})
	writeReport(t, dir, "c-middle.json", &report{Mode: "full", Machine: "m", Date: "2026-11-28",
		Writes: []writeResult{{Clients: 64, Ratio: 0.60}}})
	writeReport(t, dir, "a-newest.json", &report{Mode: "full", Machine: "m", Date: "2026-12-03T19:04:05Z",
		Writes: []writeResult{{Clients: 64, Ratio: 0.66}}})
	os.WriteFile(filepath.Join(dir, "README"), []byte("not a run"), 0o644)
	return dir
}

func TestCompareDirComparesTheNewestTwoRuns(t *testing.T) {
	dir := mustNewResultsDir(t)
	text := compareOut(t, "--dir", dir)
	for _, want := range []string{
		"A: c-middle (full mode, m, 2026-11-28)",
		"B: a-newest (full mode, m, 2026-12-03T19:04:05Z)",
		row("writes, 64 clients: ratio to etcd via JSON", "0.60", "0.66", "1.10"),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}

func TestCompareDirFindsRunsByName(t *testing.T) {
	dir := mustNewResultsDir(t)
	// Two named runs, with or without .json.
	text := compareOut(t, "--dir", dir, "b-oldest", "c-middle.json")
	if want := row("writes, 64 clients: ratio to etcd via JSON", "0.50", "0.60", "1.20"); !strings.Contains(text, want) {
		t.Errorf("missing %q in:\n%s", want, text)
	}
	// One named run: against the newest.
	text = compareOut(t, "--dir", dir, "b-oldest")
	if want := row("writes, 64 clients: ratio to etcd via JSON", "0.50", "0.66", "1.32"); !strings.Contains(text, want) {
		t.Errorf("missing %q in:\n%s", want, text)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--dir", dir, "nosuchrun"}, "no run named nosuchrun"},
		{[]string{"--dir", dir, "a-newest"}, "a-newest is the newest run"},
		{[]string{"--list"}, "--list needs --dir"},
		{[]string{"--dir", filepath.Join(dir, "missing")}, "no such file"},
	} {
		var out bytes.Buffer
		err := run(t.Context(), append([]string{"compare"}, c.args...), &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("compare %v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}

func TestCompareDirListsRunsOldestFirst(t *testing.T) {
	dir := mustNewResultsDir(t)
	writeReport(t, dir, "d-incomplete.json", &report{Mode: "short", Date: "2026-12-03T20:00:00Z", Error: "scale: boom",
		Reads: []readResult{{Entities: 2000}}, Reconstructed: &reconstruction{From: "a table"}})
	text := compareOut(t, "--dir", dir, "--list")
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) != 5 {
		t.Fatalf("want a header and four runs, got:\n%s", text)
	}
	for i, name := range []string{"b-oldest", "c-middle", "a-newest", "d-incomplete"} {
		if !strings.HasPrefix(lines[i+1], name+" ") {
			t.Errorf("line %d is %q, want run %s", i+1, lines[i+1], name)
		}
	}
	if !strings.Contains(lines[4], "reads INCOMPLETE (rebuilt from tables)") {
		t.Errorf("the incomplete, rebuilt run is not marked so: %q", lines[4])
	}
}

func TestCompareDirRefusesARunWithoutADate(t *testing.T) {
	dir := mustNewResultsDir(t)
	writeReport(t, dir, "undated.json", &report{Mode: "full"})
	var out bytes.Buffer
	err := run(t.Context(), []string{"compare", "--dir", dir}, &out)
	if !errors.Is(err, ErrNotAReport) || !strings.Contains(err.Error(), "undated.json") {
		t.Fatalf("compare --dir with an undated run: %v, want ErrNotAReport naming it", err)
	}
}

// TestSaveWritesTheRunIntoTheResultsDirectory runs trustbench with every
// part skipped, so it measures nothing and saves at once.
func TestSaveWritesTheRunIntoTheResultsDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--save", "--results", dir, "--note", "a quiet hour", "--trustd", self, "--skip-reads", "--skip-writes", "--scale", "0"}
	var out bytes.Buffer
	if err := run(t.Context(), args, &out); err != nil {
		t.Fatal(err)
	}
	runs, err := listRuns(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("%d runs saved, want 1", len(runs))
	}
	r := runs[0].rep
	if r.Mode != "full" || r.Note != "a quiet hour" || strings.Join(r.Args, " ") != strings.Join(args, " ") || !strings.HasPrefix(runs[0].name, r.Date[:10]) {
		t.Errorf("saved run %s: %+v", runs[0].name, r)
	}
	if r.Trustd == nil || r.Trustd.Go == "" {
		t.Errorf("the saved run does not say which trustd build it measured: %+v", r.Trustd)
	}
	// A second run in the same second is a new file, not the first one
	// written over.
	if err := run(t.Context(), args, &out); err != nil {
		t.Fatal(err)
	}
	if runs, err := listRuns(dir); err != nil || len(runs) != 2 {
		t.Fatalf("after a second run: %d runs, %v; want 2", len(runs), err)
	}
}

func TestSaveDefaultsToTheCheckoutsResultsDirectory(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "go.mod"), []byte("module "+modulePath+"\n\ngo 1.26\n"), 0o644)
	sub := filepath.Join(root, "cmd", "trustbench")
	os.MkdirAll(sub, 0o755)
	t.Chdir(sub)
	got, err := resultsDir("")
	if want := filepath.Join(root, defaultResultsDir); err != nil || got != want {
		t.Errorf("resultsDir from %s: %q, %v; want %q", sub, got, err, want)
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o644)
	t.Chdir(other)
	if _, err := resultsDir(""); !errors.Is(err, ErrNoResultsDir) {
		t.Errorf("resultsDir outside a trustreg checkout: %v, want ErrNoResultsDir", err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--save", "--skip-reads", "--skip-writes", "--scale", "0"}, &out); !errors.Is(err, ErrNoResultsDir) {
		t.Errorf("--save outside a checkout: %v, want ErrNoResultsDir before anything runs", err)
	}
}

// TestTheRecordedRunsAreReports reads the repository's results directory
// as compare does, and each file strictly, as the report trustbench
// writes: a field it does not know is a typo that compare would drop.
func TestTheRecordedRunsAreReports(t *testing.T) {
	dir := filepath.Join("..", "..", defaultResultsDir)
	runs, err := listRuns(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) < 2 {
		t.Fatalf("%s holds %d runs", dir, len(runs))
	}
	for _, r := range runs {
		raw, err := os.ReadFile(r.path)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var strict report
		if err := dec.Decode(&strict); err != nil {
			t.Errorf("%s: %v", r.path, err)
		}
		if rc := r.rep.Reconstructed; rc != nil && rc.From == "" {
			t.Errorf("%s is rebuilt but does not say from what", r.path)
		}
		if r.rep.Trustd == nil && r.rep.Reconstructed == nil {
			t.Errorf("%s was saved without trustd's build", r.path)
		}
	}
	compareOut(t, "--dir", dir)
}

// TestABuildWithoutARevisionIsNamedByGit: the test binary carries no
// VCS stamp (go test stamps none), as trustd built in a git worktree does
// not; a trustd that trustbench built here is then named by git.
func TestABuildWithoutARevisionIsNamedByGit(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if info := trustdBuild(self, false); info == nil || info.Revision != "" {
		t.Fatalf("a binary given with --trustd: %+v, want its own (empty) revision", info)
	}
	if _, err := exec.Command("git", "rev-parse", "HEAD").Output(); err != nil {
		t.Skip("not in a git checkout:", err)
	}
	info := trustdBuild(self, true)
	if info == nil || len(info.Revision) != 40 || strings.Trim(info.Revision, "0123456789abcdef") != "" {
		t.Fatalf("a build of this checkout: %+v, want git's commit", info)
	}
}
