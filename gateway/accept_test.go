package gateway

import (
	"net/http"
	"testing"
)

// TestProofFormNegotiation: the CBOR form is sent only when Accept names
// application/cbor with a q-value above zero, and gzip only when
// Accept-Encoding names it so; wildcards keep the JSON answer.
func TestProofFormNegotiation(t *testing.T) {
	for _, tc := range []struct {
		accept, encoding string
		cbor, gzip       bool
	}{
		{"", "", false, false},
		{"application/json", "gzip", false, true},
		{"application/cbor", "", true, false},
		{"Application/CBOR", "GZIP", true, true},
		{"application/json;q=0.9, application/cbor", "deflate, gzip;q=0.5", true, true},
		{"application/cbor;q=0", "gzip;q=0", false, false},
		{"application/cbor;q=0.000", "gzip; q=0.0", false, false},
		{"*/*", "*", false, false},
		{"application/*", "identity", false, false},
		{"application/cbor-seq", "x-gzip", false, false},
		{"application/cbor;q=bad", "gzip;q=", false, false},
	} {
		r, err := http.NewRequest(http.MethodGet, "/v1/trust", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.accept != "" {
			r.Header.Set("Accept", tc.accept)
		}
		if tc.encoding != "" {
			r.Header.Set("Accept-Encoding", tc.encoding)
		}
		if got := wantsCBOR(r); got != tc.cbor {
			t.Errorf("Accept %q: CBOR %v, want %v", tc.accept, got, tc.cbor)
		}
		if got := acceptsGzip(r); got != tc.gzip {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", tc.encoding, got, tc.gzip)
		}
	}
}
