package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// TestTIRIssuerViewAnswersAsTheWholeBuild: the TIR binding's per-issuer
// reads, which build only the page, attribute or revision asked for, give
// exactly what the whole build they replace gave (tirIssuerBefore, kept
// here as it was) cut to the same page: over random logs with roots in
// several frameworks (one added with its credential, roots removed and
// added again), accreditations down chains in each, suspensions,
// reinstatements and revocations now and scheduled, read at times before,
// within and after the grants' validity; for every issuer and some DIDs
// that are none, every page size and number, past the end too, and ids
// that name nothing, another issuer's attribute or another attribute's
// revision.
func TestTIRIssuerViewAnswersAsTheWholeBuild(t *testing.T) {
	for seed := uint64(1); seed <= 2; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g := newTIRLog(t, seed, 500)
			v := g.s.View()
			defer v.Close()
			dids := append(g.dids(), "did:web:w0.example:nobody", g.gov[0].DID)
			// Every page and id at the log's time; the time changes only
			// types and statuses, read at the others in whole and by id.
			for i, now := range []time.Time{g.now, g.now.Add(-400 * day), g.now.Add(2000 * day), t0} {
				checkTIRIssuerViews(t, v, dids, now, i == 0)
			}
		})
	}
}

// newTIRLog is a random log of n entries over four frameworks and the
// random log's two, at the latest feature level, mostly grants and status
// changes: keys[0] is a root of each of the four, keys[1..3] of one each,
// and keys[5] a root of t2 added with its credential.
func newTIRLog(t *testing.T, seed uint64, n int) *randomLog {
	g := newRandomLog(t, seed)
	g.mustRaiseLevel(FeatureLevel)
	for i := range 4 {
		id := fmt.Sprintf("https://example.org/frameworks/t%d", i)
		roots := []*record.Signer{g.keys[0]}
		if i > 0 {
			roots = append(roots, g.keys[i])
		}
		var ids []string
		for _, r := range roots {
			ids = append(ids, r.DID)
		}
		if r := g.op(g.govSign(record.OpCreateFramework, map[string]any{"id": id, "name": fmt.Sprintf("T%d", i), "roots": ids})); !r.Accepted {
			t.Fatalf("framework %s: %s", id, r.Reason)
		}
		g.frameworks = append(g.frameworks, id)
		g.roots[id] = roots
	}
	claims, err := record.NewRootCredential(g.gov[0].DID, g.keys[5].DID, g.now)
	if err != nil {
		t.Fatal(err)
	}
	fw := g.frameworks[2]
	if r := g.op(g.govSign(record.OpAddRootAccreditor, map[string]any{"framework": fw, "accreditor": g.keys[5].DID,
		"credential": string(mustSignVC(t, g.gov[0], claims))})); !r.Accepted {
		t.Fatalf("root with its credential: %s", r.Reason)
	}
	g.roots[fw] = append(g.roots[fw], g.keys[5])
	g.generate(n)
	// generate made r0 and r1 and chose among all six; a last round of
	// grants and status changes.
	for range n / 4 {
		if g.chance(0.3) {
			g.now = g.now.Add([]time.Duration{time.Minute, day, 30 * day}[g.pick(3)])
		}
		if g.chance(0.5) {
			g.accredit()
		} else {
			g.statusChange()
		}
	}
	return g
}

// checkTIRIssuerViews compares the reads of each DID's TIRIssuerView at
// now with the whole build: every attribute by its id and with its
// revisions, by page and by id, and with pages, every page of attributes.
func checkTIRIssuerViews(t *testing.T, v *View, dids []string, now time.Time, pages bool) {
	t.Helper()
	// Ids that name something, to look up under every issuer.
	var others []string
	for _, did := range dids {
		attrs, _ := v.tirIssuerBefore(did, now)
		for _, a := range attrs {
			others = append(others, a.ID, a.Accreditation)
			for _, rev := range a.Revisions {
				others = append(others, rev.ID, rev.Operation)
			}
		}
	}
	others = append(others, "", "0x", strings.Repeat("0", 64), strings.Repeat("g", 64), strings.Repeat("a", 63))
	found, paged, most, mostRevs, roots, credentials := 0, 0, 0, 0, 0, 0
	statuses := map[string]int{}
	for _, did := range dids {
		want, wantErr := v.tirIssuerBefore(did, now)
		x, err := v.TIRIssuerView(did, now)
		if wantErr != nil || err != nil {
			if wantErr == nil || err == nil || err.Error() != wantErr.Error() {
				t.Fatalf("%s: opened with %v, the whole build %v", did, err, wantErr)
			}
			continue
		}
		found++
		most = max(most, len(want))
		for _, a := range want {
			statuses[a.Status]++
			mostRevs = max(mostRevs, len(a.Revisions))
			if a.Accreditation == "" {
				roots++
				if strings.Count(string(a.Body), ".") == 2 && !strings.HasPrefix(string(a.Body), "{") {
					credentials++
				}
			}
		}
		all, err := v.TIRIssuer(did, now)
		if err != nil {
			t.Fatal(err)
		}
		checkTIRAttributes(t, x, fmt.Sprintf("%s: every attribute", did), all, want)
		// Every page of every size up to two past the whole (the gateway
		// asks for 1 to 50: a larger size gives what the whole's gives).
		for size := 1; pages && size <= len(want)+2; size++ {
			for page := 1; page <= (len(want)+size-1)/size+2; page++ {
				paged++
				checkTIRAttributePage(t, x, did, (page-1)*size, size, want)
			}
		}
		for _, offset := range []int{-1, len(want), (1<<31 - 1) * 50, math.MaxInt} {
			checkTIRAttributePage(t, x, did, offset, 50, want)
		}
		checkTIRAttributePage(t, x, did, 0, 0, want)
		// Each attribute by its id, and ids that are none of the issuer's.
		ids := append([]string{}, others...)
		for _, a := range want {
			ids = append(ids, a.ID, strings.ToUpper(a.ID), "0x"+a.ID, a.ID[:63], a.ID+"0")
		}
		for _, id := range ids {
			got, err := x.Attribute(id)
			if err != nil {
				t.Fatalf("%s: attribute %q: %v", did, id, err)
			}
			i := indexOfTIR(want, func(a tirAttributeBefore) string { return a.ID }, id)
			if i < 0 {
				if got != nil {
					t.Fatalf("%s: attribute %q found (%s in %s), the whole build has none", did, id, got.Accreditation, got.Framework)
				}
				continue
			}
			if got == nil {
				t.Fatalf("%s: attribute %q not found", did, id)
			}
			checkTIRAttributes(t, x, fmt.Sprintf("%s: attribute %s", did, id), []TIRAttribute{*got}, want[i:i+1])
			if pages && id == want[i].ID {
				// Some ids of other attributes' revisions.
				n := len(others)
				checkTIRRevisions(t, x, got, &want[i], []string{others[i%n], others[(i*7+1)%n], others[(i*13+2)%n], others[n-1], others[n-5]})
			}
		}
	}
	if found == 0 || found == len(dids) || roots == 0 || credentials == 0 || mostRevs < 3 || statuses[record.StatusActive] == 0 || len(statuses) < 2 || pages && paged == 0 {
		t.Fatalf("%d issuers among %d DIDs, %d root roles (%d with a credential), at most %d revisions, statuses %v: the log lacks what the test is for",
			found, len(dids), roots, credentials, mostRevs, statuses)
	}
	t.Logf("at %s: %d issuers among %d DIDs, up to %d attributes and %d revisions each, %d root roles (%d with a credential), statuses %v, %d pages compared",
		now.Format(time.RFC3339), found, len(dids), most, mostRevs, roots, credentials, statuses, paged)
}

// checkTIRAttributePage compares the page of limit attributes after
// offset with the whole build's.
func checkTIRAttributePage(t *testing.T, x *TIRIssuerView, did string, offset, limit int, want []tirAttributeBefore) {
	t.Helper()
	got, total, err := x.Attributes(offset, limit)
	if err != nil {
		t.Fatal(err)
	}
	from := min(max(offset, 0), len(want))
	w := want[from : from+min(max(limit, 0), len(want)-from)]
	if total != len(want) || got == nil {
		t.Fatalf("%s: attributes (%d, %d): total %d (nil %v), want %d", did, offset, limit, total, got == nil, len(want))
	}
	checkTIRAttributes(t, x, fmt.Sprintf("%s: attributes (%d, %d)", did, offset, limit), got, w)
}

// checkTIRAttributes compares attributes, with all their revisions, with
// the whole build's.
func checkTIRAttributes(t *testing.T, x *TIRIssuerView, what string, got []TIRAttribute, want []tirAttributeBefore) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d attributes, want %d", what, len(got), len(want))
	}
	for i := range got {
		a := &got[i]
		revs, err := x.Revisions(a, 0, math.MaxInt)
		if err != nil {
			t.Fatal(err)
		}
		if a.Revisions != len(revs) || len(revs) == 0 || a.Operation != revs[len(revs)-1].Operation || a.Index != revs[len(revs)-1].Index || !a.IsLatest(&revs[len(revs)-1]) {
			t.Fatalf("%s: attribute %d counts %d revisions, latest %s at %d; read %d", what, i, a.Revisions, a.Operation, a.Index, len(revs))
		}
		b := tirAttributeBefore{ID: a.ID, IssuerType: a.IssuerType, TAO: a.TAO, RootTAO: a.RootTAO, Framework: a.Framework,
			Accreditation: a.Accreditation, Status: a.Status, Body: a.Body, Revisions: beforeRevisions(t, revs)}
		if !reflect.DeepEqual(b, want[i]) {
			t.Fatalf("%s: attribute %d\n got %+v\nwant %+v", what, i, b, want[i])
		}
	}
}

// checkTIRRevisions compares a's revisions, by page and by id, with the
// whole build's (want).
func checkTIRRevisions(t *testing.T, x *TIRIssuerView, a *TIRAttribute, want *tirAttributeBefore, others []string) {
	t.Helper()
	n := len(want.Revisions)
	for size := 1; size <= n+2; size++ {
		for page := 1; page <= (n+size-1)/size+2; page++ {
			offset := (page - 1) * size
			got, err := x.Revisions(a, offset, size)
			if err != nil {
				t.Fatal(err)
			}
			from := min(offset, n)
			w := want.Revisions[from:min(from+size, n)]
			if got == nil || !reflect.DeepEqual(beforeRevisions(t, got), w) {
				t.Fatalf("%s: revisions (%d, %d): %+v, want %+v", a.ID, offset, size, got, w)
			}
			for i := range got {
				if got[i].Number != offset+i {
					t.Fatalf("%s: revision %d numbered %d", a.ID, offset+i, got[i].Number)
				}
			}
		}
	}
	ids := append([]string{}, others...)
	for _, rev := range want.Revisions {
		ids = append(ids, rev.ID, strings.ToUpper(rev.ID), rev.Operation)
	}
	for _, id := range ids {
		got, err := x.Revision(a, id)
		if err != nil {
			t.Fatalf("%s: revision %q: %v", a.ID, id, err)
		}
		i := indexOfTIR(want.Revisions, func(r tirRevisionBefore) string { return r.ID }, id)
		switch {
		case i < 0 && got != nil:
			t.Fatalf("%s: revision %q found (%s), the whole build has none", a.ID, id, got.Operation)
		case i >= 0 && (got == nil || got.Number != i || !reflect.DeepEqual(beforeRevisions(t, []TIRRevision{*got}), want.Revisions[i:i+1])):
			t.Fatalf("%s: revision %q: %+v, want number %d %+v", a.ID, id, got, i, want.Revisions[i])
		}
	}
}

func beforeRevisions(t *testing.T, revs []TIRRevision) []tirRevisionBefore {
	t.Helper()
	out := []tirRevisionBefore{}
	for _, r := range revs {
		out = append(out, tirRevisionBefore{ID: r.ID, IssuerType: r.IssuerType, Status: r.Status, Index: r.Index, Operation: r.Operation, JWS: r.JWS})
	}
	return out
}

func indexOfTIR[T any](s []T, id func(T) string, want string) int {
	for i := range s {
		if id(s[i]) == want {
			return i
		}
	}
	return -1
}

// tirAttributeBefore and tirRevisionBefore are TIRAttribute and
// TIRRevision as the whole build made them.
type tirAttributeBefore struct {
	ID            string
	IssuerType    string
	TAO           string
	RootTAO       string
	Framework     string
	Accreditation string
	Status        string
	Body          []byte
	Revisions     []tirRevisionBefore
}

type tirRevisionBefore struct {
	ID         string
	IssuerType string
	Status     string
	Index      uint64
	Operation  string
	JWS        []byte
}

// tirIssuerBefore is View.TIRIssuer as it was before the binding read
// pages, unchanged: it read every framework's roots and built every
// attribute with every revision, reading the operation behind each.
func (v *View) tirIssuerBefore(did string, now time.Time) ([]tirAttributeBefore, error) {
	e := v.plain()
	out := []tirAttributeBefore{}
	var roots []record.RootAccreditor
	if err := collectInto(v, []byte{tableRoots}, &roots); err != nil {
		return nil, err
	}
	for _, root := range roots {
		if root.Accreditor != did || len(root.Events) == 0 {
			continue
		}
		status := record.StatusRevoked
		if ev, ok := decide.LastRecordedAt(root.Events, now, v.index); ok && ev.Status == record.StatusActive {
			status = record.StatusActive
		}
		attr := tirAttributeBefore{TAO: did, RootTAO: did, Framework: root.Framework, Status: status, IssuerType: tirType(TIRRootTAO, status)}
		if err := v.tirRevisionsBefore(&attr, TIRRootTAO, root.Events); err != nil {
			return nil, err
		}
		out = append(out, attr)
	}
	p := prefix(tableReceived, did)
	ids, err := v.secondParts(p)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		a, err := e.Accreditation(id)
		if err != nil {
			return nil, err
		}
		if a == nil {
			continue
		}
		root, err := e.RootOf(a)
		if err != nil {
			return nil, err
		}
		base := TIRTI
		if a.Action == record.ActionAccredit {
			base = TIRTAO
		}
		status := e.LinkStatus(a, now)
		attr := tirAttributeBefore{TAO: a.Accreditor, RootTAO: root, Framework: a.Framework, Accreditation: a.ID,
			Status: status, IssuerType: tirType(base, status)}
		if err := v.tirRevisionsBefore(&attr, base, a.Events); err != nil {
			return nil, err
		}
		out = append(out, attr)
	}
	if len(out) == 0 {
		return nil, record.Errorf(record.ErrNotFound, "%s is no framework's root accreditor and holds no accreditation", did)
	}
	return out, nil
}

// tirRevisionsBefore is tirRevisions as it was.
func (v *View) tirRevisionsBefore(attr *tirAttributeBefore, base string, events []record.StatusEvent) error {
	for _, ev := range events {
		var rec opRecord
		ok, err := getJSON(v.snap, key(tableOps, ev.Operation), &rec)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("registry: operation %s of a status event is missing", ev.Operation)
		}
		sum := sha256.Sum256(rec.JWS)
		attr.Revisions = append(attr.Revisions, tirRevisionBefore{
			ID: hex.EncodeToString(sum[:]), IssuerType: tirType(base, ev.Status), Status: ev.Status,
			Index: ev.Index, Operation: ev.Operation, JWS: rec.JWS,
		})
	}
	attr.ID = attr.Revisions[0].ID
	attr.Body = record.CompactJWS(attr.Revisions[0].JWS)
	if base == TIRRootTAO {
		// A root added with its VerifiableAuthorisationForTrustChain
		// shows that credential.
		if op, err := record.ParseStoredOperation(attr.Revisions[0].JWS); err == nil {
			if rc, ok := op.Body.(*record.RootChange); ok && rc.Credential != "" {
				attr.Body = []byte(rc.Credential)
			}
		}
	}
	return nil
}
