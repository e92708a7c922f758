package tlog

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestAddCheckpointCarriesCosigning: a member's request (its own
// cosignature as the checkpoint's signature) goes through Marshal, Parse,
// Verifier and another member's Cosigner, and the answer body parses back
// into cosignatures that complete a quorum.
func TestAddCheckpointCarriesCosigning(t *testing.T) {
	origin := mustOrigin(t)
	set := mustCosigners(t, 4)
	v, err := NewVerifier(origin, set.keys(), 0)
	if err != nil {
		t.Fatal(err)
	}
	_, store := mustBuildLog(t, testLeaves(9))
	cp := testCheckpoint(t, origin, 9)
	own := cosign(t, cp, testClockStart, set.signers[0])
	body, err := AddCheckpointRequest{OldSize: 0, Checkpoint: SignedNote(cp, own...)}.Marshal()
	if err != nil {
		t.Fatal(err)
	}

	var collected []Cosignature
	collected = append(collected, own...)
	for _, s := range set.signers[1:3] {
		req, err := ParseAddCheckpointRequest(body)
		if err != nil {
			t.Fatal(err)
		}
		// The receiving member checks the sender's signature (a quorum of 1
		// stands for "signed by a member"), then cosigns from its own root.
		members, _ := NewVerifier(origin, set.keys(), 1)
		got, err := members.Verify(req.Checkpoint)
		if err != nil {
			t.Fatalf("a member's request does not verify: %v", err)
		}
		c, err := NewCosigner(s, origin, &MemCosignerState{}, func() time.Time { return testClockStart })
		if err != nil {
			t.Fatal(err)
		}
		root, _ := RootAt(store, got.Checkpoint.Size)
		sig, err := c.Cosign(got.Checkpoint, root, req.OldSize, req.Proof)
		if err != nil {
			t.Fatalf("%s refuses: %v", s.Key().Name, err)
		}
		answer, err := ParseSignatureLines(CosignaturesBody(sig))
		if err != nil || len(answer) != 1 {
			t.Fatalf("answer: %v", err)
		}
		back, err := CosignatureFromSignature(answer[0])
		if err != nil {
			t.Fatal(err)
		}
		collected = append(collected, back)
	}
	if _, err := v.Verify(SignedNote(cp, collected...)); err != nil {
		t.Fatalf("the collected cosignatures do not make a quorum: %v", err)
	}
}

func TestAddCheckpointRoundTrip(t *testing.T) {
	_, store := mustBuildLog(t, testLeaves(20))
	p, _ := ConsistencyProof(store, 7, 20)
	note := SignedNote(testCheckpoint(t, mustOrigin(t), 20), cosign(t, testCheckpoint(t, mustOrigin(t), 20), testClockStart, mustSigner(t, "m"))...)
	req := AddCheckpointRequest{OldSize: 7, Proof: p, Checkpoint: note}
	body, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseAddCheckpointRequest(body)
	if err != nil || got.OldSize != 7 || !equalHashes(got.Proof, p) || !bytes.Equal(got.Checkpoint, note) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	again, _ := got.Marshal()
	if !bytes.Equal(again, body) {
		t.Fatal("marshal of the parsed request differs")
	}
}

func TestAddCheckpointRefusals(t *testing.T) {
	hash := "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
	cp := "o\n1\n" + hash + "\n— m AAAAAAAA\n"
	bad := map[string]string{
		"empty":                   "",
		"no old line":             "\n" + cp,
		"old without a space":     "old3\n\n" + cp,
		"old with a leading zero": "old 03\n\n" + cp,
		"old negative":            "old -3\n\n" + cp,
		"old not a number":        "old x\n\n" + cp,
		"a proof line not base64": "old 3\n!!!\n\n" + cp,
		"a proof hash of 31":      "old 3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n\n" + cp,
		"a CR in a proof hash":    "old 3\n47DEQpj8HBSa+/TI\rmW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n" + cp,
		"64 proof lines":          "old 3\n" + strings.Repeat(hash, 64) + "\n" + cp,
		"no blank line":           "old 3\n" + hash,
		"no checkpoint":           "old 3\n\n",
		"checkpoint without \\n":  "old 3\n\n" + strings.TrimSuffix(cp, "\n"),
		"too large":               "old 3\n\n" + strings.Repeat("x", maxAddCheckpointBody) + "\n",
	}
	for name, b := range bad {
		if _, err := ParseAddCheckpointRequest([]byte(b)); !errors.Is(err, ErrMalformedRequest) {
			t.Errorf("%s: err = %v, want ErrMalformedRequest", name, err)
		}
	}
	if _, err := ParseAddCheckpointRequest([]byte("old 3\n" + strings.Repeat(hash, 63) + "\n" + cp)); err != nil {
		t.Errorf("63 proof lines: %v", err)
	}
	long := make([][]byte, 64)
	for i := range long {
		long[i] = make([]byte, HashSize)
	}
	marshal := map[string]AddCheckpointRequest{
		"64 proof hashes":        {Proof: long, Checkpoint: []byte(cp)},
		"a proof hash of 31":     {Proof: [][]byte{make([]byte, 31)}, Checkpoint: []byte(cp)},
		"no checkpoint":          {},
		"checkpoint without \\n": {Checkpoint: []byte("x")},
	}
	for name, r := range marshal {
		if _, err := r.Marshal(); !errors.Is(err, ErrMalformedRequest) {
			t.Errorf("Marshal, %s: err = %v, want ErrMalformedRequest", name, err)
		}
	}
}

func TestConflictBody(t *testing.T) {
	for _, n := range []uint64{0, 7, 1 << 40} {
		got, err := ParseConflictBody(ConflictBody(n))
		if err != nil || got != n {
			t.Fatalf("ParseConflictBody(ConflictBody(%d)) = %d, %v", n, got, err)
		}
	}
	for _, b := range []string{"", "7", "07\n", "x\n", "7\n\n"} {
		if _, err := ParseConflictBody([]byte(b)); !errors.Is(err, ErrMalformedRequest) {
			t.Errorf("ParseConflictBody(%q) = %v, want ErrMalformedRequest", b, err)
		}
	}
	// An OldSizeError carries what the 409 body says.
	var e error = &OldSizeError{Got: 3, Last: 5}
	var ose *OldSizeError
	if !errors.As(e, &ose) || string(ConflictBody(ose.Last)) != "5\n" {
		t.Fatal("OldSizeError does not give the 409 body")
	}
}

// FuzzParseAddCheckpointRequest: whatever parses marshals back to the same
// bytes.
func FuzzParseAddCheckpointRequest(f *testing.F) {
	f.Add([]byte(c2spAddCheckpointBody))
	f.Add([]byte("old 0\n\no\n0\nx\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseAddCheckpointRequest(b)
		if err != nil {
			return
		}
		again, err := r.Marshal()
		if err != nil {
			t.Fatalf("a parsed request does not marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("ParseAddCheckpointRequest accepted a non-canonical body %q", b)
		}
	})
}
