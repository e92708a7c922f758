package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/registry"
)

// viewCounting is a registry that counts the views taken of it: a trust
// answer served from the answer cache takes none.
type viewCounting struct {
	*registry.State
	views *atomic.Int64
}

func (c viewCounting) View() *registry.View {
	c.views.Add(1)
	return c.State.View()
}

// TestRespeltTrustQuestionsShareTheirCachedAnswer: the answer cache keeps
// a question's answer under the question as parsed, so the same question
// spelt otherwise (parameters in another order, defaults spelt out,
// escaped letters, empty parameters, consistency=local, proof=false, a
// time as a date or in another zone) is served the answer kept for it,
// taking no view, with the same status, body, ETag and Cache-Control, and
// a 304 for that ETag. Other questions (another jurisdiction, action or
// time; a read that asks for more than the local state) are not served
// it.
func TestRespeltTrustQuestionsShareTheirCachedAnswer(t *testing.T) {
	f := mustBigSubject(t, 0, 1)
	views := new(atomic.Int64)
	now := f.now
	g, err := gateway.New(gateway.Config{Registry: viewCounting{f.st, views}, Node: appliedNode{f.st}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	college := f.colleges[0]
	ask := func(query string) *httptest.ResponseRecorder {
		t.Helper()
		w := httptest.NewRecorder()
		g.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/trust?"+query, nil))
		if w.Code != http.StatusOK {
			t.Fatalf("?%s: %d %s", query, w.Code, w.Body)
		}
		return w
	}
	escaped := strings.Replace(url.QueryEscape(college), "college", "%63%6Fllege", 1)
	midnight := f.now.Truncate(24 * time.Hour)
	day := midnight.Format(time.DateOnly)
	for _, c := range []struct {
		name      string
		spellings []string
		others    []string
	}{{
		name: "now",
		spellings: []string{
			url.Values{"entity": {college}, "framework": {fw}, "resource": {nurse}}.Encode(),
			"resource=" + url.QueryEscape(nurse) + "&framework=" + url.QueryEscape(fw) + "&entity=" + url.QueryEscape(college),
			url.Values{"entity": {college}, "framework": {fw}, "resource": {nurse}, "action": {"issue"}, "jurisdiction": {""}}.Encode(),
			"entity=" + escaped + "&&framework=" + url.QueryEscape(fw) + "&resource=" + url.QueryEscape(nurse) + "&",
			url.Values{"entity": {college}, "framework": {fw}, "resource": {nurse}, "consistency": {"local"}, "proof": {"false"}}.Encode(),
		},
		others: []string{
			url.Values{"entity": {college}, "framework": {fw}, "resource": {nurse}, "jurisdiction": {"US"}}.Encode(),
			url.Values{"entity": {college}, "framework": {fw}, "resource": {nurse}, "action": {"accredit"}}.Encode(),
			url.Values{"entity": {college}, "framework": {fw}, "resource": {nurse}, "at": {midnight.Add(-24 * time.Hour).Format(time.DateOnly)}}.Encode(),
			url.Values{"entity": {college}, "framework": {fw}, "resource": {nurse}, "consistency": {"linearizable"}}.Encode(),
			url.Values{"entity": {college}, "framework": {fw}, "resource": {nurse}, "min_index": {"1"}}.Encode(),
		},
	}, {
		name: "at midnight",
		spellings: []string{
			url.Values{"entity": {college}, "framework": {fw}, "resource": {nurse}, "at": {day}}.Encode(),
			url.Values{"entity": {college}, "framework": {fw}, "resource": {nurse}, "at": {day + "T00:00:00Z"}}.Encode(),
			url.Values{"entity": {college}, "framework": {fw}, "resource": {nurse}, "at": {day + "T00:00:00.000Z"}}.Encode(),
			url.Values{"entity": {college}, "framework": {fw}, "resource": {nurse}, "at": {midnight.In(time.FixedZone("", -3600)).Format(time.RFC3339)}}.Encode(),
		},
		others: []string{
			url.Values{"entity": {college}, "framework": {fw}, "resource": {nurse}, "at": {day + "T00:00:01Z"}}.Encode(),
		},
	}} {
		before := views.Load()
		first := ask(c.spellings[0])
		if views.Load() != before+1 {
			t.Fatalf("%s: the first question took %d views", c.name, views.Load()-before)
		}
		etag := first.Header().Get("ETag")
		for _, s := range c.spellings[1:] {
			w := ask(s)
			if views.Load() != before+1 {
				t.Fatalf("%s: ?%s was decided again, not served the answer kept for ?%s", c.name, s, c.spellings[0])
			}
			if w.Body.String() != first.Body.String() || w.Header().Get("ETag") != etag || w.Header().Get("Cache-Control") != first.Header().Get("Cache-Control") {
				t.Fatalf("%s: ?%s answered\n%v %s\nwant\n%v %s", c.name, s, w.Header(), w.Body, first.Header(), first.Body)
			}
			r := httptest.NewRequest(http.MethodGet, "/v1/trust?"+s, nil)
			r.Header.Set("If-None-Match", etag)
			w = httptest.NewRecorder()
			g.ServeHTTP(w, r)
			if w.Code != http.StatusNotModified {
				t.Fatalf("%s: ?%s with If-None-Match %s: %d", c.name, s, etag, w.Code)
			}
		}
		for _, o := range c.others {
			n := views.Load()
			ask(o)
			if views.Load() == n {
				t.Fatalf("%s: ?%s was served another question's answer", c.name, o)
			}
		}
	}
}
