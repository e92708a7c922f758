package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// compareReports prints the figures of two --json reports side by side,
// with the change from the first to the second: "trustbench compare
// old.json new.json". With --dir DIR it reads a results directory (the
// runs --save wrote): the two newest runs when no run is named, the run
// named against the newest when one is, and --list lists the runs.
// Ratios against the baselines are the figures to compare across runs;
// absolute rates and latencies only between runs on the same machine.
func compareReports(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("trustbench compare", flag.ContinueOnError)
	fs.SetOutput(w)
	dir := fs.String("dir", "", "a results directory (e.g. "+defaultResultsDir+"): compare its two newest runs, or the runs named")
	list := fs.Bool("list", false, "with --dir: list the runs, oldest first")
	if err := fs.Parse(args); err != nil {
		return err
	}
	args = fs.Args()
	if *dir == "" {
		if *list {
			return fmt.Errorf("compare: --list needs --dir DIR")
		}
		if len(args) != 2 {
			return fmt.Errorf("compare takes two reports written with --json: trustbench compare OLD.json NEW.json (or --dir DIR)")
		}
		var runs [2]savedRun
		for i, path := range args {
			r, err := loadReport(path)
			if err != nil {
				return fmt.Errorf("compare: %w", err)
			}
			runs[i] = savedRun{name: path, path: path, rep: r}
		}
		return printComparison(w, runs[0], runs[1])
	}
	runs, err := listRuns(*dir)
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if *list {
		_, err := io.WriteString(w, listing(runs))
		return err
	}
	var a, b savedRun
	switch len(args) {
	case 0:
		if len(runs) < 2 {
			return fmt.Errorf("compare: %s holds %d runs; two are needed", *dir, len(runs))
		}
		a, b = runs[len(runs)-2], runs[len(runs)-1]
	case 1:
		if len(runs) == 0 {
			return fmt.Errorf("compare: %s holds no runs", *dir)
		}
		if a, err = findRun(runs, *dir, args[0]); err != nil {
			return fmt.Errorf("compare: %w", err)
		}
		b = runs[len(runs)-1]
		if a.path == b.path {
			return fmt.Errorf("compare: %s is the newest run of %s: name the run to compare it with", a.name, *dir)
		}
	case 2:
		for i, name := range args {
			r, err := findRun(runs, *dir, name)
			if err != nil {
				return fmt.Errorf("compare: %w", err)
			}
			if i == 0 {
				a = r
			} else {
				b = r
			}
		}
	default:
		return fmt.Errorf("compare --dir takes at most two runs, got %d", len(args))
	}
	return printComparison(w, a, b)
}

// printComparison prints the header of two runs and their figures and
// returns the first write error.
func printComparison(w io.Writer, ra, rb savedRun) error {
	ew := &errWriter{W: w}
	a, b := ra.rep, rb.rep
	for i, r := range []savedRun{ra, rb} {
		ew.Printf("%c: %s (%s)\n", 'A'+i, r.name, describe(r.rep))
	}
	if a.Machine != b.Machine {
		ew.Println("The two runs are on different machines: compare the ratios, not the rates.")
	}
	for i, r := range []*report{a, b} {
		if r.Error != "" {
			ew.Printf("%c is INCOMPLETE, its run stopped at: %s\n", 'A'+i, r.Error)
		}
		if r.Reconstructed != nil {
			ew.Printf("%c was rebuilt from %s; the figures it did not give show as -\n", 'A'+i, r.Reconstructed.From)
		}
	}
	ew.Printf("\n"+compareRow+"\n", "", "A", "B", "B/A")
	for _, row := range comparisonRows(a, b) {
		ew.Printf(compareRow+"\n", row.name, figure(row.a), figure(row.b), change(row.a, row.b))
	}
	return ew.Err
}

// describe says in a few words what a run is: mode, machine, date and
// trustd's revision, leaving out what it does not record.
func describe(r *report) string {
	parts := []string{r.Mode + " mode"}
	if r.Machine != "" {
		parts = append(parts, r.Machine)
	} else {
		parts = append(parts, "machine not recorded")
	}
	if r.Date != "" {
		parts = append(parts, r.Date)
	}
	if r.Trustd != nil && r.Trustd.Revision != "" {
		rev := "trustd " + r.Trustd.Revision[:min(12, len(r.Trustd.Revision))]
		if r.Trustd.Modified {
			rev += " (modified)"
		}
		parts = append(parts, rev)
	}
	return strings.Join(parts, ", ")
}

// compareRow lays out one line: the figure's name, A, B and B/A.
const compareRow = "%-56s %10s %10s %8s"

type comparisonRow struct {
	name string
	a, b float64 // 0: not in that report
}

// comparisonRows lists the figures of a and b, matched by entity count and
// client count, in a's order, then any only b has.
func comparisonRows(a, b *report) []comparisonRow {
	var rows []comparisonRow
	add := func(name string, fa, fb float64) { rows = append(rows, comparisonRow{name, fa, fb}) }

	entities := func(r readResult) int { return r.Entities }
	for _, n := range keysInOrder(a.Reads, b.Reads, entities) {
		ra, rb := find(a.Reads, entities, n), find(b.Reads, entities, n)
		p := fmt.Sprintf("reads, %d entities: ", n)
		add(p+"distinct questions (0: not recorded)", float64(ra.Questions), float64(rb.Questions))
		add(p+"ratio to net/http", ra.Ratio, rb.Ratio)
		add(p+"median round ratio", ra.MedianRoundRatio, rb.MedianRoundRatio)
		add(p+"trustd r/s", ra.Trustd.PerSecond, rb.Trustd.PerSecond)
		add(p+"trustd CPU per query (µs)", ra.TrustdCPUus, rb.TrustdCPUus)
		add(p+"trustd p99 at half rate (ms)", ra.TrustdAtHalf.P99, rb.TrustdAtHalf.P99)
		add(p+"net/http p99 at half rate (ms)", ra.BaselineAtHal.P99, rb.BaselineAtHal.P99)
		add(p+"p99 at half rate, trustd / net/http (each at its own half rate)", ra.HalfP99Ratio, rb.HalfP99Ratio)
		add(p+"trustd bytes allocated per query at half rate", allocPerQuery(ra.TrustdAtHalf), allocPerQuery(rb.TrustdAtHalf))
		proofRows(add, p, ra.Proof, rb.Proof)
	}
	clients := func(r writeResult) int { return r.Clients }
	for _, n := range keysInOrder(a.Writes, b.Writes, clients) {
		wa, wb := find(a.Writes, clients, n), find(b.Writes, clients, n)
		p := fmt.Sprintf("writes, %d clients: ", n)
		add(p+"ratio to etcd via gRPC", wa.RatioGRPC, wb.RatioGRPC)
		add(p+"median round ratio to etcd via gRPC", wa.MedianRoundRatioGRPC, wb.MedianRoundRatioGRPC)
		add(p+"median round ratio to trustd without the commitment", wa.MedianRoundRatioHeld, wb.MedianRoundRatioHeld)
		add(p+"ratio to etcd via JSON", wa.Ratio, wb.Ratio)
		add(p+"median round ratio to etcd via JSON", wa.MedianRoundRatio, wb.MedianRoundRatio)
		add(p+"trustd op/s", wa.Trustd.PerSecond, wb.Trustd.PerSecond)
		add(p+"trustd CPU per write (ms)", wa.TrustdCPUms, wb.TrustdCPUms)
		add(p+"etcd CPU per write via gRPC (ms)", wa.EtcdGRPCCPUms, wb.EtcdGRPCCPUms)
		add(p+"etcd CPU per write via JSON (ms)", wa.EtcdCPUms, wb.EtcdCPUms)
		add(p+"trustd minor page faults per write", wa.TrustdFaults, wb.TrustdFaults)
		add(p+"etcd minor page faults per write via gRPC", wa.EtcdGRPCFaults, wb.EtcdGRPCFaults)
	}
	if a.Scale != nil || b.Scale != nil {
		sa, sb := scaleOrZero(a.Scale), scaleOrZero(b.Scale)
		add("scale: entities", float64(sa.Entities), float64(sb.Entities))
		add("scale: p99 at the most entities / p99 at the fewest", flatness(sa), flatness(sb))
		add("scale: catch-up from a snapshot (s)", sa.CatchUpSec, sb.CatchUpSec)
		add("scale: distinct questions asked once each", float64(sa.Distinct.Questions), float64(sb.Distinct.Questions))
		add("scale: p99 over the distinct questions (ms)", sa.Distinct.P99, sb.Distinct.P99)
		add("scale: node peak resident memory (MiB)", sa.PeakRSSMiB, sb.PeakRSSMiB)
		add("scale: of which the Go runtime's (MiB)", sa.GoRuntimeMiB, sb.GoRuntimeMiB)
		add("scale: Pebble state on disk (MiB)", sa.PebbleMiB, sb.PebbleMiB)
		add("scale: the commitment's share of the state on disk", sa.CommitmentShare, sb.CommitmentShare)
		add("scale: start-up self-audit (s)", sa.SelfAuditSec, sb.SelfAuditSec)
	}
	return rows
}

// keysInOrder returns the keys of as in order, then those only in bs.
func keysInOrder[T any](as, bs []T, key func(T) int) []int {
	var out []int
	seen := map[int]bool{}
	for _, list := range [][]T{as, bs} {
		for _, x := range list {
			if k := key(x); !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// find returns the entry of xs with key k, or the zero value.
func find[T any](xs []T, key func(T) int, k int) T {
	for _, x := range xs {
		if key(x) == k {
			return x
		}
	}
	var zero T
	return zero
}

func scaleOrZero(s *scaleResult) scaleResult {
	if s == nil {
		return scaleResult{}
	}
	return *s
}

// flatness is p99 at the largest entity count over p99 at the smallest
// (SPEC §8: within 1.5 × from 10k to 1M), or 0 without two points.
func flatness(s scaleResult) float64 {
	if len(s.P99At) < 2 {
		return 0
	}
	lo, hi := s.P99At[0], s.P99At[0]
	for _, p := range s.P99At {
		if p.Entities < lo.Entities {
			lo = p
		}
		if p.Entities > hi.Entities {
			hi = p
		}
	}
	if lo.P99 <= 0 {
		return 0
	}
	return hi.P99 / lo.P99
}

// figure prints a value with the precision its size needs; "-" when the
// report does not have it.
func figure(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func change(a, b float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return strconv.FormatFloat(b/a, 'f', 2, 64)
}

// allocPerQuery is trustd's allocation per query in a paced run, 0 when
// not recorded.
func allocPerQuery(s stats) float64 {
	if s.Handler == nil {
		return 0
	}
	return s.Handler.AllocPerRequest
}
