package registry

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
)

func FuzzParseOperation(f *testing.F) {
	k, err := GenerateKey(KeyEd25519)
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{
		`{"op":"accredit","iat":1,"framework":"https://x.example/f","accreditor":"did:key:z","subject":"did:web:a","action":"issue","resources":["*"]}`,
		`{"op":"revoke","iat":1,"accreditation":"bafk"}`,
		`{"op":"createFramework","iat":1,"id":"https://x.example/f","name":"F"}`,
		`{"op":"nope","iat":1}`, `[]`, `{"op":"revoke"}`,
	} {
		jws, err := k.SignCompact([]byte(p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(jws)
		general, err := SignJSON([]byte(p), k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(general)
	}
	f.Add([]byte("a.b.c"))
	f.Add([]byte(`{"payload":"e30","signatures":[]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		op, err := ParseOperation(raw)
		if err != nil {
			return
		}
		if !slices.Contains(OperationTypes, op.Op) || op.Body == nil || len(op.JWS.Signatures) == 0 {
			t.Fatalf("parsed operation is incomplete: %+v", op)
		}
	})
}

func FuzzRestore(f *testing.F) {
	h := mustChain(f)
	f.Add(snapshotBytes(f, h.s))
	f.Add(snapshotMagic)
	f.Add([]byte{})
	fresh := mustNewState(f, 1, 1)
	fresh.raw = h.raw
	fresh.s.Close()
	fresh.dir = f.TempDir()
	fresh.open()
	f.Fuzz(func(t *testing.T, stream []byte) {
		before, digest, err := fresh.s.DigestAt()
		if err != nil {
			t.Fatal(err)
		}
		if err := fresh.s.Restore(bytes.NewReader(stream)); err != nil {
			// A refused stream leaves the previous state as it was.
			if after, d, _ := fresh.s.DigestAt(); after != before || fresh.s.AppliedIndex() != before || d != digest {
				t.Fatalf("failed restore changed the state: index %d (%d applied) digest %s, want %d and %s", after, fresh.s.AppliedIndex(), d, before, digest)
			}
			return
		}
		if _, err := fresh.s.StateDigest(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodePayload checks that the one-pass decode agrees with the
// two-pass decode on every input: same op, iat and fields, or an error
// from both.
func FuzzDecodePayload(f *testing.F) {
	for _, seed := range []string{
		`{"op":"accredit","iat":1700000000,"framework":"https://f.example","accreditor":"did:web:a","subject":"did:web:b","action":"issue","resources":["*"]}`,
		`{"op":"accredit","op":"suspend","iat":1,"accreditation":"x"}`,
		`{"op":"suspend","op":"accredit","iat":1,"framework":"f"}`,
		`{"op":"accredit","iat":0}`,
		`{"op":"accredit","iat":null}`,
		`{"op":"revoke","iat":5,"accreditation":"a"} {}`,
		`{"op":"revoke","iat":5,"accreditation":"a"}]`,
		`{"op":"revoke","iat":5,"accreditation":"a","extra":1}`,
		` {"op":"createFramework","iat":9,"id":"https://f.example","name":"F"}`,
		`{"iat":9,"op":"createFramework","id":"https://f.example","name":"F"}`,
		`{"op":"nope","iat":9}`,
		`{"op":"revoke\u0022,"iat":5}`,
		`{"accreditation":"a","iat":5,"op":"revoke","reason":"r"}`,
		`{"iat":5,"keys":[{"op":"revoke"}],"op":"rotateKeys","id":"did:web:x"}`,
		`{"iat":5,"op" : "revoke","accreditation":"a"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		op1, iat1, body1, err1 := decodePayload(payload)
		op2, iat2, body2, err2 := decodePayloadTwoPass(payload)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("one pass: %v; two passes: %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if op1 != op2 || iat1 != iat2 || !reflect.DeepEqual(body1, body2) {
			t.Fatalf("one pass: %s %d %+v; two passes: %s %d %+v", op1, iat1, body1, op2, iat2, body2)
		}
	})
}
