package consensus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func encodeBatch(cmds ...[]byte) []byte {
	b := binary.AppendUvarint(nil, uint64(len(cmds)))
	for _, c := range cmds {
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
	}
	return b
}

func TestDecodeBatch(t *testing.T) {
	cmds, err := decodeBatch(encodeBatch([]byte("one"), nil, []byte("three")))
	if err != nil || len(cmds) != 3 || string(cmds[0]) != "one" || len(cmds[1]) != 0 || string(cmds[2]) != "three" {
		t.Fatalf("decodeBatch = %q, %v", cmds, err)
	}
	good := encodeBatch([]byte("one"), []byte("two"))
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-1],
		"trailing":  append(bytes.Clone(good), 0),
		"too many":  binary.AppendUvarint(nil, forwardMaxCommands+1),
		"huge len":  append(binary.AppendUvarint(nil, 1), binary.AppendUvarint(nil, 1<<40)...),
	} {
		if _, err := decodeBatch(bad); err == nil {
			t.Errorf("%s batch accepted", name)
		}
	}
}

func TestDecodeBatchAnswer(t *testing.T) {
	var out []byte
	out = append(out, byte(rpcOK))
	out = binary.AppendUvarint(out, 2)
	out = append(out, "r1"...)
	out = append(out, byte(rpcErrNotLeader))
	out = binary.AppendUvarint(out, 4)
	out = append(out, "gone"...)
	ans, err := decodeProposeBatchAnswer(out, 2)
	if err != nil {
		t.Fatal(err)
	}
	res := []forwardResult{ans[0].result("the leader"), ans[1].result("the leader")}
	if string(res[0].out) != "r1" || res[0].err != nil || !errors.Is(res[1].err, ErrNotLeader) {
		t.Fatalf("decodeProposeBatchAnswer = %+v", res)
	}
	if _, err := decodeProposeBatchAnswer(out, 3); err == nil {
		t.Error("answer with a command missing accepted")
	}
	if _, err := decodeProposeBatchAnswer(out[:len(out)-1], 2); err == nil {
		t.Error("truncated answer accepted")
	}
	if _, err := decodeProposeBatchAnswer(append(bytes.Clone(out), 1), 2); err == nil {
		t.Error("answer with trailing bytes accepted")
	}
}
