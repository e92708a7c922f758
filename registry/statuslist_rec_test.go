package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// Rules of the W3C Bitstring Status List v1.0 Recommendation (15 May 2025,
// https://www.w3.org/TR/2025/REC-vc-bitstring-status-list-20250515/), as
// this file tests them:
//
//   - §2.2 credentialSubject.statusPurpose: "MUST be one or more strings";
//     refresh, revocation, suspension and message have their meaning;
//     refresh "is not reversible", nor is revocation.
//   - §2.2 message: "The status message descriptions MUST be defined in
//     credentialSubject.statusMessages. credentialSubject.statusSize MUST
//     be specified when this statusPurpose value is used."
//   - §2.1 statusSize: "If present, statusSize MUST be an integer greater
//     than zero"; statusMessage "MUST equal the number of possible status
//     messages indicated by statusSize" (2^statusSize).
//   - §3.2 Validate Algorithm: "If status is 0, set the valid key in result
//     to true; otherwise, set it to false", whatever the purpose; result's
//     purpose is the statusPurpose (a string).
//   - §3.6 / VC Data Model 2.0 §4.12: a list may be secured with any
//     securing mechanism; here VC-JWT and Data Integrity (eddsa-rdfc-2022,
//     eddsa-jcs-2022).

// recList is a listFixture at FeatureLevelStatusListREC.
func recList(t *testing.T) *listFixture {
	t.Helper()
	f := &listFixture{mustChain(t)}
	f.now = date(2026, 4, 1)
	if r := f.applyCommand(EncodeFeatureLevel(FeatureLevelStatusListREC)); !r.Accepted {
		t.Fatalf("raise to %d: %+v", FeatureLevelStatusListREC, r)
	}
	return f
}

// credential builds a status-list credential by hand, as an outside issuer
// would, with subject members of its own.
func credential(t *testing.T, issuer string, subject map[string]any) []byte {
	t.Helper()
	subject["type"] = "BitstringStatusList"
	if _, ok := subject["encodedList"]; !ok {
		subject["encodedList"] = w3cEmptyList
	}
	vc, err := json.Marshal(map[string]any{
		"@context": []string{record.ContextCredentialsV2},
		"id":       "https://registry.example/v1/status-lists/x/1",
		"type":     []string{"VerifiableCredential", "BitstringStatusListCredential"},
		"issuer":   issuer, "validFrom": "2026-01-01T00:00:00Z",
		"credentialSubject": subject,
	})
	if err != nil {
		t.Fatal(err)
	}
	return vc
}

// publishDI publishes a credential secured with Data Integrity.
func (f *listFixture) publishDI(vcSigner, opSigner *record.Signer, list, previous string, vc []byte, suite string) (*record.Result, []byte) {
	f.t.Helper()
	secured, err := vcSigner.SignDataIntegrity(vc, suite, f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	f.now = f.now.Add(time.Second)
	return f.apply(f.sign(opSigner, record.OpPublishStatusList, map[string]any{"list": list, "previous": previous, "credential": string(secured)})), secured
}

func TestStatusListDataIntegrityPublished(t *testing.T) {
	for _, suite := range []string{record.CryptosuiteEdDSARDFC, record.CryptosuiteEdDSAJCS} {
		t.Run(suite, func(t *testing.T) {
			f := recList(t)
			vc := credential(t, f.college.DID, map[string]any{"id": "https://registry.example/v1/status-lists/x/1#list", "statusPurpose": "revocation"})
			r, secured := f.publishDI(f.college, f.college, "di", "", vc, suite)
			if !r.Accepted {
				t.Fatalf("DI list: %s %s", r.Code, r.Reason)
			}
			view, err := f.s.StatusList(f.college.DID, "di")
			if err != nil || view.Version.Credential != string(secured) {
				t.Fatalf("stored %q, want the bytes as issued (%v)", view.Version.Credential, err)
			}
			// A new version revokes entry 7; the read decodes the DI list.
			bits := make([]byte, record.MinStatusListEntries/8)
			record.SetStatus(bits, 7, 1, 1)
			enc, _ := record.EncodeBitstring(bits)
			vc2 := credential(t, f.college.DID, map[string]any{"id": "https://registry.example/v1/status-lists/x/1#list", "statusPurpose": "revocation", "encodedList": enc})
			if r, _ := f.publishDI(f.college, f.college, "di", view.Current, vc2, suite); !r.Accepted {
				t.Fatalf("DI version 2: %s %s", r.Code, r.Reason)
			}
			if e, err := f.s.CheckStatus(f.college.DID, "di", 7, time.Time{}); err != nil || e.Status != 1 || e.Valid {
				t.Fatalf("entry 7: %+v %v", e, err)
			}
			// Tampered after signing: the proof fails and nothing changes.
			signed, _ := f.college.SignDataIntegrity(vc, suite, f.now)
			bad := bytes.Replace(signed, []byte(`"revocation"`), []byte(`"suspension"`), 1)
			f.now = f.now.Add(time.Second)
			r = f.apply(f.sign(f.college, record.OpPublishStatusList, map[string]any{"list": "tampered", "credential": string(bad)}))
			if r.Accepted || r.Code != record.CodeBadSignature {
				t.Fatalf("tampered DI list: %+v", r)
			}
			// Signed by another key than the issuer's: the same authority
			// rule as for VC-JWT lists.
			if r, _ := f.publishDI(mustKey(t, record.KeyEd25519), f.college, "foreign", "", vc, suite); r.Accepted || r.Code != record.CodeNotAuthorized {
				t.Fatalf("list signed by another DID: %+v", r)
			}
			if _, err := f.s.StatusList(f.college.DID, "tampered"); err == nil {
				t.Fatal("a refused list exists")
			}
		})
	}
}

func TestStatusListDataIntegrityNeedsLevel(t *testing.T) {
	f := &listFixture{mustChain(t)}
	f.now = date(2026, 4, 1)
	if r := f.applyCommand(EncodeFeatureLevel(FeatureLevelSignedContent)); !r.Accepted {
		t.Fatal(r)
	}
	vc := credential(t, f.college.DID, map[string]any{"statusPurpose": "revocation"})
	r, _ := f.publishDI(f.college, f.college, "di", "", vc, record.CryptosuiteEdDSAJCS)
	if r.Accepted || !strings.Contains(r.Reason, fmt.Sprintf("feature level %d", FeatureLevelStatusListREC)) {
		t.Fatalf("DI list at level 4: %+v", r)
	}
}

func TestStatusListDataIntegrityRDFCUndefinedTerm(t *testing.T) {
	// statusSize and statusMessages are not defined for a
	// BitstringStatusList by the credentials v2 context, so RDF
	// canonicalization would leave them unsigned: refused: the proof would not cover them.
	f := recList(t)
	vc := credential(t, f.college.DID, map[string]any{"statusPurpose": "message", "statusSize": 1,
		"statusMessages": []record.StatusMessage{{Status: "0x0", Message: "ok"}, {Status: "0x1", Message: "check"}}})
	if r, _ := f.publishDI(f.college, f.college, "m", "", vc, record.CryptosuiteEdDSARDFC); r.Accepted || r.Code != record.CodeInvalid {
		t.Fatalf("an rdfc list with members its proof does not sign: %+v", r)
	}
	if r, _ := f.publishDI(f.college, f.college, "m", "", vc, record.CryptosuiteEdDSAJCS); !r.Accepted {
		t.Fatalf("the same list with eddsa-jcs-2022: %s %s", r.Code, r.Reason)
	}
}

// REC §2.2: refresh is a purpose, and like revocation is not reversible.
func TestStatusListRECRefresh(t *testing.T) {
	old := &listFixture{mustChain(t)}
	old.now = date(2026, 4, 1)
	bits := make([]byte, record.MinStatusListEntries/8)
	if r := old.publish(old.college, "r", "", []string{record.PurposeRefresh}, 1, nil, bits); r.Accepted {
		t.Fatal("refresh accepted below feature level 6")
	}
	f := recList(t)
	first := f.publish(f.college, "r", "", []string{record.PurposeRefresh}, 1, nil, bits)
	if !first.Accepted {
		t.Fatalf("refresh list: %s %s", first.Code, first.Reason)
	}
	set := bytes.Clone(bits)
	record.SetStatus(set, 3, 1, 1)
	view, _ := f.s.StatusList(f.college.DID, "r")
	if r := f.publish(f.college, "r", view.Current, []string{record.PurposeRefresh}, 1, nil, set); !r.Accepted {
		t.Fatalf("set refresh: %s %s", r.Code, r.Reason)
	}
	view, _ = f.s.StatusList(f.college.DID, "r")
	if r := f.publish(f.college, "r", view.Current, []string{record.PurposeRefresh}, 1, nil, bits); r.Accepted || r.Code != record.CodeInvalid {
		t.Fatalf("cleared a refresh entry: %+v", r)
	}
	if e, _ := f.s.CheckStatus(f.college.DID, "r", 3, time.Time{}); e.Valid || e.Purpose != record.PurposeRefresh {
		t.Fatalf("refresh entry: %+v", e)
	}
}

// REC §2.1 statusSize: any integer greater than zero (3 here, which the
// first release refused), with 2^statusSize statusMessages (§2.2).
func TestStatusListRECStatusSize(t *testing.T) {
	msgs := make([]record.StatusMessage, 8)
	for i := range msgs {
		msgs[i] = record.StatusMessage{Status: "0x" + string("01234567"[i]), Message: "m" + string("01234567"[i])}
	}
	bits := make([]byte, record.MinStatusListEntries*3/8)
	record.SetStatus(bits, 5, 3, 6)
	old := &listFixture{mustChain(t)}
	old.now = date(2026, 4, 1)
	if r := old.publish(old.college, "s3", "", []string{record.PurposeMessage}, 3, msgs, bits); r.Accepted {
		t.Fatal("statusSize 3 accepted below feature level 6")
	}
	f := recList(t)
	if r := f.publish(f.college, "s3", "", []string{record.PurposeMessage}, 3, msgs, bits); !r.Accepted {
		t.Fatalf("statusSize 3: %s %s", r.Code, r.Reason)
	}
	e, err := f.s.CheckStatus(f.college.DID, "s3", 5, time.Time{})
	if err != nil || e.Status != 6 || e.Message != "m6" || e.Valid || e.Purpose != record.PurposeMessage {
		t.Fatalf("entry 5: %+v %v", e, err)
	}
	if e, _ := f.s.CheckStatus(f.college.DID, "s3", 4, time.Time{}); e.Status != 0 || !e.Valid || e.Message != "m0" {
		t.Fatalf("entry 4: %+v", e)
	}
	for name, subject := range map[string]map[string]any{
		"statusSize 0":                     {"statusPurpose": "revocation", "statusSize": 0},
		"message without statusSize":       {"statusPurpose": "message", "statusMessages": msgs[:2]},
		"7 messages for statusSize 3":      {"statusPurpose": "message", "statusSize": 3, "statusMessages": msgs[:7]},
		"statusMessages and statusMessage": {"statusPurpose": "message", "statusSize": 1, "statusMessages": msgs[:2], "statusMessage": msgs[:2]},
	} {
		vc := credential(t, f.college.DID, subject)
		if r := f.publishVC(f.college, f.college, "bad", "", vc); r.Accepted || r.Code != record.CodeInvalid {
			t.Fatalf("%s: %+v", name, r)
		}
	}
}

// REC §3.2: valid is true only when the status is 0, for a message list
// too.
func TestStatusListRECMessageValid(t *testing.T) {
	f := recList(t)
	msgs := []record.StatusMessage{{Status: "0x0", Message: "pending"}, {Status: "0x1", Message: "accepted"}}
	bits := make([]byte, record.MinStatusListEntries/8)
	record.SetStatus(bits, 9, 1, 1)
	if r := f.publish(f.college, "m", "", []string{record.PurposeMessage}, 1, msgs, bits); !r.Accepted {
		t.Fatalf("message list: %s %s", r.Code, r.Reason)
	}
	e, err := f.s.CheckStatus(f.college.DID, "m", 9, time.Time{})
	if err != nil || e.Status != 1 || e.Valid || e.Purpose != record.PurposeMessage || e.Message != "accepted" {
		t.Fatalf("set entry of a message list: %+v %v", e, err)
	}
}

// A Data Integrity list signed with an entity's registered JWK (not a
// did:key): its verificationMethod is the entity's key id.
func TestStatusListDataIntegrityRegisteredKey(t *testing.T) {
	f := recList(t)
	const web = "did:web:badges.example"
	k := mustKey(t, record.KeyEd25519)
	s, _ := record.NewSigner(k.Key(), web+"#key-1")
	jwk, err := s.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	f.mustAccept(f.sign(f.qa, record.OpRegisterEntity, map[string]any{"id": web, "name": "Badges", "keys": []any{jwk}}))
	f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.qa.DID, "subject": web, "action": record.ActionIssue,
		"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
		"validFrom": "2024-06-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
	}))
	vc := credential(t, web, map[string]any{"statusPurpose": "suspension"})
	for _, suite := range []string{record.CryptosuiteEdDSARDFC, record.CryptosuiteEdDSAJCS} {
		if r, _ := f.publishDI(s, s, suite, "", vc, suite); !r.Accepted {
			t.Fatalf("%s with the registered key: %s %s", suite, r.Code, r.Reason)
		}
	}
	// A key id the entity does not have is unknown.
	other, _ := record.NewSigner(mustKey(t, record.KeyEd25519).Key(), web+"#key-9")
	if r, _ := f.publishDI(other, s, "unknown", "", vc, record.CryptosuiteEdDSAJCS); r.Accepted || r.Code != record.CodeUnknownKey {
		t.Fatalf("unregistered key id: %+v", r)
	}
}
