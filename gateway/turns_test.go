package gateway_test

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/registry/record"
)

// serveGateway serves a gateway made with cfg for the test's length.
func serveGateway(t *testing.T, cfg gateway.Config) (*gateway.Server, *httptest.Server) {
	t.Helper()
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	t.Cleanup(g.StopStreams)
	return g, srv
}

// streamLines opens the watch stream at url and sends its lines until it
// ends or ctx does.
func streamLines(t *testing.T, ctx context.Context, url string) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	return lines
}

// TestWatchReadsTakeTurns: the streams read the change feed a page at a
// time, each in a turn (half the node's cores, shared with the
// listings), so streams catching up through a long log with a filter that
// matches little cannot take every core: while others hold the turns, a
// stream reads nothing; once they give them back, it goes on and sends
// what it read.
func TestWatchReadsTakeTurns(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	g, srv := serveGateway(t, gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n})

	release := g.HoldTurns()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	lines := streamLines(t, ctx, srv.URL+"/v1/watch?since=0")
	// The stream opens with its comment and then waits for a token: no
	// event may come while they are held (however long this waits).
	if l := <-lines; !strings.HasPrefix(l, ": trustreg watch from index 0") {
		t.Fatalf("first line %q", l)
	}
	timer := time.NewTimer(300 * time.Millisecond)
	defer timer.Stop()
wait:
	for {
		select {
		case l := <-lines:
			if strings.HasPrefix(l, "id: ") {
				t.Fatalf("an event (%q) while every turn was taken", l)
			}
		case <-timer.C:
			break wait
		}
	}
	release()
	deadline := time.After(10 * time.Second)
	for events := 0; events < 3; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended")
			}
			if strings.HasPrefix(l, "id: ") {
				events++
			}
		case <-deadline:
			t.Fatal("no events after the turns were given back")
		}
	}
}

// getter returns a function that GETs a path of srv and returns the
// answer and its body, read whole.
func getter(t *testing.T, srv *httptest.Server) func(path string) (*http.Response, string) {
	return func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
}

// TestListingsTakeTurns: while every turn of the listings and exports is
// taken, one waits Config.MaxWait and is refused with 503 busy and
// Retry-After, and a trust question is answered all the same; once the
// turns are given back the listing is answered.
func TestListingsTakeTurns(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	g, srv := serveGateway(t, gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n, MaxWait: 200 * time.Millisecond})
	get := getter(t, srv)
	release := g.HoldTurns()
	for _, path := range []string{"/v1/export/dcc", "/v1/accreditations?status=revoked", "/v1/entities?q=college"} {
		resp, body := get(path)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "busy") {
			t.Fatalf("GET %s while the turns are taken: %d %q (Retry-After %q), want 503 busy", path, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}
	q := "/v1/trust?entity=" + url.QueryEscape(e.college.DID) + "&framework=" + url.QueryEscape(fw) + "&action=issue&resource=" + url.QueryEscape(nurse)
	if resp, body := get(q); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"authorized":true`) {
		t.Fatalf("a trust question while the turns are taken: %d %s", resp.StatusCode, body)
	}
	release()
	if resp, body := get("/v1/export/dcc"); resp.StatusCode != http.StatusOK || !strings.Contains(body, e.college.DID) {
		t.Fatalf("the export once the turns are back: %d %s", resp.StatusCode, body)
	}
}

// TestPastStatusReadsTakeTurns: a status list, its record or one of its
// entries asked for at a past time (?timestamp=) takes a turn, as the
// listings do, while the current version's answers never wait for one.
func TestPastStatusReadsTakeTurns(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	bits := make([]byte, record.MinStatusListEntries/8)
	record.SetStatus(bits, 42, 1, 1)
	if _, _, err := e.publishList("jwt", "", bits); err != nil {
		t.Fatal(err)
	}
	g, srv := serveGateway(t, gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n, MaxWait: 200 * time.Millisecond})
	getResp := getter(t, srv)
	get := func(path string) (int, string) {
		t.Helper()
		resp, body := getResp(path)
		return resp.StatusCode, body
	}
	list := "/v1/status-lists/" + url.PathEscape(e.college.DID) + "/jwt"
	at := "?timestamp=" + url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano))
	paths := []string{list, list + "/record", list + "/entries/42"}
	release := g.HoldTurns()
	for _, p := range paths {
		if code, body := get(p); code != http.StatusOK {
			t.Fatalf("GET %s (the current version) while the turns are taken: %d %s", p, code, body)
		}
		if code, body := get(p + at); code != http.StatusServiceUnavailable || !strings.Contains(body, "busy") {
			t.Fatalf("GET %s at a past time while the turns are taken: %d %s, want 503 busy", p, code, body)
		}
	}
	release()
	for _, p := range paths {
		if code, body := get(p + at); code != http.StatusOK {
			t.Fatalf("GET %s at a past time once the turns are back: %d %s", p, code, body)
		}
	}
}

// noCheckpointYet is a node's checkpoints before its cosigners signed
// one: a proof waits for one (up to the gateway's proofWait).
type noCheckpointYet struct{}

func (noCheckpointYet) LatestCheckpoint() ([]byte, error) {
	return nil, record.Errorf(gateway.ErrNoCheckpoint, "none yet")
}

// TestPastStatusProofWaitsWithoutATurn: a status list's record asked for
// with its proof at a past time takes its turn only once the proven state
// it waits for is there, so while it waits (here for a checkpoint that
// does not come) every turn stays free and the listings are answered.
func TestPastStatusProofWaitsWithoutATurn(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	if _, _, err := e.publishList("jwt", "", make([]byte, record.MinStatusListEntries/8)); err != nil {
		t.Fatal(err)
	}
	g, srv := serveGateway(t, gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n, MaxWait: 200 * time.Millisecond, Checkpoints: noCheckpointYet{}})
	u := srv.URL + "/v1/status-lists/" + url.PathEscape(e.college.DID) + "/jwt/record?proof=true&timestamp=" + url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	turns := g.TurnsFree()
	ended := make(chan struct{}, turns)
	for range turns {
		go func() {
			defer func() { ended <- struct{}{} }()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // the proofs wait for a checkpoint (6 s)
	if free := g.TurnsFree(); free != turns {
		t.Fatalf("%d of %d turns free while %d proofs at a past time wait for a checkpoint", free, turns, turns)
	}
	if resp, body := getter(t, srv)("/v1/status-lists"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a listing while proofs at a past time wait for a checkpoint: %d %s", resp.StatusCode, body)
	}
	cancel()
	for range turns {
		<-ended
	}
}

// enteringNode is the node, whose WaitApplied says on entered that a
// read began to wait for an index.
type enteringNode struct {
	gateway.Node
	entered chan struct{}
}

func (n enteringNode) WaitApplied(ctx context.Context, index uint64) error {
	select {
	case n.entered <- struct{}{}:
	default:
	}
	return n.Node.WaitApplied(ctx, index)
}

// TestListingsWaitForAnIndexBeforeTheirTurn: a listing that waits for
// min_index waits before it takes a turn, so while it waits every turn is
// free and another listing is answered.
func TestListingsWaitForAnIndexBeforeTheirTurn(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	node := enteringNode{Node: e.n, entered: make(chan struct{}, 1)}
	g, srv := serveGateway(t, gateway.Config{Registry: e.n.State, Writer: e.n, Node: node, MaxWait: 3 * time.Second})
	turns := g.TurnsFree()
	waiting := make(chan int, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/v1/frameworks?min_index=18446744073709551615")
		if err != nil {
			waiting <- 0
			return
		}
		resp.Body.Close()
		waiting <- resp.StatusCode
	}()
	select {
	case <-node.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the listing never waited for its index")
	}
	if free := g.TurnsFree(); free != turns {
		t.Fatalf("%d of %d turns free while a listing waits for an index", free, turns)
	}
	resp, err := http.Get(srv.URL + "/v1/frameworks")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a listing beside one waiting for an index: %d", resp.StatusCode)
	}
	if code := <-waiting; code != http.StatusServiceUnavailable {
		t.Fatalf("the listing waiting for an index past the log: %d, want 503", code)
	}
}

// TestListingsAreSentAfterTheirTurn: a client that asks for a large page
// and does not read it holds no turn: the answer is made in the turn and
// written after it.
func TestListingsAreSentAfterTheirTurn(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	// Status lists of random bits: a page of the change feed of some MiB.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 16 {
		bits := make([]byte, 64<<10)
		for j := range bits {
			bits[j] = byte(rng.Uint32())
		}
		if res, _, err := e.publishList(strconv.Itoa(i), "", bits); err != nil || !res.Accepted {
			t.Fatalf("list %d: %+v %v", i, res, err)
		}
	}
	g, srv := serveGateway(t, gateway.Config{Registry: e.n.State, Writer: e.n, Node: e.n, MaxWait: 500 * time.Millisecond})
	turns := g.TurnsFree()

	// A client with a small receive buffer that sends its request and
	// reads nothing: the server's write of the page blocks.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /v1/operations?limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// Its status line comes once the page is made and being written;
	// from then on its turn must be free, although the client reads no
	// more.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	status := make([]byte, len("HTTP/1.1 200"))
	if _, err := io.ReadFull(conn, status); err != nil || string(status) != "HTTP/1.1 200" {
		t.Fatalf("the page's status line: %q, %v", status, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.TurnsFree() != turns && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if free := g.TurnsFree(); free != turns {
		t.Fatalf("%d of %d turns free while a client does not read its page", free, turns)
	}
	if resp, body := getter(t, srv)("/v1/frameworks"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a listing beside a client that does not read: %d %s", resp.StatusCode, body)
	}
}

// TestAPanicGivesTheTurnBack: a panic while a watch stream reads its page,
// or while a listing is made, is answered by the handler's recovery and
// gives the turn back: the streams and listings after it are answered.
func TestAPanicGivesTheTurnBack(t *testing.T) {
	e := mustNewEnv(t)
	e.chain()
	reg := panickyRegistry{State: e.n.State, broke: &atomic.Bool{}}
	reg.broke.Store(true) // its next View panics once this is false
	g, srv := serveGateway(t, gateway.Config{Registry: reg, Writer: e.n, Node: e.n})
	turns := g.TurnsFree()

	// firstEvent opens a stream from the start of the log and says
	// whether an event came before the stream ended or 10 s passed.
	firstEvent := func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		for l := range streamLines(t, ctx, srv.URL+"/v1/watch?since=0") {
			if strings.HasPrefix(l, "id: ") {
				return true
			}
		}
		return false
	}
	reg.broke.Store(false)
	if firstEvent() {
		t.Fatal("an event from the stream whose read panicked")
	}
	if free := g.TurnsFree(); free != turns {
		t.Fatalf("%d of %d turns free after a watch read panicked", free, turns)
	}
	if !firstEvent() {
		t.Fatal("no event from a stream after another's read panicked")
	}

	reg.broke.Store(false)
	for _, want := range []int{http.StatusInternalServerError, http.StatusOK} {
		resp, err := http.Get(srv.URL + "/v1/frameworks")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("a listing: %d, want %d", resp.StatusCode, want)
		}
	}
	if free := g.TurnsFree(); free != turns {
		t.Fatalf("%d of %d turns free after a listing panicked", free, turns)
	}
}
