package consensus

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-libp2p/p2p/transport/tcpreuse"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// handshakeTimeout bounds the time an inbound TCP connection has, from
// accept, to finish its security handshake (pre-shared key, then Noise or
// TLS, which proves the remote peer id). One that has not is closed.
// libp2p's own bound is its upgrader's accept timeout (15 s, not settable
// through libp2p's options), under which thousands of idle connections
// from anyone could be held open. QUIC needs none of this: quic-go drops a
// handshake idle for 5 s (its HandshakeIdleTimeout default).
const handshakeTimeout = 5 * time.Second

// handshakes closes inbound TCP connections that do not finish their
// security handshake within handshakeTimeout. Accept registers each
// connection (handshakeListener); the connection gater's InterceptSecured,
// which libp2p calls with the same connection once the handshake is done,
// ends its wait.
type handshakes struct {
	mu      sync.Mutex
	pending map[string]*handshakeWait
}

type handshakeWait struct{ timer *time.Timer }

func newHandshakes() *handshakes { return &handshakes{pending: map[string]*handshakeWait{}} }

// connKey names a connection by its two ends: a TCP connection's pair of
// addresses is unique while it is open.
func connKey(c network.ConnMultiaddrs) string {
	return string(c.LocalMultiaddr().Bytes()) + "\x00" + string(c.RemoteMultiaddr().Bytes())
}

// begin starts c's wait: c is closed once handshakeTimeout passes unless
// secured is called for it first.
func (h *handshakes) begin(c manet.Conn) {
	key := connKey(c)
	w := &handshakeWait{}
	h.mu.Lock()
	w.timer = time.AfterFunc(handshakeTimeout, func() {
		h.mu.Lock()
		mine := h.pending[key] == w
		if mine {
			delete(h.pending, key)
		}
		h.mu.Unlock()
		if mine {
			_ = c.Close() // the upgrade waiting on it fails and releases it
		}
	})
	h.pending[key] = w
	h.mu.Unlock()
}

// secured ends the wait of the connection c, if it has one.
func (h *handshakes) secured(c network.ConnMultiaddrs) {
	key := connKey(c)
	h.mu.Lock()
	if w, ok := h.pending[key]; ok {
		w.timer.Stop()
		delete(h.pending, key)
	}
	h.mu.Unlock()
}

// handshakeListener registers every connection it accepts with handshakes.
type handshakeListener struct {
	transport.GatedMaListener
	hs *handshakes
}

func (l *handshakeListener) Accept() (manet.Conn, network.ConnManagementScope, error) {
	c, scope, err := l.GatedMaListener.Accept()
	if err == nil {
		l.hs.begin(c)
	}
	return c, scope, err
}

// handshakeUpgrader is libp2p's upgrader with its listeners' connections
// registered with handshakes.
type handshakeUpgrader struct {
	transport.Upgrader
	hs *handshakes
}

func (u handshakeUpgrader) UpgradeGatedMaListener(t transport.Transport, l transport.GatedMaListener) transport.Listener {
	return u.Upgrader.UpgradeGatedMaListener(t, &handshakeListener{GatedMaListener: l, hs: u.hs})
}

func (u handshakeUpgrader) UpgradeListener(t transport.Transport, l manet.Listener) transport.Listener {
	return u.UpgradeGatedMaListener(t, u.GateMaListener(l))
}

// newTCPTransport is libp2p's TCP transport constructor (its arguments are
// filled in by libp2p) with handshakes bounding inbound handshakes.
func newTCPTransport(hs *handshakes) func(transport.Upgrader, network.ResourceManager, *tcpreuse.ConnMgr) (*tcp.TcpTransport, error) {
	return func(u transport.Upgrader, rcmgr network.ResourceManager, shared *tcpreuse.ConnMgr) (*tcp.TcpTransport, error) {
		return tcp.NewTCPTransport(handshakeUpgrader{Upgrader: u, hs: hs}, rcmgr, shared)
	}
}

// hostGater is the connection gater the host runs: it tells handshakes
// which connections have finished their security handshake, and admits
// what admit does (everyone when admit is nil).
type hostGater struct {
	admit *Gater
	hs    *handshakes
}

func (g hostGater) InterceptPeerDial(p peer.ID) bool {
	return g.admit == nil || g.admit.InterceptPeerDial(p)
}

func (g hostGater) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	return g.admit == nil || g.admit.InterceptAddrDial(p, a)
}

func (g hostGater) InterceptAccept(c network.ConnMultiaddrs) bool {
	return g.admit == nil || g.admit.InterceptAccept(c)
}

func (g hostGater) InterceptSecured(dir network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	if dir == network.DirInbound {
		g.hs.secured(c)
	}
	return g.admit == nil || g.admit.InterceptSecured(dir, p, c)
}

func (g hostGater) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	if g.admit == nil {
		return true, 0
	}
	return g.admit.InterceptUpgraded(c)
}
