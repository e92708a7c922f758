package node

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/record"
)

// A verifier that asks a node for a proof recomputes the decision from the
// proven records with the same code the node decided with (SPEC §7). Over a
// random registry of two frameworks (grants down chains of up to four
// links in either, with validity windows in the past and future,
// suspensions, reinstatements and revocations by accreditors, peers and
// the root with effectiveAt before and after now, root changes,
// recognitions of each other and of a framework the registry does not hold
// for changing resources, now or at another time, status-list versions),
// every proven answer to random questions (entities the log knows and one
// it does not, in either framework or an unknown one; now, a year back, a
// year on; the latest state and an earlier index) must verify offline
// against the genesis as the answer to the question asked and decide what
// the node's plain answer to the same question decides at the proof's
// index: the verdict, the reason and the chain. A proven TRQP recognition
// must verify as the answer asked and decide as the node does at its
// index. A proven status-list record must verify with the credential as
// served, prove the list's current version and decide its issuer's
// authorization as the plain answer does, in the framework the API names.
//
// CI runs one registry; more, e.g. -node.randomproof-seeds 20, run more.
func TestRandomProofAnswersVerify(t *testing.T) {
	var recognized, recognitions int
	for seed := range uint64(*randomProofSeeds) {
		t.Run(fmt.Sprintf("seed=%d", seed+1), func(t *testing.T) {
			r, n := randomProofAnswers(t, seed+1)
			recognized, recognitions = recognized+r, recognitions+n
		})
	}
	// Over the seeds (one registry may withdraw its recognitions early).
	if !t.Failed() && (recognized == 0 || recognized == recognitions) {
		t.Fatalf("%d of %d recognition answers recognized: the questions do not reach both verdicts", recognized, recognitions)
	}
}

var randomProofSeeds = flag.Int("node.randomproof-seeds", 1, "TestRandomProofAnswersVerify: how many random registries (seeds 1..N)")

// randomProofAnswers runs one registry; it returns how many recognition
// answers recognized, of how many.
func randomProofAnswers(t *testing.T, seed uint64) (recognized, recognitions int) {
	d := mustDevProofChain(t)
	n, c := d.n, d.chain
	root := d.root
	rng := rand.New(rand.NewPCG(seed, 67))
	now := time.Now().UTC()
	when := func(spread ...time.Duration) string {
		return now.Add(spread[rng.IntN(len(spread))]).Format(time.RFC3339)
	}
	const year = 365 * 24 * time.Hour

	type grant struct {
		id, framework, action string
		accreditor, holder    *record.Signer
	}
	actors := []*record.Signer{root}
	for range 8 {
		actors = append(actors, mustKey(t))
	}
	resources := []string{c.nursing, "https://example.org/Pharmacy"}
	// Two frameworks with grants, roots and recognitions of each other and
	// of a third that the registry does not hold (the chain recognized
	// c.other before it existed).
	third := "https://third.example/fw"
	recognizedResources := [][]string{{c.nursing}, {resources[1]}, resources, {record.Wildcard}}
	frameworks := [2]string{c.fw, c.other}
	d.submit(signed(t, d.gov, map[string]any{"op": record.OpCreateFramework, "id": c.other, "name": "Other", "roots": []string{root.DID}}))
	var grants []grant
	lists := map[string][]byte{} // issuer DID + " " + list id: the current version's bits
	var accepted, refused int
	var lastIndex uint64
	submit := func(k *record.Signer, fields map[string]any) *record.Result {
		t.Helper()
		res, err := n.Submit(t.Context(), signed(t, k, fields))
		if err != nil {
			t.Fatalf("submit %v: %v", fields["op"], err)
		}
		lastIndex = max(lastIndex, res.Index)
		if res.Accepted {
			accepted++
		} else {
			refused++
		}
		return res
	}
	firstIndex := c.accIndex // the chain's first index worth asking about
	write := func(i int) {
		switch w := rng.IntN(100); {
		case w < 45: // a grant, mostly by someone who may give it
			fw := frameworks[rng.IntN(len(frameworks))]
			by := actors[rng.IntN(len(actors))]
			var parents []string
			for _, g := range grants {
				if g.framework == fw && g.action == record.ActionAccredit && g.holder == by {
					parents = append(parents, g.id)
				}
			}
			if by != root && len(parents) == 0 && rng.Float64() < 0.7 {
				by = root
			}
			to := actors[1+rng.IntN(len(actors)-1)]
			action := record.ActionIssue
			if rng.Float64() < 0.5 {
				action = record.ActionAccredit
			}
			f := map[string]any{"op": record.OpAccredit, "framework": fw, "accreditor": by.DID, "subject": to.DID,
				"action": action, "resources": resources[:1+rng.IntN(len(resources))]}
			if len(parents) > 0 {
				f["parent"] = parents[rng.IntN(len(parents))]
			}
			if rng.Float64() < 0.6 {
				f["validFrom"] = when(-2*year, -year/12, time.Hour, year/2)
			}
			if rng.Float64() < 0.4 {
				f["validUntil"] = when(-year/4, year/2, 2*year)
			}
			if r := submit(by, f); r.Accepted {
				grants = append(grants, grant{id: r.ID, framework: fw, action: action, accreditor: by, holder: to})
			}
		case w < 78 && len(grants) > 0: // a status change
			g := grants[rng.IntN(len(grants))]
			by := g.accreditor
			switch x := rng.Float64(); {
			case x < 0.15:
				by = root
			case x < 0.3:
				by = actors[rng.IntN(len(actors))]
			}
			op := []string{record.OpSuspend, record.OpSuspend, record.OpReinstate, record.OpRevoke}[rng.IntN(4)]
			f := map[string]any{"op": op, "accreditation": g.id, "reason": fmt.Sprintf("r%d", i)}
			if rng.Float64() < 0.4 {
				f["effectiveAt"] = when(-year/2, -time.Hour, time.Hour, year/4)
			}
			submit(by, f)
		case w < 88 && len(grants) > 0: // a status list's version, by a holder of a grant to issue or not
			g := grants[rng.IntN(len(grants))]
			issuer := g.holder
			list := []string{"l0", "l1"}[rng.IntN(2)]
			key := issuer.DID + " " + list
			bits := slices.Clone(lists[key])
			if bits == nil {
				bits = make([]byte, record.MinStatusListEntries/8)
			}
			for range 2 {
				record.SetStatus(bits, rng.IntN(record.MinStatusListEntries), 1, 1)
			}
			vc, err := record.StatusListCredential(issuer.DID, list, []string{record.PurposeRevocation}, 1, nil, 0, bits)
			if err != nil {
				t.Fatal(err)
			}
			jwt, err := issuer.SignVCJWT(vc)
			if err != nil {
				t.Fatal(err)
			}
			f := map[string]any{"op": record.OpPublishStatusList, "list": list, "credential": string(jwt)}
			if cur, ok := currentList(t, n.GatewayURL(), issuer.DID, list); ok {
				f["previous"] = cur.CID
			}
			if submit(issuer, f).Accepted {
				lists[key] = bits
			}
		case w < 92: // a root added, or removed
			op := record.OpAddRootAccreditor
			if rng.Float64() < 0.4 {
				op = record.OpRemoveRootAccredit
			}
			submit(d.gov, map[string]any{"op": op, "framework": frameworks[rng.IntN(len(frameworks))], "accreditor": actors[1+rng.IntN(len(actors)-1)].DID})
		default: // a recognition changed, now or at another time
			op := record.OpRecognize
			if rng.Float64() < 0.4 {
				op = record.OpUnrecognize
			}
			fw := frameworks[rng.IntN(len(frameworks))]
			f := map[string]any{"op": op, "framework": fw, "recognized": []string{c.fw, c.other, third}[rng.IntN(3)]}
			if op == record.OpRecognize {
				f["resources"] = recognizedResources[rng.IntN(len(recognizedResources))]
			}
			if rng.Float64() < 0.4 {
				f["effectiveAt"] = when(-year/2, -time.Hour, time.Hour, year/4)
			}
			submit(d.gov, f)
		}
	}
	base := n.GatewayURL()
	entities := []string{c.college.DID, "did:web:unknown.example"}
	for _, a := range actors {
		entities = append(entities, a.DID)
	}
	var authorized, verified, listsVerified, listsAuthorized, latestCompared, recognitionsCompared, listFrameworks int
	reasons, recognitionReasons := map[string]int{}, map[string]int{}
	ask := func() {
		if rng.IntN(5) == 0 {
			r, compared := askRecognition(t, rng, d, frameworks, third, resources, when(-year, -time.Hour, time.Hour, year))
			if compared {
				recognitionsCompared++
			}
			if r.Recognizes {
				recognized++
			}
			recognitions++
			recognitionReasons[r.Reason]++
			return
		}
		if len(lists) > 0 && rng.IntN(4) == 0 {
			authorized, checked := askList(t, rng, d, lists)
			if authorized {
				listsAuthorized++
			}
			if checked {
				listFrameworks++
			}
			listsVerified++
			return
		}
		q := url.Values{
			"entity":    {entities[rng.IntN(len(entities))]},
			"framework": {[]string{c.fw, c.fw, c.fw, c.other, c.other, third}[rng.IntN(6)]},
			"action":    {[]string{record.ActionIssue, record.ActionAccredit}[rng.IntN(2)]},
			"resource":  {resources[rng.IntN(len(resources))]},
		}
		switch rng.IntN(3) {
		case 0:
			q.Set("at", when(-year, year))
		case 1:
			q.Set("as_of", fmt.Sprint(firstIndex+rng.Uint64N(lastIndex-firstIndex+1)))
		}
		// A proven read is answered at the latest cosigned checkpoint,
		// which a linearizable one first makes cover every write before
		// it; the plain answer it is held to is the node's at that index.
		pq := maps.Clone(q)
		if rng.IntN(2) == 0 {
			pq.Set("consistency", "linearizable")
		}
		a, body := getProven(t, trustURL(base, pq))
		b, err := proof.ParseBundle(a.Proof)
		if err != nil {
			t.Fatalf("%v: %v", pq, err)
		}
		// The bundle must answer the question asked, not another one that
		// happens to get the same verdict.
		expect := proof.Question{Type: proof.TypeAuthorization, Entity: q.Get("entity"), Framework: q.Get("framework"), Action: q.Get("action"), Resource: q.Get("resource")}
		if at := q.Get("at"); at != "" {
			if expect.At, err = time.Parse(time.RFC3339, at); err != nil {
				t.Fatal(err)
			}
		}
		if asOf := q.Get("as_of"); asOf != "" {
			if expect.AsOf, err = strconv.ParseUint(asOf, 10, 64); err != nil {
				t.Fatal(err)
			}
		}
		v, err := proof.Verify(b, d.genesis, proof.Options{Expect: &expect})
		if err != nil {
			t.Fatalf("%v: the bundle does not verify: %v", pq, err)
		}
		if v.Decision == nil {
			t.Fatalf("%v: the bundle verified without a decision: %s", pq, body)
		}
		same := func(plain *record.Decision) {
			t.Helper()
			if v.Decision.Authorized != plain.Authorized || v.Decision.Reason != plain.Reason || !slices.Equal(chainOf(v.Decision), chainOf(plain)) {
				t.Fatalf("%v: the proof decides authorized=%v %s %v at index %d, the node's plain answer authorized=%v %s %v at index %d",
					q, v.Decision.Authorized, v.Decision.Reason, chainOf(v.Decision), v.Decision.Index, plain.Authorized, plain.Reason, chainOf(plain), plain.Index)
			}
		}
		if q.Get("as_of") == "" {
			if pq.Get("consistency") != "" && v.Decision.Index < lastIndex {
				t.Fatalf("%v: a linearizable proven answer at index %d, before the last write's %d", pq, v.Decision.Index, lastIndex)
			}
			// The plain answer about the latest state (its answer cache
			// and all), where the proof is of that state.
			if latest := mustPlainDecision(t, base, q); latest.Index == v.Decision.Index {
				same(latest)
				latestCompared++
			}
			q.Set("as_of", fmt.Sprint(v.Decision.Index))
		}
		plain := mustPlainDecision(t, base, q)
		same(plain)
		verified++
		reasons[v.Decision.Reason]++
		if plain.Authorized {
			authorized++
		}
	}
	// Writes and questions alternate, so answers are asked of every stage
	// of the registry, and caches filled by one round's answers meet the
	// next round's writes.
	for round := range 8 {
		for i := range 20 {
			write(20*round + i)
		}
		for range 20 {
			ask()
		}
	}
	t.Logf("%d operations accepted, %d refused; %d grants", accepted, refused, len(grants))
	if len(grants) < 10 {
		t.Fatalf("only %d grants: the workload does not build chains", len(grants))
	}
	t.Logf("%d proven answers verified and matched the plain answers (%d authorized); reasons: %v; %d proven status-list records of %d lists (%d with their issuer authorized, %d with the framework asked checked); %d also held to the plain answer about the latest state", verified, authorized, reasons, listsVerified, len(lists), listsAuthorized, listFrameworks, latestCompared)
	if authorized == 0 || authorized == verified {
		t.Fatalf("%d of %d answers authorized: the questions do not reach both verdicts", authorized, verified)
	}
	t.Logf("%d proven recognition answers verified and matched the node's (%d recognized; %d also held to the gateway's plain answer); reasons: %v", recognitions, recognized, recognitionsCompared, recognitionReasons)
	return recognized, recognitions
}

// askRecognition asks TRQP /recognition with a proof whether one of the
// two frameworks recognizes the other (mostly), a framework the registry
// does not hold, or itself, for a random resource, now or at a random
// time; the bundle must verify as the answer to that question and decide
// as the node decides at the proof's index, and as the gateway's plain
// answer decides where that is of the proof's index. It returns the proven
// decision and whether the plain answer was compared.
func askRecognition(t *testing.T, rng *rand.Rand, d *devProofChain, frameworks [2]string, third string, resources []string, at string) (_ *decide.RecognitionDecision, compared bool) {
	t.Helper()
	i := rng.IntN(2)
	recognized := frameworks[1-i]
	switch x := rng.Float64(); {
	case x > 0.85:
		recognized = frameworks[i]
	case x > 0.6:
		recognized = third
	}
	q := map[string]any{"entity_id": recognized, "authority_id": frameworks[i], "action": "recognize", "resource": resources[rng.IntN(len(resources))]}
	expect := proof.Question{Type: proof.TypeRecognition, Framework: q["authority_id"].(string), Recognized: q["entity_id"].(string), Resource: q["resource"].(string)}
	if rng.IntN(2) == 0 {
		q["context"] = map[string]string{"time": at}
		var err error
		if expect.At, err = time.Parse(time.RFC3339, at); err != nil {
			t.Fatal(err)
		}
	}
	a, body := getProven(t, trqpPost(d.n.GatewayURL(), "/recognition", q))
	b, err := proof.ParseBundle(a.Proof)
	if err != nil {
		t.Fatalf("%v: %v", q, err)
	}
	v, err := proof.Verify(b, d.genesis, proof.Options{Expect: &expect})
	if err != nil {
		t.Fatalf("%v: the bundle does not verify: %v", q, err)
	}
	if v.Recognition == nil || a.Recognized == nil || *a.Recognized != v.Recognition.Recognizes || a.Reason != v.Recognition.Reason {
		t.Fatalf("%v: the proof decides %+v; the answer: %s", q, v.Recognition, body)
	}
	// The gateway's plain answer, where it is of the proof's state.
	delete(q, "proof")
	var gw struct {
		Recognized bool   `json:"recognized"`
		Reason     string `json:"reason"`
		Index      uint64 `json:"index"`
	}
	if err := client.New(d.n.GatewayURL()).Post(t.Context(), "/recognition", q, &gw); err != nil {
		t.Fatalf("%v: %v", q, err)
	}
	if compared = gw.Index == v.Recognition.Index; compared && (gw.Recognized != v.Recognition.Recognizes || gw.Reason != v.Recognition.Reason) {
		t.Fatalf("%v: the proof decides recognized=%v %s at index %d, the plain answer recognized=%v %s", q, v.Recognition.Recognizes, v.Recognition.Reason, gw.Index, gw.Recognized, gw.Reason)
	}
	view := d.n.State.View()
	defer view.Close()
	plain, err := view.DecideRecognition(decide.RecognitionQuestion{Framework: expect.Framework, Recognized: expect.Recognized, Resource: expect.Resource,
		At: v.Recognition.At, AsOf: v.Recognition.Index}, time.Now())
	if err != nil {
		t.Fatalf("%v: %v", q, err)
	}
	if plain.Recognizes != v.Recognition.Recognizes || plain.Reason != v.Recognition.Reason || plain.Index != v.Recognition.Index {
		t.Fatalf("%v: the proof decides recognized=%v %s at index %d, the node recognized=%v %s at index %d",
			q, v.Recognition.Recognizes, v.Recognition.Reason, v.Recognition.Index, plain.Recognizes, plain.Reason, plain.Index)
	}
	return v.Recognition, compared
}

// mustPlainDecision asks the node q without a proof.
func mustPlainDecision(t *testing.T, base string, q url.Values) *record.Decision {
	t.Helper()
	dec, err := client.New(base).Trust(t.Context(), q)
	if err != nil {
		t.Fatalf("%v: %v", q, err)
	}
	return dec
}

// chainOf is a decision's chain as its accreditations and their statuses.
func chainOf(d *record.Decision) []string {
	var out []string
	for _, l := range d.Chain {
		out = append(out, l.Accreditation+" "+l.Status)
	}
	return out
}

// currentList is a status list's current version as the node serves it,
// without proof; false when it has none.
func currentList(t *testing.T, base, issuer, list string) (provenList, bool) {
	t.Helper()
	var a provenList
	err := client.New(base).Get(t.Context(), "/v1/status-lists/"+client.PathID(issuer)+"/"+list+"/record", nil, &a)
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Problem.Status == http.StatusNotFound:
		return provenList{}, false
	case err != nil:
		t.Fatalf("status list %s %s: %v", issuer, list, err)
	}
	return a, true
}

// askList fetches a random list's record with its proof, checks the bundle
// offline (the credential as served, the list's current version) and
// holds the issuer's authorization it proves to the node's plain answer
// to the same question at the proof's index. The framework it is asked in
// must be the issuer's first issue accreditation's active at the
// version's time, else its first's (docs/API.md), where the node's state
// is still the proof's. It returns the proven verdict and whether the
// framework was checked.
func askList(t *testing.T, rng *rand.Rand, d *devProofChain, lists map[string][]byte) (authorized, checked bool) {
	t.Helper()
	base, genesis := d.n.GatewayURL(), d.genesis
	keys := slices.Sorted(maps.Keys(lists))
	issuer, list, _ := strings.Cut(keys[rng.IntN(len(keys))], " ")
	u := base + "/v1/status-lists/" + url.PathEscape(issuer) + "/" + list + "/record?proof=true"
	if rng.IntN(2) == 0 {
		u += "&consistency=linearizable"
	}
	_, body := getProven(t, func() (*http.Response, error) { return http.Get(u) })
	var a provenList
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	b, err := proof.ParseBundle(a.Proof)
	if err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	v, err := proof.Verify(b, genesis, proof.Options{Credential: []byte(a.JWT)})
	if err != nil {
		t.Fatalf("%s: the bundle does not verify: %v", u, err)
	}
	if v.StatusList == nil || v.StatusListVersion == nil || v.StatusList.Current != a.CID || v.StatusListVersion.Credential != a.JWT {
		t.Fatalf("%s: the proof holds list %+v, version %+v; the answer names %s", u, v.StatusList, v.StatusListVersion, a.CID)
	}
	q := b.Question
	if q.Type != proof.TypeStatusList || q.Entity != issuer || q.List != list || q.Action != record.ActionIssue || !q.At.Equal(v.StatusListVersion.Time) {
		t.Fatalf("%s: the bundle answers %+v, not the list's issuer at its version's time %s", u, q, v.StatusListVersion.Time)
	}
	view := d.n.State.View()
	defer view.Close()
	if checked = view.Index() == q.Applied; checked {
		var first []record.AccreditationView
		for _, status := range []string{record.ReasonActive, ""} {
			if first, _, err = view.Accreditations(registry.AccreditationFilter{Subject: issuer, Action: record.ActionIssue, Status: status}, registry.Page{Limit: 1}, q.At); err != nil {
				t.Fatal(err)
			}
			if len(first) > 0 {
				break
			}
		}
		if len(first) == 0 || first[0].Framework != q.Framework {
			t.Fatalf("%s: the bundle asks about the issuer in %s; its first issue accreditation (active at %s, else any) is %+v", u, q.Framework, q.At, first)
		}
	}
	plain := mustPlainDecision(t, base, url.Values{"entity": {issuer}, "framework": {q.Framework}, "action": {q.Action},
		"resource": {q.Resource}, "at": {q.At.Format(time.RFC3339Nano)}, "as_of": {fmt.Sprint(v.Decision.Index)}})
	if v.Decision.Authorized != plain.Authorized || v.Decision.Reason != plain.Reason || !slices.Equal(chainOf(v.Decision), chainOf(plain)) {
		t.Fatalf("%s: the proof decides the issuer authorized=%v %s %v at index %d, the node's plain answer authorized=%v %s %v at index %d",
			u, v.Decision.Authorized, v.Decision.Reason, chainOf(v.Decision), v.Decision.Index, plain.Authorized, plain.Reason, chainOf(plain), plain.Index)
	}
	return v.Decision.Authorized, checked
}
