package proof_test

import (
	"errors"
	"testing"

	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/proof/prooftest"
)

// TestStatusListBundleShape: a statusList question needs the list's
// records, the issuer, the list and action issue; no other question type
// carries list records; a credential to check is only for a statusList
// bundle. (The verification of real status-list bundles is
// node.TestDevNodeProvesStatusLists.)
func TestStatusListBundleShape(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{})
	lists := &proof.StatusListRecords{List: []byte("{}"), VersionIndex: 3, Version: []byte("{}")}
	for _, tc := range []struct {
		name   string
		change func(b *proof.Bundle)
		opts   proof.Options
		want   error
	}{
		{"statusList without its records", func(b *proof.Bundle) { b.Question.Type, b.Question.List = proof.TypeStatusList, "main" }, proof.Options{}, proof.ErrMalformed},
		{"statusList without a list id", func(b *proof.Bundle) { b.Question.Type, b.StatusList = proof.TypeStatusList, lists }, proof.Options{}, proof.ErrMalformed},
		{"statusList with empty bytes", func(b *proof.Bundle) {
			b.Question.Type, b.Question.List, b.StatusList = proof.TypeStatusList, "main", &proof.StatusListRecords{List: []byte{}, Version: []byte("{}")}
		}, proof.Options{}, proof.ErrMalformed},
		{"a successor's bytes without its index", func(b *proof.Bundle) {
			b.Question.Type, b.Question.List, b.StatusList = proof.TypeStatusList, "main", &proof.StatusListRecords{List: []byte("{}"), Version: []byte("{}"), Next: []byte("{}")}
		}, proof.Options{}, proof.ErrMalformed},
		{"a successor's index without its bytes", func(b *proof.Bundle) {
			b.Question.Type, b.Question.List, b.StatusList = proof.TypeStatusList, "main", &proof.StatusListRecords{List: []byte("{}"), Version: []byte("{}"), NextIndex: 4}
		}, proof.Options{}, proof.ErrMalformed},
		{"list records in an authorization", func(b *proof.Bundle) { b.StatusList = lists }, proof.Options{}, proof.ErrMalformed},
		{"a list id in an authorization", func(b *proof.Bundle) { b.Question.List = "main" }, proof.Options{}, proof.ErrMalformed},
		{"a credential for an authorization", func(*proof.Bundle) {}, proof.Options{Credential: []byte("x")}, proof.ErrWrongQuestion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := w.Bundle(collegeQuestion())
			tc.change(b)
			tc.opts.Now = w.Now
			if _, err := proof.Verify(b, w.Genesis, tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("verify: %v, want %v", err, tc.want)
			}
		})
	}
	for err, code := range map[error]string{
		proof.ErrCredentialMismatch: "credential_mismatch", proof.ErrVersionNotInForce: "version_not_in_force",
		proof.ErrSuccessorHidden: "successor_hidden", proof.ErrSuccessorNotLinked: "successor_not_linked",
	} {
		if proof.ReasonOf(err) != code {
			t.Fatalf("reason code of %v: %q, want %q", err, proof.ReasonOf(err), code)
		}
	}
}
