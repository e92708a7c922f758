package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
)

// The DCC issuer registry format (Digital Credentials Consortium): known
// issuers by DID, each with a name and optionally a location and a URL.
// Export reads GET /v1/export/dcc; import (dcc_import.go) registers the
// file's issuers as entities and, when asked, accredits them.

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
				if a.output == outputYAML {
					return usagef("export dcc: --out writes the registry's JSON document as the node serves it; -o yaml only prints")
				}
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
			return a.printText(reg, func(w *errWriter) { w.Println(buf.String()) })
		},
	}
	dcc.Flags().StringVar(&fw, "framework", "", "only this framework's issuers")
	dcc.Flags().StringVar(&out, "out", "", "write to this file (complete or not at all) instead of standard output")
	dcc.Flags().BoolVar(&force, "force", false, "replace --out if it exists")
	cmd.AddCommand(dcc)
	return cmd
}

// dccImportEntry is one issuer of a DCC file, checked.
type dccImportEntry struct {
	DID string
	// Lines are the lines of the file the DID is a key on: more than one
	// when the file lists the issuer again with the same details.
	Lines []int
	record.DCCEntry
}

// errDCCFormat: the file is not a DCC issuer registry.
var errDCCFormat = errors.New(`not a DCC issuer registry ({"meta": {...}, "registry": {DID: {name, location, url}}})`)

// dccOccurrence is one appearance of a DID as a key of the registry
// object, before its entry is decoded.
type dccOccurrence struct {
	line int
	raw  json.RawMessage
}

// parseDCC reads a DCC issuer registry file and checks every entry,
// reporting all the bad ones at once, each with its line. The registry
// object is read key by key, so that a DID listed twice is seen (a JSON
// object decoded into a map keeps only its last value): listed again with
// the same details, it is imported once and the entry carries both lines;
// with other details it is a bad entry, since the file does not say which
// details are right.
func parseDCC(data []byte) ([]dccImportEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	occ, order, err := readDCCRegistry(dec, data)
	if err != nil {
		return nil, err
	}
	var out []dccImportEntry
	var errs []lineError
	for _, did := range order {
		var entries []record.DCCEntry
		var bad bool
		for _, o := range occ[did] {
			var e record.DCCEntry
			d := json.NewDecoder(bytes.NewReader(o.raw))
			d.DisallowUnknownFields()
			if err := d.Decode(&e); err != nil {
				errs = append(errs, lineError{o.line, fmt.Errorf("line %d: %s: %w", o.line, did, err)})
				bad = true
				continue
			}
			if err := checkDCCEntry(dccImportEntry{DID: did, DCCEntry: e}); err != nil {
				errs = append(errs, lineError{o.line, fmt.Errorf("line %d: %s: %w", o.line, did, err)})
				bad = true
				continue
			}
			entries = append(entries, e)
		}
		if bad {
			continue
		}
		e := dccImportEntry{DID: did, DCCEntry: entries[0]}
		var differ bool
		for i, o := range occ[did] {
			e.Lines = append(e.Lines, o.line)
			differ = differ || entries[i] != entries[0]
		}
		if differ {
			var each []string
			for i, o := range occ[did] {
				each = append(each, fmt.Sprintf("line %d: %s", o.line, describeDCC(entries[i])))
			}
			errs = append(errs, lineError{occ[did][0].line, fmt.Errorf("line %d: %s: %w %d times with different details (%s): keep the right one",
				occ[did][0].line, did, errDCCRepeated, len(entries), strings.Join(each, "; "))})
			continue
		}
		out = append(out, e)
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(x, y lineError) int { return x.line - y.line })
		all := make([]error, len(errs))
		for i, e := range errs {
			all[i] = e.err
		}
		return nil, fmt.Errorf("%d bad entries, nothing imported:\n  %w", len(errs), joinLines(all))
	}
	slices.SortFunc(out, func(x, y dccImportEntry) int { return strings.Compare(x.DID, y.DID) })
	return out, nil
}

// lineError is a bad entry of a DCC file and the line it starts on.
type lineError struct {
	line int
	err  error
}

// errDCCRepeated: a DCC file lists a DID more than once.
var errDCCRepeated = errors.New("listed")

// readDCCRegistry reads the file's top-level object ("meta" and "registry",
// nothing else) and returns every occurrence of each DID of "registry" with
// its line, and the DIDs in the order they first appear.
func readDCCRegistry(dec *json.Decoder, data []byte) (map[string][]dccOccurrence, []string, error) {
	if err := expectDelim(dec, '{'); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errDCCFormat, err)
	}
	var occ map[string][]dccOccurrence
	var order []string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", errDCCFormat, err)
		}
		name, _ := tok.(string)
		if seen[name] {
			return nil, nil, fmt.Errorf("%w: %q given twice (line %d)", errDCCFormat, name, lineAt(data, dec.InputOffset()))
		}
		seen[name] = true
		switch name {
		case "meta":
			var meta json.RawMessage
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, fmt.Errorf("%w: meta: %w", errDCCFormat, err)
			}
		case "registry":
			if occ, order, err = readDCCEntries(dec, data); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, fmt.Errorf("%w: unknown field %q (line %d)", errDCCFormat, name, lineAt(data, dec.InputOffset()))
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errDCCFormat, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%w: data after the registry's closing brace (line %d)", errDCCFormat, lineAt(data, dec.InputOffset()))
	}
	if occ == nil {
		return nil, nil, errors.New(`no "registry" object: a DCC issuer registry maps DIDs to {name, location, url} under "registry"`)
	}
	return occ, order, nil
}

// readDCCEntries reads the registry object, keeping every occurrence of a
// key.
func readDCCEntries(dec *json.Decoder, data []byte) (map[string][]dccOccurrence, []string, error) {
	if err := expectDelim(dec, '{'); err != nil {
		return nil, nil, fmt.Errorf(`%w: "registry": %w`, errDCCFormat, err)
	}
	occ := map[string][]dccOccurrence{}
	var order []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", errDCCFormat, err)
		}
		did, _ := tok.(string)
		line := lineAt(data, dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("%w: line %d: %s: %w", errDCCFormat, line, did, err)
		}
		if occ[did] == nil {
			order = append(order, did)
		}
		occ[did] = append(occ[did], dccOccurrence{line: line, raw: raw})
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, nil, fmt.Errorf(`%w: "registry": %w`, errDCCFormat, err)
	}
	return occ, order, nil
}

// expectDelim reads the next token, which must be the delimiter d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return fmt.Errorf("want %q, found %q", string(d), fmt.Sprint(tok))
	}
	return nil
}

// lineAt is the 1-based line of data that offset lies on.
func lineAt(data []byte, offset int64) int {
	return 1 + bytes.Count(data[:min(int(offset), len(data))], []byte("\n"))
}

// describeDCC writes an entry's details for a report: its name, and its
// location and url when it has them.
func describeDCC(e record.DCCEntry) string {
	s := fmt.Sprintf("name %q", e.Name)
	if e.Location != "" {
		s += fmt.Sprintf(", location %q", e.Location)
	}
	if e.URL != "" {
		s += fmt.Sprintf(", url %q", e.URL)
	}
	return s
}

// joinLines joins errors one per indented line; errors.Is and As see
// each of them.
func joinLines(errs []error) error { return joinedLines(errs) }

// joinedLines is errors written one per indented line.
type joinedLines []error

func (l joinedLines) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n  ")
}

func (l joinedLines) Unwrap() []error { return l }

// checkDCCEntry applies the registry's own rules for an entity, so that
// a bad entry is found before anything is submitted.
func checkDCCEntry(e dccImportEntry) error {
	if !strings.HasPrefix(e.DID, "did:") {
		return errors.New("the key is not a DID")
	}
	if err := record.ValidateEntity(e.DID, e.Name, e.metadata()); err != nil {
		return err
	}
	// The registry refuses such a homepage from feature level 11; the
	// whole file is checked before anything is sent.
	return record.CheckHomepage(e.URL)
}
