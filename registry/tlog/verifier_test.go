package tlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

type cosignerSet struct {
	signers []*CosignatureSigner
}

func (s cosignerSet) keys() []CosignerKey {
	out := make([]CosignerKey, len(s.signers))
	for i, sg := range s.signers {
		out[i] = sg.Key()
	}
	return out
}

// mustSigner returns a signer whose key is derived from its name.
func mustSigner(t *testing.T, name string) *CosignatureSigner {
	t.Helper()
	seed := sha256.Sum256([]byte("seed " + name))
	s, err := NewCosignatureSigner(name, ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustCosigners returns n signers named member0.example ... .
func mustCosigners(t *testing.T, n int) cosignerSet {
	t.Helper()
	var s cosignerSet
	for i := range n {
		s.signers = append(s.signers, mustSigner(t, fmt.Sprintf("member%d.example", i)))
	}
	return s
}

func mustOrigin(t *testing.T) string {
	t.Helper()
	o, err := Origin("bafkreigenesis")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// testCheckpoint is a checkpoint of the test log of 9 leaves.
func testCheckpoint(t *testing.T, origin string, size int) Checkpoint {
	t.Helper()
	cp := Checkpoint{Origin: origin, Size: uint64(size)}
	copy(cp.Hash[:], refMTH(testLeaves(size)))
	return cp
}

// cosign returns the signature lines of the given signers over cp, at
// base+i seconds for signer i.
func cosign(t *testing.T, cp Checkpoint, base time.Time, signers ...*CosignatureSigner) []Cosignature {
	t.Helper()
	var out []Cosignature
	for i, s := range signers {
		c, err := s.Sign(cp, base.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestDefaultQuorum(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5, 10: 7, 100: 67} {
		if got := DefaultQuorum(n); got != want {
			t.Errorf("DefaultQuorum(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestVerifierAccepts(t *testing.T) {
	origin := mustOrigin(t)
	set := mustCosigners(t, 4)
	v, err := NewVerifier(origin, set.keys(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.Quorum() != 3 {
		t.Fatalf("quorum %d, want 3 of 4", v.Quorum())
	}
	cp := testCheckpoint(t, origin, 9)
	base := time.Unix(1_800_000_000, 0).UTC()
	sigs := cosign(t, cp, base, set.signers[3], set.signers[0], set.signers[1])
	got, err := v.Verify(SignedNote(cp, sigs...))
	if err != nil {
		t.Fatalf("Verify(3 of 4): %v", err)
	}
	if got.Checkpoint != cp {
		t.Fatalf("checkpoint %+v, want %+v", got.Checkpoint, cp)
	}
	if names := strings.Join(got.Cosigners(), ","); names != "member3.example,member0.example,member1.example" {
		t.Fatalf("cosigners %s", names)
	}
	// Timestamps base, base+1, base+2: three of three needed, so the
	// checkpoint is vouched for by a quorum as of the oldest.
	if got := got.FreshAsOf(); !got.Equal(base) {
		t.Fatalf("FreshAsOf = %v, want %v", got, base)
	}
	all := cosign(t, cp, base, set.signers...)
	got, err = v.Verify(SignedNote(cp, all...))
	if err != nil || len(got.Cosignatures) != 4 {
		t.Fatalf("Verify(4 of 4): %v", err)
	}
	if got := got.FreshAsOf(); !got.Equal(base.Add(time.Second)) {
		t.Fatalf("FreshAsOf with 4 = %v, want the third newest %v", got, base.Add(time.Second))
	}
	// An unknown line next to a quorum is ignored.
	outsider := mustSigner(t, "outsider.example")
	extra := append(all[:3:3], cosign(t, cp, base, outsider)...)
	if got, err := v.Verify(SignedNote(cp, extra...)); err != nil || len(got.Cosignatures) != 3 {
		t.Fatalf("Verify(quorum and an outsider): %v", err)
	}
}

func TestVerifierRefusals(t *testing.T) {
	origin := mustOrigin(t)
	set := mustCosigners(t, 4)
	v, err := NewVerifier(origin, set.keys(), 0)
	if err != nil {
		t.Fatal(err)
	}
	cp := testCheckpoint(t, origin, 9)
	base := time.Unix(1_800_000_000, 0)
	good := cosign(t, cp, base, set.signers[:3]...)
	goodNote := SignedNote(cp, good...)

	tampered := bytes.Clone(goodNote)
	// Flip one bit of the second signature line's Ed25519 signature.
	lines := strings.Split(string(tampered), "\n")
	name, b64, _ := strings.Cut(strings.TrimPrefix(lines[5], "— "), " ")
	raw, _ := base64.StdEncoding.DecodeString(b64)
	raw[len(raw)-1] ^= 1
	lines[5] = "— " + name + " " + base64.StdEncoding.EncodeToString(raw)
	tampered = []byte(strings.Join(lines, "\n"))

	// The same signature with a CR inside its base64: the decoder would
	// skip it, but a signature has one spelling.
	crLines := strings.Split(string(goodNote), "\n")
	crLines[5] = crLines[5][:30] + "\r" + crLines[5][30:]
	crInSig := []byte(strings.Join(crLines, "\n"))
	// Verify would refuse it in note.Open too (a control character);
	// Precheck, which callers run alone on untrusted notes, refuses it
	// itself.
	if _, err := v.Precheck(crInSig); !errors.Is(err, ErrMalformedNote) {
		t.Fatalf("Precheck of a note with a CR inside a signature's base64: %v, want ErrMalformedNote", err)
	}

	otherCP := testCheckpoint(t, origin, 8)
	transplanted := SignedNote(cp, append(good[:2:2], cosign(t, otherCP, base, set.signers[2])...)...)

	wrongOrigin := testCheckpoint(t, OriginPrefix+"another-genesis", 9)
	outsiders := []*CosignatureSigner{mustSigner(t, "outsider1.example"), mustSigner(t, "outsider2.example")}
	impostor := mustSigner(t, "member2.example-impostor")
	impostorSig := cosign(t, cp, base, impostor)[0]
	impostorSig.Name = "member2.example" // same name as a member, another key: another key ID
	impostorSig.KeyID = KeyID("member2.example", SigTypeCosignatureV1, impostor.Key().Key)

	// A known key whose signed timestamp is past 2^63-1.
	hugeTS := uint64(1) << 63
	sig := ed25519.Sign(set.signers[2].priv, CosignedMessage(cp.Marshal(), hugeTS))
	rawHuge := binary.BigEndian.AppendUint32(nil, set.signers[2].Key().KeyID())
	rawHuge = binary.BigEndian.AppendUint64(rawHuge, hugeTS)
	rawHuge = append(rawHuge, sig...)
	hugeNote := append(SignedNote(cp, good[:2]...), "— member2.example "+base64.StdEncoding.EncodeToString(rawHuge)+"\n"...)

	manyLines := SignedNote(cp, good...)
	for range MaxNoteSignatures {
		manyLines = append(manyLines, good[0].Line()...)
	}

	tests := []struct {
		name    string
		note    []byte
		want    error
		notWant []error
	}{
		{"no blank line", bytes.ReplaceAll(goodNote, []byte("\n\n"), []byte("\n")), ErrMalformedNote, nil},
		{"no signatures", cp.Marshal(), ErrMalformedNote, nil},
		{"a garbled signature line", append(bytes.Clone(goodNote), "— member0.example !!!\n"...), ErrMalformedNote, nil},
		{"a line without the dash", append(bytes.Clone(goodNote), "member0.example AAAA\n"...), ErrMalformedNote, nil},
		{"a CR inside a signature's base64", crInSig, ErrMalformedNote, nil},
		{"too large", append(bytes.Clone(goodNote), bytes.Repeat([]byte("x"), MaxNoteSize)...), ErrMalformedNote, nil},
		{"too many signature lines", manyLines, ErrMalformedNote, nil},
		{"a control character", bytes.Replace(goodNote, []byte("bafk"), []byte("baf\x01"), 1), ErrMalformedCheckpoint, nil},
		{"size with a leading zero", bytes.Replace(goodNote, []byte("\n9\n"), []byte("\n09\n"), 1), ErrMalformedCheckpoint, nil},
		{"an extension line", bytes.Replace(goodNote, []byte("=\n\n"), []byte("=\nextra\n\n"), 1), ErrMalformedCheckpoint, nil},
		{"wrong origin", SignedNote(wrongOrigin, cosign(t, wrongOrigin, base, set.signers...)...), ErrWrongOrigin, []error{ErrTooFewCosignatures}},
		{"a tampered signature", tampered, ErrBadSignature, []error{ErrTooFewCosignatures}},
		{"a signature over another checkpoint", transplanted, ErrBadSignature, nil},
		{"a timestamp past 2^63-1", hugeNote, ErrBadSignature, nil},
		{"two of four", SignedNote(cp, good[:2]...), ErrTooFewCosignatures, []error{ErrUnknownKey}},
		{"one cosigner twice", SignedNote(cp, good[0], good[1], cosign(t, cp, base.Add(time.Hour), set.signers[1])[0]), ErrTooFewCosignatures, []error{ErrUnknownKey}},
		{"outsiders make up the count", SignedNote(cp, append(good[:2:2], cosign(t, cp, base, outsiders...)...)...), ErrUnknownKey, nil},
		{"a member's name with another key", SignedNote(cp, good[0], good[1], impostorSig), ErrUnknownKey, []error{ErrBadSignature}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(tc.note)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if got != nil {
				t.Fatalf("a refused note returned %+v", got)
			}
			for _, nw := range tc.notWant {
				if errors.Is(err, nw) {
					t.Fatalf("err = %v also matches %v", err, nw)
				}
			}
		})
	}
	var qe *QuorumError
	if _, err := v.Verify(SignedNote(cp, append(good[:2:2], cosign(t, cp, base, outsiders...)...)...)); !errors.As(err, &qe) || qe.Have != 2 || qe.Need != 3 || len(qe.Unknown) != 2 {
		t.Fatalf("QuorumError = %+v", qe)
	}
	var se *SignatureError
	if _, err := v.Verify(tampered); !errors.As(err, &se) || se.Name != "member1.example" {
		t.Fatalf("SignatureError = %+v, want member1.example", se)
	}
}

func TestNewVerifierRefusals(t *testing.T) {
	origin := mustOrigin(t)
	set := mustCosigners(t, 3)
	keys := set.keys()
	dupName := append(keys[:2:2], CosignerKey{Name: keys[0].Name, Key: keys[2].Key})
	dupKey := append(keys[:2:2], CosignerKey{Name: "member9.example", Key: keys[0].Key})
	tests := []struct {
		name   string
		origin string
		keys   []CosignerKey
		quorum int
	}{
		{"no keys", origin, nil, 0},
		{"a name twice", origin, dupName, 0},
		{"a key twice", origin, dupKey, 0},
		{"quorum above n", origin, keys, 4},
		{"negative quorum", origin, keys, -1},
		{"empty origin", "", keys, 0},
		{"a short key", origin, []CosignerKey{{Name: "a", Key: make([]byte, 31)}}, 0},
		{"a name with a space", origin, []CosignerKey{{Name: "a b", Key: keys[0].Key}}, 0},
	}
	for _, tc := range tests {
		if _, err := NewVerifier(tc.origin, tc.keys, tc.quorum); !errors.Is(err, ErrBadPolicy) {
			t.Errorf("%s: err = %v, want ErrBadPolicy", tc.name, err)
		}
	}
}

func TestCosignerKeyRoundTrip(t *testing.T) {
	k := mustSigner(t, "member0.example").Key()
	got, err := ParseCosignerKey(k.String())
	if err != nil || got.Name != k.Name || !bytes.Equal(got.Key, k.Key) {
		t.Fatalf("ParseCosignerKey(%s) = %+v, %v", k, got, err)
	}
	vkey := k.String()
	name, rest, _ := strings.Cut(vkey, "+")
	id, key64, _ := strings.Cut(rest, "+")
	raw, _ := base64.StdEncoding.DecodeString(key64)
	plain := append([]byte{0x01}, raw[1:]...)
	bad := []string{
		"",
		name,
		name + "+" + id,
		name + "+zzzzzzzz+" + key64,
		name + "+00000000+" + key64, // wrong key ID
		name + "+" + id + "+" + base64.StdEncoding.EncodeToString(plain),    // signature type 0x01
		name + "+" + id + "+" + base64.StdEncoding.EncodeToString(raw[:32]), // short key
		"a b+" + id + "+" + key64,                                   // space in the name
		name + "+" + id + "+" + strings.TrimRight(key64, "=") + "A", // not canonical base64
		vkey + "\r", // a CR, which base64 decoding skips
		name + "+" + id + "+" + key64[:10] + "\n" + key64[10:], // an LF inside the key
	}
	for _, b := range bad {
		if _, err := ParseCosignerKey(b); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("ParseCosignerKey(%q) = %v, want ErrMalformedKey", b, err)
		}
	}
}
