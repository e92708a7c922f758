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
)

// The Recommendation's example: an empty 131,072-entry revocation list.
const w3cEmptyList = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"

func TestW3CExampleListDecodesToZeros(t *testing.T) {
	bits, err := DecodeBitstring(w3cEmptyList)
	if err != nil {
		t.Fatal(err)
	}
	if StatusEntries(bits, 1) != MinStatusListEntries {
		t.Fatalf("%d entries, want %d", StatusEntries(bits, 1), MinStatusListEntries)
	}
	if !bytes.Equal(bits, make([]byte, MinStatusListEntries/8)) {
		t.Fatal("the example list is not all zeros")
	}
}

func TestBitOrder(t *testing.T) {
	bits := make([]byte, MinStatusListEntries/8)
	// Index 0 is the most significant bit of byte 0.
	if err := SetStatus(bits, 0, 1, 1); err != nil || bits[0] != 0x80 {
		t.Fatalf("index 0 set byte 0 to %08b", bits[0])
	}
	high := MinStatusListEntries - 1
	if err := SetStatus(bits, high, 1, 1); err != nil || bits[len(bits)-1] != 0x01 {
		t.Fatalf("index %d set the last byte to %08b", high, bits[len(bits)-1])
	}
	enc, _ := EncodeBitstring(bits)
	back, err := DecodeBitstring(enc)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, high} {
		if v, _ := GetStatus(back, i, 1); v != 1 {
			t.Fatalf("index %d reads %d", i, v)
		}
	}
	if v, _ := GetStatus(back, high-1, 1); v != 0 {
		t.Fatal("a neighbour of a set index is set")
	}
	// Two-bit entries are read most significant bit first.
	two := make([]byte, 4)
	SetStatus(two, 1, 2, 2) // bits 2..3 of byte 0: 0b0010_0000
	if two[0] != 0x20 {
		t.Fatalf("2-bit entry 1 = 2 gave %08b", two[0])
	}
	if v, _ := GetStatus(two, 1, 2); v != 2 {
		t.Fatalf("2-bit entry read %d", v)
	}
	if _, err := GetStatus(two, 16, 2); !errors.Is(err, ErrRange) {
		t.Fatalf("out of range: %v", err)
	}
}

// listFixture is an accredited college (the issuer) with a status list.
type listFixture struct {
	*chainFixture
}

func (f *listFixture) publish(signer *Signer, list, previous string, purposes []string, size int, msgs []StatusMessage, bits []byte) *Result {
	f.t.Helper()
	vc, err := StatusListCredential(signer.DID, list, purposes, size, msgs, 300000, bits)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.publishVC(signer, signer, list, previous, vc)
}

func (f *listFixture) publishVC(vcSigner, opSigner *Signer, list, previous string, vc []byte) *Result {
	f.t.Helper()
	jwt, err := vcSigner.SignVCJWT(vc)
	if err != nil {
		f.t.Fatal(err)
	}
	f.now = f.now.Add(time.Second)
	return f.apply(f.sign(opSigner, OpPublishStatusList, map[string]any{"list": list, "previous": previous, "credential": string(jwt)}))
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
	bits := make([]byte, MinStatusListEntries/8)
	first := f.publish(f.college, "1", "", []string{PurposeRevocation}, 1, nil, bits)
	if !first.Accepted {
		t.Fatalf("first version: %s %s", first.Code, first.Reason)
	}
	view, err := f.s.StatusList(f.college.DID, "1")
	if err != nil || view.Entries != MinStatusListEntries || view.Versions != 1 {
		t.Fatalf("list: %+v %v", view, err)
	}
	if e, err := f.s.CheckStatus(f.college.DID, "1", 42, time.Time{}); err != nil || e.Status != 0 || !e.Valid {
		t.Fatalf("entry 42 before: %+v %v", e, err)
	}
	firstCID := view.Current
	revoked := bytes.Clone(bits)
	SetStatus(revoked, 42, 1, 1)
	SetStatus(revoked, 131000, 1, 1)
	second := f.publish(f.college, "1", firstCID, []string{PurposeRevocation}, 1, nil, revoked)
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
	if _, err := f.s.StatusListAt(f.college.DID, "1", first.Time.Add(-time.Hour)); !errors.Is(err, ErrStatusRetrieval) {
		t.Fatalf("before the first version: %v", err)
	}
	current, _ := f.s.StatusList(f.college.DID, "1")

	stranger := mustKey(t, KeyEd25519)
	unrevoked := bytes.Clone(revoked)
	SetStatus(unrevoked, 42, 1, 0)
	short8 := make([]byte, MinStatusListEntries-1) // 131,071 entries of 8 bits
	msgs256 := make([]StatusMessage, 256)
	for i := range msgs256 {
		msgs256[i] = StatusMessage{Status: fmt.Sprintf("0x%x", i), Message: "m"}
	}
	impostorVC, _ := StatusListCredential(f.college.DID, "1", []string{PurposeRevocation}, 1, nil, 0, revoked)
	notGzip := bytes.Replace(mustVC(t, f.college.DID, bits), []byte(mustEncoded(t, bits)), []byte(rawEncoded(bits, false)), 1)
	noPrefix := bytes.Replace(mustVC(t, f.college.DID, bits), []byte(mustEncoded(t, bits)), []byte(mustEncoded(t, bits)[1:]), 1)
	cases := []struct {
		name string
		res  func() *Result
		code string
	}{
		{"unsetting a revocation bit", func() *Result {
			return f.publish(f.college, "1", current.Current, []string{PurposeRevocation}, 1, nil, unrevoked)
		}, CodeInvalid},
		{"stale previous", func() *Result {
			return f.publish(f.college, "1", firstCID, []string{PurposeRevocation}, 1, nil, revoked)
		}, CodeConflict},
		{"a first version of a list that exists", func() *Result {
			r := f.publish(f.college, "1", "", []string{PurposeRevocation}, 1, nil, revoked)
			if !strings.Contains(r.Reason, "exists already (current version "+current.Current+")") {
				t.Errorf("reason %q does not say the list exists", r.Reason)
			}
			return r
		}, CodeConflict},
		{"one entry short", func() *Result {
			return f.publish(f.college, "short", "", []string{PurposeMessage}, 8, msgs256, short8)
		}, CodeStatusListLength},
		{"encodedList not GZIP", func() *Result { return f.publishVC(f.college, f.college, "raw", "", notGzip) }, CodeMalformedValue},
		{"encodedList without u prefix", func() *Result { return f.publishVC(f.college, f.college, "nou", "", noPrefix) }, CodeMalformedValue},
		{"signed by a key that is not the issuer's", func() *Result {
			return f.publishVC(stranger, f.college, "1", current.Current, impostorVC)
		}, CodeNotAuthorized},
		{"issuer without accreditation", func() *Result {
			return f.publish(stranger, "x", "", []string{PurposeRevocation}, 1, nil, bits)
		}, CodeNotAuthorized},
		{"statusSize 2 without messages", func() *Result {
			return f.publish(f.college, "two", "", []string{PurposeMessage}, 2, nil, make([]byte, MinStatusListEntries/4))
		}, CodeInvalid},
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
	msgs := []StatusMessage{{Status: "0x0", Message: "valid"}, {Status: "0x1", Message: "pending review"}, {Status: "0x2", Message: "suspended"}, {Status: "0x3", Message: "revoked"}}
	two := make([]byte, MinStatusListEntries/4)
	SetStatus(two, 7, 2, 2)
	if r := f.publish(f.college, "msg", "", []string{PurposeMessage}, 2, msgs, two); !r.Accepted {
		t.Fatalf("two-bit list: %s %s", r.Code, r.Reason)
	}
	if e, err := f.s.CheckStatus(f.college.DID, "msg", 7, time.Time{}); err != nil || e.Status != 2 || e.Message != "suspended" {
		t.Fatalf("two-bit entry 7: %+v %v", e, err)
	}

	// Once the college's accreditation is revoked, it publishes no more.
	f.mustAccept(f.sign(f.qa, OpRevoke, map[string]any{"accreditation": f.collegeAcc}))
	before := f.digest()
	if r := f.publish(f.college, "1", current.Current, []string{PurposeRevocation}, 1, nil, revoked); r.Code != CodeNotAuthorized {
		t.Fatalf("revoked issuer: %+v", r)
	}
	if f.digest() != before {
		t.Fatal("state changed")
	}
}

func mustEncoded(t *testing.T, bits []byte) string {
	t.Helper()
	s, err := EncodeBitstring(bits)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustVC(t *testing.T, issuer string, bits []byte) []byte {
	t.Helper()
	vc, err := StatusListCredential(issuer, "z", []string{PurposeRevocation}, 1, nil, 0, bits)
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
		bits, err := DecodeBitstring(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedValue) && !errors.Is(err, ErrStatusListLength) {
				t.Fatalf("error %v is neither MALFORMED_VALUE nor STATUS_LIST_LENGTH", err)
			}
			return
		}
		again, err := EncodeBitstring(bits)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := DecodeBitstring(again); err != nil || !bytes.Equal(back, bits) {
			t.Fatal("re-encoding does not round-trip")
		}
	})
}
