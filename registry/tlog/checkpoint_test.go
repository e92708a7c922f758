package tlog

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestOrigin(t *testing.T) {
	o, err := Origin("bafkreia2b3c:4-5_6.7")
	if err != nil || o != "trustreg/log/bafkreia2b3c:4-5_6.7" {
		t.Fatalf("Origin = %q, %v", o, err)
	}
	for _, bad := range []string{"", "a b", "a+b", "a/b", "é", "a\n", strings.Repeat("a", 201)} {
		if _, err := Origin(bad); !errors.Is(err, ErrBadOrigin) {
			t.Errorf("Origin(%q) = %v, want ErrBadOrigin", bad, err)
		}
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	origin := mustOrigin(t)
	for _, size := range []int{0, 1, 9} {
		cp := testCheckpoint(t, origin, size)
		got, err := ParseCheckpoint(cp.Marshal())
		if err != nil || got != cp {
			t.Fatalf("size %d: ParseCheckpoint(Marshal) = %+v, %v", size, got, err)
		}
	}
}

func TestParseCheckpointRefusals(t *testing.T) {
	good := string(testCheckpoint(t, mustOrigin(t), 9).Marshal())
	lines := strings.SplitAfter(good, "\n")
	root := strings.TrimSuffix(lines[2], "\n")
	bad := map[string]string{
		"empty":                 "",
		"no final newline":      strings.TrimSuffix(good, "\n"),
		"two lines":             lines[0] + lines[1],
		"an extension line":     good + "ext\n",
		"an empty origin":       "\n" + lines[1] + lines[2],
		"size with a plus":      lines[0] + "+9\n" + lines[2],
		"size with a zero":      lines[0] + "09\n" + lines[2],
		"negative size":         lines[0] + "-9\n" + lines[2],
		"size past 2^64":        lines[0] + "18446744073709551616\n" + lines[2],
		"empty size":            lines[0] + "\n" + lines[2],
		"root not base64":       lines[0] + lines[1] + "!!!\n",
		"root of 31 bytes":      lines[0] + lines[1] + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n",
		"root without padding":  lines[0] + lines[1] + strings.TrimRight(root, "=") + "\n",
		"size 0 with a root":    lines[0] + "0\n" + lines[2],
		"a control character":   "a\x01b\n" + lines[1] + lines[2],
		"an origin not UTF-8":   "a\xffb\n" + lines[1] + lines[2],
		"an origin of 256":      strings.Repeat("o", 256) + "\n" + lines[1] + lines[2],
		"carriage return lines": strings.ReplaceAll(good, "\n", "\r\n"),
		// The decoder skips CR even when strict; the root has one spelling.
		"a CR inside the root": lines[0] + lines[1] + root[:20] + "\r" + root[20:] + "\n",
		"a CR after the root":  lines[0] + lines[1] + root + "\r\n",
	}
	for name, text := range bad {
		if _, err := ParseCheckpoint([]byte(text)); !errors.Is(err, ErrMalformedCheckpoint) {
			t.Errorf("%s: err = %v, want ErrMalformedCheckpoint", name, err)
		}
	}
}

func TestSignRefusesInvalidCheckpoint(t *testing.T) {
	s := mustSigner(t, "member0.example")
	cp := Checkpoint{Origin: mustOrigin(t), Size: 0} // zero hash is not the empty root
	if _, err := s.Sign(cp, testClockStart); !errors.Is(err, ErrMalformedCheckpoint) {
		t.Fatalf("Sign(size 0, zero hash) = %v, want ErrMalformedCheckpoint", err)
	}
	cp = testCheckpoint(t, mustOrigin(t), 3)
	if _, err := s.Sign(cp, testClockStart.AddDate(-100, 0, 0)); !errors.Is(err, ErrMalformedNote) {
		t.Fatalf("Sign before 1970 = %v, want ErrMalformedNote", err)
	}
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func TestParseSignatureLinesRefusals(t *testing.T) {
	line := mustSigner(t, "member0.example")
	c, err := line.Sign(testCheckpoint(t, mustOrigin(t), 3), testClockStart)
	if err != nil {
		t.Fatal(err)
	}
	good := c.Line()
	bad := map[string]string{
		"empty":               "",
		"no final newline":    strings.TrimSuffix(good, "\n"),
		"a blank line":        good + "\n",
		"no dash":             strings.TrimPrefix(good, "— "),
		"no signature":        "— member0.example\n",
		"a name with a plus":  strings.Replace(good, "member0.example", "member+0", 1),
		"signature too short": "— member0.example AAAA\n",
		"a CR in the base64":  good[:len("— member0.example ")+10] + "\r" + good[len("— member0.example ")+10:],
	}
	for name, b := range bad {
		if _, err := ParseSignatureLines([]byte(b)); !errors.Is(err, ErrMalformedNote) {
			t.Errorf("%s: err = %v, want ErrMalformedNote", name, err)
		}
	}
	sigs, err := ParseSignatureLines([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	back, err := CosignatureFromSignature(sigs[0])
	if err != nil || back != c {
		t.Fatalf("CosignatureFromSignature = %+v, %v; want %+v", back, err, c)
	}
	short := sigs[0]
	short.Base64 = "AAAAAAAA"
	if _, err := CosignatureFromSignature(short); !errors.Is(err, ErrMalformedNote) {
		t.Fatalf("a short cosignature: err = %v, want ErrMalformedNote", err)
	}
	// A signature line parsed elsewhere (note.Open) keeps its base64 as
	// written; a CR inside it is not the cosignature's own encoding.
	// A 76-byte signature ends "X==", X carrying two bits of the last
	// byte and four zero bits; one of those set spells the same bytes
	// another way.
	padded := sigs[0]
	b64 := padded.Base64
	if !strings.HasSuffix(b64, "==") {
		t.Fatalf("a cosignature's base64 %q does not end in two padding characters", b64)
	}
	x := strings.IndexByte(base64Alphabet, b64[len(b64)-3])
	padded.Base64 = b64[:len(b64)-3] + string(base64Alphabet[x|1]) + "=="
	if _, err := CosignatureFromSignature(padded); !errors.Is(err, ErrMalformedNote) {
		t.Fatalf("a cosignature whose padding bits are set: err = %v, want ErrMalformedNote", err)
	}
	broken := sigs[0]
	broken.Base64 = broken.Base64[:10] + "\r" + broken.Base64[10:]
	if _, err := CosignatureFromSignature(broken); !errors.Is(err, ErrMalformedNote) {
		t.Fatalf("a cosignature with a CR inside its base64: err = %v, want ErrMalformedNote", err)
	}
}

// FuzzParseCheckpoint: whatever ParseCheckpoint accepts marshals back to the
// same bytes.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"))
	f.Add([]byte("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := ParseCheckpoint(b)
		if err != nil {
			return
		}
		if !bytes.Equal(cp.Marshal(), b) {
			t.Fatalf("ParseCheckpoint accepted a non-canonical text %q", b)
		}
	})
}
