package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/trustreg/trustreg/consensus"
)

// browserPage asks a trustd node what a verifier's web page asks it, from
// another origin, and writes what it could read into the page. Its last
// two requests are what a hostile page could try against the operator's
// admin API on loopback: read it, and post a membership change.
const browserPage = `<!doctype html><html><body><pre id="out">running</pre><script>
(async () => {
  const gw = "GATEWAY", admin = "ADMIN", out = [];
  try {
    const r = await fetch(gw + "/v1/trust?entity=did:web:college.example&framework=https%3A%2F%2Fexample.org%2Ffw&action=issue");
    const d = await r.json();
    out.push("trust " + r.status + " " + d.authorized + " " + d.reason + " index=" + r.headers.get("X-Trustreg-Index") + " etag=" + (r.headers.get("ETag") ? "yes" : "no"));
  } catch (e) { out.push("trust failed: " + e); }
  try {
    const r = await fetch(gw + "/v1/trust", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify([{entity: "did:web:a.example", framework: "https://example.org/fw"}, {entity: "did:web:b.example", framework: "https://example.org/fw"}])});
    const d = await r.json();
    out.push("batch " + r.status + " " + d.length);
  } catch (e) { out.push("batch failed: " + e); }
  try {
    const r = await fetch(gw + "/authorization", {method: "POST", headers: {"Content-Type": "application/json", "X-Request-ID": "d4f34c12-9b7a-4e3a-a5d1-7e4f8c2c9f10"},
      body: JSON.stringify({entity_id: "did:web:college.example", authority_id: "https://example.org/fw", action: "issue", resource: "https://example.org/r"})});
    const d = await r.json();
    out.push("trqp " + r.status + " " + d.type + " id=" + r.headers.get("X-Request-ID"));
  } catch (e) { out.push("trqp failed: " + e); }
  try {
    out.push(await new Promise((resolve) => {
      const es = new EventSource(gw + "/v1/watch?since=0");
      es.onopen = () => { es.close(); resolve("watch open"); };
      es.onerror = () => { es.close(); resolve("watch failed"); };
    }));
  } catch (e) { out.push("watch failed: " + e); }
  try { const r = await fetch(admin + "/admin/v1/digest"); out.push("admin read " + r.status); } catch (e) { out.push("admin read blocked"); }
  try {
    await fetch(admin + "/admin/v1/cluster/add-nonvoter", {method: "POST", mode: "no-cors", body: JSON.stringify({addr: "STRANGER"})});
    out.push("admin post sent");
  } catch (e) { out.push("admin post failed: " + e); }
  document.getElementById("out").textContent = "RESULT " + out.join("; ") + " END";
})();
</script></body></html>`

// TestBrowserPageAsksTheGateway runs a verifier's page in headless
// Chromium: served from one origin (localhost), it reads trust answers
// with their exposed headers from the gateway on another (127.0.0.1), one
// of them a preflighted batch POST, asks the TRQP way, and opens a watch
// stream (EventSource). The same page cannot read the admin
// API, and its cross-site post of a membership change is refused.
func TestBrowserPageAsksTheGateway(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is needed for the browser test: install it (apt-get install chromium)")
	}
	bin := mustBuild(t)
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startTrustd(t, bin, t.TempDir(), "--http-addr", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--admin-addr", adminAddr)
	defer p.stop(t)

	key, err := consensus.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := peer.IDFromPrivateKey(key)
	page := strings.NewReplacer("GATEWAY", p.url, "ADMIN", "http://"+adminAddr,
		"STRANGER", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", freePort(t), stranger)).Replace(browserPage)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(page))
	}))
	defer site.Close()
	pageURL := strings.Replace(site.URL, "127.0.0.1", "localhost", 1) // another origin, and another site

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=20000", "--dump-dom", pageURL)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	_, result, ok := strings.Cut(string(out), "RESULT ")
	result, _, done := strings.Cut(result, " END")
	if !ok || !done {
		t.Fatalf("the page did not finish:\n%s", out)
	}
	t.Logf("the page read: %s", result)
	for _, want := range []string{
		"trust 200 false unknown_framework index=", " etag=yes",
		"batch 200 2",
		"trqp 404 urn:trustreg:problem:not_found id=d4f34c12-9b7a-4e3a-a5d1-7e4f8c2c9f10", // an unknown authority, as TRQP's HTTPS binding answers it
		"watch open",
		"admin read blocked",
		"admin post sent",
	} {
		if !strings.Contains(result, want) {
			t.Errorf("the page read %q; want %q in it", result, want)
		}
	}
	if strings.Contains(result, "index=null") {
		t.Errorf("the page could not read X-Trustreg-Index: %q", result)
	}
	// The cross-site post reached the admin API (the browser sends it
	// without showing the answer) and changed nothing.
	resp, err := http.Get(p.url + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Members []json.RawMessage `json:"members"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || len(st.Members) != 1 {
		t.Fatalf("after the page's post the cluster has %d members (%v), want 1", len(st.Members), err)
	}
}
