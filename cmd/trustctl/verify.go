package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/record"
)

// errNotVerified is returned by verify after it printed NOT VERIFIED:
// main exits with exitNotVerified and prints nothing more.
var errNotVerified = errors.New("not verified")

// verifyResult is verify's JSON output.
type verifyResult struct {
	Verified bool `json:"verified"`
	// Reason (proof.ReasonOf) and Error say why a bundle did not verify.
	Reason         string                      `json:"reason,omitempty"`
	Error          string                      `json:"error,omitempty"`
	Question       *proof.Question             `json:"question,omitempty"`
	Decision       *record.Decision            `json:"decision,omitempty"`
	Recognition    *decide.RecognitionDecision `json:"recognition,omitempty"`
	Records        []proof.Record              `json:"records,omitempty"`
	StatusList     *record.StatusList          `json:"statusList,omitempty"`
	ListVersion    *record.StatusListVersion   `json:"statusListVersion,omitempty"`
	ListNext       *record.StatusListVersion   `json:"statusListNext,omitempty"`
	Cosigners      []string                    `json:"cosigners,omitempty"`
	Quorum         int                         `json:"quorum,omitempty"`
	CheckpointSize uint64                      `json:"checkpointSize,omitempty"`
	FreshAsOf      *time.Time                  `json:"freshAsOf,omitempty"`
	AgeSeconds     *float64                    `json:"ageSeconds,omitempty"`
	// Changes is how many governance changes of the cosigner set the
	// bundle followed from the genesis (--min-cosigner-changes).
	Changes int `json:"cosignerChanges,omitempty"`
}

// expectFlags are verify's flags naming the question the caller asked; a
// bundle that answers another question is NOT VERIFIED (wrong_question).
// A proof proves the answer to the bundle's own question, whatever was
// asked: a proxy may hand over a genuine bundle for another entity, time
// or state.
type expectFlags struct {
	entity, framework, action, resource, jurisdiction, recognized, list, at, asOf string
}

func (e *expectFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&e.entity, "entity", "", "the entity the question asked about: the bundle must answer for it")
	f.StringVar(&e.framework, "framework", "", "the framework the question named")
	f.StringVar(&e.action, "action", "", "the action the question named (issue or accredit)")
	f.StringVar(&e.resource, "resource", "", "the resource the question named (empty: none named)")
	f.StringVar(&e.jurisdiction, "jurisdiction", "", "the jurisdiction the question named (empty: none named)")
	f.StringVar(&e.recognized, "recognized", "", "the recognized framework a recognition question named")
	f.StringVar(&e.list, "list", "", "the status list a status-list question named")
	f.StringVar(&e.at, "at", "", "the valid time the question asked about (RFC 3339 or a date), or now: within --max-age of this clock")
	f.StringVar(&e.asOf, "as-of", "", "the registry index the question asked about, or latest: the latest cosigned state")
}

// check returns an error wrapping proof.ErrWrongQuestion when q, the
// question a verified bundle answers, is not the one the flags given
// name. now and maxAge judge --at now.
func (e *expectFlags) check(cmd *cobra.Command, q proof.Question, now time.Time, maxAge time.Duration) error {
	fl := cmd.Flags()
	for _, f := range []struct{ flag, want, got string }{
		{"entity", e.entity, q.Entity}, {"framework", e.framework, q.Framework}, {"action", e.action, q.Action},
		{"resource", e.resource, q.Resource}, {"jurisdiction", e.jurisdiction, q.Jurisdiction},
		{"recognized", e.recognized, q.Recognized}, {"list", e.list, q.List},
	} {
		if fl.Changed(f.flag) && f.want != f.got {
			return fmt.Errorf("%w: it answers for %s %q, and --%s is %q", proof.ErrWrongQuestion, f.flag, f.got, f.flag, f.want)
		}
	}
	switch {
	case !fl.Changed("as-of"):
	case e.asOf == "latest":
		if q.AsOf != 0 {
			return fmt.Errorf("%w: it answers as of registry index %d, and --as-of asks for the latest state", proof.ErrWrongQuestion, q.AsOf)
		}
	default:
		if fmt.Sprint(q.AsOf) != e.asOf {
			return fmt.Errorf("%w: it answers as of registry index %d (0: the latest), and --as-of is %s", proof.ErrWrongQuestion, q.AsOf, e.asOf)
		}
	}
	switch {
	case !fl.Changed("at"):
	case e.at == "now":
		if d := q.At.Sub(now); d.Abs() > maxAge {
			return fmt.Errorf("%w: it answers for %s, %s from this clock, and --at now allows %s (--max-age)", proof.ErrWrongQuestion, q.At.UTC().Format(time.RFC3339), d.Abs().Round(time.Second), maxAge)
		}
	default:
		at, _ := parseTime(e.at) // checked before
		if !q.At.Equal(at) {
			return fmt.Errorf("%w: it answers for %s, and --at is %s", proof.ErrWrongQuestion, q.At.UTC().Format(time.RFC3339Nano), at.UTC().Format(time.RFC3339Nano))
		}
	}
	return nil
}

// parseTime reads a time flag as trust, verify and the status changes
// take one: RFC 3339, or a date (midnight UTC).
func parseTime(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (a *app) verifyCmd() *cobra.Command {
	var maxAge, maxSkew time.Duration
	var minChanges int
	var expect expectFlags
	cmd := &cobra.Command{
		Use:   "verify FILE --genesis GENESIS_FILE [--entity DID --framework ID ... --at TIME --as-of INDEX] [--max-age 5m] [--min-cosigner-changes N]",
		Short: "Check a proof bundle offline against the consortium's genesis",
		Long: "Check a proof bundle (as trustctl trust --proof FILE writes it, or the \"proof\" of a node's\n" +
			"answer; FILE, or - for stdin) offline,\n" +
			"trusting only the consortium's genesis file: a quorum of the genesis's cosigners signed a\n" +
			"checkpoint at most --max-age ago, the answer's log leaf is in that log, its records are in\n" +
			"the state map the leaf commits to, and the decision recomputed from those records is the\n" +
			"answer. A checkpoint cosigned by a set governance changed carries the changes, each\n" +
			"checked against the genesis's members and threshold. It prints VERIFIED with the decision, the cosigners and the checkpoint's age, or\n" +
			"NOT VERIFIED and the first reason, and exits with 0 (VERIFIED, whatever the decision) or 4\n" +
			"(NOT VERIFIED); with 1 when a file cannot be read. No node is contacted. The bundle may be\n" +
			"in its JSON or its CBOR form, either of them gzip-compressed (proof.ParseAny).\n\n" +
			"A proof proves the answer to the bundle's own question. Name the question you asked\n" +
			"(--entity, --framework, --action, --resource, --jurisdiction, --at, --as-of; --recognized and\n" +
			"--list for recognitions and status lists): a bundle answering another one is NOT VERIFIED.\n" +
			"Without them, read the question VERIFIED prints: it is what was proven.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.genesisArg == "" {
				return usagef("verify: --genesis is required: the consortium's genesis file, the one thing the verification trusts")
			}
			if maxAge <= 0 {
				return usagef("verify: --max-age %s: give how old a checkpoint may be, more than 0 (default %s)", maxAge, proof.DefaultMaxAge)
			}
			if maxSkew <= 0 {
				return usagef("verify: --max-clock-skew %s: give how far ahead of this clock a checkpoint may be cosigned, more than 0 (default %s)", maxSkew, proof.DefaultMaxClockSkew)
			}
			if _, ok := parseTime(expect.at); cmd.Flags().Changed("at") && expect.at != "now" && !ok {
				return usagef("verify: --at %q must be RFC 3339 (2025-06-01T00:00:00Z), a date (2025-06-01) or now", expect.at)
			}
			if n, err := strconv.ParseUint(expect.asOf, 10, 64); cmd.Flags().Changed("as-of") && expect.asOf != "latest" && (err != nil || n == 0) {
				return usagef("verify: --as-of %q must be a registry index (a positive integer) or latest", expect.asOf)
			}
			genesis, err := os.ReadFile(a.genesisArg)
			if errors.Is(err, os.ErrNotExist) {
				return usagef("verify: --genesis %q: no such file; verify needs the genesis file itself, not its CID", a.genesisArg)
			} else if err != nil {
				return fmt.Errorf("verify: %w", err)
			}
			raw, err := a.readBundle(args[0])
			if err != nil {
				return err
			}
			now := time.Now()
			v, err := verifyBundle(raw, genesis, proof.Options{Now: now, MaxAge: maxAge, MaxClockSkew: maxSkew, MinCosignerChanges: minChanges})
			if err == nil {
				err = expect.check(cmd, v.Question, now, maxAge)
			}
			if errors.Is(err, proof.ErrBadGenesis) {
				// The one file the check trusts is wrong: nothing was
				// checked against it, so this is no answer about the bundle.
				return usagef("verify: --genesis %q is not a consortium genesis: %v", a.genesisArg, err)
			}
			if err != nil {
				return a.printNotVerified(err)
			}
			return a.printVerified(v, maxAge)
		},
	}
	cmd.Flags().DurationVar(&maxAge, "max-age", proof.DefaultMaxAge, "the oldest checkpoint accepted: how long ago a quorum of cosigners last signed it")
	cmd.Flags().DurationVar(&maxSkew, "max-clock-skew", proof.DefaultMaxClockSkew, "the furthest ahead of this clock a quorum of cosigners may have signed the checkpoint")
	expect.add(cmd)
	cmd.Flags().IntVar(&minChanges, "min-cosigner-changes", 0, "refuse a bundle that follows fewer cosigner changes than this (the count an earlier verification printed): cosigners a change removed cannot then sign a checkpoint that leaves it out")
	return cmd
}

// readBundle reads the bundle file (- is stdin), at most
// proof.MaxBundleSize bytes and one more, so ParseAny names the limit.
func (a *app) readBundle(name string) ([]byte, error) {
	r := a.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	raw, err := io.ReadAll(io.LimitReader(r, proof.MaxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("verify: read %s: %w", name, err)
	}
	return raw, nil
}

func verifyBundle(raw, genesis []byte, opts proof.Options) (*proof.Verified, error) {
	b, err := proof.ParseAny(raw)
	if err != nil {
		// A node's whole answer with its proof (GET ...&proof=true, or
		// trustctl trust --proof --json). Only its "proof" is checked
		// (the decision is recomputed from it), so the answer's own
		// fields would pass unchecked: it is refused, saying what to give.
		var answer struct {
			Proof json.RawMessage `json:"proof"`
		}
		if json.Unmarshal(raw, &answer) == nil && len(answer.Proof) > 0 && answer.Proof[0] == '{' {
			return nil, fmt.Errorf("%w: this is a node's answer with its proof bundle in \"proof\"; verify checks the bundle alone "+
				"(the answer's own fields are not what the proof proves): give the bundle (trustctl trust --proof FILE writes it, or jq .proof)", err)
		}
		return nil, err
	}
	return proof.Verify(b, genesis, opts)
}

func (a *app) printNotVerified(verr error) error {
	err := fmt.Errorf("%w: %w", errNotVerified, verr)
	if a.quiet {
		return err
	}
	res := verifyResult{Reason: proof.ReasonOf(verr), Error: verr.Error()}
	if perr := a.printText(res, func(w *errWriter) { w.Printf("NOT VERIFIED: %v\n", verr) }); perr != nil {
		return perr
	}
	return err
}

func (a *app) printVerified(v *proof.Verified, maxAge time.Duration) error {
	if a.quiet {
		return nil
	}
	age := v.Age.Seconds()
	fresh := v.FreshAsOf.UTC()
	q := v.Question
	res := verifyResult{Verified: true, Question: &q, Decision: v.Decision, Recognition: v.Recognition, Records: v.Records,
		StatusList: v.StatusList, ListVersion: v.StatusListVersion, ListNext: v.StatusListNext, Cosigners: v.Cosigners, Quorum: v.Quorum, Changes: v.CosignerChanges, CheckpointSize: v.CheckpointSize, FreshAsOf: &fresh, AgeSeconds: &age}
	return a.printText(res, func(w *errWriter) {
		lead := "VERIFIED: "
		if l, ver := v.StatusList, v.StatusListVersion; ver != nil {
			w.Printf("VERIFIED: status list %s of %s, version %s (registry index %d, published %s): the issuer-signed credential, %d bytes, as stored at registry index %d\n",
				l.ID, l.Issuer, ver.CID, ver.Index, ver.Time.Format(time.RFC3339), len(ver.Credential), q.Applied)
			lead = "  the issuer at the version's time: "
			switch next := v.StatusListNext; {
			case next != nil:
				w.Printf("  the version in force at %s: superseded by version %s (registry index %d) published %s\n",
					q.At.Format(time.RFC3339Nano), next.CID, next.Index, next.Time.Format(time.RFC3339Nano))
				lead = "  the issuer at that time: "
			case !q.At.Equal(ver.Time):
				w.Printf("  the version in force at %s: the list's current version\n", q.At.Format(time.RFC3339Nano))
				lead = "  the issuer at that time: "
			}
		}
		switch {
		case v.Decision != nil:
			d := v.Decision
			verdict := "NOT AUTHORIZED"
			if d.Authorized {
				verdict = "AUTHORIZED"
			}
			w.Printf("%s%s (%s): %s for %s %s%s under %s at %s, %s\n", lead, verdict, d.Reason,
				d.Entity, d.Action, resourceText(d.Resource), jurisdictionText(q.Jurisdiction), d.Framework, d.At.Format(time.RFC3339), indexText(q, d.Index))
			for i, l := range d.Chain {
				w.Printf("  %d. %s  %s -> %s  %s %s  [%s]\n", i+1, l.Accreditation, l.Accreditor, l.Subject, l.Action, strings.Join(l.Resources, ","), l.Status)
			}
			if d.Root != "" {
				w.Printf("  root accreditor %s\n", d.Root)
			}
		case v.Recognition != nil:
			d := v.Recognition
			verdict := "NOT RECOGNIZED"
			if d.Recognizes {
				verdict = "RECOGNIZED"
			}
			w.Printf("VERIFIED: %s (%s): %s by %s for %s at %s, %s\n", verdict, d.Reason,
				d.Recognized, d.Framework, resourceText(d.Resource), d.At.Format(time.RFC3339), indexText(q, d.Index))
		case q.Type == proof.TypeRecords:
			w.Printf("VERIFIED: %d records as stored at registry index %d\n", len(v.Records), q.Applied)
			for _, r := range v.Records {
				state := fmt.Sprintf("%d bytes", len(r.Bytes))
				if r.Bytes == nil {
					state = "absent"
				}
				w.Printf("  %s %s %s: %s\n", r.Kind, r.A, r.B, state)
			}
		}
		if v.CosignerChanges == 0 {
			w.Printf("  cosigned by %d of the genesis's cosigners (quorum %d): %s\n", len(v.Cosigners), v.Quorum, strings.Join(v.Cosigners, ", "))
		} else {
			w.Printf("  cosigned by %d of the cosigners %d governance changes from the genesis named (quorum %d): %s\n", len(v.Cosigners), v.CosignerChanges, v.Quorum, strings.Join(v.Cosigners, ", "))
		}
		w.Printf("  checkpoint of %d log entries, %s old (max %s), leaf of raft index %d\n",
			v.CheckpointSize, v.Age.Round(time.Second), maxAge, v.Leaf.Index)
	})
}

// indexText says which state answered: an older one the question named
// (as_of), or the state of the log entry the bundle proves, the last in
// the checkpoint (printed below with its age).
func indexText(q proof.Question, index uint64) string {
	if q.AsOf != 0 {
		return fmt.Sprintf("as of registry index %d (the bundle's question names that older state)", index)
	}
	return fmt.Sprintf("registry index %d (the state of the checkpoint below, the latest the bundle proves)", index)
}

// resourceText names the question's resource; none named asks whether
// the entity is authorized for some resource, not for every one.
func resourceText(resource string) string {
	if resource == "" {
		return "some resource (none named)"
	}
	return resource
}

// jurisdictionText names the question's jurisdiction, or says none was
// named (then none was checked).
func jurisdictionText(j string) string {
	if j == "" {
		return " (no jurisdiction named)"
	}
	return " in " + j
}
