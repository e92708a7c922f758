package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

// TestTIRAnswersAsTheWholeBuild: the TIR binding's per-issuer answers,
// which read only the page, attribute or revision asked for, are byte for
// byte (status, headers, body) the answers of the handlers they replace,
// which built every attribute of the issuer with every revision and cut
// the page out (kept below as they were, over registry.TIRIssuerView's
// whole reads, which the registry's TestTIRIssuerViewAnswersAsTheWholeBuild
// holds to the whole build as it was). Over a random registry (roots in
// several frameworks, one added with its credential and one removed and
// added again; grants down chains, one subject holding more than a page of
// 50; suspensions, reinstatements and revocations now and scheduled), in
// v4 and v5, with and without ?trustreg and ?version=deprecated: every
// issuer and DIDs that are none, every page size and number past the last
// page, and attribute and revision ids that name nothing, another
// issuer's attribute or another attribute's revision.
func TestTIRAnswersAsTheWholeBuild(t *testing.T) {
	f := newTIRFixture(t, 1)
	now := f.now.Add(10 * 24 * time.Hour)
	cfg := Config{Registry: f.st, Node: tirFixtureNode{f.st}, Now: func() time.Time { return now }}
	got, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := newServerWithTIRBefore(t, cfg)

	requests := 0
	ask := func(path string) (int, []byte) {
		t.Helper()
		requests++
		var answers [2]*httptest.ResponseRecorder
		for i, s := range []*Server{got, want} {
			answers[i] = httptest.NewRecorder()
			s.ServeHTTP(answers[i], httptest.NewRequest(http.MethodGet, "http://node.example"+path, nil))
		}
		g, w := answers[0], answers[1]
		if g.Code != w.Code || g.Body.String() != w.Body.String() || fmt.Sprint(g.Header()) != fmt.Sprint(w.Header()) {
			t.Fatalf("GET %s:\n got %d %v %s\nwant %d %v %s", path, g.Code, g.Header(), g.Body, w.Code, w.Header(), w.Body)
		}
		return g.Code, g.Body.Bytes()
	}
	// Ids that name something, asked of every issuer and attribute.
	var others []string
	dids := append(f.dids(), "did:web:nobody.example", "not-a-did")
	for _, did := range dids {
		code, body := ask(tirBase + "/v4/issuers/" + url.PathEscape(did))
		if code != http.StatusOK {
			continue
		}
		var issuer struct {
			Attributes []struct {
				Body string `json:"body"`
			} `json:"attributes"`
		}
		if err := json.Unmarshal(body, &issuer); err != nil {
			t.Fatal(err)
		}
		for _, a := range issuer.Attributes {
			// The body of an accreditation in its operation form is the
			// operation that made it: the attribute's id is its hash.
			if strings.Count(a.Body, ".") == 2 {
				sum := sha256.Sum256([]byte(a.Body))
				others = append(others, hex.EncodeToString(sum[:]))
			}
		}
	}
	others = append(others, "0x00", strings.Repeat("0", 64), strings.Repeat("z", 64))
	attributes, pageCounts := 0, map[string]int{}
	var revisionIDs []string
	for _, did := range dids {
		for _, v := range []string{"v4", "v5"} {
			base := tirBase + "/" + v + "/issuers/" + url.PathEscape(did)
			variants := []string{"", "trustreg=true"}
			if v == "v5" {
				variants = append(variants, "version=deprecated", "version=deprecated&trustreg=true", "version=latest")
			} else {
				variants = append(variants, "version=deprecated") // 400 in v4
			}
			for _, q := range variants {
				ask(base + "?" + q)
			}
			// The attribute list, at every page size and number.
			code, body := ask(base + "/attributes?page[size]=50")
			if code != http.StatusOK {
				for _, q := range []string{"", "page[after]=2", "trustreg=true"} {
					ask(base + "/attributes?" + q)
				}
				continue
			}
			var list tirPage[tirRef]
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatal(err)
			}
			for size := 1; size <= tirMaxPageSize; size++ {
				for page := 0; page <= (list.Total+size-1)/size+2; page++ {
					ask(fmt.Sprintf("%s/attributes?page[after]=%d&page[size]=%d&trustreg=true", base, page, size))
				}
			}
			for _, q := range []string{"", "page[after]=2147483648", "page[after]=2147483648&page[size]=50", "page[size]=51", "version=latest"} {
				ask(base + "/attributes?" + q)
			}
			// Every attribute with its revisions, and ids that are none of
			// the issuer's: some of another issuer's, and each of its own
			// in capitals (read as its own).
			var own []string
			for p := 1; p <= (list.Total+49)/50; p++ {
				_, body := ask(fmt.Sprintf("%s/attributes?page[after]=%d&page[size]=50", base, p))
				var l tirPage[tirRef]
				if err := json.Unmarshal(body, &l); err != nil {
					t.Fatal(err)
				}
				for _, it := range l.Items {
					own = append(own, it.ID)
				}
			}
			pageCounts[fmt.Sprint(min(list.Total/10*10, 50))]++
			for i, id := range own {
				ask(base + "/attributes/" + strings.ToUpper(id))
				ask(base + "/attributes/" + others[(i*7+len(did))%len(others)] + "?trustreg=true")
				attr := base + "/attributes/" + id
				ask(attr)
				ask(attr + "?trustreg=true")
				attributes++
				if v == "v4" && i%4 != 0 {
					continue // v5's deprecated revisions are v4's, asked of every attribute
				}
				// Another issuer's or attribute's ids, some of them.
				some := []string{others[attributes%len(others)], others[(attributes*7)%len(others)]}
				revisionIDs = append(revisionIDs, checkTIRRevisionsAnswers(t, ask, attr, v, append(some, revisionIDs[max(0, len(revisionIDs)-3):]...))...)
			}
			for _, id := range others[len(others)-3:] {
				ask(base + "/attributes/" + url.PathEscape(id))
			}
		}
	}
	if attributes < 100 || pageCounts["50"] == 0 {
		t.Fatalf("%d attributes read, issuers by attributes held %v: the fixture lacks what the test is for", attributes, pageCounts)
	}
	t.Logf("%d requests, %d attributes read, issuers by attributes held (tens) %v", requests, attributes, pageCounts)
}

// checkTIRRevisionsAnswers asks for an attribute's revisions at some page
// sizes and every page, and for each revision by its id, and ids that are
// none of its revisions; it returns the ids of its revisions after the
// first.
func checkTIRRevisionsAnswers(t *testing.T, ask func(string) (int, []byte), attr, v string, others []string) []string {
	t.Helper()
	variants := []string{"trustreg=true"}
	if v == "v5" {
		variants = append(variants, "version=deprecated&trustreg=true")
	}
	_, body := ask(attr + "/revisions?page[size]=50")
	var list tirPage[tirRef]
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1, 2, 50} {
		for page := 0; page <= (list.Total+size-1)/size+1; page++ {
			for _, q := range variants {
				ask(fmt.Sprintf("%s/revisions?page[after]=%d&page[size]=%d&%s", attr, page, size, q))
			}
		}
	}
	ask(attr + "/revisions?page[after]=2147483648&page[size]=50&trustreg=true")
	ask(attr + "/revisions")
	ids := slices.Clone(others)
	if v == "v5" {
		for _, it := range list.Items {
			ids = append(ids, it.ID)
		}
		ids = append(ids, strings.ToUpper(list.Items[len(list.Items)-1].ID))
	}
	var later []string
	for i, id := range ids {
		if code, _ := ask(attr + "/revisions/" + url.PathEscape(id) + "?trustreg=true"); code == http.StatusOK && i > len(others) {
			later = append(later, id)
		}
	}
	return later
}

// newServerWithTIRBefore is New with the TIR issuer handlers as they were
// before they read pages (tirBefore).
func newServerWithTIRBefore(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]func(*Server, http.ResponseWriter, *http.Request){
		tirBase + "/{version}/issuers/{did}":                                             (*Server).tirIssuerBefore,
		tirBase + "/{version}/issuers/{did}/attributes":                                  (*Server).tirAttributesBefore,
		tirBase + "/{version}/issuers/{did}/attributes/{attribute}":                      (*Server).tirAttributeBefore,
		tirBase + "/{version}/issuers/{did}/attributes/{attribute}/revisions":            (*Server).tirRevisionsBefore,
		tirBase + "/{version}/issuers/{did}/attributes/{attribute}/revisions/{revision}": (*Server).tirRevisionBefore,
	}
	s.routes = newRouter(func(r *http.Request) string { return "no route " + r.URL.Path })
	for _, rt := range routes {
		h := rt.handler
		if b, ok := before[rt.pattern]; ok {
			h, before[rt.pattern] = b, nil
		}
		s.routes.handle(rt.method, rt.pattern, s.instrument(rt.pattern, nil, func(w http.ResponseWriter, r *http.Request) { h(s, w, r) }))
	}
	for p, h := range before {
		if h != nil {
			t.Fatalf("no route %s", p)
		}
	}
	return s
}

// tirWholeAttribute is an attribute with all its revisions, as the
// handlers before read them.
type tirWholeAttribute struct {
	registry.TIRAttribute
	revisions []registry.TIRRevision
}

// tirWholeIssuer reads every attribute of did with every revision, once
// for each server, state and time (tirWholeIssuers): the handlers before
// read it for every request, the reads the test is about.
func (s *Server) tirWholeIssuer(view *registry.View, did string) ([]tirWholeAttribute, error) {
	k := tirWholeKey{s, view.Index(), did, s.cfg.Now()}
	tirWholeIssuers.Lock()
	defer tirWholeIssuers.Unlock()
	w, ok := tirWholeIssuers.m[k]
	if !ok {
		attrs, err := s.readTIRWholeIssuer(view, did)
		w = tirWhole{attrs, err}
		tirWholeIssuers.m[k] = w
	}
	return w.attrs, w.err
}

type tirWholeKey struct {
	s     *Server
	index uint64
	did   string
	now   time.Time
}

type tirWhole struct {
	attrs []tirWholeAttribute
	err   error
}

var tirWholeIssuers = struct {
	sync.Mutex
	m map[tirWholeKey]tirWhole
}{m: map[tirWholeKey]tirWhole{}}

func (s *Server) readTIRWholeIssuer(view *registry.View, did string) ([]tirWholeAttribute, error) {
	x, err := view.TIRIssuerView(did, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	attrs, _, err := x.Attributes(0, math.MaxInt)
	if err != nil {
		return nil, err
	}
	out := make([]tirWholeAttribute, len(attrs))
	for i := range attrs {
		revs, err := x.Revisions(&attrs[i], 0, math.MaxInt)
		if err != nil {
			return nil, err
		}
		out[i] = tirWholeAttribute{attrs[i], revs}
	}
	return out, nil
}

// The handlers before, as they were but for reading through
// tirWholeIssuer.

func pageOfSlice[T any](all []T, page, size int) []T {
	from := min((page-1)*size, len(all))
	return all[from:min(from+size, len(all))]
}

func (s *Server) tirIssuerAttrsBefore(w http.ResponseWriter, r *http.Request, view *registry.View) (string, []tirWholeAttribute, bool) {
	dec, raw := pathID(r, "did", 4)
	var did string
	attrs, err := lookup(dec, raw, func(d string) ([]tirWholeAttribute, error) {
		did = d
		return s.tirWholeIssuer(view, d)
	})
	if err != nil {
		writeError(w, r, err)
		return "", nil, false
	}
	return did, attrs, true
}

func (s *Server) tirIssuerBefore(w http.ResponseWriter, r *http.Request) {
	base, ok := s.tirRequest(w, r, tirVersionParam(r)...)
	if !ok {
		return
	}
	inline, err := tirDeprecated(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	did, attrs, ok := s.tirIssuerAttrsBefore(w, r, view)
	if !ok {
		return
	}
	if !inline {
		s.writeJSONAt(w, r, view.Index(), http.StatusOK, tirLinkedIssuer{DID: did, Attributes: issuerURL(base, did) + "/attributes", HasAttributes: len(attrs) > 0}, cacheShort)
		return
	}
	out := tirInlineIssuer{DID: did, Attributes: make([]tirAttribute, len(attrs))}
	for i := range attrs {
		out.Attributes[i] = tirAttributeOfBefore(r, &attrs[i], &attrs[i].revisions[len(attrs[i].revisions)-1])
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, out, cacheShort)
}

func (s *Server) tirAttributesBefore(w http.ResponseWriter, r *http.Request) {
	base, page, size, ok := s.tirPagedRequest(w, r)
	if !ok {
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	did, attrs, ok := s.tirIssuerAttrsBefore(w, r, view)
	if !ok {
		return
	}
	list := issuerURL(base, did) + "/attributes"
	items := []tirRef{}
	for _, a := range pageOfSlice(attrs, page, size) {
		items = append(items, tirRef{ID: a.ID, Href: list + "/" + a.ID})
	}
	tirList(s, w, r, view, list, page, size, len(attrs), items)
}

func (s *Server) tirAttributeNamedBefore(w http.ResponseWriter, r *http.Request, view *registry.View) (string, *tirWholeAttribute, bool) {
	did, attrs, ok := s.tirIssuerAttrsBefore(w, r, view)
	if !ok {
		return "", nil, false
	}
	id := strings.ToLower(r.PathValue("attribute"))
	for i := range attrs {
		if attrs[i].ID == id {
			return did, &attrs[i], true
		}
	}
	writeError(w, r, record.Errorf(record.ErrNotFound, "%s has no attribute %q", did, r.PathValue("attribute")))
	return "", nil, false
}

func (s *Server) tirAttributeBefore(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.tirRequest(w, r); !ok {
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	did, a, ok := s.tirAttributeNamedBefore(w, r, view)
	if !ok {
		return
	}
	s.writeJSONAt(w, r, view.Index(), http.StatusOK, tirAttributeAnswer{DID: did, Attribute: tirAttributeOfBefore(r, a, &a.revisions[len(a.revisions)-1])}, cacheShort)
}

func (s *Server) tirRevisionsBefore(w http.ResponseWriter, r *http.Request) {
	base, page, size, ok := s.tirPagedRequest(w, r, tirVersionParam(r)...)
	if !ok {
		return
	}
	full, err := tirDeprecated(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	did, a, ok := s.tirAttributeNamedBefore(w, r, view)
	if !ok {
		return
	}
	list := issuerURL(base, did) + "/attributes/" + a.ID + "/revisions"
	revs := pageOfSlice(a.revisions, page, size)
	if full {
		items := make([]tirAttribute, len(revs))
		for i := range revs {
			items[i] = tirAttributeOfBefore(r, a, &revs[i])
		}
		tirList(s, w, r, view, list, page, size, len(a.revisions), items)
		return
	}
	items := make([]tirRevisionRef, len(revs))
	for i, rev := range revs {
		items[i] = tirRevisionRef{ID: rev.ID, Href: list + "/" + rev.ID}
	}
	tirList(s, w, r, view, list, page, size, len(a.revisions), items)
}

func (s *Server) tirRevisionBefore(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.tirRequest(w, r); !ok {
		return
	}
	view := s.cfg.Registry.View()
	defer view.Close()
	did, a, ok := s.tirAttributeNamedBefore(w, r, view)
	if !ok {
		return
	}
	id := strings.ToLower(r.PathValue("revision"))
	for i := range a.revisions {
		if a.revisions[i].ID == id {
			s.writeJSONAt(w, r, view.Index(), http.StatusOK, tirAttributeAnswer{DID: did, Attribute: tirAttributeOfBefore(r, a, &a.revisions[i])}, cacheShort)
			return
		}
	}
	writeError(w, r, record.Errorf(record.ErrNotFound, "attribute %s of %s has no revision %q", a.ID, did, r.PathValue("revision")))
}

func tirAttributeOfBefore(r *http.Request, a *tirWholeAttribute, rev *registry.TIRRevision) tirAttribute {
	typ, status := rev.IssuerType, rev.Status
	if rev == &a.revisions[len(a.revisions)-1] {
		typ, status = a.IssuerType, a.Status
	}
	sum := sha256.Sum256(a.Body)
	out := tirAttribute{Hash: hex.EncodeToString(sum[:]), Body: string(a.Body), IssuerType: typ, TAO: a.TAO, RootTAO: a.RootTAO}
	if show, _ := tirShowExtension(r); show {
		out.Trustreg = &tirExtra{Framework: a.Framework, Accreditation: a.Accreditation, Status: status, Operation: rev.Operation, Index: rev.Index}
	}
	return out
}

// tirFixture is a registry State written entry by entry at commit times it
// sets, as the consensus layer does.
type tirFixture struct {
	t          *testing.T
	st         *registry.State
	rng        *rand.Rand
	index      uint64
	now        time.Time
	gov        *record.Signer
	keys       []*record.Signer
	frameworks []string
	roots      map[string][]*record.Signer
	accs       []tirFixtureAcc
}

type tirFixtureAcc struct {
	id, framework, action string
	accreditor, subject   *record.Signer
}

// tirFixtureNode is a Node whose state is applied up to what it holds.
type tirFixtureNode struct{ st *registry.State }

func (tirFixtureNode) Status() any                                 { return map[string]any{} }
func (tirFixtureNode) Version() any                                { return map[string]any{} }
func (tirFixtureNode) Ready() error                                { return nil }
func (n tirFixtureNode) ReadIndex(context.Context) (uint64, error) { return n.st.AppliedIndex(), nil }
func (n tirFixtureNode) WaitApplied(context.Context, uint64) error { return nil }

// newTIRFixture writes three frameworks, each with keys[0] a root and one
// more root (keys[2] in f2 added with its credential, keys[5] removed from
// f1 and added again), 60 grants from keys[0] to keys[3], and 300 random
// grants and status changes among eight keys, a third of the grants to
// keys[3].
func newTIRFixture(t *testing.T, seed uint64) *tirFixture {
	t.Helper()
	f := &tirFixture{t: t, rng: rand.New(rand.NewPCG(seed, 2)), now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), roots: map[string][]*record.Signer{}}
	f.gov = f.mustKey()
	for range 8 {
		f.keys = append(f.keys, f.mustKey())
	}
	raw, err := json.Marshal(record.Genesis{Consortium: "tir pages", Threshold: 1, Members: []record.Member{{ID: f.gov.DID}}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := registry.Open(t.TempDir(), raw, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	f.applyData(registry.EncodeFeatureLevel(registry.FeatureLevel))
	for i := range 3 {
		id := fmt.Sprintf("https://example.org/frameworks/f%d", i)
		roots := []*record.Signer{f.keys[0]}
		if i != 2 {
			roots = append(roots, f.keys[1+i*4])
		}
		var dids []string
		for _, r := range roots {
			dids = append(dids, r.DID)
		}
		f.mustAccept(f.govSign(record.OpCreateFramework, map[string]any{"id": id, "name": fmt.Sprintf("F%d", i), "roots": dids}))
		f.frameworks = append(f.frameworks, id)
		f.roots[id] = roots
	}
	claims, err := record.NewRootCredential(f.gov.DID, f.keys[2].DID, f.now)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := f.gov.SignVCJWT(claims)
	if err != nil {
		t.Fatal(err)
	}
	f.mustAccept(f.govSign(record.OpAddRootAccreditor, map[string]any{"framework": f.frameworks[2], "accreditor": f.keys[2].DID, "credential": string(cred)}))
	f.roots[f.frameworks[2]] = append(f.roots[f.frameworks[2]], f.keys[2])
	// More than a page of 50 for keys[3], straight from the roots.
	for i := range 60 {
		fw := f.frameworks[i%len(f.frameworks)]
		action := []string{record.ActionIssue, record.ActionAccredit}[i%2]
		r := f.mustAccept(f.sign(f.keys[0], record.OpAccredit, map[string]any{"framework": fw, "accreditor": f.keys[0].DID, "subject": f.keys[3].DID,
			"action": action, "resources": []string{fmt.Sprintf("https://example.org/credentials/Program-%d", i)}}))
		f.accs = append(f.accs, tirFixtureAcc{id: r.ID, framework: fw, action: action, accreditor: f.keys[0], subject: f.keys[3]})
	}
	for i := 0; i < 300; i++ {
		if f.rng.Float64() < 0.3 {
			f.now = f.now.Add([]time.Duration{time.Minute, time.Hour, 24 * time.Hour, 30 * 24 * time.Hour}[f.rng.IntN(4)])
		}
		switch {
		case i == 100:
			f.mustAccept(f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": f.frameworks[1], "accreditor": f.keys[5].DID}))
		case i == 200:
			f.mustAccept(f.govSign(record.OpAddRootAccreditor, map[string]any{"framework": f.frameworks[1], "accreditor": f.keys[5].DID}))
		case f.rng.Float64() < 0.6 || len(f.accs) == 0:
			f.accredit()
		default:
			f.statusChange()
		}
	}
	return f
}

func (f *tirFixture) mustKey() *record.Signer {
	f.t.Helper()
	k, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

func (f *tirFixture) dids() []string {
	dids := []string{f.gov.DID}
	for _, k := range f.keys {
		dids = append(dids, k.DID)
	}
	return dids
}

func (f *tirFixture) applyData(data []byte) *record.Result {
	f.t.Helper()
	f.index++
	return f.st.ApplyBatch([]registry.Entry{{Index: f.index, Time: f.now, Data: data}})[0]
}

func (f *tirFixture) apply(jws []byte) *record.Result {
	return f.applyData(registry.EncodeOperation(jws))
}

func (f *tirFixture) mustAccept(jws []byte) *record.Result {
	f.t.Helper()
	r := f.apply(jws)
	if !r.Accepted {
		f.t.Fatalf("%s refused: %s", r.Op, r.Reason)
	}
	return r
}

func (f *tirFixture) sign(s *record.Signer, op string, fields map[string]any) []byte {
	f.t.Helper()
	return SignOp(f.t, s, f.now, op, fields)
}

func (f *tirFixture) govSign(op string, fields map[string]any) []byte {
	f.t.Helper()
	return GovSignOp(f.t, []*record.Signer{f.gov}, f.now, op, fields)
}

func (f *tirFixture) when(spread ...time.Duration) string {
	return f.now.Add(spread[f.rng.IntN(len(spread))]).Format(time.RFC3339)
}

// accredit grants from a root or a holder of a grant to accredit, mostly
// down a chain, to any key, a third of the time keys[3].
func (f *tirFixture) accredit() {
	const day = 24 * time.Hour
	fw := f.frameworks[f.rng.IntN(len(f.frameworks))]
	holders := slices.Clone(f.roots[fw])
	for _, a := range f.accs {
		if a.framework == fw && a.action == record.ActionAccredit {
			holders = append(holders, a.subject)
		}
	}
	accreditor := holders[f.rng.IntN(len(holders))]
	var parents []string
	for _, a := range f.accs {
		if a.framework == fw && a.action == record.ActionAccredit && a.subject.DID == accreditor.DID {
			parents = append(parents, a.id)
		}
	}
	subject := f.keys[f.rng.IntN(len(f.keys))]
	if f.rng.Float64() < 0.35 {
		subject = f.keys[3]
	}
	action := record.ActionIssue
	if f.rng.Float64() < 0.4 {
		action = record.ActionAccredit
	}
	fields := map[string]any{"framework": fw, "accreditor": accreditor.DID, "subject": subject.DID, "action": action,
		"resources": []string{"https://example.org/credentials/Nursing"}}
	if len(parents) > 0 && f.rng.Float64() < 0.9 {
		fields["parent"] = parents[f.rng.IntN(len(parents))]
	}
	if f.rng.Float64() < 0.7 {
		fields["validFrom"] = f.when(-365*day, -day, 0, day, 30*day)
	}
	if f.rng.Float64() < 0.5 {
		fields["validUntil"] = f.when(40*day, 365*day, 1000*day)
	}
	if r := f.apply(f.sign(accreditor, record.OpAccredit, fields)); r.Accepted && !r.Duplicate {
		f.accs = append(f.accs, tirFixtureAcc{id: r.ID, framework: fw, action: action, accreditor: accreditor, subject: subject})
	}
}

// statusChange suspends, reinstates or revokes a grant, as its
// accreditor, now or at another time.
func (f *tirFixture) statusChange() {
	const day = 24 * time.Hour
	a := f.accs[f.rng.IntN(len(f.accs))]
	op := []string{record.OpSuspend, record.OpSuspend, record.OpReinstate, record.OpReinstate, record.OpRevoke}[f.rng.IntN(5)]
	fields := map[string]any{"accreditation": a.id, "reason": fmt.Sprintf("r%d", f.rng.IntN(9))}
	if f.rng.Float64() < 0.3 {
		fields["effectiveAt"] = f.when(-30*day, -time.Hour, time.Hour, 10*day)
	}
	f.apply(f.sign(a.accreditor, op, fields))
}
