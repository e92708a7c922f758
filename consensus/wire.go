package consensus

// The wire protocol of a trustreg cluster, in one file: every libp2p
// protocol id, request type, answer status and log-entry envelope version,
// with the messages each request and answer carries and their bytes.
//
// Numbers are append-only. A number once used is never reused for another
// meaning and never renumbered; one that is no longer sent stays listed
// here, marked reserved, so that no later change takes it. Each number says
// the wire protocol version (wireV1, wireV2, ...) in which it appeared; a
// change that adds a number raises wireProtocol, so that a peer learns what
// this build understands from the hello (helloVersion), never from the
// text of an error.
//
// The commands inside a log entry (what the state machine applies) are
// the state machine's own and are numbered by it (the registry's
// commandTypeSubmitOp and commandTypeFeatureLevel); consensus carries them
// as opaque bytes inside the entry envelope below.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/trustreg/trustreg/consensus/frame"
)

// Protocol ids.
const (
	// HelloProtocol is the handshake in which two nodes compare cluster
	// ids (the genesis CID) before any raft or RPC traffic passes between
	// them (wireV1). Each side sends one frame: its cluster id. A node
	// still answers it, for peers of builds from before wireV2; such a
	// peer is taken to speak wireV1.
	HelloProtocol = protocol.ID("/trustreg/hello/1.0.0")
	// HelloVersionProtocol is the hello with versions (wireV2): each side
	// sends its cluster id frame, then its helloVersion frame. A node dials
	// it first and HelloProtocol when the peer does not speak it.
	HelloVersionProtocol = protocol.ID("/trustreg/hello/1.1.0")
	// RaftProtocol is the libp2p protocol raft's RPCs travel on (wireV1).
	RaftProtocol = protocol.ID("/trustreg/raft/1.0.0")
	// RPCProtocol carries requests a node sends to the leader (forwarded
	// writes, read indexes, membership changes) or to any peer (addresses,
	// status, confirmations) (wireV1). A request is one message (rpcType,
	// body); its answer one message (answerStatus, body).
	RPCProtocol = protocol.ID("/trustreg/rpc/1.0.0")
)

// Wire protocol versions, exchanged in the hello (helloVersion.Protocol).
const (
	// wireV1: builds from before the version exchange; their hello carries
	// the cluster id alone. They know request types up to wireV1MaxRPC for
	// certain (the last of them also rpcConfirm, the first ones not).
	wireV1 uint64 = 1
	// wireV2: the hello carries helloVersion; a request of a type the
	// peer does not know is answered rpcErrUnknownRequest.
	wireV2 uint64 = 2

	// wireProtocol is this build's version: the newest above.
	wireProtocol = wireV2
)

// rpcType numbers a request on RPCProtocol.
type rpcType byte

// Request types. Append-only; removed numbers are reserved.
const (
	// rpcPropose (wireV1): body: one command; answer: the state machine's
	// response, encoded by the ResponseCodec. Still served; this build
	// forwards with rpcProposeBatch.
	rpcPropose rpcType = 1
	// rpcReadIndex (wireV1): body: none; answer: readIndexAnswer.
	rpcReadIndex rpcType = 2
	// rpcMembership (wireV1): body: MembershipChange JSON; answer: none.
	rpcMembership rpcType = 3
	// rpcAddrs (wireV1): body: addrsRequest; answer: JSON list of
	// multiaddrs.
	rpcAddrs rpcType = 4
	// rpcStatus (wireV1): body: none; answer: PeerStatus JSON.
	rpcStatus rpcType = 5
	// rpcJoin (wireV1) asks a member to have the caller added; body:
	// JoinRequest JSON; answer: none.
	rpcJoin rpcType = 6
	// rpcProposeBatch (wireV1): several commands a follower forwards to
	// the leader in one request; body: proposeBatchRequest; answer:
	// proposeBatchAnswer.
	rpcProposeBatch rpcType = 7
	// rpcConfirm (wireV1, its last builds) asks a voter whether it is
	// still in the caller's term with the caller as its leader; body:
	// confirmRequest; answer: none (rpcOK), or rpcErrNotLeader when it has
	// moved on (or never followed the caller).
	rpcConfirm rpcType = 8

	// rpcMaxType is the newest request type this build knows.
	rpcMaxType = rpcConfirm
	// wireV1MaxRPC is the newest request type a wireV1 peer is taken to
	// know: the oldest builds this one runs with knew none after it.
	wireV1MaxRPC = rpcProposeBatch
)

// answerStatus numbers the outcome of a request on RPCProtocol.
type answerStatus byte

// Answer statuses. Append-only; removed numbers are reserved. A peer that
// does not know a status takes the answer for a plain error with the body
// as its text.
const (
	rpcOK           answerStatus = 0 // wireV1; body: the answer
	rpcErrNoLeader  answerStatus = 1 // wireV1; certainly not carried out
	rpcErrNotLeader answerStatus = 2 // wireV1; certainly not carried out
	rpcErrTimeout   answerStatus = 3 // wireV1; certainly not carried out (raft's enqueue timed out)
	rpcErrShutdown  answerStatus = 4 // wireV1
	rpcErrOther     answerStatus = 5 // wireV1; body: the error's text
	rpcErrForeign   answerStatus = 6 // wireV1
	rpcErrUnknown   answerStatus = 7 // wireV1; handed to raft; its fate is not known
	// rpcErrBadMembership (wireV1): the leader refused a membership
	// change; body: the reason (MembershipError.Reason).
	rpcErrBadMembership answerStatus = 8
	// rpcErrUnknownRequest (wireV2): the request type is not one this
	// build knows; body: the error's text ("unknown request type N", the
	// words wireV1 builds answered with rpcErrOther).
	rpcErrUnknownRequest answerStatus = 9
)

// Log-entry envelope versions: the first byte of every raft command entry
// (stamp, unstamp).
const (
	// entryVersion1 (wireV1): the version byte, the commit time (unix ns,
	// u64 big-endian) the leader stamped, then the state machine's command.
	entryVersion1 byte = 1

	// entryMaxVersion is the newest envelope this build applies.
	entryMaxVersion = entryVersion1
)

// maxFrame bounds one length-prefixed frame of a request or an answer
// (RPCProtocol).
const maxFrame = 8 << 20

// maxHelloFrame bounds each frame of a hello: the cluster id (a genesis
// CID, 59 bytes as CIDv1 base32 sha2-256; Start refuses a longer id) and
// the helloVersion (three uvarints, at most 30 bytes, and any a later
// version appends). A hello is read before the peer is known to be of
// this cluster, so it is held to what a hello needs, with margin, and not
// to maxFrame.
const maxHelloFrame = 1 << 10

// helloVersion is what a node tells a peer about its build in the hello
// (HelloVersionProtocol): the second frame's body is the uvarints
// Protocol, MaxRPC, MaxEntry, in that order. A later version may append
// uvarints; a reader ignores those it does not know.
type helloVersion struct {
	Protocol uint64  // wire protocol version (wireV1, wireV2, ...)
	MaxRPC   rpcType // newest request type the peer serves
	MaxEntry byte    // newest log-entry envelope version the peer applies
}

// thisVersion is this build's helloVersion.
var thisVersion = helloVersion{Protocol: wireProtocol, MaxRPC: rpcMaxType, MaxEntry: entryMaxVersion}

// v1Version is what a peer that speaks only HelloProtocol is taken for:
// the oldest build this one runs with.
var v1Version = helloVersion{Protocol: wireV1, MaxRPC: wireV1MaxRPC, MaxEntry: entryVersion1}

// knows reports whether a peer of version v serves requests of type t.
func (v helloVersion) knows(t rpcType) bool { return t <= v.MaxRPC }

func (v helloVersion) encode() []byte {
	b := binary.AppendUvarint(nil, v.Protocol)
	b = binary.AppendUvarint(b, uint64(v.MaxRPC))
	return binary.AppendUvarint(b, uint64(v.MaxEntry))
}

// errBadHello marks a hello frame that cannot be read.
var errBadHello = errors.New("consensus: malformed hello")

func decodeHelloVersion(b []byte) (helloVersion, error) {
	var f [3]uint64
	for i := range f {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return helloVersion{}, fmt.Errorf("%w: version field %d of %d is truncated", errBadHello, i+1, len(f))
		}
		f[i], b = n, b[k:]
	}
	if f[0] < wireV2 || f[1] > 0xff || f[2] > 0xff {
		return helloVersion{}, fmt.Errorf("%w: version %d, request types to %d, entries to %d", errBadHello, f[0], f[1], f[2])
	}
	return helloVersion{Protocol: f[0], MaxRPC: rpcType(f[1]), MaxEntry: byte(f[2])}, nil
}

// errBadMessage marks a request or answer body that cannot be decoded.
var errBadMessage = errors.New("consensus: malformed message")

// confirmRequest is rpcConfirm's body: the term, u64 big-endian.
type confirmRequest struct{ Term uint64 }

func (r confirmRequest) encode() []byte { return binary.BigEndian.AppendUint64(nil, r.Term) }

func decodeConfirmRequest(b []byte) (confirmRequest, error) {
	if len(b) != 8 {
		return confirmRequest{}, fmt.Errorf("%w: confirm request of %d bytes", errBadMessage, len(b))
	}
	return confirmRequest{Term: binary.BigEndian.Uint64(b)}, nil
}

// readIndexAnswer is rpcReadIndex's answer: the index, u64 big-endian.
type readIndexAnswer struct{ Index uint64 }

func (a readIndexAnswer) encode() []byte { return binary.BigEndian.AppendUint64(nil, a.Index) }

func decodeReadIndexAnswer(b []byte) (readIndexAnswer, error) {
	if len(b) != 8 {
		return readIndexAnswer{}, fmt.Errorf("%w: read index answer of %d bytes", errBadMessage, len(b))
	}
	return readIndexAnswer{Index: binary.BigEndian.Uint64(b)}, nil
}

// addrsRequest is rpcAddrs's body: the peer id's text.
type addrsRequest struct{ Peer peer.ID }

func (r addrsRequest) encode() []byte { return []byte(r.Peer.String()) }

func decodeAddrsRequest(b []byte) (addrsRequest, error) {
	id, err := peer.Decode(string(b))
	if err != nil {
		return addrsRequest{}, fmt.Errorf("%w: addresses of %q: %w", errBadMessage, b, err)
	}
	return addrsRequest{Peer: id}, nil
}

// proposeBatchRequest is rpcProposeBatch's body: uvarint count, then one
// frame (uvarint length, bytes) per command.
type proposeBatchRequest struct{ Cmds [][]byte }

func (r proposeBatchRequest) encode() []byte {
	b := binary.AppendUvarint(nil, uint64(len(r.Cmds)))
	for _, c := range r.Cmds {
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
	}
	return b
}

func decodeBatch(body []byte) ([][]byte, error) {
	n, k := binary.Uvarint(body)
	if k <= 0 || n > forwardMaxCommands {
		return nil, fmt.Errorf("%w: batch of %d commands: bad count", errBadMessage, n)
	}
	body = body[k:]
	cmds := make([][]byte, 0, n)
	for range n {
		l, k := binary.Uvarint(body)
		if k <= 0 || uint64(len(body)-k) < l {
			return nil, fmt.Errorf("%w: batch is truncated", errBadMessage)
		}
		cmds = append(cmds, body[k:k+int(l)])
		body = body[k+int(l):]
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("%w: batch has trailing bytes", errBadMessage)
	}
	return cmds, nil
}

// answer is one outcome: a status and its body (the answer, or what the
// error says).
type answer struct {
	Status answerStatus
	Body   []byte
}

// proposeBatchAnswer is rpcProposeBatch's answer (status rpcOK): one
// answer per command, in order, each a status byte and a frame.
type proposeBatchAnswer []answer

func (a proposeBatchAnswer) encode() []byte {
	var b []byte
	for _, one := range a {
		b = append(b, byte(one.Status))
		b = binary.AppendUvarint(b, uint64(len(one.Body)))
		b = append(b, one.Body...)
	}
	return b
}

func decodeProposeBatchAnswer(out []byte, n int) (proposeBatchAnswer, error) {
	res := make(proposeBatchAnswer, 0, n)
	for range n {
		if len(out) < 1 {
			return nil, fmt.Errorf("%w: batch answer is truncated", errBadMessage)
		}
		status := answerStatus(out[0])
		l, k := binary.Uvarint(out[1:])
		if k <= 0 || uint64(len(out)-1-k) < l {
			return nil, fmt.Errorf("%w: batch answer is truncated", errBadMessage)
		}
		res = append(res, answer{Status: status, Body: out[1+k : 1+k+int(l)]})
		out = out[1+k+int(l):]
	}
	if len(out) != 0 {
		return nil, fmt.Errorf("%w: batch answer has trailing bytes", errBadMessage)
	}
	return res, nil
}

// decodeJSON decodes a JSON body (MembershipChange, JoinRequest,
// PeerStatus, the addresses answer).
func decodeJSON[T any](b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%w: %w", errBadMessage, err)
	}
	return v, nil
}

// writeMessage sends a request (type, body) or an answer (status, body)
// in one write: the byte, then the body as one frame (frame.WriteMessage).
func writeMessage(w io.Writer, kind byte, body []byte) error {
	return frame.WriteMessage(w, kind, body)
}

// readMessage reads a type or status byte and a frame of at most maxFrame
// bytes through a buffer, so a small message costs one read from the
// stream.
func readMessage(s network.Stream) (byte, []byte, error) {
	kind, out, err := frame.ReadMessage(s, maxFrame)
	return kind, out, frameError(err)
}

// writeFrame writes b as one frame: uvarint length, then the bytes.
func writeFrame(w io.Writer, b []byte) error { return frame.Write(w, b) }

// readFrame reads one frame of at most limit bytes.
func readFrame(r io.Reader, limit uint64) ([]byte, error) {
	b, err := frame.Read(r, limit)
	return b, frameError(err)
}

// frameError marks a frame above its limit errBadMessage.
func frameError(err error) error {
	var big *frame.TooLargeError
	if errors.As(err, &big) {
		return fmt.Errorf("%w: frame of %d bytes exceeds %d", errBadMessage, big.Size, big.Limit)
	}
	return err
}
