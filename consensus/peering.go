package consensus

import (
	"context"
	"encoding/binary"
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

// HelloProtocol is the handshake in which two nodes compare cluster ids
// (the genesis CID) before any raft or RPC traffic passes between them.
const HelloProtocol = protocol.ID("/trustreg/hello/1.0.0")

// ErrForeignCluster is returned for a peer whose cluster id differs.
var ErrForeignCluster = errors.New("consensus: peer belongs to another cluster")

// maxFrame bounds one length-prefixed frame on our protocols.
const maxFrame = 8 << 20

// peering checks that peers belong to the same cluster and remembers the
// answer per peer.
type peering struct {
	h         host.Host
	clusterID string
	log       *slog.Logger

	mu     sync.Mutex
	result map[peer.ID]error // nil: same cluster
	// quiet holds back records about a peer that repeat within
	// peerRepeatEvery (logPeer).
	quiet *repeats
}

func newPeering(h host.Host, clusterID string, log *slog.Logger) *peering {
	p := &peering{h: h, clusterID: clusterID, log: log, result: map[peer.ID]error{}, quiet: newRepeats(peerRepeatEvery)}
	h.SetStreamHandler(HelloProtocol, p.handle)
	return p
}

func (p *peering) close() { p.h.RemoveStreamHandler(HelloProtocol) }

func (p *peering) record(id peer.ID, theirs string) error {
	var err error
	if theirs != p.clusterID {
		err = fmt.Errorf("%w: %s has cluster id %s, this node %s", ErrForeignCluster, id, theirs, p.clusterID)
	}
	p.mu.Lock()
	_, seen := p.result[id]
	p.result[id] = err
	p.mu.Unlock()
	if err != nil && !seen {
		p.log.Warn("refusing a peer of another consortium (different genesis)", "peer", id.String(), "their_genesis", theirs, "our_genesis", p.clusterID)
	}
	return err
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
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	theirs, err := readFrame(s)
	if err != nil {
		s.Reset()
		return
	}
	if err := writeFrame(s, []byte(p.clusterID)); err != nil {
		s.Reset()
		return
	}
	if p.record(s.Conn().RemotePeer(), string(theirs)) != nil {
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
	s, err := p.h.NewStream(ctx, id, HelloProtocol)
	if err != nil {
		return fmt.Errorf("hello %s: %w", id, err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := writeFrame(s, []byte(p.clusterID)); err != nil {
		s.Reset()
		return fmt.Errorf("hello %s: %w", id, err)
	}
	theirs, err := readFrame(s)
	if err != nil {
		s.Reset()
		return fmt.Errorf("hello %s: %w", id, err)
	}
	if err := p.record(id, string(theirs)); err != nil {
		s.Close()
		_ = p.h.Network().ClosePeer(id)
		return err
	}
	return nil
}

func writeFrame(w io.Writer, b []byte) error {
	buf := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen64), uint64(len(b)))
	_, err := w.Write(append(buf, b...))
	return err
}

type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var one [1]byte
	_, err := io.ReadFull(b.r, one[:])
	return one[0], err
}

func readFrame(r io.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(byteReader{r})
	if err != nil {
		return nil, err
	}
	if n > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes exceeds %d", n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}
