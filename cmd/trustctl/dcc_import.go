package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
)

// Import of a DCC issuer registry file: every issuer is registered as an
// entity (or found registered already, with the same details or not),
// then, with --accredit, given an issue accreditation in that framework,
// so that one run turns a DCC issuer list into accredited issuers. Each
// issuer gets one line saying what was found and what was done; the run
// ends with a note on which of the file's issuers an export lists.

// maxListedInNote bounds the DIDs a note names; the rest are counted.
const maxListedInNote = 10

// dccAccreditFlags are import dcc's flags for accrediting the issuers.
type dccAccreditFlags struct {
	framework     string
	resources     []string
	jurisdictions []string
	until         string
	key           string
	parent        string
}

func (a *app) importCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "import", Short: "Import registry data from other formats"}
	var sg signing
	var dryRun, update bool
	var acc dccAccreditFlags
	dcc := &cobra.Command{
		Use:   "dcc FILE|- --key KEY [--accredit FRAMEWORK --resource IRI]",
		Short: "Register the issuers of a DCC issuer registry file as entities, and accredit them",
		Long: "Checks the whole file first and submits nothing if any entry is bad (each named with its line),\n" +
			"including a DID listed twice with different details; one listed again with the same details is\n" +
			"imported once and reported. Then registers each issuer not yet registered (name; location and url\n" +
			"as metadata), signed with --key: an active accreditor, or governance (repeat --key for M of N).\n" +
			"An issuer registered already is kept as it is; when its registered details differ from the file's,\n" +
			"the report names both, and --update replaces them with the file's (signed by governance or the\n" +
			"issuer itself).\n\n" +
			"An exported DCC registry (trustctl export dcc) lists only issuers holding an issue accreditation\n" +
			"in force. --accredit FRAMEWORK --resource IRI grants each issuer of the file that does not hold\n" +
			"one already an issue accreditation for those resources in the same run, signed by the\n" +
			"accreditor's --accreditor-key (default: --key) as 'trustctl accredit' signs one.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := a.readArg(args[0])
			if err != nil {
				return err
			}
			if err := acc.check(cmd); err != nil {
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
			var g *dccGrant
			if acc.framework != "" {
				if g, err = a.prepareGrant(cmd.Context(), &acc, sg.keys, dryRun); err != nil {
					return err
				}
			}
			return a.importDCC(cmd.Context(), entries, signers, update, g)
		},
	}
	dcc.Flags().StringSliceVar(&sg.keys, "key", nil, "key file to sign the registrations with; repeat for M of N governance signatures")
	dcc.Flags().BoolVar(&dryRun, "dry-run", false, "check the file and say what would be done, submitting nothing")
	dcc.Flags().BoolVar(&update, "update", false, "replace the registered name, location and url of issuers registered with other details by the file's")
	dcc.Flags().StringVar(&acc.framework, "accredit", "", "framework to accredit the imported issuers in (action issue)")
	dcc.Flags().StringSliceVar(&acc.resources, "resource", nil, "with --accredit: credential-type IRI the issuers may issue, or *; repeatable")
	dcc.Flags().StringSliceVar(&acc.jurisdictions, "jurisdiction", nil, "with --accredit: ISO 3166 code, repeatable")
	dcc.Flags().StringVar(&acc.until, "valid-until", "", "with --accredit: end of the accreditations' validity (RFC 3339 or date)")
	dcc.Flags().StringVar(&acc.key, "accreditor-key", "", "with --accredit: the accreditor's key file (default: --key, when it is one key)")
	dcc.Flags().StringVar(&acc.parent, "parent", "auto", "with --accredit: the accreditor's own accredit accreditation id, or auto")
	cmd.AddCommand(dcc)
	return cmd
}

// check refuses accrediting flags without --accredit, and --accredit
// without a resource.
func (f *dccAccreditFlags) check(cmd *cobra.Command) error {
	if f.framework == "" {
		for _, name := range []string{"resource", "jurisdiction", "valid-until", "accreditor-key", "parent"} {
			if cmd.Flags().Changed(name) {
				return usagef("import dcc: --%s is a flag of --accredit: give --accredit FRAMEWORK too", name)
			}
		}
		return nil
	}
	if len(f.resources) == 0 {
		return usagef("import dcc: --accredit needs --resource: the credential type (IRI, or *) the issuers may issue")
	}
	return nil
}

// dccGrant is what each imported issuer is accredited with.
type dccGrant struct {
	framework string
	fields    record.AccreditationCredentialFields // Subject and IAT set per issuer
	// signer is the accreditor's key; nil in a dry run without one.
	signer *record.Signer
	// dryRun: say what would be accredited, submit nothing (a dry run
	// given the key still loads it, to check what it may grant).
	dryRun bool
}

// prepareGrant loads the accreditor's key and finds what it grants under
// (its parent accreditation or root role), before anything is submitted:
// an accreditor that may not accredit stops the run with nothing done. A
// dry run without a key only checks that the framework exists.
func (a *app) prepareGrant(ctx context.Context, f *dccAccreditFlags, keys []string, dryRun bool) (*dccGrant, error) {
	g := &dccGrant{framework: f.framework, dryRun: dryRun, fields: record.AccreditationCredentialFields{
		Action: record.ActionIssue, Resources: f.resources, Jurisdictions: f.jurisdictions}}
	var err error
	if g.fields.ValidUntil, err = parseTimeFlag("valid-until", f.until); err != nil {
		return nil, err
	}
	key := f.key
	switch {
	case key != "":
	case len(keys) == 1:
		key = keys[0]
	case dryRun:
		if err := a.client().Get(ctx, "/v1/frameworks/"+client.PathID(f.framework), nil, nil); err != nil {
			return nil, fmt.Errorf("import dcc: --accredit %s: %w", f.framework, err)
		}
		return g, nil
	default:
		return nil, usagef("import dcc: --accredit: give --accreditor-key, the key of the accreditor that grants (--key holds %d keys)", len(keys))
	}
	if g.signer, err = loadKey(key); err != nil {
		return nil, err
	}
	g.fields.Accreditor = g.signer.DID
	parent := f.parent
	if parent == "" || parent == "auto" {
		if parent, err = a.findParent(ctx, f.framework, g.signer.DID, f.resources); err != nil {
			return nil, fmt.Errorf("import dcc --accredit: %w", err)
		}
	}
	if g.fields.TermsOfUse, err = a.grantAttribute(ctx, f.framework, g.signer.DID, parent); err != nil {
		return nil, fmt.Errorf("import dcc --accredit: %w", err)
	}
	return g, nil
}

// importTally counts what an import did, for its summary.
type importTally struct {
	added, same, differ, updated, accredited, held int
}

// importDCC registers the entries not registered yet and, with g,
// accredits them; signers nil is a dry run. It stops at the first refusal,
// saying how far it got.
func (a *app) importDCC(ctx context.Context, entries []dccImportEntry, signers []*record.Signer, update bool, g *dccGrant) error {
	w := &errWriter{W: a.out, Escaped: true}
	var t importTally
	for i, e := range entries {
		if len(e.Lines) > 1 {
			w.Printf("repeated    %s on lines %s with the same details: imported once\n", e.DID, joinInts(e.Lines))
		}
		if err := a.importEntity(ctx, w, e, signers, update, &t); err != nil {
			return fmt.Errorf("%s (line %d): %w (%s)", e.DID, e.Lines[0], err, t.sofar(len(entries)))
		}
		if g != nil {
			if err := a.accreditImported(ctx, w, e, g, &t); err != nil {
				return fmt.Errorf("%s (line %d): accredit: %w (%s)", e.DID, e.Lines[0], err, t.sofar(len(entries)))
			}
		}
		if w.Err != nil {
			return w.Err
		}
		if (i+1)%100 == 0 {
			a.note("%d of %d\n", i+1, len(entries))
		}
	}
	verb := "registered"
	if signers == nil {
		verb = "would register"
	}
	a.note("%s %d issuers; %d were registered already: %d with the file's details, %d with other details (%d of them updated to the file's)",
		verb, t.added, t.same+t.differ, t.same, t.differ, t.updated)
	if g != nil {
		a.note("; accredited %d in %s, %d held an issue accreditation there already", t.accredited, g.framework, t.held)
	}
	a.note("\n")
	a.exportNote(ctx, w, entries, g, signers == nil)
	return w.Err
}

// sofar says what an interrupted import did before it stopped.
func (t *importTally) sofar(n int) string {
	return fmt.Sprintf("of %d issuers, %d registered and %d accredited before this; a new run with the same file continues: it keeps what is done", n, t.added, t.accredited)
}

// importEntity registers one issuer, or reports it registered already:
// with the file's details, or with others (kept, or replaced with update).
func (a *app) importEntity(ctx context.Context, w *errWriter, e dccImportEntry, signers []*record.Signer, update bool, t *importTally) error {
	c := a.client()
	var ent record.Entity
	err := c.Get(ctx, "/v1/entities/"+client.PathID(e.DID), nil, &ent)
	var ae *client.APIError
	switch {
	case err == nil && ent.Registered:
		diff := dccDiff(e.DCCEntry, &ent)
		if len(diff) == 0 {
			t.same++
			w.Printf("kept        %s (registered already as %q)\n", e.DID, ent.Name)
			return nil
		}
		t.differ++
		say := fmt.Sprintf("differs     %s (line %d): registered at index %d with %s; the file says %s",
			e.DID, e.Lines[0], ent.UpdatedIndex, strings.Join(diff.registered(), ", "), strings.Join(diff.file(), ", "))
		switch {
		case !update:
			w.Printf("%s: kept the registered details (--update takes the file's)\n", say)
			return nil
		case signers == nil:
			w.Printf("%s: would update them to the file's\n", say)
			return nil
		}
		res, err := a.updateImported(ctx, e, &ent, signers)
		if err != nil {
			return err
		}
		t.updated++
		w.Printf("%s: updated to the file's at index %d\n", say, res.Index)
		return nil
	case err != nil && (!errors.As(err, &ae) || ae.Problem.Status != http.StatusNotFound):
		return err
	}
	fields := map[string]any{"id": e.DID, "name": e.Name}
	if m := e.metadata(); m != nil {
		fields["metadata"] = m
	}
	t.added++
	if signers == nil {
		w.Printf("would add   %s %q\n", e.DID, e.Name)
		return nil
	}
	jws, err := signOp(signers, record.OpRegisterEntity, fields, false)
	if err != nil {
		return err
	}
	res, err := c.Submit(ctx, jws)
	if err != nil {
		t.added--
		return err
	}
	w.Printf("registered  %s %q at index %d\n", e.DID, e.Name, res.Index)
	return nil
}

// updateImported replaces a registered issuer's name, location and url
// with the file's, keeping the rest of its metadata.
func (a *app) updateImported(ctx context.Context, e dccImportEntry, ent *record.Entity, signers []*record.Signer) (*record.Result, error) {
	var m record.EntityMetadata
	if ent.Metadata != nil {
		m = *ent.Metadata
	}
	if e.Location != "" {
		m.Location = e.Location
	}
	if e.URL != "" {
		m.Homepage = e.URL
	}
	fields := map[string]any{"id": e.DID, "name": e.Name, "metadata": m}
	jws, err := signOp(signers, record.OpUpdateEntity, fields, false)
	if err != nil {
		return nil, err
	}
	res, err := a.client().Submit(ctx, jws)
	if err != nil {
		return nil, fmt.Errorf("update to the file's details: %w", err)
	}
	return res, nil
}

// dccField is one detail on which a file and the registry differ.
type dccField struct{ name, registered, file string }

// dccDiffs are the details on which a file and the registry differ.
type dccDiffs []dccField

func (d dccDiffs) registered() []string {
	out := make([]string, len(d))
	for i, f := range d {
		out[i] = fmt.Sprintf("%s %q", f.name, f.registered)
		if f.registered == "" {
			out[i] = "no " + f.name
		}
	}
	return out
}

func (d dccDiffs) file() []string {
	out := make([]string, len(d))
	for i, f := range d {
		out[i] = fmt.Sprintf("%s %q", f.name, f.file)
	}
	return out
}

// dccDiff compares a file's entry with the registered entity as an export
// writes it (location: the metadata's location, else its country). A
// location or url the file leaves out says nothing and differs from
// nothing.
func dccDiff(e record.DCCEntry, ent *record.Entity) dccDiffs {
	var m record.EntityMetadata
	if ent.Metadata != nil {
		m = *ent.Metadata
	}
	loc := m.Location
	if loc == "" {
		loc = m.Country
	}
	var d dccDiffs
	if e.Name != ent.Name {
		d = append(d, dccField{"name", ent.Name, e.Name})
	}
	if e.Location != "" && e.Location != loc {
		d = append(d, dccField{"location", loc, e.Location})
	}
	if e.URL != "" && e.URL != m.Homepage {
		d = append(d, dccField{"url", m.Homepage, e.URL})
	}
	return d
}

// accreditImported grants an imported issuer g's issue accreditation,
// unless it holds one in force for every resource of g already.
func (a *app) accreditImported(ctx context.Context, w *errWriter, e dccImportEntry, g *dccGrant, t *importTally) error {
	var held []string
	for _, r := range g.fields.Resources {
		d, err := a.client().Trust(ctx, url.Values{"entity": {e.DID}, "framework": {g.framework}, "action": {record.ActionIssue}, "resource": {r}})
		if err != nil {
			return err
		}
		if !d.Authorized || len(d.Chain) == 0 {
			held = nil
			break
		}
		if id := d.Chain[0].Accreditation; !slices.Contains(held, id) {
			held = append(held, id)
		}
	}
	if len(held) > 0 {
		t.held++
		w.Printf("holds       %s: an issue accreditation in force in %s for %s already (%s): not accredited again\n",
			e.DID, g.framework, strings.Join(g.fields.Resources, " "), strings.Join(held, ", "))
		return nil
	}
	t.accredited++
	if g.dryRun || g.signer == nil {
		w.Printf("would accredit %s in %s for %s\n", e.DID, g.framework, strings.Join(g.fields.Resources, " "))
		return nil
	}
	f := g.fields
	f.Subject = e.DID
	f.IAT = time.Now()
	claims, err := record.NewAccreditationCredential(f)
	if err != nil {
		t.accredited--
		return err
	}
	jwt, err := g.signer.SignVCJWT(claims)
	if err != nil {
		t.accredited--
		return err
	}
	res, err := a.client().Submit(ctx, jwt)
	if err != nil {
		t.accredited--
		return err
	}
	w.Printf("accredited  %s in %s for %s: accreditation %s at index %d\n", e.DID, g.framework, strings.Join(g.fields.Resources, " "), res.ID, res.Index)
	return nil
}

// exportNote says that an exported DCC registry lists only issuers holding
// an issue accreditation in force and, after a real run, which of the
// file's issuers such an export leaves out now (in g's framework, or any).
func (a *app) exportNote(ctx context.Context, w *errWriter, entries []dccImportEntry, g *dccGrant, dryRun bool) {
	const rule = "note: an exported DCC registry (trustctl export dcc, GET /v1/export/dcc) lists only issuers holding an issue accreditation in force"
	hint := "accredit them in this run with --accredit FRAMEWORK --resource IRI (signed by the accreditor: --key or --accreditor-key)"
	q := url.Values{}
	where := ""
	if g != nil {
		q.Set("framework", g.framework)
		where = " in " + g.framework
		hint = "see 'trustctl trust' for why"
	}
	if dryRun {
		w.Printf("%s%s: this dry run registers nothing, so it cannot tell which of the file's issuers an export would list\n", rule, where)
		return
	}
	var exp record.DCCRegistry
	if err := a.client().Get(ctx, "/v1/export/dcc", q, &exp); err != nil {
		w.Printf("%s%s (reading the export to compare failed: %v)\n", rule, where, err)
		return
	}
	var missing []string
	for _, e := range entries {
		if _, ok := exp.Registry[e.DID]; !ok {
			missing = append(missing, e.DID)
		}
	}
	if len(missing) == 0 {
		w.Printf("%s%s: all %d issuers of this file hold one and are listed\n", rule, where, len(entries))
		return
	}
	named := missing[:min(len(missing), maxListedInNote)]
	more := ""
	if n := len(missing) - len(named); n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	w.Printf("%s%s: %d of the %d issuers of this file hold none and are left out of it (%s%s): %s\n",
		rule, where, len(missing), len(entries), strings.Join(named, ", "), more, hint)
}

// joinInts writes numbers as "3, 9 and 12".
func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// metadata is the entity metadata an entry is registered with.
func (e dccImportEntry) metadata() *record.EntityMetadata {
	if e.Location == "" && e.URL == "" {
		return nil
	}
	return &record.EntityMetadata{Location: e.Location, Homepage: e.URL}
}
