package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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

func (a *app) verifyCmd() *cobra.Command {
	var maxAge time.Duration
	var minChanges int
	cmd := &cobra.Command{
		Use:   "verify FILE --genesis GENESIS_FILE [--max-age 5m] [--min-cosigner-changes N]",
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
			"in its JSON or its CBOR form, either of them gzip-compressed (proof.ParseAny).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.genesisArg == "" {
				return usagef("verify: --genesis is required: the consortium's genesis file, the one thing the verification trusts")
			}
			if maxAge <= 0 {
				return usagef("verify: --max-age %s: give how old a checkpoint may be, more than 0 (default %s)", maxAge, proof.DefaultMaxAge)
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
			v, err := verifyBundle(raw, genesis, proof.Options{MaxAge: maxAge, MinCosignerChanges: minChanges})
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
			w.Printf("%s%s (%s): %s for %s %s under %s at %s, %s\n", lead, verdict, d.Reason,
				d.Entity, d.Action, orAny(d.Resource), d.Framework, d.At.Format(time.RFC3339), indexText(q, d.Index))
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
				d.Recognized, d.Framework, orAny(d.Resource), d.At.Format(time.RFC3339), indexText(q, d.Index))
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

// indexText says which state answered: the latest cosigned one, or an
// older one the question asked about (the reader checks it asked so).
func indexText(q proof.Question, index uint64) string {
	if q.AsOf != 0 {
		return fmt.Sprintf("as of registry index %d (an older state, as the question asked)", index)
	}
	return fmt.Sprintf("registry index %d (the latest cosigned state)", index)
}

func orAny(resource string) string {
	if resource == "" {
		return "any resource"
	}
	return resource
}
