package registry

import (
	"bytes"
	"testing"
)

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
