package main

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/trustreg/trustreg/version"
)

// The results directory keeps one report per benchmark run, the JSON that
// --json prints, so that the history of the figures stays readable by
// programs: `trustbench --save` adds a run, `trustbench compare --dir`
// reads them. BENCHMARKS.md explains the layout.

// defaultResultsDir is where --save writes, relative to the root of the
// trustreg module (the directory holding its go.mod).
const defaultResultsDir = "bench/results"

// modulePath names the module whose root holds defaultResultsDir.
const modulePath = "github.com/trustreg/trustreg"

// ErrNoResultsDir: --save was given without --results outside a trustreg
// checkout, so there is no default directory to write the run into.
var ErrNoResultsDir = errors.New("no trustreg checkout above the current directory: give --results DIR")

// ErrNotAReport: a file is not a report trustbench wrote (or one rebuilt
// in its format).
var ErrNotAReport = errors.New("not a trustbench --json report")

// reconstruction is set only in the results rebuilt from the tables of
// BENCHMARKS.md before runs were saved as JSON. Fields it names read as
// zero in the report, and compare shows them as "-".
type reconstruction struct {
	// From: where the figures come from.
	From string `json:"from"`
	// NotRecorded: the fields the source did not give, as JSON paths
	// ("reads[*].trustd.requests": in every element).
	NotRecorded []string `json:"not_recorded,omitempty"`
	// Derived: fields the source did not print, computed from figures it
	// did, the way trustbench computes them (a ratio of two rates, the
	// median of round ratios).
	Derived []string `json:"derived,omitempty"`
}

// trustdBuild reads the build information the go command stamped into
// the trustd binary measured; nil when it carries none. The go command
// stamps no revision in some checkouts (a git worktree, for one): when
// trustbench built trustd from the current directory itself (builtHere),
// git names the revision instead.
func trustdBuild(path string, builtHere bool) *version.Info {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil
	}
	info := version.FromBuildInfo(bi, true)
	if builtHere && info.Revision == "" {
		info.Revision, info.Modified = gitRevision()
	}
	return &info
}

// gitRevision returns the commit the current directory's checkout is at
// and whether tracked files differ from it; "" when git cannot say.
func gitRevision() (string, bool) {
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false
	}
	status, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(rev)), err == nil && len(bytes.TrimSpace(status)) > 0
}

// resultsDir returns the directory --save writes into: dir when given,
// else defaultResultsDir under the root of the trustreg checkout that
// holds the current directory.
func resultsDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("results directory: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if raw, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && declaresModule(raw, modulePath) {
			return filepath.Join(d, defaultResultsDir), nil
		}
		if filepath.Dir(d) == d {
			return "", ErrNoResultsDir
		}
	}
}

// makeResultsDir returns the directory --save writes into (resultsDir),
// created if missing, so that a run that cannot be saved fails before it
// measures anything.
func makeResultsDir(dir string) (string, error) {
	dir, err := resultsDir(dir)
	if err != nil {
		return "", fmt.Errorf("--save: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("--save: %w", err)
	}
	return dir, nil
}

// saveRun saves rep into dir and says where on stderr. An incomplete run
// is saved too: it says where it stopped, and the figures before that
// are real.
func saveRun(dir string, rep *report) error {
	path, err := saveReport(dir, rep)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "trustbench: saved the report as", path)
	return nil
}

// declaresModule reports whether the go.mod text gomod declares module path.
func declaresModule(gomod []byte, path string) bool {
	for line := range strings.Lines(string(gomod)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == path {
			return true
		}
	}
	return false
}

// runFileName names a saved run: its start time, mode and trustd's
// revision, so that a listing sorts as the runs were made.
func runFileName(r *report) string {
	name := strings.NewReplacer(":", "", "-", "").Replace(r.Date)
	if t, err := time.Parse(time.RFC3339, r.Date); err == nil {
		name = t.UTC().Format("2006-01-02T150405Z")
	}
	name += "-" + r.Mode
	if r.Trustd != nil && r.Trustd.Revision != "" {
		name += "-" + r.Trustd.Revision[:min(7, len(r.Trustd.Revision))]
		if r.Trustd.Modified {
			name += "-dirty"
		}
	}
	return name + ".json"
}

// saveReport writes r into dir as a new file (never over another run's)
// and returns its path.
func saveReport(dir string, r *report) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("save: %w", err)
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("save: %w", err)
	}
	name := runFileName(r)
	base := strings.TrimSuffix(name, ".json")
	// Two runs started in the same second get two files: -2, -3 and so
	// on, up to maxSameName.
	for n := 2; ; n++ {
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) && n <= maxSameName {
			name = fmt.Sprintf("%s-%d.json", base, n)
			continue
		}
		if err != nil {
			return "", fmt.Errorf("save: %w", err)
		}
		_, werr := f.Write(append(raw, '\n'))
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return "", fmt.Errorf("save %s: %w", path, werr)
		}
		return path, nil
	}
}

// maxSameName bounds the files tried for runs started in one second.
const maxSameName = 100

// loadReport reads one report, refusing anything trustbench did not write.
func loadReport(path string) (*report, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s is %w: %v", path, ErrNotAReport, err)
	}
	if r.Mode == "" {
		return nil, fmt.Errorf("%s is %w (no mode)", path, ErrNotAReport)
	}
	return &r, nil
}

// savedRun is one report of a results directory.
type savedRun struct {
	name string // the file name, without .json
	path string
	rep  *report
}

// listRuns reads every *.json report in dir, oldest first: by the date
// each records (RFC 3339 in UTC, so the text sorts as the time; a day
// alone sorts before the times of that day), then by file name (runs of
// one day rebuilt from tables that gave no time of day are named in the
// order they were made). A run without a date cannot be placed, and is
// refused.
func listRuns(dir string) ([]savedRun, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var runs []savedRun
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		r, err := loadReport(path)
		if err != nil {
			return nil, err
		}
		if r.Date == "" {
			return nil, fmt.Errorf("%s is %w with a date, so it cannot be placed among the runs", path, ErrNotAReport)
		}
		runs = append(runs, savedRun{name: strings.TrimSuffix(e.Name(), ".json"), path: path, rep: r})
	}
	slices.SortStableFunc(runs, func(a, b savedRun) int {
		if c := strings.Compare(a.rep.Date, b.rep.Date); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	return runs, nil
}

// findRun returns the run of runs named name (with or without .json, or
// by its path), or the report at path name when it is not one of them.
func findRun(runs []savedRun, dir, name string) (savedRun, error) {
	for _, r := range runs {
		if name == r.name || name == r.name+".json" || filepath.Clean(name) == filepath.Clean(r.path) {
			return r, nil
		}
	}
	rep, err := loadReport(name)
	if errors.Is(err, fs.ErrNotExist) {
		return savedRun{}, fmt.Errorf("no run named %s in %s (trustbench compare --dir %s --list): %w", name, dir, dir, err)
	}
	if err != nil {
		return savedRun{}, err
	}
	return savedRun{name: name, path: name, rep: rep}, nil
}

// listing prints one line per run: name, date, mode, trustd's revision
// and which parts it has.
func listing(runs []savedRun) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%-40s %-20s %-5s %-12s %s\n", "run", "date", "mode", "trustd", "parts")
	for _, r := range runs {
		rev := "-"
		if r.rep.Trustd != nil && r.rep.Trustd.Revision != "" {
			rev = r.rep.Trustd.Revision[:min(12, len(r.rep.Trustd.Revision))]
		}
		var parts []string
		if len(r.rep.Reads) > 0 {
			parts = append(parts, "reads")
		}
		if len(r.rep.Writes) > 0 {
			parts = append(parts, "writes")
		}
		if r.rep.Scale != nil {
			parts = append(parts, "scale")
		}
		if r.rep.Error != "" {
			parts = append(parts, "INCOMPLETE")
		}
		if r.rep.Reconstructed != nil {
			parts = append(parts, "(rebuilt from tables)")
		}
		fmt.Fprintf(&b, "%-40s %-20s %-5s %-12s %s\n", r.name, r.rep.Date, r.rep.Mode, rev, strings.Join(parts, " "))
	}
	return b.String()
}
