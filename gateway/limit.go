package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/trustreg/trustreg/registry/record"
)

// ErrRateLimited: a client address or a signer sent more writes than its
// limit allows; the answer says when to retry.
var ErrRateLimited = record.NewKind("gateway: too many writes", "too many writes", nil)

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

// bucket is a token bucket: it holds up to burst writes and gains rate
// writes a second.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time // when tokens was last brought up to date
}

// buckets is one token bucket per key, the least recently used dropped
// beyond a bound.
type buckets struct {
	rate  float64 // writes per second
	burst float64
	what  string // "client address", "signer", for the problem's detail
	mu    sync.Mutex
	lru   *simplelru.LRU[string, *bucket]
}

// newBuckets returns nil (no limit) for a zero rate.
func newBuckets(perSecond float64, burst, maxTracked int, what string) *buckets {
	if perSecond <= 0 {
		return nil
	}
	if maxTracked <= 0 {
		maxTracked = defaultMaxTracked
	}
	l, err := simplelru.NewLRU[string, *bucket](maxTracked, nil)
	if err != nil {
		panic(err) // only for a size that is not positive
	}
	return &buckets{rate: perSecond, burst: float64(max(burst, 1)), what: what, lru: l}
}

// bucket returns key's bucket, made full if key has none.
func (b *buckets) bucket(key string, now time.Time) *bucket {
	b.mu.Lock()
	defer b.mu.Unlock()
	k, ok := b.lru.Get(key)
	if !ok {
		k = &bucket{tokens: b.burst, last: now}
		b.lru.Add(key, k)
	}
	return k
}

// refill brings k's tokens up to now; k.mu is held.
func (b *buckets) refill(k *bucket, now time.Time) {
	if now.After(k.last) {
		k.tokens = min(b.burst, k.tokens+now.Sub(k.last).Seconds()*b.rate)
		k.last = now
	}
}

// take takes a write from key's bucket. When the bucket is empty it takes
// nothing and returns an error wrapping ErrRateLimited and the whole
// seconds until a write is allowed again.
func (b *buckets) take(key string, now time.Time) (int, error) {
	k := b.bucket(key, now)
	k.mu.Lock()
	defer k.mu.Unlock()
	b.refill(k, now)
	if k.tokens >= 1 {
		k.tokens--
		return 0, nil
	}
	retry := max(int(math.Ceil((1-k.tokens)/b.rate)), 1)
	return retry, record.Errorf(ErrRateLimited, "%s %s is limited to %g writes per second (bursts of %g): retry after %d s",
		b.what, key, b.rate, b.burst, retry)
}

// giveBack returns a write taken from key's bucket. A bucket dropped
// meanwhile is made anew, full.
func (b *buckets) giveBack(key string, now time.Time) {
	k := b.bucket(key, now)
	k.mu.Lock()
	defer k.mu.Unlock()
	b.refill(k, now)
	k.tokens = min(b.burst, k.tokens+1)
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
// without verifying them; nil if they cannot be read (the operation is
// refused later, at its submission). A compact JWS, every write but
// governance's, has its protected header read alone; a JSON
// serialization is parsed whole.
func signers(body []byte) []string {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] != '{' {
		head, _, ok := bytes.Cut(body, []byte("."))
		if !ok {
			return nil
		}
		raw := make([]byte, base64.RawURLEncoding.DecodedLen(len(head)))
		n, err := base64.RawURLEncoding.Decode(raw, head)
		if err != nil {
			return nil
		}
		var h struct {
			Kid string `json:"kid"`
		}
		if json.Unmarshal(raw[:n], &h) != nil || h.Kid == "" {
			return nil
		}
		did, _, _ := strings.Cut(h.Kid, "#")
		return []string{did}
	}
	// Not ParseOperation: an operation about to be refused for a strict
	// rule or a number beyond range takes a write from the signers it
	// names while its submission runs, as a compact one does, and gets it
	// back when refused as malformed (signersOwn).
	if record.CheckSize(body) != nil {
		return nil
	}
	op, err := record.ParseOperationDigest(body, sha256.Sum256(body))
	if err != nil {
		return nil
	}
	var dids []string
	for _, sig := range op.Signatures() {
		did, _, _ := strings.Cut(sig.Protected.KeyID, "#")
		if !slices.Contains(dids, did) {
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
	if retry, err := s.limits.address.take(clientKey(r), s.cfg.Now()); err != nil {
		s.refuseLimited(w, r, limitedByAddress, retry, err)
		return false
	}
	return true
}

// signerCharge is the signers a write was taken from, to keep or give
// back once the write's fate is known.
type signerCharge struct {
	b    *buckets
	dids []string
}

// limitSigners takes a write from the bucket of each signer the write
// names; false when a bucket is empty and the write was refused (and
// answered). The signatures are not verified yet, so what is taken is
// given back (settle) unless the write proves to be the signer's: a
// forged or replayed write naming someone else as its signer must not
// spend that signer's writes.
func (s *Server) limitSigners(w http.ResponseWriter, r *http.Request, body []byte) (signerCharge, bool) {
	c := signerCharge{b: s.limits.signer}
	if c.b == nil {
		return c, true
	}
	now := s.cfg.Now()
	for _, did := range signers(body) {
		if retry, err := c.b.take(did, now); err != nil {
			c.settle(now, false)
			s.refuseLimited(w, r, limitedBySigner, retry, err)
			return signerCharge{}, false
		}
		c.dids = append(c.dids, did)
	}
	return c, true
}

// settle keeps the writes taken, or gives them back.
func (c signerCharge) settle(now time.Time, keep bool) {
	if keep {
		return
	}
	for _, did := range c.dids {
		c.b.giveBack(did, now)
	}
}

// signersOwn reports whether a write's outcome shows that its signers sent
// it: not when its signatures do not verify or it does not parse (anyone
// may name anyone as signer), nor when it repeats an operation already
// submitted or signed long ago (anyone may replay a published one), nor
// when the call waited for the same bytes sent by another call and gave
// up (ErrSentByAnother: that call was charged).
func signersOwn(res *record.Result, err error) bool {
	if errors.Is(err, ErrSentByAnother) {
		return false
	}
	if err == nil && res != nil {
		if res.Duplicate {
			return false
		}
		err = res.Err()
	}
	for _, notTheirs := range []error{record.ErrBadSignature, record.ErrUnknownKey, record.ErrMalformed, record.ErrTooLarge, record.ErrIATWindow} {
		if errors.Is(err, notTheirs) {
			return false
		}
	}
	return true
}
