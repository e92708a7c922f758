package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// explorerTour loads the README tour's data into the node at url, through
// the tour's own signed operations, and names the college. It runs in the
// node's directory, where the tour finds the development keys.
func explorerTour(t *testing.T, bin, dir, url string) {
	t.Helper()
	tour := readmeTour(t)
	const buildLine = "go build -o bin/ ./cmd/... && export PATH=$PWD/bin:$PATH"
	if !strings.Contains(tour, buildLine) {
		t.Fatal("the tour changed: update the substitutions of this test")
	}
	script := strings.Replace(tour, buildLine, "export PATH="+bin+":$PATH", 1)
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", url)
	script += "\ntrustctl entity register --id $COLLEGE --name 'Amazing Community College' --country US --public-key college.jwk --key college.jwk\n"
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TRUSTCTL_SERVER="+url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestExplorerInABrowser runs the registry explorer (GET /) in headless
// Chromium against a real trustd loaded with the README tour's data: the
// home page, loading nothing from elsewhere, lists the framework, whose page shows its root and its two
// accreditations; a search by name finds the college; the
// college's page shows the accreditation it received; its chain graph has
// two links up to the root; asked now the answer is chain_broken (the QA
// agency's accreditation was revoked), asked at 2024-06-01 it is
// authorized, and asked now as the registry knew it before the revoke it
// is authorized too; a status list entry is checked, beside the privacy notice;
// an operation submitted while the live page is open arrives through the
// watch stream; and the page fits a phone's width.
//
// Screenshots of each step are PNG files in t.ArtifactDir() (the test logs
// where), beside the node's log (trustd.log); a failure also lists the
// page's requests that failed below HTTP, with Chromium's network error.
// They are kept under DIR/_artifacts with
//
//	mkdir -p DIR && go test -run TestExplorerInABrowser -artifacts -outputdir DIR ./test
//
// (.ci/run passes -artifacts), and in a temporary directory otherwise.
// docs/explorer.png is a copy of ask-now-desktop.png.
func TestExplorerInABrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is needed for the browser test: install it (apt-get install chromium)")
	}
	bin := mustBuild(t)
	nodeDir := t.TempDir()
	p := startTrustd(t, bin, nodeDir, "--http-addr", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--admin-addr", "127.0.0.1:0")
	defer p.stop(t)
	explorerTour(t, bin, nodeDir, p.url)
	out := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "trustctl"), append([]string{"--server", p.url}, args...)...)
		cmd.Dir = nodeDir
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("trustctl %v: %v\n%s", args, err, b)
		}
		return strings.TrimSpace(string(b))
	}
	college := out("did", "college.jwk")
	qa := out("did", "qa.jwk")
	arts := t.ArtifactDir()
	t.Logf("screenshots in %s", arts)
	// A failure says which of the page's requests failed below HTTP, and
	// why (a refused or reset connection, a cancelled load), and keeps the
	// node's log beside the screenshots.
	var loads failedLoads
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(arts, "trustd.log"), []byte(p.stderr.String()), 0o644); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("trustd's log is %s", filepath.Join(arts, "trustd.log"))
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(alloc, chromedp.WithListener(loads.listen))
	defer cancelTab()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, steps...); err != nil {
			t.Fatalf("%s: %v\nthe page shows:\n%s\n%s", what, err, pageText(tab), &loads)
		}
	}
	// waitFor polls a JavaScript condition in the page until it holds.
	waitFor := func(what, cond string) {
		t.Helper()
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("%s: %v\nthe page shows:\n%s\n%s", what, err, pageText(tab), &loads)
		}
	}
	// fits checks that nothing on the page is wider than the screen.
	fits := func(what string) {
		t.Helper()
		wide, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`[...document.querySelectorAll("body *")]
			.filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
			.map((e) => e.tagName + "." + e.className + " " + Math.round(e.getBoundingClientRect().right) + "px")`))
		if err != nil || len(wide) > 0 {
			t.Fatalf("%s is wider than a %d px screen: %v %v", what, 390, wide, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(arts, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// ready is the condition that the page for the hash has been drawn.
	ready := func(pg string) string {
		return `document.querySelector("main").dataset.page === "` + pg + `" && !document.querySelector("main").hasAttribute("aria-busy")`
	}
	jsString := func(s string) string { return "`" + s + "`" }

	// The home page lists the tour's framework.
	do("open the explorer", chromedp.Navigate(p.url+"/"))
	waitFor("the home page shows the framework", ready("home")+` && document.querySelector("#frameworks").textContent.includes("Nursing education")`)
	waitFor("every form control has a label", `[...document.querySelectorAll("input, select")].every((e) => e.labels && e.labels.length > 0)`)
	shot("home-desktop")
	waitFor("everything the page loaded came from the node", `performance.getEntriesByType("resource").length > 0
		&& performance.getEntriesByType("resource").every((e) => e.name.startsWith(location.origin + "/"))`)
	do("open the framework", chromedp.Click(chromedp.CSS(`#frameworks a`)))
	waitFor("the framework's root and its two accreditations", ready("framework")+` && document.querySelector("h1").textContent === "Nursing education"
		&& document.querySelector("main").textContent.includes("Root accreditors") && document.querySelectorAll("main table")[1].querySelectorAll("tbody tr").length === 2`)
	shot("framework-desktop")

	// A search by part of the college's name finds it; its page shows the
	// accreditation it received from the QA agency, and its keys.
	do("search from the keyboard", chromedp.SendKeys(chromedp.CSS("#q"), "amazing"+kb.Enter))
	waitFor("the search finds the college", ready("search")+` && document.querySelector("#results").textContent.includes("Amazing Community College")`)
	shot("search-desktop")
	do("open the college", chromedp.Click(chromedp.CSS(`#results a[href="#/entity/`+jsEscapeHash(college)+`"]`)))
	waitFor("the college's page", ready("entity")+` && document.querySelector("h1").textContent === "Amazing Community College"`)
	waitFor("the college's accreditation from the QA agency", `(() => { const t = document.querySelector("#received + .table-wrap");
		return t && t.textContent.includes(`+jsString(qa)+`) && t.textContent.includes("issue") && t.textContent.includes("2022-09-01 → open-ended"); })()`)
	waitFor("the college's key", `document.querySelector("main").textContent.includes("P-256")`)
	shot("entity-desktop")

	// Its chain, asked now: two links up to the root, the upper one revoked.
	do("open the chain", chromedp.Click(chromedp.CSS(`#received + .table-wrap a[href^="#/ask?"]`)))
	waitFor("the answer now", ready("ask")+` && document.querySelector("#reason") && document.querySelector("#reason").textContent === "chain_broken"`)
	waitFor("the chain graph has two links", `document.querySelectorAll("#chain-graph g.link").length === 2 && document.querySelectorAll("#chain-graph g.node").length === 3`)
	waitFor("each link's status and window in words", `(() => { const l = [...document.querySelectorAll("#chain-links li")].map((li) => li.textContent);
		return l.length === 2 && l[0].includes("revoked") && l[0].includes("2020-01-01 → open-ended") && l[1].includes("active") && l[1].includes("2022-09-01"); })()`)
	shot("ask-now-desktop")

	// Time travel: at 2024-06-01 the chain stood.
	do("ask at 2024-06-01", chromedp.SetValue(chromedp.CSS("#ask-at"), "2024-06-01"), chromedp.Click(chromedp.CSS(`#ask-form button[type="submit"]`)))
	waitFor("the answer at 2024-06-01", ready("ask")+` && location.hash.includes("at=2024-06-01") && document.querySelector("#reason") && document.querySelector("#reason").textContent === "active"`)
	waitFor("authorized, with both links active", `document.querySelector("#verdict").textContent.includes("AUTHORIZED") && !document.querySelector("#verdict").textContent.includes("NOT")
		&& [...document.querySelectorAll("#chain-links li")].every((li) => li.textContent.includes("active"))`)
	shot("ask-2024-desktop")

	// As the registry knew it just before the revoke: authorized now too.
	revoked := revokeIndex(t, p.url)
	before := strconv.FormatUint(revoked-1, 10)
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`(document.querySelector("#ask-at").value = "") === ""`)); err != nil {
		t.Fatalf("clear the date: %v", err)
	}
	do("ask now as of the index before the revoke", chromedp.SetValue(chromedp.CSS("#ask-as_of"), before),
		chromedp.Click(chromedp.CSS(`#ask-form button[type="submit"]`)))
	waitFor("the answer as of index "+before, ready("ask")+` && location.hash.includes("as_of=`+before+`") && !location.hash.includes("at=")
		&& document.querySelector("#reason") && document.querySelector("#reason").textContent === "active"
		&& document.querySelector("#verdict").textContent.includes("as the registry knew it at index `+before+`")`)

	// Moving on before a page's answers arrive: the later page is drawn
	// alone. The second hash is set from a hashchange listener that runs
	// after the explorer's own, so the ask page has started and awaits its
	// answer when the college's page starts; its answer, arriving after,
	// must not write into the college's page.
	trustAsked := `performance.getEntriesByType("resource").filter((e) => e.name.includes("/v1/trust?")).length`
	asked, err := chromedp.Run(tab, chromedp.Evaluate[int](trustAsked))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`(() => {
		addEventListener("hashchange", () => { location.hash = "#/entity/`+jsEscapeHash(college)+`"; }, {once: true});
		location.hash = location.hash.replace(/as_of=[0-9]+/, "at=2023-01-01");
		return true; })()`)); err != nil {
		t.Fatalf("ask, then open the college at once: %v", err)
	}
	waitFor("the college's page after the ask's answer arrived", ready("entity")+` && document.querySelector("h1").textContent === "Amazing Community College"
		&& `+trustAsked+` > `+strconv.Itoa(asked))
	do("let the ask's answer be handled", chromedp.Sleep(500*time.Millisecond))
	waitFor("the college's page alone", ready("entity")+` && document.querySelectorAll("main h1").length === 1 && !document.querySelector("main .error")
		&& !document.querySelector("#answer") && !!document.querySelector("#received + .table-wrap")`)

	// The same page on a phone: nothing wider than the screen.
	do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	shot("ask-2024-phone")
	fits("the time-travel answer")
	do("entity on a phone", chromedp.Navigate(p.url+"/#/entity/"+jsEscapeHash(college)))
	waitFor("the college's page on a phone", ready("entity"))
	shot("entity-phone")
	fits("the college's page")
	do("desktop width", chromedp.EmulateViewport(1280, 900))

	// A status list entry, beside the notice that checking it reveals the
	// index to the node.
	do("status lists", chromedp.Navigate(p.url+"/#/status-lists?issuer="+jsEscapeHash(college)))
	waitFor("the college's list", ready("status-lists")+` && document.querySelector("main table") && document.querySelector("main table").textContent.includes("2024")`)
	waitFor("the privacy notice", `document.querySelector("#privacy").textContent.includes("which index you ask about")`)
	do("check entry 42", chromedp.SetValue(chromedp.CSS("#ask-list-index"), "42"), chromedp.Click(chromedp.CSS(`#entry-form button`)))
	waitFor("entry 42 is revoked", `document.querySelector("#entry").textContent.includes("revocation") && document.querySelector("#entry").textContent.includes("no")`)
	shot("status-lists-desktop")

	// Cluster health.
	do("health", chromedp.Navigate(p.url+"/#/health"))
	waitFor("the health page", ready("health")+` && document.querySelector("main").textContent.includes("leader")`)

	// The live feed: the tour's operations, then one submitted now arrives
	// through the watch stream.
	do("live", chromedp.Navigate(p.url+"/#/live"))
	waitFor("the live feed is connected", ready("live")+` && document.querySelector("#live-state").textContent.startsWith("Connected") && document.querySelectorAll("#feed li").length > 0`)
	const midwifery = "https://example.org/frameworks/midwifery"
	root := out("did", "trustd-data/keys/root-accreditor.jwk")
	out("framework", "create", "--id", midwifery, "--name", "Midwifery education", "--root", root, "--key", "trustd-data/keys/governance.jwk")
	waitFor("the new operation arrives", `(() => { const li = document.querySelector("#feed li"); return li && li.classList.contains("new")
		&& li.textContent.includes("createFramework") && li.textContent.includes(`+jsString(midwifery)+`); })()`)
	shot("live-desktop")
}

// failedLoads keeps the page's requests that failed without an HTTP
// answer, each with Chromium's network error (net::ERR_CONNECTION_RESET,
// net::ERR_CONNECTION_REFUSED, net::ERR_ABORTED...), so a "the node did not
// answer" on the page can be told apart from a cancelled load, and the
// errors the browser logged (a request the page's Content-Security-Policy
// refused never reaches the network).
type failedLoads struct {
	mu     sync.Mutex
	urls   map[network.RequestID]string
	failed []string
}

// listen is a chromedp listener: it runs on the tab's reading goroutine
// and only records.
func (l *failedLoads) listen(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if l.urls == nil {
			l.urls = map[network.RequestID]string{}
		}
		l.urls[ev.RequestID] = ev.Request.Method + " " + ev.Request.URL
	case *network.EventLoadingFinished:
		delete(l.urls, ev.RequestID)
	case *network.EventLoadingFailed:
		what := l.urls[ev.RequestID]
		delete(l.urls, ev.RequestID)
		if what == "" {
			what = "request " + string(ev.RequestID)
		}
		l.failed = append(l.failed, fmt.Sprintf("%s: %s (canceled %v, blocked %q)", what, ev.ErrorText, ev.Canceled, ev.BlockedReason))
	case *cdplog.EventEntryAdded:
		if ev.Entry != nil && ev.Entry.Level == cdplog.EntryLevelError {
			l.failed = append(l.failed, fmt.Sprintf("the browser logged (%s): %s", ev.Entry.Source, ev.Entry.Text))
		}
	}
}

func (l *failedLoads) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failed) == 0 {
		return "no request of the page failed below HTTP; the browser logged no error"
	}
	return "requests of the page that failed below HTTP, and errors the browser logged:\n  " + strings.Join(l.failed, "\n  ")
}

// revokeIndex is the registry index of the tour's revoke, read from the
// change feed.
func revokeIndex(t *testing.T, url string) uint64 {
	t.Helper()
	resp, err := http.Get(url + "/v1/operations?since=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var feed struct {
		Items []struct {
			Index uint64 `json:"index"`
			Op    string `json:"op"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&feed); err != nil {
		t.Fatal(err)
	}
	for _, it := range feed.Items {
		if it.Op == "revoke" {
			return it.Index
		}
	}
	t.Fatalf("the change feed has no revoke: %+v", feed.Items)
	return 0
}

// jsEscapeHash is an identifier as the explorer puts it in its links
// (encodeURIComponent).
func jsEscapeHash(s string) string {
	return strings.NewReplacer(":", "%3A", "/", "%2F").Replace(s)
}

// pageText is what the page shows, for failure messages.
func pageText(tab context.Context) string {
	ctx, cancel := context.WithTimeout(tab, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash + "\n" + document.body.innerText`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}
