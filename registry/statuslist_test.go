package registry

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// The Recommendation's example: an empty 131,072-entry revocation list.
const w3cEmptyList = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"

func TestW3CExampleListDecodesToZeros(t *testing.T) {
	bits, err := record.DecodeBitstring(w3cEmptyList)
	if err != nil {
		t.Fatal(err)
	}
	if record.StatusEntries(bits, 1) != record.MinStatusListEntries {
		t.Fatalf("%d entries, want %d", record.StatusEntries(bits, 1), record.MinStatusListEntries)
	}
	if !bytes.Equal(bits, make([]byte, record.MinStatusListEntries/8)) {
		t.Fatal("the example list is not all zeros")
	}
}

func TestBitOrder(t *testing.T) {
	bits := make([]byte, record.MinStatusListEntries/8)
	// Index 0 is the most significant bit of byte 0.
	if err := record.SetStatus(bits, 0, 1, 1); err != nil || bits[0] != 0x80 {
		t.Fatalf("index 0 set byte 0 to %08b", bits[0])
	}
	high := record.MinStatusListEntries - 1
	if err := record.SetStatus(bits, high, 1, 1); err != nil || bits[len(bits)-1] != 0x01 {
		t.Fatalf("index %d set the last byte to %08b", high, bits[len(bits)-1])
	}
	enc, _ := record.EncodeBitstring(bits)
	back, err := record.DecodeBitstring(enc)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, high} {
		if v, _ := record.GetStatus(back, i, 1); v != 1 {
			t.Fatalf("index %d reads %d", i, v)
		}
	}
	if v, _ := record.GetStatus(back, high-1, 1); v != 0 {
		t.Fatal("a neighbour of a set index is set")
	}
	// Two-bit entries are read most significant bit first.
	two := make([]byte, 4)
	record.SetStatus(two, 1, 2, 2) // bits 2..3 of byte 0: 0b0010_0000
	if two[0] != 0x20 {
		t.Fatalf("2-bit entry 1 = 2 gave %08b", two[0])
	}
	if v, _ := record.GetStatus(two, 1, 2); v != 2 {
		t.Fatalf("2-bit entry read %d", v)
	}
	if _, err := record.GetStatus(two, 16, 2); !errors.Is(err, record.ErrRange) {
		t.Fatalf("out of range: %v", err)
	}
}

// listFixture is an accredited college (the issuer) with a status list.
type listFixture struct {
	*chainFixture
}

func (f *listFixture) publish(signer *record.Signer, list, previous string, purposes []string, size int, msgs []record.StatusMessage, bits []byte) *record.Result {
	f.t.Helper()
	vc, err := record.StatusListCredential(signer.DID, list, purposes, size, msgs, 300000, bits)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.publishVC(signer, signer, list, previous, vc)
}

func (f *listFixture) publishVC(vcSigner, opSigner *record.Signer, list, previous string, vc []byte) *record.Result {
	f.t.Helper()
	jwt, err := vcSigner.SignVCJWT(vc)
	if err != nil {
		f.t.Fatal(err)
	}
	f.now = f.now.Add(time.Second)
	return f.apply(f.sign(opSigner, record.OpPublishStatusList, map[string]any{"list": list, "previous": previous, "credential": string(jwt)}))
}

func rawEncoded(b []byte, gz bool) string {
	if !gz {
		return "u" + base64.RawURLEncoding.EncodeToString(b)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return "u" + base64.RawURLEncoding.EncodeToString(buf.Bytes())
}

func TestPublishAndRevoke(t *testing.T) {
	f := &listFixture{mustChain(t)}
	f.now = date(2026, 4, 1)
	bits := make([]byte, record.MinStatusListEntries/8)
	first := f.publish(f.college, "1", "", []string{record.PurposeRevocation}, 1, nil, bits)
	if !first.Accepted {
		t.Fatalf("first version: %s %s", first.Code, first.Reason)
	}
	view, err := f.s.StatusList(f.college.DID, "1")
	if err != nil || view.Entries != record.MinStatusListEntries || view.Versions != 1 {
		t.Fatalf("list: %+v %v", view, err)
	}
	if e, err := f.s.CheckStatus(f.college.DID, "1", 42, time.Time{}); err != nil || e.Status != 0 || !e.Valid {
		t.Fatalf("entry 42 before: %+v %v", e, err)
	}
	firstCID := view.Current
	revoked := bytes.Clone(bits)
	record.SetStatus(revoked, 42, 1, 1)
	record.SetStatus(revoked, 131000, 1, 1)
	second := f.publish(f.college, "1", firstCID, []string{record.PurposeRevocation}, 1, nil, revoked)
	if !second.Accepted {
		t.Fatalf("second version: %s %s", second.Code, second.Reason)
	}
	for _, i := range []int{42, 131000} {
		if e, _ := f.s.CheckStatus(f.college.DID, "1", i, time.Time{}); e.Status != 1 || e.Valid {
			t.Fatalf("entry %d after revocation: %+v", i, e)
		}
	}
	// The version current at a past time answers as it did then.
	if e, _ := f.s.CheckStatus(f.college.DID, "1", 42, first.Time); e.Status != 0 {
		t.Fatalf("entry 42 at the first version's time: %+v", e)
	}
	if _, err := f.s.StatusListAt(f.college.DID, "1", first.Time.Add(-time.Hour)); !errors.Is(err, record.ErrStatusRetrieval) {
		t.Fatalf("before the first version: %v", err)
	}
	current, _ := f.s.StatusList(f.college.DID, "1")

	stranger := mustKey(t, record.KeyEd25519)
	unrevoked := bytes.Clone(revoked)
	record.SetStatus(unrevoked, 42, 1, 0)
	short8 := make([]byte, record.MinStatusListEntries-1) // 131,071 entries of 8 bits
	msgs256 := make([]record.StatusMessage, 256)
	for i := range msgs256 {
		msgs256[i] = record.StatusMessage{Status: fmt.Sprintf("0x%x", i), Message: "m"}
	}
	impostorVC, _ := record.StatusListCredential(f.college.DID, "1", []string{record.PurposeRevocation}, 1, nil, 0, revoked)
	notGzip := bytes.Replace(mustVC(t, f.college.DID, bits), []byte(mustEncoded(t, bits)), []byte(rawEncoded(bits, false)), 1)
	noPrefix := bytes.Replace(mustVC(t, f.college.DID, bits), []byte(mustEncoded(t, bits)), []byte(mustEncoded(t, bits)[1:]), 1)
	cases := []struct {
		name string
		res  func() *record.Result
		code string
	}{
		{"unsetting a revocation bit", func() *record.Result {
			return f.publish(f.college, "1", current.Current, []string{record.PurposeRevocation}, 1, nil, unrevoked)
		}, record.CodeInvalid},
		{"stale previous", func() *record.Result {
			return f.publish(f.college, "1", firstCID, []string{record.PurposeRevocation}, 1, nil, revoked)
		}, record.CodeConflict},
		{"a first version of a list that exists", func() *record.Result {
			r := f.publish(f.college, "1", "", []string{record.PurposeRevocation}, 1, nil, revoked)
			if !strings.Contains(r.Reason, "exists already (current version "+current.Current+")") {
				t.Errorf("reason %q does not say the list exists", r.Reason)
			}
			return r
		}, record.CodeConflict},
		{"one entry short", func() *record.Result {
			return f.publish(f.college, "short", "", []string{record.PurposeMessage}, 8, msgs256, short8)
		}, record.CodeStatusListLength},
		{"encodedList not GZIP", func() *record.Result { return f.publishVC(f.college, f.college, "raw", "", notGzip) }, record.CodeMalformedValue},
		{"encodedList without u prefix", func() *record.Result { return f.publishVC(f.college, f.college, "nou", "", noPrefix) }, record.CodeMalformedValue},
		{"signed by a key that is not the issuer's", func() *record.Result {
			return f.publishVC(stranger, f.college, "1", current.Current, impostorVC)
		}, record.CodeNotAuthorized},
		{"issuer without accreditation", func() *record.Result {
			return f.publish(stranger, "x", "", []string{record.PurposeRevocation}, 1, nil, bits)
		}, record.CodeNotAuthorized},
		{"statusSize 2 without messages", func() *record.Result {
			return f.publish(f.college, "two", "", []string{record.PurposeMessage}, 2, nil, make([]byte, record.MinStatusListEntries/4))
		}, record.CodeInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.digest()
			r := tc.res()
			if r.Accepted || r.Code != tc.code {
				t.Fatalf("%+v, want %s", r, tc.code)
			}
			if f.digest() != before {
				t.Fatal("state changed")
			}
		})
	}

	// A list of two-bit entries with its four messages.
	msgs := []record.StatusMessage{{Status: "0x0", Message: "valid"}, {Status: "0x1", Message: "pending review"}, {Status: "0x2", Message: "suspended"}, {Status: "0x3", Message: "revoked"}}
	two := make([]byte, record.MinStatusListEntries/4)
	record.SetStatus(two, 7, 2, 2)
	if r := f.publish(f.college, "msg", "", []string{record.PurposeMessage}, 2, msgs, two); !r.Accepted {
		t.Fatalf("two-bit list: %s %s", r.Code, r.Reason)
	}
	if e, err := f.s.CheckStatus(f.college.DID, "msg", 7, time.Time{}); err != nil || e.Status != 2 || e.Message != "suspended" {
		t.Fatalf("two-bit entry 7: %+v %v", e, err)
	}

	// Once the college's accreditation is revoked, it publishes no more.
	f.mustAccept(f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc}))
	before := f.digest()
	if r := f.publish(f.college, "1", current.Current, []string{record.PurposeRevocation}, 1, nil, revoked); r.Code != record.CodeNotAuthorized {
		t.Fatalf("revoked issuer: %+v", r)
	}
	if f.digest() != before {
		t.Fatal("state changed")
	}
}

func mustEncoded(t *testing.T, bits []byte) string {
	t.Helper()
	s, err := record.EncodeBitstring(bits)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustVC(t *testing.T, issuer string, bits []byte) []byte {
	t.Helper()
	vc, err := record.StatusListCredential(issuer, "z", []string{record.PurposeRevocation}, 1, nil, 0, bits)
	if err != nil {
		t.Fatal(err)
	}
	return vc
}

func FuzzDecodeBitstring(f *testing.F) {
	f.Add(w3cEmptyList)
	f.Add("u")
	f.Add("zabc")
	f.Add(rawEncoded([]byte{1, 2, 3}, true))
	f.Fuzz(func(t *testing.T, s string) {
		bits, err := record.DecodeBitstring(s)
		if err != nil {
			if !errors.Is(err, record.ErrMalformedValue) && !errors.Is(err, record.ErrStatusListLength) {
				t.Fatalf("error %v is neither MALFORMED_VALUE nor STATUS_LIST_LENGTH", err)
			}
			return
		}
		again, err := record.EncodeBitstring(bits)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := record.DecodeBitstring(again); err != nil || !bytes.Equal(back, bits) {
			t.Fatal("re-encoding does not round-trip")
		}
	})
}
