package registry

import (
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// dccTime is the format DCC registries date themselves in.
const dccTime = "2006-01-02T15:04:05-07:00"

// DCCExport lists, in the DCC issuer registry format, every entity that
// holds an issue accreditation whose chain is in force at now: in
// framework, or in any framework when it is empty. An entry is named by
// the entity's registered name (its DID when it has none), located by its
// metadata's location (else its country), and linked to its homepage.
// Created is the earliest commit time of the accreditations that put the
// issuers on the list; Updated is the commit time of the registry's last
// applied entry. It reads every accreditation (of the framework), and
// refuses an export that would read more than MaxExportScan of them, with
// what to ask instead.
func (v *View) DCCExport(framework string, now time.Time) (_ *record.DCCRegistry, err error) {
	// Not through the record cache: an export reads every accreditation
	// once, and would push out the records trust questions keep there.
	e := v.plain()
	p := []byte{tableAccreditation}
	idOf := func(k []byte) string { return string(k[1:]) }
	if framework != "" {
		f, err := e.Framework(framework)
		if err != nil {
			return nil, err
		}
		if f == nil {
			return nil, record.Errorf(record.ErrNotFound, "framework %q", framework)
		}
		p = prefix(tableByFramework, framework)
		idOf = func(k []byte) string { return string(k[len(p):]) }
	}
	out := &record.DCCRegistry{Registry: map[string]record.DCCEntry{}}
	var created time.Time
	next, err := v.scanUpTo(p, Page{}, v.maxExportScan()+1, v.maxExportScan(), func(k, _ []byte) (bool, error) {
		a, err := e.Accreditation(idOf(k))
		if err != nil {
			return false, err
		}
		if a == nil || a.Action != record.ActionIssue {
			return false, nil
		}
		if _, listed := out.Registry[a.Subject]; listed {
			return false, nil
		}
		if _, reason, _, err := e.Chain(a, now); err != nil {
			return false, err
		} else if reason != record.ReasonActive {
			return false, nil
		}
		entry, err := v.dccEntry(a.Subject)
		if err != nil {
			return false, err
		}
		out.Registry[a.Subject] = entry
		if created.IsZero() || a.CreatedAt.Before(created) {
			created = a.CreatedAt
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if next != "" {
		return nil, record.Errorf(record.ErrBadQuery, "the export would read more than %d accreditations: export one framework (framework=), or page through /v1/accreditations?action=issue&status=active", v.maxExportScan())
	}
	if !created.IsZero() {
		out.Meta.Created = created.UTC().Format(dccTime)
	}
	if ns := v.commitTime; ns != 0 {
		out.Meta.Updated = time.Unix(0, ns).UTC().Format(dccTime)
	}
	if out.Meta.Created == "" {
		// No issuer is listed: the list is as old as the state it was
		// read from (an empty string is no date).
		out.Meta.Created = out.Meta.Updated
	}
	return out, nil
}

func (v *View) dccEntry(did string) (record.DCCEntry, error) {
	var ent record.Entity
	ok, err := getJSON(v.snap, key(tableEntities, did), &ent)
	if err != nil || !ok {
		return record.DCCEntry{Name: did}, err
	}
	entry := record.DCCEntry{Name: ent.Name}
	if m := ent.Metadata; m != nil {
		entry.Location, entry.URL = m.Location, webURL(m.Homepage)
		if entry.Location == "" {
			entry.Location = m.Country
		}
	}
	return entry, nil
}

// webURL returns s if it is a web address (http or https, with a host),
// else "". An entity's homepage is free-form metadata its signer chose:
// the export, which wallets show as a link beside the issuer's name,
// carries only what a browser opens as a page (not javascript: or data:).
func webURL(s string) string {
	if s == "" || record.CheckHomepage(s) != nil {
		return ""
	}
	return s
}
