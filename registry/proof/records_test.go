package proof_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/proof/prooftest"
)

// TestVerifyRecordsBundle: a records bundle (an accreditation as stored,
// an entity proven absent) verifies and reports its records; a changed
// record, a decision smuggled into it, another index, and an absence
// claimed for a stored record each fail with their own reason.
func TestVerifyRecordsBundle(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{Filler: 50})
	acc := decide.RecordKey{Kind: decide.KindAccreditation, A: w.Acc3}
	nobody := decide.RecordKey{Kind: decide.KindEntity, A: "did:web:nobody.example"}
	b := w.RecordsBundle(acc, nobody)
	v := mustVerify(t, w, b)
	if len(v.Records) != 2 || v.Records[0].A != w.Acc3 || v.Records[0].Bytes == nil || v.Records[1].Bytes != nil || v.Decision != nil {
		t.Fatalf("verified records %+v, decision %+v", v.Records, v.Decision)
	}

	for _, tc := range []struct {
		name   string
		change func(b *proof.Bundle)
		want   error
	}{
		{"record changed", func(b *proof.Bundle) {
			b.Records[0].Bytes = bytes.Replace(b.Records[0].Bytes, []byte(prooftest.Nursing), []byte(prooftest.Nursing+"Assistant"), 1)
		}, proof.ErrRecordDigest},
		{"stored record claimed absent", func(b *proof.Bundle) { b.Records[0].Bytes = nil }, proof.ErrRecordDigest},
		{"a decision in a records bundle", func(b *proof.Bundle) { yes := true; b.Answer.Authorized = &yes }, proof.ErrMalformed},
		{"another index", func(b *proof.Bundle) { b.Answer.Index-- }, proof.ErrDecisionMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := w.RecordsBundle(acc, nobody)
			tc.change(c)
			if _, err := verifyJSON(t, w, c, proof.Options{Now: w.Now}); !errors.Is(err, tc.want) {
				t.Fatalf("verify: %v, want %v", err, tc.want)
			}
		})
	}
}
