package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
)

func (a *app) statusListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "status", Short: "Issuers' status lists (W3C Bitstring Status List): create, revoke, suspend, check"}
	var keyFile, list string
	cmd.PersistentFlags().StringVar(&list, "list", "", "list id")
	keyFlag := func(c *cobra.Command) { c.Flags().StringVar(&keyFile, "key", "", "the issuer's key file") }

	var purpose string
	var length, size int
	var messages []string
	var ttl int64
	create := &cobra.Command{
		Use: "create --key KEY --list ID [--purpose revocation]", Short: "Create an empty list, signed by the issuer, and publish it", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if length%8 != 0 || length < record.MinStatusListEntries {
				return fmt.Errorf("--length must be a multiple of 8 and at least %d", record.MinStatusListEntries)
			}
			var msgs []record.StatusMessage
			for _, m := range messages {
				st, text, ok := strings.Cut(m, "=")
				if !ok {
					return fmt.Errorf("--message %q must be 0xN=text", m)
				}
				msgs = append(msgs, record.StatusMessage{Status: st, Message: text})
			}
			bits := make([]byte, length*size/8)
			return a.publishList(cmd.Context(), keyFile, list, "", strings.Split(purpose, ","), size, msgs, ttl, bits)
		},
	}
	keyFlag(create)
	create.Flags().StringVar(&purpose, "purpose", record.PurposeRevocation, "revocation, suspension, message or refresh (comma-separated for several; refresh from feature level 6)")
	create.Flags().IntVar(&length, "length", record.MinStatusListEntries, "number of entries")
	create.Flags().IntVar(&size, "size", 1, "bits per entry: 1, 2, 4 or 8 (1 to 16 from feature level 6)")
	create.Flags().StringSliceVar(&messages, "message", nil, "status message 0xN=text, one per value when --size > 1")
	create.Flags().Int64Var(&ttl, "ttl", 300000, "how long verifiers may cache the list, in milliseconds")

	change := func(use, short string, value int, needPurpose string) *cobra.Command {
		var v int
		c := &cobra.Command{
			Use: use + " --key KEY --list ID INDEX...", Short: short, Args: cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				indexes, err := parseIndexes(args)
				if err != nil {
					return err
				}
				val := value
				if value < 0 {
					val = v
				}
				return a.changeList(cmd.Context(), keyFile, list, indexes, val, needPurpose)
			},
		}
		keyFlag(c)
		if value < 0 {
			c.Flags().IntVar(&v, "value", 1, "the entry value to set")
		}
		return c
	}

	var issuer string
	issuerOf := func() (string, error) {
		if issuer != "" {
			return issuer, nil
		}
		if keyFile != "" {
			s, err := loadKeys([]string{keyFile})
			if err != nil {
				return "", err
			}
			return s[0].DID, nil
		}
		return "", usagef("--issuer (or --key) is required")
	}
	show := &cobra.Command{
		Use: "show --issuer DID --list ID", Short: "Show a list's current version", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			iss, err := issuerOf()
			if err != nil {
				return err
			}
			doc, p, err := a.fetchList(cmd.Context(), iss, list)
			if err != nil {
				return err
			}
			return a.printText(doc, func(w *errWriter) {
				set := 0
				for i := range record.StatusEntries(p.Bits, p.StatusSize) {
					if v, _ := record.GetStatus(p.Bits, i, p.StatusSize); v != 0 {
						set++
					}
				}
				w.Printf("list %s of %s\n  version %s (index %d, %s)\n  purpose %s, %d entries of %d bits, %d set\n",
					doc.List, doc.Issuer, doc.CID, doc.Index, doc.Time.Format(time.RFC3339), strings.Join(doc.Purposes, ","), doc.Entries, doc.StatusSize, set)
			})
		},
	}
	var checkPurpose string
	check := &cobra.Command{
		Use: "check --issuer DID --list ID INDEX", Short: "Check one entry (this tells the registry which credential you check)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			iss, err := issuerOf()
			if err != nil {
				return err
			}
			if err := needList(list); err != nil {
				return err
			}
			var e record.EntryStatus
			var q url.Values
			if checkPurpose != "" {
				q = url.Values{"statusPurpose": {checkPurpose}}
			}
			if err := a.client().Get(cmd.Context(), listPath(iss, list)+"/entries/"+url.PathEscape(args[0]), q, &e); err != nil {
				return err
			}
			if err := a.printText(e, func(w *errWriter) {
				verdict := "valid"
				if !e.Valid {
					verdict = "NOT valid"
				}
				w.Printf("entry %d: status %d (%s, %s)", e.Index, e.Status, e.Purpose, verdict)
				if e.Message != "" {
					w.Printf(" %q", e.Message)
				}
				w.Println()
			}); err != nil {
				return err
			}
			if !e.Valid {
				return errNotAuthorized // exit code 3, after the answer, as trust's NOT AUTHORIZED
			}
			return nil
		},
	}
	check.Flags().StringVar(&checkPurpose, "purpose", "", "the purpose to check, for a list of several purposes")
	for _, c := range []*cobra.Command{show, check} {
		c.Flags().StringVar(&issuer, "issuer", "", "the issuer's DID")
		keyFlag(c)
	}
	var count int
	var stateFile string
	allocate := &cobra.Command{
		Use: "allocate --key KEY --list ID [--count N]", Short: "Hand out unused random indexes for new credentials", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			iss, err := issuerOf()
			if err != nil {
				return err
			}
			_, p, err := a.fetchList(cmd.Context(), iss, list)
			if err != nil {
				return err
			}
			if stateFile == "" {
				stateFile = "status-" + list + ".allocated.json"
			}
			got, err := allocate(stateFile, p, count)
			if err != nil {
				return err
			}
			return a.printText(got, func(w *errWriter) {
				for _, i := range got {
					w.Println(i)
				}
			})
		},
	}
	keyFlag(allocate)
	allocate.Flags().IntVar(&count, "count", 1, "how many indexes")
	allocate.Flags().StringVar(&stateFile, "state", "", "file recording indexes handed out (default status-<list>.allocated.json)")
	allocate.Flags().StringVar(&issuer, "issuer", "", "the issuer's DID")

	cmd.AddCommand(create,
		change("revoke", "Revoke credentials: set their entries in a revocation list (final)", 1, record.PurposeRevocation),
		change("suspend", "Suspend credentials in a suspension list", 1, record.PurposeSuspension),
		change("unsuspend", "Lift a suspension", 0, record.PurposeSuspension),
		change("set", "Set entries to --value (message lists)", -1, ""),
		show, check, allocate)
	return cmd
}

// needList refuses a status-list command given no --list.
func needList(list string) error {
	if list == "" {
		return usagef("--list is required: the id of the status list")
	}
	return nil
}

func listPath(issuer, list string) string {
	return "/v1/status-lists/" + client.PathID(issuer) + "/" + client.PathID(list)
}

func parseIndexes(args []string) ([]int, error) {
	var out []int
	for _, a := range args {
		for _, s := range strings.Split(a, ",") {
			i, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || i < 0 {
				return nil, fmt.Errorf("index %q is not a non-negative number", s)
			}
			out = append(out, i)
		}
	}
	return out, nil
}

// fetchList reads a list's current version and decodes it.
func (a *app) fetchList(ctx context.Context, issuer, list string) (*api.StatusListDocument, *record.ParsedStatusList, error) {
	if err := needList(list); err != nil {
		return nil, nil, err
	}
	var doc api.StatusListDocument
	if err := a.client().Get(ctx, listPath(issuer, list)+"/record", nil, &doc); err != nil {
		return nil, nil, err
	}
	p, err := record.ParseStatusListCredential(doc.Credential)
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", list, err)
	}
	return &doc, p, nil
}

// publishList signs a list version as the issuer and publishes it.
func (a *app) publishList(ctx context.Context, keyFile, list, previous string, purposes []string, size int, msgs []record.StatusMessage, ttl int64, bits []byte) error {
	if err := needList(list); err != nil {
		return err
	}
	signers, err := loadKeys([]string{keyFile})
	if err != nil {
		return err
	}
	s := signers[0]
	vc, err := record.StatusListCredential(s.DID, list, purposes, size, msgs, ttl, bits)
	if err != nil {
		return err
	}
	jwt, err := s.SignVCJWT(vc)
	if err != nil {
		return err
	}
	sg := signing{keys: []string{keyFile}}
	return a.send(ctx, &sg, record.OpPublishStatusList, map[string]any{"list": list, "previous": previous, "credential": string(jwt)}, false)
}

// changeList sets entries to value in a new version. Another writer
// publishing first makes the registry answer 409; the change is then made
// again on the newer version, a few times at most.
func (a *app) changeList(ctx context.Context, keyFile, list string, indexes []int, value int, purpose string) error {
	if err := needList(list); err != nil {
		return err
	}
	signers, err := loadKeys([]string{keyFile})
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		doc, p, err := a.fetchList(ctx, signers[0].DID, list)
		if err != nil {
			return err
		}
		if purpose != "" && !slices.Contains(p.Purposes, purpose) {
			return fmt.Errorf("list %s has purpose %v, not %s", list, p.Purposes, purpose)
		}
		n := record.StatusEntries(p.Bits, p.StatusSize)
		if value < 0 || value >= 1<<p.StatusSize {
			return fmt.Errorf("value %d does not fit list %s's %d-bit entries (0 to %d)", value, list, p.StatusSize, 1<<p.StatusSize-1)
		}
		changed := 0
		for _, i := range indexes {
			if i >= n {
				return fmt.Errorf("index %d is outside list %s, whose entries are 0 to %d", i, list, n-1)
			}
			if v, _ := record.GetStatus(p.Bits, i, p.StatusSize); v != value {
				changed++
			}
			if err := record.SetStatus(p.Bits, i, p.StatusSize, value); err != nil {
				return err
			}
		}
		if changed == 0 {
			// A version that changes nothing would only be a new CID for
			// verifiers to fetch.
			a.note("nothing to publish: every entry given already has status %d in list %s (version %s)\n", value, list, doc.CID)
			return nil
		}
		err = a.publishList(ctx, keyFile, list, doc.CID, p.Purposes, p.StatusSize, p.Messages, p.TTL, p.Bits)
		var ae *client.APIError
		if errors.As(err, &ae) && ae.Problem.Status == 409 && attempt < 5 {
			a.note("list %s changed meanwhile; applying the change to the new version\n", list)
			continue
		}
		return err
	}
}

// allocate picks count random entries that are 0 in the list and were not
// handed out before, and records them in stateFile. The Recommendation asks
// issuers to assign indexes randomly, so a status position says nothing
// about when a credential was issued.
func allocate(stateFile string, p *record.ParsedStatusList, count int) ([]int, error) {
	var used []int
	if raw, err := os.ReadFile(stateFile); err == nil {
		if err := json.Unmarshal(raw, &used); err != nil {
			return nil, fmt.Errorf("%s: %w", stateFile, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	taken := map[int]bool{}
	for _, i := range used {
		taken[i] = true
	}
	n := record.StatusEntries(p.Bits, p.StatusSize)
	if count < 1 || len(taken)+count > n/2 {
		return nil, fmt.Errorf("cannot hand out %d more of %d entries (%d used): create a new list", count, n, len(taken))
	}
	var out []int
	for tries := 0; len(out) < count; tries++ {
		if tries > 1000*count {
			return nil, fmt.Errorf("found no free entries after %d random picks: the list is nearly full; create a new list", tries)
		}
		r, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
		if err != nil {
			return nil, err
		}
		i := int(r.Int64())
		if v, _ := record.GetStatus(p.Bits, i, p.StatusSize); v != 0 || taken[i] {
			continue
		}
		taken[i] = true
		out = append(out, i)
	}
	raw, _ := json.Marshal(append(used, out...))
	if err := os.WriteFile(stateFile, raw, 0o600); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}
