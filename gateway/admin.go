package gateway

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/record"
)

// Cluster is what the admin API needs from the node: the members with
// their status, and membership changes carried out at the leader.
type Cluster interface {
	Members(ctx context.Context) any
	ChangeMembership(ctx context.Context, action, id string, addrs []string) error
	// Digest returns the applied index and the state digest at it.
	Digest() (uint64, string, error)
	// Backup streams a consistent snapshot of the state.
	Backup(w io.Writer) error
	// Snapshot takes a raft snapshot now (and compacts the log).
	Snapshot() error
}

// Admin serves the operators' API on its own listener.
type Admin struct {
	cluster Cluster
	token   string
	log     *slog.Logger
	routes  *router
	csrf    *http.CrossOriginProtection
}

// ErrNothingToSnapshot: a snapshot was asked for, and the node has
// applied nothing since it started from its latest one (or from none).
var ErrNothingToSnapshot = record.NewKind("gateway: nothing new to snapshot", "nothing new to snapshot", nil)

// adminMaxBodyBytes bounds an admin request's body: a membership request
// is a peer id or a multiaddr.
const adminMaxBodyBytes = 64 << 10

// Membership actions the admin API accepts.
var adminActions = []string{"add-voter", "add-nonvoter", "promote", "demote", "remove", "transfer-leader"}

// NewAdmin builds the admin API. A non-empty token must be presented as
// "Authorization: Bearer <token>".
func NewAdmin(cluster Cluster, token string, logger *slog.Logger) *Admin {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Admin{cluster: cluster, token: token, log: logger.With("component", "admin"), csrf: http.NewCrossOriginProtection()}
	a.routes = newRouter(func(r *http.Request) string {
		return fmt.Sprintf("no route %s %s: the admin API serves /admin/v1/cluster, /admin/v1/digest, /admin/v1/backup, /admin/v1/snapshot and /debug/pprof/", r.Method, r.URL.Path)
	})
	for _, rt := range []struct {
		method, pattern string
		h               http.Handler
	}{
		{"GET", "/admin/v1/cluster", http.HandlerFunc(a.members)},
		{"POST", "/admin/v1/cluster/{action}", http.HandlerFunc(a.change)},
		{"GET", "/admin/v1/digest", http.HandlerFunc(a.digest)},
		{"GET", "/admin/v1/backup", http.HandlerFunc(a.backup)},
		{"POST", "/admin/v1/snapshot", http.HandlerFunc(a.snapshot)},
		// Profiles for operators chasing a slow node (admin listener
		// only); their plain-text errors become problem documents.
		{"GET", "/debug/pprof/", textErrors(http.HandlerFunc(pprof.Index))},
		{"GET", "/debug/pprof/profile", textErrors(http.HandlerFunc(pprof.Profile))},
		{"GET", "/debug/pprof/trace", textErrors(http.HandlerFunc(pprof.Trace))},
	} {
		a.routes.handle(rt.method, rt.pattern, rt.h)
	}
	return a
}

func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	w = sw
	defer func() {
		if v := recover(); v != nil {
			answerPanic(a.log, v, "admin", sw, r)
		}
	}()
	if err := a.fromABrowserPage(r); err != nil {
		writeProblem(w, r, api.Problem{Type: problemTypeBase + "forbidden", Title: "Forbidden", Status: http.StatusForbidden, Detail: err.Error()})
		return
	}
	if a.token != "" {
		if err := a.authorized(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="trustd admin"`)
			writeProblem(w, r, api.Problem{Type: problemTypeBase + "unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized,
				Detail: err.Error()})
			return
		}
	}
	a.routes.serve(w, r)
}

// authorized checks the admin token. It is taken only from
// "Authorization: Bearer <token>" (the scheme in any case, RFC 9110
// §11.1), and compared in constant time; a token sent any other way (no
// scheme, another scheme, a header or query parameter of its own) is
// refused, with how to send it.
func (a *Admin) authorized(r *http.Request) error {
	const how = "send the admin token as Authorization: Bearer <admin.token> (trustctl: --admin-token or TRUSTCTL_ADMIN_TOKEN)"
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		if len(h) == 0 {
			return fmt.Errorf("the admin API needs a token: %s", how)
		}
		return fmt.Errorf("%d Authorization headers: %s", len(h), how)
	}
	scheme, token, found := strings.Cut(strings.TrimSpace(h[0]), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return fmt.Errorf("the Authorization header is not a Bearer token: %s", how)
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimLeft(token, " ")), []byte(a.token)) != 1 {
		return fmt.Errorf("the admin token is wrong: %s", how)
	}
	return nil
}

// fromABrowserPage refuses what a web page could make an operator's
// browser send to the admin API. Without a token the API listens on
// loopback and trusts whoever reaches it, and a page on any site can make
// the browser reach loopback:
//   - a cross-origin POST (a change of membership, a snapshot), which
//     net/http's CrossOriginProtection detects by Sec-Fetch-Site or Origin;
//   - a request to a name of the attacker's that resolves to 127.0.0.1
//     (DNS rebinding), which is same-origin to the browser: without a
//     token, the Host must be a loopback address or localhost.
//
// trustctl and curl send neither header and name the address they dial.
func (a *Admin) fromABrowserPage(r *http.Request) error {
	if err := a.csrf.Check(r); err != nil {
		return fmt.Errorf("the admin API refuses cross-origin requests from browsers: %v", err)
	}
	if a.token == "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" {
			return fmt.Errorf("the admin API without a token answers requests to a loopback address or localhost, not to Host %q", r.Host)
		}
	}
	return nil
}

func (a *Admin) members(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", cacheNone)
	_ = json.NewEncoder(w).Encode(a.cluster.Members(r.Context()))
}

func (a *Admin) change(w http.ResponseWriter, r *http.Request) {
	action := r.PathValue("action")
	known := false
	for _, k := range adminActions {
		known = known || k == action
	}
	if !known {
		writeError(w, r, record.Errorf(ErrBadRequest, "action %q must be one of %s", action, strings.Join(adminActions, ", ")))
		return
	}
	// A body over the bound is a 413, as on the public API (readBody); one
	// that is no membership request is a 400 saying what to send.
	body, err := readBody(w, r, adminMaxBodyBytes)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var req api.MembershipRequest
	if len(body) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, r, record.Errorf(ErrBadRequest, "body must be {\"id\": peer id} or {\"addr\": multiaddr}: %v", err))
			return
		}
	}
	id, addrs := req.ID, []string(nil)
	if req.Addr != "" {
		i := strings.LastIndex(req.Addr, "/p2p/")
		if i < 0 {
			writeError(w, r, record.Errorf(ErrBadRequest, "addr %q must end in /p2p/<peer id>", req.Addr))
			return
		}
		id, addrs = req.Addr[i+len("/p2p/"):], []string{req.Addr[:i]}
	}
	if id == "" && action != "transfer-leader" {
		writeError(w, r, record.Errorf(ErrBadRequest, "%s needs an id or addr", action))
		return
	}
	if err := a.cluster.ChangeMembership(r.Context(), action, id, addrs); err != nil {
		writeError(w, r, err)
		return
	}
	a.log.Info("membership change", "action", action, "peer", id)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a.cluster.Members(r.Context()))
}

// digest answers the applied index and the state digest, so operators can
// check that replicas hold the same state.
func (a *Admin) digest(w http.ResponseWriter, r *http.Request) {
	index, digest, err := a.cluster.Digest()
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"applied_index": index, "digest": digest})
}

// backup streams a snapshot of the state (restore it with trustd restore).
func (a *Admin) backup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="trustreg.backup"`)
	if err := a.cluster.Backup(w); err != nil {
		a.log.Error("backup failed", "err", err)
		// Headers are gone; the truncated stream fails its checksum on restore.
	}
}

// snapshot takes a raft snapshot now. With nothing applied since the
// node started there is nothing new to take: that is answered 200, with
// "unchanged", since what the operator asked for (a snapshot holding
// everything applied) is already there.
func (a *Admin) snapshot(w http.ResponseWriter, r *http.Request) {
	err := a.cluster.Snapshot()
	w.Header().Set("Cache-Control", cacheNone)
	switch {
	case errors.Is(err, ErrNothingToSnapshot):
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{\"snapshot\":\"unchanged\",\"detail\":\"nothing was applied since this node started, so there is nothing new to snapshot\"}\n"))
	case err != nil:
		writeError(w, r, err)
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{\"snapshot\":\"taken\"}\n"))
	}
}
