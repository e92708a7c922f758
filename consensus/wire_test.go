package consensus

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// message is one request or answer as writeMessage puts it on the wire.
func message(t *testing.T, kind byte, body []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeMessage(&b, kind, body); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWireNumbersNeverChange pins every number of the wire protocol: a
// number changed here would make this build misread its peers.
func TestWireNumbersNeverChange(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want int
	}{
		{"rpcPropose", int(rpcPropose), 1}, {"rpcReadIndex", int(rpcReadIndex), 2},
		{"rpcMembership", int(rpcMembership), 3}, {"rpcAddrs", int(rpcAddrs), 4},
		{"rpcStatus", int(rpcStatus), 5}, {"rpcJoin", int(rpcJoin), 6},
		{"rpcProposeBatch", int(rpcProposeBatch), 7}, {"rpcConfirm", int(rpcConfirm), 8},
		{"rpcOK", int(rpcOK), 0}, {"rpcErrNoLeader", int(rpcErrNoLeader), 1},
		{"rpcErrNotLeader", int(rpcErrNotLeader), 2}, {"rpcErrTimeout", int(rpcErrTimeout), 3},
		{"rpcErrShutdown", int(rpcErrShutdown), 4}, {"rpcErrOther", int(rpcErrOther), 5},
		{"rpcErrForeign", int(rpcErrForeign), 6}, {"rpcErrUnknown", int(rpcErrUnknown), 7},
		{"rpcErrBadMembership", int(rpcErrBadMembership), 8}, {"rpcErrUnknownRequest", int(rpcErrUnknownRequest), 9},
		{"entryVersion1", int(entryVersion1), 1}, {"wireV1", int(wireV1), 1}, {"wireV2", int(wireV2), 2},
		{"wireV1MaxRPC", int(wireV1MaxRPC), 7},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d: wire numbers are never changed", tc.name, tc.got, tc.want)
		}
	}
	for _, tc := range []struct{ got, want string }{
		{string(HelloProtocol), "/trustreg/hello/1.0.0"}, {string(HelloVersionProtocol), "/trustreg/hello/1.1.0"},
		{string(RaftProtocol), "/trustreg/raft/1.0.0"}, {string(RPCProtocol), "/trustreg/rpc/1.0.0"},
	} {
		if tc.got != tc.want {
			t.Errorf("protocol id %s, want %s", tc.got, tc.want)
		}
	}
}

// TestWireBytesArePinned: the bytes of the messages builds from before
// wire.go put on the wire (captured from those builds' encoders) come out
// of the typed messages unchanged, and the hello with a version is pinned
// too.
func TestWireBytesArePinned(t *testing.T) {
	notLeader, notLeaderBody := answerOf(ErrNotLeader)
	refused, refusedBody := answerOf(badMembership("x already leads"))
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"confirm request", message(t, byte(rpcConfirm), confirmRequest{Term: 7}.encode()), "08080000000000000007"},
		{"read index answer", message(t, byte(rpcOK), readIndexAnswer{Index: 300}.encode()), "0008000000000000012c"},
		{"batch request", message(t, byte(rpcProposeBatch), proposeBatchRequest{Cmds: [][]byte{[]byte("one"), nil, []byte("three")}}.encode()),
			"070c03036f6e6500057468726565"},
		{"batch answer", proposeBatchAnswer{{Status: rpcOK, Body: []byte("r1")}, {Status: rpcErrNotLeader, Body: []byte("gone")}}.encode(),
			"0002723102" + "04676f6e65"},
		{"not the leader", message(t, byte(notLeader), notLeaderBody),
			"0226636f6e73656e7375733a2074686973206e6f6465206973206e6f7420746865206c6561646572"},
		{"membership refused", message(t, byte(refused), refusedBody), "080f7820616c7265616479206c65616473"},
		{"membership request", message(t, byte(rpcMembership), mustJSON(t, MembershipChange{Action: ActionAddNonvoter, ID: "12D3KooWabc", Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}})),
			"03507b22616374696f6e223a226164642d6e6f6e766f746572222c226964223a22313244334b6f6f57616263222c226164647273223a5b222f6970342f3132372e302e302e312f7463702f34303031225d7d"},
		{"status answer", message(t, byte(rpcOK), mustJSON(t, PeerStatus{State: "Follower", AppliedIndex: 12, LastLogIndex: 14, FeatureLevel: 2})),
			"004d7b227374617465223a22466f6c6c6f776572222c226170706c6965645f696e646578223a31322c226c6173745f6c6f675f696e646578223a31342c22666561747572655f6c6576656c223a327d"},
		{"join request", message(t, byte(rpcJoin), mustJSON(t, JoinRequest{Nonvoter: true, Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}})),
			"06357b226e6f6e766f746572223a747275652c226164647273223a5b222f6970342f3132372e302e302e312f7463702f34303031225d7d"},
		{"hello", helloMessage("bafygenesis", false), "0b6261667967656e65736973"},
		{"hello with a version", helloMessage("bafygenesis", true), "0b6261667967656e65736973" + "03020801"},
		{"entry envelope", stamp([]byte("cmd"), time.Unix(1700000000, 5)), "0117979cfe362a0005636d64"},
	} {
		if got := hex.EncodeToString(tc.got); got != tc.want {
			t.Errorf("%s: %s on the wire, want %s", tc.name, got, tc.want)
		}
	}
}

// TestHelloVersionDecodes: a version reads back as written; fields a later
// version appends are skipped; a truncated version, or one that claims to
// be older than the versioned hello, is refused.
func TestHelloVersionDecodes(t *testing.T) {
	v, err := decodeHelloVersion(thisVersion.encode())
	if err != nil || v != thisVersion {
		t.Fatalf("decodeHelloVersion(thisVersion) = %+v, %v", v, err)
	}
	later := append(helloVersion{Protocol: 3, MaxRPC: 12, MaxEntry: 2}.encode(), 0x05, 0x81, 0x01)
	if v, err := decodeHelloVersion(later); err != nil || v != (helloVersion{Protocol: 3, MaxRPC: 12, MaxEntry: 2}) {
		t.Errorf("a later version with more fields = %+v, %v", v, err)
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"truncated":      thisVersion.encode()[:2],
		"protocol 1":     helloVersion{Protocol: wireV1, MaxRPC: 7, MaxEntry: 1}.encode(),
		"type above 255": {0x02, 0x80, 0x02, 0x01},
	} {
		if v, err := decodeHelloVersion(b); !errors.Is(err, errBadHello) {
			t.Errorf("%s: decoded %+v, %v", name, v, err)
		}
	}
}

// connect gives a and b each other's addresses.
func connect(a, b host.Host) {
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.PermanentAddrTTL)
	b.Peerstore().AddAddrs(a.ID(), a.Addrs(), peerstore.PermanentAddrTTL)
}

// oldHello is the hello of a build from before wireV2, as such a build
// answers it: the other side's cluster id frame in, its own out.
func oldHello(clusterID string) network.StreamHandler {
	return func(s network.Stream) {
		defer s.Close()
		if _, err := readFrame(s, maxHelloFrame); err != nil {
			s.Reset()
			return
		}
		_ = writeFrame(s, []byte(clusterID))
	}
}

// TestHelloFindsTheVersionOfEachPeer: two builds of this version learn
// each other's version in the hello; a peer of a build from before the
// version exchange (it speaks only HelloProtocol) is taken for the oldest
// version, whichever side says hello first, and gets the same single
// frame it always did.
func TestHelloFindsTheVersionOfEachPeer(t *testing.T) {
	discard := slog.New(slog.DiscardHandler)
	a, b, old := mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0"), mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0"), mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	connect(a, b)
	connect(a, old)
	pa, pb := newPeering(a, "c", discard, false), newPeering(b, "c", discard, false)
	defer pa.close()
	defer pb.close()
	old.SetStreamHandler(HelloProtocol, oldHello("c"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := pa.verify(ctx, b.ID()); err != nil {
		t.Fatal(err)
	}
	if got := pa.version(b.ID()); got != thisVersion {
		t.Errorf("a sees b at %+v, want %+v", got, thisVersion)
	}
	if got := pb.version(a.ID()); got != thisVersion {
		t.Errorf("b, answering, sees a at %+v, want %+v", got, thisVersion)
	}

	// a says hello to the older build.
	if err := pa.verify(ctx, old.ID()); err != nil {
		t.Fatal(err)
	}
	if got := pa.version(old.ID()); got != v1Version || got.knows(rpcConfirm) || !got.knows(rpcProposeBatch) {
		t.Errorf("a sees the older build at %+v, want %+v", got, v1Version)
	}

	// The older build says hello to b, which knew nothing of it.
	b.Peerstore().AddAddrs(old.ID(), old.Addrs(), peerstore.PermanentAddrTTL)
	old.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.PermanentAddrTTL)
	s, err := old.NewStream(ctx, b.ID(), HelloProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	if err := writeFrame(s, []byte("c")); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	rest, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(rest, helloMessage("c", false)) {
		t.Fatalf("the older build read %x, %v; want its one frame %x", rest, err, helloMessage("c", false))
	}
	if got := pb.version(old.ID()); got != v1Version {
		t.Errorf("b sees the older build at %+v, want %+v", got, v1Version)
	}
}

// TestUnknownRequestIsTyped: a request type this build does not serve is
// answered rpcErrUnknownRequest, which a caller of this build reads as
// ErrUnknownRequest, and whose body keeps the words older builds look for.
func TestUnknownRequestIsTyped(t *testing.T) {
	var c Cluster
	_, err := c.handleRPC(context.Background(), "", rpcMaxType+1, nil)
	if !errors.Is(err, ErrUnknownRequest) {
		t.Fatalf("an unknown request type: %v", err)
	}
	status, body := answerOf(err)
	if status != rpcErrUnknownRequest || !strings.Contains(string(body), "unknown request type") {
		t.Errorf("answered %d %q", status, body)
	}
	if got := answerError(status, body, "peer"); !errors.Is(got, ErrUnknownRequest) {
		t.Errorf("came back as %v", got)
	}
}

// TestUnconfirmedReadIsNoLeader: a read index the leader did not answer is
// ErrNoLeader with what happened to the call, never ErrUnknownOutcome.
func TestUnconfirmedReadIsNoLeader(t *testing.T) {
	cause := errors.New("stream reset")
	err := error(&unconfirmedReadError{Leader: "12D3Koo", Err: cause})
	if !errors.Is(err, ErrNoLeader) || !errors.Is(err, cause) || errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("%v: want ErrNoLeader and its cause, not ErrUnknownOutcome", err)
	}
	na := error(&noAnswerError{peer: "12D3Koo", err: cause})
	if !errors.Is(na, ErrUnknownOutcome) || !errors.Is(na, cause) {
		t.Errorf("%v: want ErrUnknownOutcome and its cause", na)
	}
}

// A frame above maxFrame is refused by its length, as errBadMessage, with
// the words the cluster's logs have always shown.
func TestReadFrameAboveMaxFrame(t *testing.T) {
	b := []byte{0x81, 0x80, 0x80, 0x04} // uvarint maxFrame+1
	want := "consensus: malformed message: frame of 8388609 bytes exceeds 8388608"
	if _, err := readFrame(bytes.NewReader(b), maxFrame); !errors.Is(err, errBadMessage) || err.Error() != want {
		t.Fatalf("readFrame: %v, want %q", err, want)
	}
	var w bytes.Buffer
	w.Write([]byte{byte(rpcOK)})
	w.Write(b)
	if _, _, err := readMessage(readStream{r: &w}); !errors.Is(err, errBadMessage) || err.Error() != want {
		t.Fatalf("readMessage: %v, want %q", err, want)
	}
}

// A hello's frame is held to maxHelloFrame, not maxFrame: a peer that
// announces a longer cluster id or version is refused by the length alone,
// the longest hello this build accepts passes, and Start refuses a cluster
// id that would not fit.
func TestHelloFramesAreSmall(t *testing.T) {
	for _, versioned := range []bool{false, true} {
		long := binary.AppendUvarint(nil, maxHelloFrame+1)
		if _, _, err := readHello(bytes.NewReader(long), versioned); !errors.Is(err, errBadMessage) {
			t.Errorf("a cluster id frame of %d bytes (versioned %v): %v, want errBadMessage", maxHelloFrame+1, versioned, err)
		}
		if !versioned {
			continue
		}
		b := helloMessage("c", false)
		b = binary.AppendUvarint(b, 8<<20) // a version frame of 8 MiB
		if _, _, err := readHello(bytes.NewReader(b), true); !errors.Is(err, errBadMessage) {
			t.Errorf("a version frame of 8 MiB: %v, want errBadMessage", err)
		}
	}
	id := strings.Repeat("b", maxHelloFrame)
	got, v, err := readHello(bytes.NewReader(helloMessage(id, true)), true)
	if err != nil || got != id || v != thisVersion {
		t.Fatalf("the longest hello: %d bytes of id, %+v, %v", len(got), v, err)
	}
	if _, err := Start(Config{ClusterID: id + "b"}); err == nil || !strings.Contains(err.Error(), "cluster id of 1025 bytes") {
		t.Fatalf("Start with a cluster id longer than a hello takes: %v", err)
	}
}

// readStream is a stream that is read only, from r.
type readStream struct {
	network.Stream // nil: only Read is called
	r              io.Reader
}

func (s readStream) Read(p []byte) (int, error) { return s.r.Read(p) }
