package node

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/proof"
)

// getCBOR asks for a proof answer in the bundle's CBOR form (Accept:
// application/cbor), gzip'd when gzipped, until it answers 200 (bounded,
// as getProven), and returns the body as sent and the bundle it holds.
func getCBOR(t *testing.T, method, u string, body []byte, gzipped bool) ([]byte, *proof.Bundle) {
	t.Helper()
	// No transparent decompression: the test sees the body as sent.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "application/json;q=0.5, application/cbor")
		if gzipped {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			h := resp.Header
			if ct, ce := h.Get("Content-Type"), h.Get("Content-Encoding"); ct != proof.MediaTypeCBOR || (ce == "gzip") != gzipped ||
				h.Get("Cache-Control") != "no-store" || h.Get("Vary") != "Accept, Accept-Encoding" || h.Get("X-Trustreg-Index") == "" {
				t.Fatalf("%s %s: headers %v", method, u, h)
			}
			b, err := proof.ParseAny(raw)
			if err != nil {
				t.Fatalf("%s %s: %v", method, u, err)
			}
			// Sent gzip'd exactly when asked: only then is it not CBOR.
			if _, err = proof.ParseBundleCBOR(raw); (err == nil) == gzipped {
				t.Fatalf("%s %s: gzipped %v, yet ParseBundleCBOR says %v", method, u, gzipped, err)
			}
			return raw, b
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("%s %s: status %d: %s", method, u, resp.StatusCode, raw)
		}
		<-poll.C
	}
}

// checkCBORForms: with Accept: application/cbor a proof request answers
// with the bundle alone in its CBOR form, gzip-compressed under
// Accept-Encoding: gzip, for GET /v1/trust, TRQP's POST /authorization and
// a record read; each verifies, and the depth-3 chain's compact form is
// within issue #32's 8 KiB.
func checkCBORForms(t *testing.T, base string, c *proofChain, genesis []byte) {
	t.Helper()
	q := url.Values{"entity": {c.college.DID}, "framework": {c.fw}, "resource": {c.nursing}, "proof": {"true"}}
	trqp, err := json.Marshal(map[string]any{"entity_id": c.college.DID, "authority_id": c.fw, "action": "issue", "resource": c.nursing, "proof": true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, url string
		body              []byte
		typ               string
	}{
		{"GET /v1/trust", http.MethodGet, base + "/v1/trust?" + q.Encode(), nil, proof.TypeAuthorization},
		{"POST /authorization", http.MethodPost, base + "/authorization", trqp, proof.TypeAuthorization},
		{"GET /v1/accreditations", http.MethodGet, base + "/v1/accreditations/" + c.collegeAcc + "?proof=true", nil, proof.TypeRecords},
	} {
		for _, gzipped := range []bool{false, true} {
			raw, b := getCBOR(t, tc.method, tc.url, tc.body, gzipped)
			v, err := proof.Verify(b, genesis, proof.Options{})
			if err != nil {
				t.Fatalf("%s (gzip %v): %v", tc.name, gzipped, err)
			}
			if b.Question.Type != tc.typ || (v.Decision != nil && !v.Decision.Authorized) {
				t.Fatalf("%s: a %s bundle, decision %+v", tc.name, b.Question.Type, v.Decision)
			}
			if tc.typ == proof.TypeAuthorization && gzipped && len(raw) > 8<<10 {
				t.Errorf("%s: the depth-3 chain's compact bundle is %d B, over 8 KiB", tc.name, len(raw))
			}
			t.Logf("%s: bundle %d B in CBOR (gzip %v)", tc.name, len(raw), gzipped)
		}
	}
}
