package gateway_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

type tirPage struct {
	Self  string `json:"self"`
	Items []struct {
		DID  string `json:"did"`
		ID   string `json:"id"`
		Href string `json:"href"`
	} `json:"items"`
	Total    int               `json:"total"`
	PageSize int               `json:"pageSize"`
	Links    map[string]string `json:"links"`
}

type tirAttr struct {
	Hash       string `json:"hash"`
	Body       string `json:"body"`
	IssuerType string `json:"issuerType"`
	TAO        string `json:"tao"`
	RootTAO    string `json:"rootTao"`
	Trustreg   struct {
		Framework     string `json:"framework"`
		Accreditation string `json:"accreditation"`
		Status        string `json:"status"`
		Operation     string `json:"operation"`
		Index         uint64 `json:"index"`
	} `json:"trustreg"`
}

// tirGet GETs a TIR path (relative to the v4 or v5 base, or an absolute
// link from an answer), with trustreg's fields (?trustreg=true), and
// decodes a 200 answer into v.
func (e *env) tirGet(path string, v any) {
	e.t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = e.n.GatewayURL() + "/trusted-issuers-registry" + path
	}
	if sep := "?"; strings.Contains(path, "/trusted-issuers-registry/") && !strings.Contains(path, "trustreg=") {
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "trustreg=true"
	}
	resp, body := e.get(strings.TrimPrefix(path, e.n.GatewayURL()))
	if resp.StatusCode != 200 {
		e.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		e.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// checkBody checks that an attribute's hash is the SHA-256 of its body
// (the compact JWS that made the role) and returns the body.
func checkBody(t *testing.T, a tirAttr) []byte {
	t.Helper()
	jws := []byte(a.Body)
	sum := sha256.Sum256(jws)
	if hex.EncodeToString(sum[:]) != a.Hash || strings.Count(a.Body, ".") != 2 {
		t.Fatalf("body %q does not match hash %s, or is no compact JWS", a.Body, a.Hash)
	}
	return jws
}

// TestEBSITrustedIssuersRegistry reads the registry the way EBSI verifier
// software does (TIR v4 and v5): the issuers paged, an issuer's attributes
// with their types and chain, and an attribute's revisions as its status
// changes, each body the exact signed operation.
func TestEBSITrustedIssuersRegistry(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	want := []string{e.root.DID, e.qa.DID, e.college.DID}
	slices.Sort(want)

	var all tirPage
	e.tirGet("/v4/issuers", &all)
	var got []string
	for _, it := range all.Items {
		got = append(got, it.DID)
	}
	if all.Total != 3 || all.PageSize != 10 || !slices.Equal(got, want) {
		t.Fatalf("issuers: %+v, want %v", all, want)
	}
	// Paged by two: page 2 holds the third issuer; the links lead there.
	var p1, p2 tirPage
	e.tirGet("/v5/issuers?page[size]=2", &p1)
	if len(p1.Items) != 2 || p1.Total != 3 || !strings.Contains(p1.Links["next"], "page[after]=2") || !strings.Contains(p1.Links["last"], "page[after]=2") {
		t.Fatalf("page 1: %+v", p1)
	}
	e.tirGet(p1.Links["next"], &p2)
	if len(p2.Items) != 1 || p2.Items[0].DID != want[2] || !strings.Contains(p2.Links["prev"], "page[after]=1") {
		t.Fatalf("page 2: %+v", p2)
	}
	var beyond tirPage
	e.tirGet("/v4/issuers?page[after]=9&page[size]=2", &beyond)
	if len(beyond.Items) != 0 || beyond.Total != 3 {
		t.Fatalf("past the last page: %+v", beyond)
	}

	// v4 shows attributes inline: the QA agency is a TAO under the root.
	var qa struct {
		DID        string    `json:"did"`
		Attributes []tirAttr `json:"attributes"`
	}
	e.tirGet("/v4/issuers/"+url.PathEscape(e.qa.DID), &qa)
	if qa.DID != e.qa.DID || len(qa.Attributes) != 1 {
		t.Fatalf("qa: %+v", qa)
	}
	a := qa.Attributes[0]
	if a.IssuerType != registry.TIRTAO || a.TAO != e.root.DID || a.RootTAO != e.root.DID ||
		a.Trustreg.Accreditation != e.qaAcc || a.Trustreg.Framework != fw || a.Trustreg.Status != record.StatusActive {
		t.Fatalf("qa attribute: %+v", a)
	}
	if record.CIDOf(checkBody(t, a)) != e.qaAcc {
		t.Fatal("the qa attribute's body is not the accredit operation")
	}
	var root struct {
		Attributes []tirAttr `json:"attributes"`
	}
	e.tirGet("/v4/issuers/"+e.root.DID, &root)
	if len(root.Attributes) != 1 || root.Attributes[0].IssuerType != registry.TIRRootTAO || root.Attributes[0].RootTAO != e.root.DID {
		t.Fatalf("root: %+v", root)
	}
	checkBody(t, root.Attributes[0])

	// v5 links to the attributes; version=deprecated puts them inline.
	var linked struct {
		DID           string `json:"did"`
		Attributes    string `json:"attributes"`
		HasAttributes bool   `json:"hasAttributes"`
	}
	e.tirGet("/v5/issuers/"+url.PathEscape(e.college.DID), &linked)
	if linked.DID != e.college.DID || !linked.HasAttributes || !strings.HasSuffix(linked.Attributes, "/attributes") {
		t.Fatalf("v5 college: %+v", linked)
	}
	var attrs tirPage
	e.tirGet(linked.Attributes, &attrs)
	if attrs.Total != 1 || len(attrs.Items) != 1 {
		t.Fatalf("college attributes: %+v", attrs)
	}
	attrID, attrURL := attrs.Items[0].ID, attrs.Items[0].Href
	var one struct {
		DID       string  `json:"did"`
		Attribute tirAttr `json:"attribute"`
	}
	e.tirGet(attrURL, &one)
	if one.DID != e.college.DID || one.Attribute.IssuerType != registry.TIRTI || one.Attribute.TAO != e.qa.DID ||
		one.Attribute.RootTAO != e.root.DID || one.Attribute.Hash != attrID {
		t.Fatalf("college attribute: %+v", one)
	}
	var deprecated struct {
		Attributes []tirAttr `json:"attributes"`
	}
	e.tirGet("/v5/issuers/"+url.PathEscape(e.college.DID)+"?version=deprecated", &deprecated)
	if len(deprecated.Attributes) != 1 || deprecated.Attributes[0] != one.Attribute {
		t.Fatalf("v5 deprecated: %+v", deprecated)
	}

	// Suspending the college's accreditation adds a revision: the attribute
	// keeps its id and its body (the accreditation), shows Revoked with
	// trustreg's status, and its first revision still shows the TI it was.
	susp := e.mustSubmit(e.sign(e.qa, record.OpSuspend, map[string]any{"accreditation": e.colAcc}))
	e.tirGet(attrURL, &one)
	if one.Attribute.IssuerType != registry.TIRRevoked || one.Attribute.Trustreg.Status != record.ReasonSuspended ||
		one.Attribute.Trustreg.Operation != susp.CID || one.Attribute.Hash != attrID {
		t.Fatalf("suspended college attribute: %+v", one)
	}
	checkBody(t, one.Attribute)
	var revs tirPage
	e.tirGet(attrURL+"/revisions", &revs)
	if revs.Total != 2 || len(revs.Items) != 2 || revs.Items[0].ID != attrID || revs.Items[1].ID != attrIDOf(susp.CID) {
		t.Fatalf("revisions: %+v", revs)
	}
	var first struct {
		Attribute tirAttr `json:"attribute"`
	}
	e.tirGet(revs.Items[0].Href, &first)
	if first.Attribute.IssuerType != registry.TIRTI || first.Attribute.Trustreg.Status != record.StatusActive ||
		first.Attribute.Trustreg.Operation != e.colAcc {
		t.Fatalf("first revision: %+v", first)
	}
	checkBody(t, first.Attribute)

	// The root revokes the QA agency: its attribute says Revoked; the
	// college's reinstated one is a TI again, and a client walking up its
	// tao finds the break.
	e.mustSubmit(e.sign(e.qa, record.OpReinstate, map[string]any{"accreditation": e.colAcc}))
	e.mustSubmit(e.sign(e.root, record.OpRevoke, map[string]any{"accreditation": e.qaAcc}))
	e.tirGet("/v4/issuers/"+url.PathEscape(e.qa.DID), &qa)
	if len(qa.Attributes) != 1 || qa.Attributes[0].IssuerType != registry.TIRRevoked || qa.Attributes[0].Trustreg.Status != record.StatusRevoked {
		t.Fatalf("revoked qa: %+v", qa)
	}
	e.tirGet(attrURL, &one)
	if one.Attribute.IssuerType != registry.TIRTI || one.Attribute.TAO != e.qa.DID {
		t.Fatalf("reinstated college: %+v", one)
	}
}

// TestEBSITrustedIssuersRegistryErrors: unknown issuers, attributes and
// revisions are 404s, bad paging and unknown parameters 400s, each a
// problem that says what is wrong.
func TestEBSITrustedIssuersRegistryErrors(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	stranger, _ := record.GenerateKey(record.KeyEd25519)
	col := "/trusted-issuers-registry/v4/issuers/" + url.PathEscape(e.college.DID)
	for _, tc := range []struct {
		path   string
		status int
		detail string
	}{
		{"/trusted-issuers-registry/v3/issuers", 404, "v4 and v5"},
		{"/trusted-issuers-registry/v4/issuers/" + stranger.DID, 404, "holds no accreditation"},
		{"/trusted-issuers-registry/v4/issuers?page[size]=51", 400, "page[size]"},
		{"/trusted-issuers-registry/v4/issuers?page[size]=0", 400, "page[size]"},
		{"/trusted-issuers-registry/v4/issuers?page[after]=x", 400, "page[after]"},
		{"/trusted-issuers-registry/v4/issuers?page[after]=9223372036854775807", 400, "page[after]"},
		{"/trusted-issuers-registry/v4/issuers?page=2", 400, `unknown query parameter \"page\"`},
		{"/trusted-issuers-registry/v5/issuers/" + e.qa.DID + "?version=old", 400, "latest or deprecated"},
		{col + "/attributes/" + strings.Repeat("ab", 32), 404, "has no attribute"},
		{col + "/attributes/" + strings.Repeat("ab", 32) + "/revisions", 404, "has no attribute"},
	} {
		resp, body := e.get(tc.path)
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), tc.detail) {
			t.Errorf("GET %s: %d %s, want %d with %q", tc.path, resp.StatusCode, body, tc.status, tc.detail)
		}
	}
	var attrs tirPage
	e.tirGet("/v4/issuers/"+url.PathEscape(e.college.DID)+"/attributes", &attrs)
	resp, body := e.get(strings.TrimPrefix(attrs.Items[0].Href, e.n.GatewayURL()) + "/revisions/" + strings.Repeat("cd", 32))
	if resp.StatusCode != 404 || !strings.Contains(string(body), "has no revision") {
		t.Errorf("unknown revision: %d %s", resp.StatusCode, body)
	}
}
