package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
)

// The DCC issuer registry format (Digital Credentials Consortium): known
// issuers by DID, each with a name and optionally a location and a URL.
// Export reads GET /v1/export/dcc; import registers the file's issuers as
// entities.

func (a *app) exportCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "export", Short: "Export registry data in other formats"}
	var fw, out string
	var force bool
	dcc := &cobra.Command{
		Use:   "dcc [--framework ID] [--out FILE]",
		Short: "The issuers authorized now, as a DCC issuer registry file",
		Long: "Lists every entity holding an issue accreditation whose chain is in force now (in --framework,\n" +
			"or in any framework) as a DCC issuer registry: DID -> name, location, url.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if fw != "" {
				q.Set("framework", fw)
			}
			c := a.client()
			if out != "" {
				q.Set("consistency", c.Consistency)
				n, err := c.Download(cmd.Context(), "/v1/export/dcc?"+q.Encode(), out, force)
				if errors.Is(err, client.ErrFileExists) {
					return fmt.Errorf("%w: give --force to replace it", err)
				}
				if err == nil {
					a.note("wrote %s (%d bytes)\n", out, n)
				}
				return err
			}
			var reg json.RawMessage
			if err := c.Get(cmd.Context(), "/v1/export/dcc", q, &reg); err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, reg, "", "  "); err != nil {
				return err
			}
			buf.WriteByte('\n')
			_, err := a.out.Write(buf.Bytes())
			return err
		},
	}
	dcc.Flags().StringVar(&fw, "framework", "", "only this framework's issuers")
	dcc.Flags().StringVar(&out, "out", "", "write to this file (complete or not at all) instead of standard output")
	dcc.Flags().BoolVar(&force, "force", false, "replace --out if it exists")
	cmd.AddCommand(dcc)
	return cmd
}

func (a *app) importCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "import", Short: "Import registry data from other formats"}
	var sg signing
	var dryRun bool
	dcc := &cobra.Command{
		Use:   "dcc FILE|- --key KEY",
		Short: "Register the issuers of a DCC issuer registry file as entities",
		Long: "Checks the whole file first and submits nothing if any entry is bad. Then registers each issuer\n" +
			"not yet registered (name; location and url as metadata), signed with --key: an active accreditor,\n" +
			"or governance (repeat --key for M of N). Issuers already registered are left as they are.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := a.readArg(args[0])
			if err != nil {
				return err
			}
			entries, err := parseDCC(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			var signers []*record.Signer
			if !dryRun {
				if signers, err = loadKeys(sg.keys); err != nil {
					return err
				}
			}
			return a.importDCC(cmd.Context(), entries, signers)
		},
	}
	dcc.Flags().StringSliceVar(&sg.keys, "key", nil, "key file to sign the registrations with; repeat for M of N governance signatures")
	dcc.Flags().BoolVar(&dryRun, "dry-run", false, "check the file and say what would be registered, submitting nothing")
	cmd.AddCommand(dcc)
	return cmd
}

// dccImportEntry is one issuer of a DCC file, checked.
type dccImportEntry struct {
	DID string
	record.DCCEntry
}

// parseDCC reads a DCC issuer registry file and checks every entry,
// reporting all the bad ones at once.
func parseDCC(data []byte) ([]dccImportEntry, error) {
	var doc struct {
		Meta     json.RawMessage            `json:"meta"`
		Registry map[string]json.RawMessage `json:"registry"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a DCC issuer registry ({\"meta\": {...}, \"registry\": {DID: {name, location, url}}}): %w", err)
	}
	if doc.Registry == nil {
		return nil, errors.New(`no "registry" object: a DCC issuer registry maps DIDs to {name, location, url} under "registry"`)
	}
	var out []dccImportEntry
	var errs []error
	for did, raw := range doc.Registry {
		e := dccImportEntry{DID: did}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&e.DCCEntry); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", did, err))
			continue
		}
		if err := checkDCCEntry(e); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", did, err))
			continue
		}
		out = append(out, e)
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(x, y error) int { return strings.Compare(x.Error(), y.Error()) })
		return nil, fmt.Errorf("%d bad entries, nothing imported:\n  %w", len(errs), joinLines(errs))
	}
	slices.SortFunc(out, func(x, y dccImportEntry) int { return strings.Compare(x.DID, y.DID) })
	return out, nil
}

// joinLines joins errors one per indented line.
func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

// checkDCCEntry applies the registry's own rules for an entity, so that
// a bad entry is found before anything is submitted.
func checkDCCEntry(e dccImportEntry) error {
	if !strings.HasPrefix(e.DID, "did:") {
		return errors.New("the key is not a DID")
	}
	return record.ValidateEntity(e.DID, e.Name, e.metadata())
}

// metadata is the entity metadata an entry is registered with.
func (e dccImportEntry) metadata() *record.EntityMetadata {
	if e.Location == "" && e.URL == "" {
		return nil
	}
	return &record.EntityMetadata{Location: e.Location, Homepage: e.URL}
}

// importDCC registers the entries not registered yet; signers nil is a dry
// run.
func (a *app) importDCC(ctx context.Context, entries []dccImportEntry, signers []*record.Signer) error {
	c := a.client()
	var added, kept int
	for i, e := range entries {
		var ent record.Entity
		err := c.Get(ctx, "/v1/entities/"+client.PathID(e.DID), nil, &ent)
		var ae *client.APIError
		switch {
		case err == nil && ent.Registered:
			kept++
			if _, err := fmt.Fprintf(a.out, "kept        %s (registered already as %q)\n", e.DID, ent.Name); err != nil {
				return err
			}
			continue
		case err != nil && (!errors.As(err, &ae) || ae.Problem.Status != http.StatusNotFound):
			return fmt.Errorf("%s: %w (%d of %d registered before this)", e.DID, err, added, len(entries))
		}
		fields := map[string]any{"id": e.DID, "name": e.Name}
		if m := e.metadata(); m != nil {
			fields["metadata"] = m
		}
		if signers == nil {
			added++
			if _, err := fmt.Fprintf(a.out, "would add   %s %q\n", e.DID, e.Name); err != nil {
				return err
			}
			continue
		}
		jws, err := signOp(signers, record.OpRegisterEntity, fields, false)
		if err != nil {
			return err
		}
		res, err := c.Submit(ctx, jws)
		if err != nil {
			return fmt.Errorf("%s: %w (%d of %d registered before this)", e.DID, err, added, len(entries))
		}
		added++
		if _, err := fmt.Fprintf(a.out, "registered  %s %q at index %d\n", e.DID, e.Name, res.Index); err != nil {
			return err
		}
		if (i+1)%100 == 0 {
			a.note("%d of %d\n", i+1, len(entries))
		}
	}
	verb := "registered"
	if signers == nil {
		verb = "would register"
	}
	a.note("%s %d issuers; %d were registered already and kept as they are\n", verb, added, kept)
	return nil
}
