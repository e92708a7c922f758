package client

import (
	"testing"

	"github.com/trustreg/trustreg/gateway"
)

func TestAPIErrorNamesTheCode(t *testing.T) {
	for _, tc := range []struct {
		typ, want string
	}{
		{"urn:trustreg:problem:not_found", `404 not_found: entity "did:example:a"`},
		{"https://www.w3.org/ns/credentials/status-list#STATUS_RETRIEVAL_ERROR", `404 STATUS_RETRIEVAL_ERROR: entity "did:example:a"`},
		{"about:blank", `404 about:blank: entity "did:example:a"`},
	} {
		e := &APIError{Problem: gateway.Problem{Type: tc.typ, Status: 404, Detail: `entity "did:example:a"`}}
		if got := e.Error(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.typ, got, tc.want)
		}
	}
}
