package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
)

// signing holds the flags every operation command shares.
type signing struct {
	keys []string
	out  string
}

func (s *signing) register(cmd *cobra.Command, governance bool) {
	help := "private key file to sign with"
	if governance {
		help = "governance member key file; repeat for M of N signatures"
	}
	cmd.Flags().StringSliceVar(&s.keys, "key", nil, help)
	cmd.Flags().StringVar(&s.out, "out", "", "write the signed operation to this file instead of submitting it (to co-sign or submit later)")
}

// send signs the operation and submits it (or writes it with --out).
func (a *app) send(ctx context.Context, sg *signing, op string, fields map[string]any, governance bool) error {
	signers, err := loadKeys(sg.keys)
	if err != nil {
		return err
	}
	jws, err := signOp(signers, op, fields, governance)
	if err != nil {
		return err
	}
	if sg.out != "" {
		if err := os.WriteFile(sg.out, jws, 0o644); err != nil {
			return err
		}
		a.note("wrote signed %s to %s; co-sign with 'trustctl cosign --key K %s', submit with 'trustctl submit %s'\n", op, sg.out, sg.out, sg.out)
		return nil
	}
	return a.showResult(a.submitFresh(ctx, jws, func() ([]byte, error) { return signOp(signers, op, fields, governance) }))
}

// submitFresh submits jws, an operation this command has just signed. The
// registry takes the same signed content again as a resubmission of the
// first (idempotency), and iat counts whole seconds: the same command run
// twice within a second (suspend, reinstate, suspend) would have its third
// run answered as the first, leaving the accreditation active. So when
// the answer is a duplicate and the operation was sent once (a duplicate
// answer to it is then of an operation the registry held before it was
// sent), it is signed again once the second has turned, and that one
// submitted. An operation sent more than once (the client resent it after
// an attempt whose outcome it did not learn) may be answered as a
// duplicate of its own first attempt, and is taken as it is.
func (a *app) submitFresh(ctx context.Context, jws []byte, resign func() ([]byte, error)) (*record.Result, error) {
	res, sent, err := a.client().SubmitCounted(ctx, jws)
	if err != nil || !res.Duplicate || sent != 1 {
		return res, err
	}
	var iat struct {
		IAT int64 `json:"iat"`
	}
	if p, perr := record.ParseOperation(jws); perr == nil {
		_ = json.Unmarshal(p.Payload, &iat)
	}
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(time.Until(time.Unix(iat.IAT+1, 0))):
	}
	again, err := resign()
	if err != nil {
		return nil, err
	}
	return a.client().Submit(ctx, again)
}

// submit submits a signed operation as it is (a file, or one a command
// built) and prints the result.
func (a *app) submit(ctx context.Context, jws []byte) error {
	return a.showResult(a.client().Submit(ctx, jws))
}

// requireFlags refuses a command line that leaves out one of the named
// flags (or gives it empty): a usage error naming the flag, before any
// key is read or anything is sent to a node.
func requireFlags(cmd *cobra.Command, names ...string) error {
	for _, n := range names {
		if f := cmd.Flags().Lookup(n); f == nil || f.Value.String() == "" || f.Value.String() == "[]" {
			return usagef("%s: --%s is required", cmd.CommandPath(), n)
		}
	}
	return nil
}

// signOp signs a payload of op with fields and a fresh iat: a compact JWS
// for one signer, the JSON serialization for a governance operation or
// several signers.
func signOp(signers []*record.Signer, op string, fields map[string]any, governance bool) ([]byte, error) {
	payload := map[string]any{"op": op, "iat": time.Now().Unix()}
	maps.Copy(payload, fields)
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	if governance || len(signers) > 1 {
		return record.SignJSON(raw, signers...)
	}
	return signers[0].SignCompact(raw)
}

// showResult prints a submission's result, or returns its error.
func (a *app) showResult(res *record.Result, err error) error {
	if err != nil {
		if res != nil && a.output != outputTable {
			_ = a.print(res, nil)
		}
		return err
	}
	if a.quiet {
		_, err := fmt.Fprintln(a.out, res.ID)
		return err
	}
	return a.printText(res, func(w *errWriter) {
		verb := "accepted"
		if res.Duplicate {
			verb = "already accepted (duplicate)"
		}
		w.Printf("%s %s at index %d\n  operation %s\n", verb, res.Op, res.Index, res.CID)
		if res.ID != "" {
			w.Printf("  id        %s\n", res.ID)
		}
	})
}

func (a *app) frameworkCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "framework", Short: "Create, change and show frameworks (governance operations)"}
	var sg signing
	var id, name, desc, u string
	var maxLen int
	var roots []string
	create := &cobra.Command{
		Use: "create --id ID --name NAME --key GOVKEY", Short: "Create a framework", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "id", "name"); err != nil {
				return err
			}
			if cmd.Flags().Changed("max-chain-length") && maxLen < 1 {
				return usagef("%s: --max-chain-length %d: give 1 or more (default 4)", cmd.CommandPath(), maxLen)
			}
			f := map[string]any{"id": id, "name": name}
			setIf(f, "description", desc)
			setIf(f, "url", u)
			if maxLen > 0 {
				f["maxChainLength"] = maxLen
			}
			if len(roots) > 0 {
				f["roots"] = roots
			}
			return a.send(cmd.Context(), &sg, record.OpCreateFramework, f, true)
		},
	}
	create.Flags().StringVar(&id, "id", "", "framework id (an https URL or DID)")
	create.Flags().StringVar(&name, "name", "", "display name")
	create.Flags().StringVar(&desc, "description", "", "description")
	create.Flags().StringVar(&u, "url", "", "URL of the governance framework document")
	create.Flags().IntVar(&maxLen, "max-chain-length", 0, "maximum accreditation chain length (default 4)")
	create.Flags().StringSliceVar(&roots, "root", nil, "root accreditor DID (repeatable)")
	sg.register(create, true)

	var usg signing
	var uid, uname, udesc, uurl string
	var umax int
	update := &cobra.Command{
		Use: "update --id ID [--name ...] --key GOVKEY", Short: "Change a framework's name, description, URL or chain length", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "id"); err != nil {
				return err
			}
			f := map[string]any{"id": uid}
			if cmd.Flags().Changed("name") {
				f["name"] = uname
			}
			if cmd.Flags().Changed("description") {
				f["description"] = udesc
			}
			if cmd.Flags().Changed("url") {
				f["url"] = uurl
			}
			if cmd.Flags().Changed("max-chain-length") {
				f["maxChainLength"] = umax
			}
			if len(f) == 1 {
				return usagef("%s: nothing to change: give --name, --description, --url or --max-chain-length", cmd.CommandPath())
			}
			return a.send(cmd.Context(), &usg, record.OpUpdateFramework, f, true)
		},
	}
	update.Flags().StringVar(&uid, "id", "", "framework id")
	update.Flags().StringVar(&uname, "name", "", "display name")
	update.Flags().StringVar(&udesc, "description", "", "description")
	update.Flags().StringVar(&uurl, "url", "", "URL of the framework document")
	update.Flags().IntVar(&umax, "max-chain-length", 0, "maximum accreditation chain length")
	usg.register(update, true)

	rootOp := func(use, op, short string) *cobra.Command {
		var sg signing
		var fw, acc, reason, at string
		c := &cobra.Command{
			Use: use + " --framework ID --accreditor DID --key GOVKEY", Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				f := map[string]any{"framework": fw, "accreditor": acc}
				setIf(f, "reason", reason)
				if err := setTime(f, "effectiveAt", at); err != nil {
					return err
				}
				return a.send(cmd.Context(), &sg, op, f, true)
			},
		}
		c.Flags().StringVar(&fw, "framework", "", "framework id")
		c.Flags().StringVar(&acc, "accreditor", "", "root accreditor DID")
		c.Flags().StringVar(&reason, "reason", "", "reason")
		c.Flags().StringVar(&at, "effective-at", "", "effective time (RFC 3339 or date)")
		sg.register(c, true)
		return c
	}
	var limit int
	list := &cobra.Command{
		Use: "list", Short: "List frameworks", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := listPages[record.Framework](cmd.Context(), a.client(), "/v1/frameworks", nil, limit)
			if err != nil {
				return err
			}
			return printListing(a, l, "frameworks", func(w *errWriter, f record.Framework) {
				w.Printf("%s  %s (max chain %d)\n", f.ID, f.Name, f.MaxChainLength)
			})
		},
	}
	limitFlag(list, &limit)
	show := &cobra.Command{
		Use: "show ID", Short: "Show a framework with its root accreditors", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v record.FrameworkView
			if err := a.client().Get(cmd.Context(), "/v1/frameworks/"+client.PathID(args[0]), nil, &v); err != nil {
				return err
			}
			return a.printText(v, func(w *errWriter) {
				w.Printf("%s  %s\n", v.ID, v.Name)
				for _, r := range v.Roots {
					last := r.Events[len(r.Events)-1]
					w.Printf("  root %s  %s\n", r.Accreditor, last.Status)
				}
				for _, r := range v.Recognitions {
					w.Printf("  recognizes %s  %s\n", r.Recognized, r.Events[len(r.Events)-1].Status)
				}
			})
		},
	}
	cmd.AddCommand(create, update,
		rootOp("add-root", record.OpAddRootAccreditor, "Add a root accreditor"),
		rootOp("remove-root", record.OpRemoveRootAccredit, "Remove a root accreditor"),
		list, show)
	return cmd
}

func (a *app) entityCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "entity", Short: "Register, update and show entities"}
	var sg signing
	var id, name string
	var jwks []string
	var regMeta metadataFlags
	register := &cobra.Command{
		Use: "register --id DID --name NAME --key KEY", Short: "Register an entity with its keys", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "id"); err != nil {
				return err
			}
			f := map[string]any{"id": id, "name": name}
			var m record.EntityMetadata
			if err := regMeta.apply(cmd, &m); err != nil {
				return err
			}
			if regMeta.changed(cmd) {
				f["metadata"] = m
			}
			keys, err := publicKeys(jwks)
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				f["keys"] = keys
			}
			return a.send(cmd.Context(), &sg, record.OpRegisterEntity, f, false)
		},
	}
	register.Flags().StringVar(&id, "id", "", "the entity's DID")
	register.Flags().StringVar(&name, "name", "", "display name")
	regMeta.register(register)
	register.Flags().StringSliceVar(&jwks, "public-key", nil, "key file whose public key the entity signs with, repeatable")
	sg.register(register, false)

	var usg signing
	var uid, uname string
	var updMeta metadataFlags
	update := &cobra.Command{
		Use:   "update --id DID [--name NAME] [--country CC ...] --key KEY",
		Short: "Change an entity's name or metadata",
		Long: "Change an entity's name or metadata. The metadata flags given change those fields " +
			"and keep the others: the entity's current metadata is read from the node first " +
			"(an --identifier name= with no value removes that identifier).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "id"); err != nil {
				return err
			}
			f := map[string]any{"id": uid}
			if cmd.Flags().Changed("name") {
				f["name"] = uname
			}
			if updMeta.changed(cmd) {
				var cur record.Entity
				if err := a.client().Get(cmd.Context(), "/v1/entities/"+client.PathID(uid), nil, &cur); err != nil {
					return fmt.Errorf("reading the current metadata of %s: %w", uid, err)
				}
				var m record.EntityMetadata
				if cur.Metadata != nil {
					m = *cur.Metadata // cur was decoded here; its map is ours to change
				}
				if err := updMeta.apply(cmd, &m); err != nil {
					return err
				}
				f["metadata"] = m
			}
			if len(f) == 1 {
				return errors.New("nothing to change: give --name or a metadata flag")
			}
			return a.send(cmd.Context(), &usg, record.OpUpdateEntity, f, false)
		},
	}
	update.Flags().StringVar(&uid, "id", "", "the entity's DID")
	update.Flags().StringVar(&uname, "name", "", "display name")
	updMeta.register(update)
	usg.register(update, false)

	var rsg signing
	var rid string
	var rkeys []string
	rotate := &cobra.Command{
		Use: "rotate-keys --id DID --public-key NEWKEY --key CURRENTKEY", Short: "Replace an entity's keys, signed with a current key", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "id", "public-key"); err != nil {
				return err
			}
			keys, err := publicKeys(rkeys)
			if err != nil {
				return err
			}
			return a.send(cmd.Context(), &rsg, record.OpRotateKeys, map[string]any{"id": rid, "keys": keys}, false)
		},
	}
	rotate.Flags().StringVar(&rid, "id", "", "the entity's DID")
	rotate.Flags().StringSliceVar(&rkeys, "public-key", nil, "key file of a new key, repeatable")
	rsg.register(rotate, false)

	show := &cobra.Command{
		Use: "show DID", Short: "Show an entity and its keys", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var e record.Entity
			if err := a.client().Get(cmd.Context(), "/v1/entities/"+client.PathID(args[0]), nil, &e); err != nil {
				return err
			}
			return a.printText(e, func(w *errWriter) {
				w.Printf("%s  %s (registered: %v, %d keys)\n", e.ID, e.Name, e.Registered, len(e.Keys))
				if e.KeysBoundBy != "" {
					w.Printf("  keys bound by %s\n", e.KeysBoundBy)
				}
				printMetadata(w, e.Metadata)
			})
		},
	}
	var granted bool
	var accLimit, histLimit int
	accs := &cobra.Command{
		Use: "accreditations DID", Short: "Accreditations an entity received (or granted, with --granted)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if granted {
				q.Set("direction", "granted")
			}
			l, err := listPages[record.AccreditationView](cmd.Context(), a.client(), "/v1/entities/"+client.PathID(args[0])+"/accreditations", q, accLimit)
			if err != nil {
				return err
			}
			return printListing(a, l, "accreditations", printAccreditation)
		},
	}
	accs.Flags().BoolVar(&granted, "granted", false, "list the accreditations the entity granted")
	limitFlag(accs, &accLimit)
	history := &cobra.Command{
		Use: "history DID", Short: "Operations an entity signed or that concern it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := listPages[record.OperationView](cmd.Context(), a.client(), "/v1/entities/"+client.PathID(args[0])+"/history", nil, histLimit)
			if err != nil {
				return err
			}
			return printListing(a, l, "operations", func(w *errWriter, o record.OperationView) {
				w.Printf("%6d  %s  %-20s %s\n", o.Index, o.Time.Format(time.RFC3339), o.Op, o.CID)
			})
		},
	}
	cmd.AddCommand(register, update, rotate, show, accs, history)
	return cmd
}

func publicKeys(files []string) ([]json.RawMessage, error) {
	signers, err := loadKeysOptional(files)
	if err != nil {
		return nil, err
	}
	var out []json.RawMessage
	for _, s := range signers {
		jwk, err := s.PublicJWK()
		if err != nil {
			return nil, err
		}
		out = append(out, jwk)
	}
	return out, nil
}

func loadKeysOptional(files []string) ([]*record.Signer, error) {
	if len(files) == 0 {
		return nil, nil
	}
	return loadKeys(files)
}

func (a *app) accreditCmd() *cobra.Command {
	var sg signing
	var fw, subject, action, parent, from, until, form string
	var resources, jurisdictions, evidence []string
	cmd := &cobra.Command{
		Use:   "accredit --framework ID --subject DID --action issue|accredit --resource IRI --key KEY",
		Short: "Grant an accreditation, signed by the accreditor",
		Long: "Grant an accreditation. The signer is the accreditor. Without --parent, trustctl finds the\n" +
			"accreditation that lets the signer accredit (or grants as a root accreditor).\n" +
			"By default the accreditation is EBSI's Verifiable Accreditation: a VC-JWT the accreditor signs\n" +
			"(VerifiableAccreditationToAttest for issue, ToAccredit for accredit), which the registry keeps\n" +
			"and serves as the EBSI attribute body; it needs the cluster at feature level 5. --form operation\n" +
			"writes trustreg's own accredit operation instead (older clusters; --evidence).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fw == "" {
				return usagef("accredit: --framework is required: the id of the framework to accredit in")
			}
			if subject == "" {
				return usagef("accredit: --subject is required: the DID of the accredited entity")
			}
			signers, err := loadKeys(sg.keys)
			if err != nil {
				return err
			}
			accreditor := signers[0].DID
			if parent == "" || parent == "auto" {
				if parent, err = a.findParent(cmd.Context(), fw, accreditor, resources); err != nil {
					return err
				}
			}
			f := map[string]any{"framework": fw, "accreditor": accreditor, "subject": subject, "action": action, "resources": resources}
			if len(jurisdictions) > 0 {
				f["jurisdictions"] = jurisdictions
			}
			if len(evidence) > 0 {
				f["evidence"] = evidence
			}
			if form == accreditFormCredential {
				if len(evidence) > 0 {
					return usagef("accredit: --evidence is carried by --form operation only")
				}
				vf := record.AccreditationCredentialFields{Accreditor: accreditor, Subject: subject, Action: action,
					Resources: resources, Jurisdictions: jurisdictions}
				if vf.ValidFrom, err = parseTimeFlag("valid-from", from); err != nil {
					return err
				}
				if vf.ValidUntil, err = parseTimeFlag("valid-until", until); err != nil {
					return err
				}
				return a.accreditCredential(cmd.Context(), &sg, vf, fw, parent)
			} else if form != accreditFormOperation {
				return usagef("accredit: --form %q must be %s or %s", form, accreditFormCredential, accreditFormOperation)
			}
			setIf(f, "parent", parent)
			if err := setTime(f, "validFrom", from); err != nil {
				return err
			}
			if err := setTime(f, "validUntil", until); err != nil {
				return err
			}
			return a.send(cmd.Context(), &sg, record.OpAccredit, f, false)
		},
	}
	cmd.Flags().StringVar(&fw, "framework", "", "framework id")
	cmd.Flags().StringVar(&subject, "subject", "", "DID of the accredited entity")
	cmd.Flags().StringVar(&action, "action", record.ActionIssue, "issue or accredit")
	cmd.Flags().StringSliceVar(&resources, "resource", nil, "credential-type IRI or *, repeatable")
	cmd.Flags().StringSliceVar(&jurisdictions, "jurisdiction", nil, "ISO 3166 code, repeatable")
	cmd.Flags().StringVar(&from, "valid-from", "", "start of validity (RFC 3339 or date; default now)")
	cmd.Flags().StringVar(&until, "valid-until", "", "end of validity (RFC 3339 or date)")
	cmd.Flags().StringVar(&parent, "parent", "auto", "the signer's own accredit accreditation id, or auto")
	cmd.Flags().StringSliceVar(&evidence, "evidence", nil, "evidence URL, repeatable (--form operation)")
	cmd.Flags().StringVar(&form, "form", accreditFormCredential, "credential (EBSI Verifiable Accreditation VC-JWT) or operation (trustreg's accredit operation)")
	sg.register(cmd, false)
	return cmd
}

// errUnknownFramework: accredit names a framework the node does not know.
var errUnknownFramework = errors.New("is not known to the node")

// findParent picks the accreditation that lets accreditor grant resources
// in framework: none when it is a root accreditor. Its errors are
// accredit's: they say what to change on accredit's command line.
func (a *app) findParent(ctx context.Context, fw, accreditor string, resources []string) (string, error) {
	d, err := a.client().Trust(ctx, url.Values{"entity": {accreditor}, "framework": {fw}, "action": {record.ActionAccredit}})
	if err != nil {
		return "", a.parentLookupError(err)
	}
	if d.Reason == record.ReasonUnknownFramework {
		return "", fmt.Errorf("accredit: the framework %s %w at %s: check --framework (trustctl framework list shows the frameworks it knows)", fw, errUnknownFramework, a.serverName())
	}
	if d.Authorized && len(d.Chain) == 0 {
		return "", nil // a root accreditor
	}
	// Every page: an accreditor may hold more accreditations than one holds.
	q := url.Values{"framework": {fw}, "status": {record.ReasonActive}}
	out, err := listPages[record.AccreditationView](ctx, a.client(), "/v1/entities/"+client.PathID(accreditor)+"/accreditations", q, 0)
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Problem.Status == http.StatusNotFound {
		out, err = listing[record.AccreditationView]{}, nil // the signer is not registered: it holds no accreditation
	}
	if err != nil {
		return "", a.parentLookupError(err)
	}
	for _, acc := range out.Items {
		if acc.Action != record.ActionAccredit {
			continue
		}
		covered := slices.Contains(acc.Resources, record.Wildcard)
		if !covered {
			covered = true
			for _, r := range resources {
				covered = covered && slices.Contains(acc.Resources, r)
			}
		}
		if covered {
			return acc.ID, nil
		}
	}
	return "", fmt.Errorf("accredit: the signer %s is neither a root accreditor of %s nor holds an active accredit accreditation covering %v there: sign with another --key, or pass --parent", accreditor, fw, resources)
}

// parentLookupError is the error of accredit when the look-up of the
// signer's own accreditation failed: no node answered, or the node refused.
func (a *app) parentLookupError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("accredit: no node answers at %s: start trustd or pass --server (%w)", a.serverNames(), ue.Err)
	}
	return fmt.Errorf("accredit: look up the signer's own accreditation (--parent names it and skips this): %w", err)
}

func (a *app) statusChangeCmd(op, short string) *cobra.Command {
	var sg signing
	var reason, at string
	cmd := &cobra.Command{
		Use: op + " ACCREDITATION-ID --key KEY", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := map[string]any{"accreditation": args[0]}
			setIf(f, "reason", reason)
			if err := setTime(f, "effectiveAt", at); err != nil {
				return err
			}
			return a.send(cmd.Context(), &sg, op, f, false)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "reason, kept in the status event")
	cmd.Flags().StringVar(&at, "effective-at", "", "effective time, may lie in the past (RFC 3339 or date; default now)")
	sg.register(cmd, false)
	return cmd
}

func (a *app) recognitionCmd(op, short string) *cobra.Command {
	var sg signing
	var fw, rec string
	var resources []string
	cmd := &cobra.Command{
		Use: op + " --framework ID --recognized ID --key GOVKEY", Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := map[string]any{"framework": fw, "recognized": rec}
			if len(resources) > 0 {
				f["resources"] = resources
			}
			return a.send(cmd.Context(), &sg, op, f, true)
		},
	}
	cmd.Flags().StringVar(&fw, "framework", "", "the recognizing framework")
	cmd.Flags().StringVar(&rec, "recognized", "", "the recognized framework")
	cmd.Flags().StringSliceVar(&resources, "resource", nil, "limit to these resources, repeatable")
	sg.register(cmd, true)
	return cmd
}

func (a *app) signCmd() *cobra.Command {
	var keys []string
	var compact bool
	cmd := &cobra.Command{
		Use:   "sign PAYLOAD-FILE|- --key KEY [--key KEY2]",
		Short: "Sign an operation payload (JSON) offline and print the JWS",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			payload, err := a.readArg(args[0])
			if err != nil {
				return err
			}
			if compact && len(keys) > 1 {
				return usagef("sign: --compact holds one signature: give one --key, or leave --compact out for the JSON serialization")
			}
			// The registry takes only a JSON object with op and iat: a
			// payload that is none would be signed only to be refused.
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(payload, &obj); err != nil {
				return fmt.Errorf("sign: %s is not a JSON object (an operation payload, such as {\"op\": \"accredit\", \"iat\": ...}): %w", args[0], err)
			}
			signers, err := loadKeys(keys)
			if err != nil {
				return err
			}
			var jws []byte
			if compact {
				jws, err = signers[0].SignCompact(payload)
			} else {
				jws, err = record.SignJSON(payload, signers...)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.out, string(jws))
			return err
		},
	}
	cmd.Flags().StringSliceVar(&keys, "key", nil, "key file, repeatable")
	cmd.Flags().BoolVar(&compact, "compact", false, "compact serialization (one signer only)")
	return cmd
}

func (a *app) cosignCmd() *cobra.Command {
	var keys []string
	var inPlace bool
	cmd := &cobra.Command{
		Use:   "cosign JWS-FILE --key KEY",
		Short: "Add a governance member's signature to a signed operation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			jws, err := a.readArg(args[0])
			if err != nil {
				return err
			}
			signers, err := loadKeys(keys)
			if err != nil {
				return err
			}
			for _, s := range signers {
				if jws, err = record.CoSign(jws, s); err != nil {
					return err
				}
			}
			if inPlace {
				return os.WriteFile(args[0], jws, 0o644)
			}
			_, err = fmt.Fprintln(a.out, string(jws))
			return err
		},
	}
	cmd.Flags().StringSliceVar(&keys, "key", nil, "key file, repeatable")
	cmd.Flags().BoolVarP(&inPlace, "in-place", "i", true, "rewrite the file (false: print)")
	return cmd
}

func (a *app) submitCmd() *cobra.Command {
	return &cobra.Command{
		Use: "submit JWS-FILE|-", Short: "Submit a signed operation", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			jws, err := a.readArg(args[0])
			if err != nil {
				return err
			}
			return a.submit(cmd.Context(), jws)
		},
	}
}

func (a *app) readArg(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(a.stdin)
	}
	return os.ReadFile(name)
}

func setIf(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// setTime parses an RFC 3339 time or a date into m[k].
func setTime(m map[string]any, k, v string) error {
	if v == "" {
		return nil
	}
	if t, ok := parseTime(v); ok {
		m[k] = t.UTC().Format(time.RFC3339Nano)
		return nil
	}
	return fmt.Errorf("%s %q must be RFC 3339 (2025-06-01T00:00:00Z) or a date (2025-06-01)", k, v)
}

// metadataFlags are an entity's metadata fields as flags.
type metadataFlags struct {
	legal, country, home, location string
	idents                         []string
}

var metadataFlagNames = []string{"legal-name", "country", "homepage", "location", "identifier"}

func (f *metadataFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.legal, "legal-name", "", "legal name")
	cmd.Flags().StringVar(&f.country, "country", "", "ISO 3166-1 alpha-2 country")
	cmd.Flags().StringVar(&f.home, "homepage", "", "homepage URL")
	cmd.Flags().StringVar(&f.location, "location", "", `place in words, such as "Cambridge, MA, USA"`)
	cmd.Flags().StringSliceVar(&f.idents, "identifier", nil, "other identifier as name=value (e.g. ctid=ce-...), repeatable")
}

func (f *metadataFlags) changed(cmd *cobra.Command) bool {
	return slices.ContainsFunc(metadataFlagNames, cmd.Flags().Changed)
}

// apply sets the fields whose flags were given on m.
func (f *metadataFlags) apply(cmd *cobra.Command, m *record.EntityMetadata) error {
	fl := cmd.Flags()
	if fl.Changed("legal-name") {
		m.LegalName = f.legal
	}
	if fl.Changed("country") {
		m.Country = f.country
	}
	if fl.Changed("homepage") {
		if err := record.CheckHomepage(f.home); err != nil {
			return usagef("--homepage: %w", err)
		}
		m.Homepage = f.home
	}
	if fl.Changed("location") {
		m.Location = f.location
	}
	for _, kv := range f.idents {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usagef("--identifier %q must be name=value", kv)
		}
		if v == "" {
			delete(m.Identifiers, k)
			continue
		}
		if m.Identifiers == nil {
			m.Identifiers = map[string]string{}
		}
		m.Identifiers[k] = v
	}
	return nil
}

func printMetadata(w *errWriter, m *record.EntityMetadata) {
	if m == nil {
		return
	}
	for _, f := range [][2]string{{"legal name", m.LegalName}, {"country", m.Country}, {"homepage", m.Homepage}, {"location", m.Location}} {
		if f[1] != "" {
			w.Printf("  %-10s %s\n", f[0], f[1])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.Identifiers)) {
		w.Printf("  %-10s %s=%s\n", "identifier", k, m.Identifiers[k])
	}
}
