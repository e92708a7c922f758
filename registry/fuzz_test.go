package registry

import (
	"bytes"
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
	var buf bytes.Buffer
	snap := h.s.Snapshot()
	if _, err := snap.WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	snap.Release()
	f.Add(buf.Bytes())
	f.Add(snapshotMagic)
	f.Add([]byte{})
	fresh := mustNewState(f, 1, 1)
	fresh.raw = h.raw
	fresh.s.Close()
	fresh.dir = f.TempDir()
	fresh.open()
	f.Fuzz(func(t *testing.T, stream []byte) {
		if err := fresh.s.Restore(bytes.NewReader(stream)); err != nil {
			if fresh.s.AppliedIndex() != 0 {
				t.Fatalf("failed restore left applied index %d", fresh.s.AppliedIndex())
			}
			return
		}
		if _, err := fresh.s.StateDigest(); err != nil {
			t.Fatal(err)
		}
	})
}
