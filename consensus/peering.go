package consensus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ErrForeignCluster is returned for a peer whose cluster id differs.
var ErrForeignCluster = errors.New("consensus: peer belongs to another cluster")

// peering checks that peers belong to the same cluster and remembers the
// answer per peer.
type peering struct {
	h         host.Host
	clusterID string
	log       *slog.Logger
	// v1 (tests only) speaks HelloProtocol alone, as a build from before
	// wireV2.
	v1 bool

	mu     sync.Mutex
	result map[peer.ID]error // nil: same cluster
	// versions holds what each peer's latest hello said of its build;
	// v1Version for a peer that spoke HelloProtocol. A peer that restarts
	// on another build says hello again (its new process knows no one), so
	// the entry follows its build.
	versions map[peer.ID]helloVersion
	// quiet holds back records about a peer that repeat within
	// peerRepeatEvery (logPeer).
	quiet *repeats
}

func newPeering(h host.Host, clusterID string, log *slog.Logger, v1 bool) *peering {
	p := &peering{h: h, clusterID: clusterID, log: log, v1: v1, result: map[peer.ID]error{}, versions: map[peer.ID]helloVersion{},
		quiet: newRepeats(peerRepeatEvery)}
	if !v1 {
		h.SetStreamHandler(HelloVersionProtocol, p.handle)
	}
	h.SetStreamHandler(HelloProtocol, p.handle)
	return p
}

func (p *peering) close() {
	p.h.RemoveStreamHandler(HelloVersionProtocol)
	p.h.RemoveStreamHandler(HelloProtocol)
}

// version returns what peer id's build serves, as its hello said: this
// build's for this node, and v1Version, the oldest, for a peer that has
// not said (it spoke HelloProtocol, or no hello has passed yet).
func (p *peering) version(id peer.ID) helloVersion {
	if id == p.h.ID() {
		return thisVersion
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.versions[id]; ok {
		return v
	}
	return v1Version
}

// helloMessage is what one side of a hello sends: its cluster id as one
// frame and, on HelloVersionProtocol, its helloVersion as a second frame,
// in one write.
func helloMessage(clusterID string, versioned bool) []byte {
	var b bytes.Buffer
	_ = writeFrame(&b, []byte(clusterID))
	if versioned {
		_ = writeFrame(&b, thisVersion.encode())
	}
	return b.Bytes()
}

// readHello reads the other side's hello: its cluster id and, when
// versioned, its version (v1Version otherwise), each a frame of at most
// maxHelloFrame bytes.
func readHello(r io.Reader, versioned bool) (string, helloVersion, error) {
	theirs, err := readFrame(r, maxHelloFrame)
	if err != nil {
		return "", helloVersion{}, err
	}
	if !versioned {
		return string(theirs), v1Version, nil
	}
	raw, err := readFrame(r, maxHelloFrame)
	if err != nil {
		return "", helloVersion{}, err
	}
	v, err := decodeHelloVersion(raw)
	return string(theirs), v, err
}

func (p *peering) record(id peer.ID, theirs string, v helloVersion) error {
	var err error
	if theirs != p.clusterID {
		err = fmt.Errorf("%w: %s has cluster id %s, this node %s", ErrForeignCluster, id, theirs, p.clusterID)
	}
	p.mu.Lock()
	_, seen := p.result[id]
	p.result[id] = err
	p.versions[id] = v
	p.mu.Unlock()
	if err != nil && !seen {
		p.log.Warn("refusing a peer of another consortium (different genesis)", "peer", id.String(), "their_genesis", theirs, "our_genesis", p.clusterID)
	}
	return err
}

// forget drops what the hello of peer id said: a peer that left the
// cluster says hello again if it is ever admitted again.
func (p *peering) forget(id peer.ID) {
	p.mu.Lock()
	delete(p.result, id)
	delete(p.versions, id)
	p.mu.Unlock()
}

// logPeer logs an info record about peer id, once per peerRepeatEvery for
// each message, with the count held back since.
func (p *peering) logPeer(msg string, id peer.ID) {
	let, unsaid := p.quiet.let(msg + "\x00" + id.String())
	if !let {
		return
	}
	args := []any{"peer", id.String()}
	if unsaid > 0 {
		args = append(args, "repeats_not_logged", unsaid)
	}
	p.log.Info(msg, args...)
}

func (p *peering) handle(s network.Stream) {
	// The hello exchange is over (or was reset) when the stream closes:
	// nothing more is sent on it, so its close's error is discarded.
	defer func() { _ = s.Close() }()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	versioned := s.Protocol() == HelloVersionProtocol
	theirs, v, err := readHello(s, versioned)
	if err != nil {
		_ = s.Reset() // the exchange failed already; the reset only frees the stream
		return
	}
	// Recorded before the answer goes: a peer that has its answer can
	// count on this node knowing its version.
	foreign := p.record(s.Conn().RemotePeer(), theirs, v)
	if _, err := s.Write(helloMessage(p.clusterID, versioned)); err != nil {
		_ = s.Reset() // the exchange failed already; the reset only frees the stream
		return
	}
	if foreign != nil {
		// Let the peer read our answer (it closes its side), then drop it.
		_ = s.CloseWrite()
		_, _ = io.Copy(io.Discard, io.LimitReader(s, 1<<10))
		_ = p.h.Network().ClosePeer(s.Conn().RemotePeer())
	}
}

// verify returns nil once the peer has shown the same cluster id.
func (p *peering) verify(ctx context.Context, id peer.ID) error {
	if id == p.h.ID() {
		return nil
	}
	p.mu.Lock()
	err, ok := p.result[id]
	p.mu.Unlock()
	if ok {
		return err
	}
	// A peer of a build from before wireV2 speaks only HelloProtocol.
	protos := []protocol.ID{HelloVersionProtocol, HelloProtocol}
	if p.v1 {
		protos = protos[1:]
	}
	s, err := p.h.NewStream(ctx, id, protos...)
	if err != nil {
		return fmt.Errorf("hello %s: %w", id, err)
	}
	// Closed once the hello exchange is over: nothing more is sent on it.
	defer func() { _ = s.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	versioned := s.Protocol() == HelloVersionProtocol
	if _, err := s.Write(helloMessage(p.clusterID, versioned)); err != nil {
		_ = s.Reset() // the exchange failed already; the reset only frees the stream
		return fmt.Errorf("hello %s: %w", id, err)
	}
	theirs, v, err := readHello(s, versioned)
	if err != nil {
		_ = s.Reset() // the exchange failed already; the reset only frees the stream
		return fmt.Errorf("hello %s: %w", id, err)
	}
	if err := p.record(id, theirs, v); err != nil {
		_ = s.Close() // the peer is dropped next
		_ = p.h.Network().ClosePeer(id)
		return err
	}
	return nil
}
