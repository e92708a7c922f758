package gateway

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"

	"github.com/trustreg/trustreg/registry"
)

// ErrRateLimited: a client address or a signer sent more writes than its
// limit allows; the answer says when to retry.
var ErrRateLimited = errors.New("gateway: too many writes")

// Limits bounds the writes (POST /v1/operations) of each client address
// and of each signer with a token bucket: Rate writes per second on
// average, up to Burst at once. A zero Rate leaves that key unlimited.
type Limits struct {
	AddressRate  float64
	AddressBurst int
	SignerRate   float64
	SignerBurst  int
	// MaxTracked bounds the buckets kept for each kind of key; beyond it
	// the least recently used bucket is dropped, and its client starts
	// again from a full bucket. Zero means defaultMaxTracked.
	MaxTracked int
}

// defaultMaxTracked is Limits.MaxTracked when it is zero: about 200 bytes
// a bucket, some 13 MiB for each kind of key when full.
const defaultMaxTracked = 65536

// Labels of trustd_http_writes_limited_total: what refused a write.
const (
	limitedByAddress = "address"
	limitedBySigner  = "signer"
	limitedBySize    = "size"
)

// buckets is one token bucket per key, the least recently used dropped
// beyond a bound.
type buckets struct {
	rate  rate.Limit
	burst int
	what  string // "client address", "signer", for the problem's detail
	mu    sync.Mutex
	lru   *simplelru.LRU[string, *rate.Limiter]
}

// newBuckets returns nil (no limit) for a zero rate.
func newBuckets(perSecond float64, burst, maxTracked int, what string) *buckets {
	if perSecond <= 0 {
		return nil
	}
	if maxTracked <= 0 {
		maxTracked = defaultMaxTracked
	}
	l, err := simplelru.NewLRU[string, *rate.Limiter](maxTracked, nil)
	if err != nil {
		panic(err) // only for a size that is not positive
	}
	return &buckets{rate: rate.Limit(perSecond), burst: max(burst, 1), what: what, lru: l}
}

// take takes a write from key's bucket. When the bucket is empty it
// returns an error wrapping ErrRateLimited and the whole seconds until a
// write is allowed again.
func (b *buckets) take(key string, now time.Time) (int, error) {
	b.mu.Lock()
	lim, ok := b.lru.Get(key)
	if !ok {
		lim = rate.NewLimiter(b.rate, b.burst)
		b.lru.Add(key, lim)
	}
	b.mu.Unlock()
	if lim.AllowN(now, 1) {
		return 0, nil
	}
	wait := (1 - lim.TokensAt(now)) / float64(b.rate)
	retry := max(int(math.Ceil(wait)), 1)
	return retry, fmt.Errorf("%w: %s %s is limited to %g writes per second (bursts of %d): retry after %d s",
		ErrRateLimited, b.what, key, float64(b.rate), b.burst, retry)
}

// writeLimits holds the buckets of the write limits.
type writeLimits struct {
	address, signer *buckets
}

func newWriteLimits(l Limits) writeLimits {
	return writeLimits{
		address: newBuckets(l.AddressRate, l.AddressBurst, l.MaxTracked, "client address"),
		signer:  newBuckets(l.SignerRate, l.SignerBurst, l.MaxTracked, "signer"),
	}
}

// clientKey is the address a request's write is counted against: the TCP
// peer's IP, or for IPv6 its /64 (one host commonly holds a whole /64).
// Behind a reverse proxy this is the proxy's address.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// signers are the DIDs of the kids of an operation's signatures, read
// without verifying them; nil if the operation does not parse (it is
// refused later, at its submission).
func signers(body []byte) []string {
	op, err := registry.ParseOperation(body)
	if err != nil {
		return nil
	}
	var dids []string
	for _, sig := range op.JWS.Signatures {
		did, _, _ := strings.Cut(sig.Protected.KeyID, "#")
		seen := false
		for _, d := range dids {
			seen = seen || d == did
		}
		if !seen {
			dids = append(dids, did)
		}
	}
	return dids
}

// refuseLimited answers a write refused by a limit: 429 with Retry-After,
// counted by what refused it.
func (s *Server) refuseLimited(w http.ResponseWriter, r *http.Request, by string, retry int, err error) {
	s.metrics.writesLimited.WithLabelValues(by).Inc()
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	writeError(w, r, err)
}

// limitAddress takes a write from the client address's bucket; false when
// the write was refused (and answered).
func (s *Server) limitAddress(w http.ResponseWriter, r *http.Request) bool {
	if s.limits.address == nil {
		return true
	}
	retry, err := s.limits.address.take(clientKey(r), s.cfg.Now())
	if err != nil {
		s.refuseLimited(w, r, limitedByAddress, retry, err)
		return false
	}
	return true
}

// limitSigners takes a write from each signer's bucket; false when the
// write was refused (and answered).
func (s *Server) limitSigners(w http.ResponseWriter, r *http.Request, body []byte) bool {
	if s.limits.signer == nil {
		return true
	}
	now := s.cfg.Now()
	for _, did := range signers(body) {
		if retry, err := s.limits.signer.take(did, now); err != nil {
			s.refuseLimited(w, r, limitedBySigner, retry, err)
			return false
		}
	}
	return true
}
