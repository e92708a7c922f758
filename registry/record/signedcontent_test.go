package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	jsonv2 "github.com/go-json-experiment/json"
)

// signedContentReference is signedContent as first written: every part
// copied out of the serialization and each signing input built whole. The
// streamed signedContent must give the same digests and refuse the same
// inputs: the digests are the apply's idempotency keys.
func signedContentReference(trimmed []byte, obj *jose.JSONWebSignature, payload []byte) ([][32]byte, error) {
	type part struct {
		Protected string `json:"protected"`
		Signature string `json:"signature"`
	}
	var parts []part
	if trimmed[0] == '{' {
		var env struct {
			Protected  string `json:"protected"`
			Signature  string `json:"signature"`
			Signatures []part `json:"signatures"`
		}
		if err := jsonv2.Unmarshal(trimmed, &env); err != nil {
			return nil, err
		}
		parts = env.Signatures
		if len(parts) == 0 {
			parts = []part{{Protected: env.Protected, Signature: env.Signature}}
		}
	} else {
		c := strings.Split(string(trimmed), ".")
		if len(c) != 3 {
			return nil, errors.New("three parts")
		}
		parts = []part{{Protected: c[0], Signature: c[2]}}
	}
	if len(parts) != len(obj.Signatures) {
		return nil, errors.New("count")
	}
	enc := base64.RawURLEncoding
	body := "." + enc.EncodeToString(payload)
	out := make([][32]byte, len(parts))
	for i, pt := range parts {
		header, err1 := enc.DecodeString(pt.Protected)
		sig, err2 := enc.DecodeString(pt.Signature)
		if err := errors.Join(err1, err2); err != nil || !bytes.Equal(sig, obj.Signatures[i].Signature) {
			return nil, errors.New("mismatch")
		}
		out[i] = sha256.Sum256([]byte(enc.EncodeToString(header) + body))
	}
	return out, nil
}

// FuzzSignedContent holds signedContent to its reference on every JWS
// go-jose parses: the same digests, or an error from both.
func FuzzSignedContent(f *testing.F) {
	ed := mustKey(f, KeyEd25519)
	p256 := mustKey(f, KeyP256)
	payload := []byte(`{"op":"revoke","iat":1,"accreditation":"a"}`)
	compact, err := ed.SignCompact(payload)
	if err != nil {
		f.Fatal(err)
	}
	general, err := SignJSON(payload, ed, p256)
	if err != nil {
		f.Fatal(err)
	}
	flattened, err := SignJSON(payload, p256)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(compact)
	f.Add(general)
	f.Add(flattened)
	// The header's last character with its unused bits set: another
	// encoding of the same header, the same digest.
	if h := bytes.IndexByte(compact, '.'); h > 0 {
		c := bytes.Clone(compact)
		c[h-1] ^= 1
		f.Add(c)
	}
	f.Add(append(bytes.Clone(compact), "\n"...))
	f.Add(bytes.Replace(compact, []byte("."), []byte("\n."), 1))
	f.Add(append(bytes.Clone(compact), ".x"...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		trimmed := bytes.TrimSpace(raw)
		if len(trimmed) == 0 {
			return
		}
		obj, err := parseJWS(trimmed)
		if err != nil {
			return
		}
		p := obj.UnsafePayloadWithoutVerification()
		got, _, gotErr := signedContent(trimmed, obj, p)
		want, wantErr := signedContentReference(trimmed, obj, p)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("signedContent err %v, reference err %v, on %q", gotErr, wantErr, trimmed)
		}
		if len(got) != len(want) {
			t.Fatalf("%d digests, reference %d", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("digest %d differs from the reference on %q", i, trimmed)
			}
		}
	})
}
