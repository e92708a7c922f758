package decide

import (
	"bytes"
	"testing"
)

func TestStoreKeys(t *testing.T) {
	for _, tc := range []struct {
		k    RecordKey
		want []byte
	}{
		{FrameworkKey("f"), []byte("\x05f")},
		{AccreditationKey("a1"), []byte("\x08a1")},
		{RootKey("f", "did:x"), []byte("\x06f\x00did:x")},
		{RecognitionKey("f", "g"), []byte("\x0df\x00g")},
		{EntityKey("did:x"), []byte("\x07did:x")},
		{ReceivedKey("did:x", "f"), []byte("\x09did:x\x00f\x00")},
	} {
		if got := StoreKey(tc.k); !bytes.Equal(got, tc.want) {
			t.Errorf("StoreKey(%s) = %q, want %q", tc.k, got, tc.want)
		}
	}
}

func TestReceivedListingHasOneEncoding(t *testing.T) {
	ids := []string{"a", "b", "c"}
	b := EncodeReceived(ids)
	got, err := DecodeReceived(b)
	if err != nil || len(got) != 3 || got[2] != "c" {
		t.Fatalf("DecodeReceived(%s) = %v, %v", b, got, err)
	}
	for _, bad := range []string{`["b","a"]`, `["a","a"]`, `[ "a"]`, `["a"] `, `{}`, `["\u0061"]`} {
		if _, err := DecodeReceived([]byte(bad)); err == nil {
			t.Errorf("DecodeReceived(%s) accepted", bad)
		}
	}
}
