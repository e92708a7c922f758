package gateway

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// The operations the tests sign, for the tests in and outside the
// package.

// OpPayload is an operation's payload: op, issued at iat, and fields.
func OpPayload(tb testing.TB, iat time.Time, op string, fields map[string]any) []byte {
	tb.Helper()
	m := map[string]any{"op": op, "iat": iat.Unix()}
	for k, v := range fields {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// SignOp is OpPayload signed by s as a compact JWS.
func SignOp(tb testing.TB, s *record.Signer, iat time.Time, op string, fields map[string]any) []byte {
	tb.Helper()
	jws, err := s.SignCompact(OpPayload(tb, iat, op, fields))
	if err != nil {
		tb.Fatal(err)
	}
	return jws
}

// GovSignOp is OpPayload signed by every governance member given, as a
// JSON JWS.
func GovSignOp(tb testing.TB, gov []*record.Signer, iat time.Time, op string, fields map[string]any) []byte {
	tb.Helper()
	jws, err := record.SignJSON(OpPayload(tb, iat, op, fields), gov...)
	if err != nil {
		tb.Fatal(err)
	}
	return jws
}
