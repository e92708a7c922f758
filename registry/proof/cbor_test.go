package proof_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/proof/prooftest"
)

// formBundles are honest bundles of every shape: a chain, an unknown
// entity (a null record), a recognition, a records bundle, and an asOf
// answer from an older leaf (leafSize, consistency).
func formBundles(t *testing.T) []*proof.Bundle {
	t.Helper()
	w := prooftest.New(t, prooftest.Options{Filler: 50, LogPad: 20})
	unknown := collegeQuestion()
	unknown.Entity = "did:web:nobody.example"
	older := w.Bundle(collegeQuestion())
	older.Question.AsOf = older.Question.Applied
	older.Answer.Index = older.Question.AsOf
	w.Revoke(w.Acc1, w.Now.Add(-time.Minute))
	w.AttachLog(older, older.LeafIndex+1)
	bs := []*proof.Bundle{
		w.Bundle(collegeQuestion()), w.Bundle(unknown), older,
		w.RecognitionBundle(decide.RecognitionQuestion{Framework: prooftest.Framework, Recognized: prooftest.Other}),
		w.RecordsBundle(decide.EntityKey(prooftest.College), decide.EntityKey("did:web:nobody.example")),
	}
	for _, b := range bs {
		mustVerify(t, w, b)
	}
	if len(older.Consistency) == 0 || older.LeafSize == 0 {
		t.Fatal("the asOf bundle has no consistency proof")
	}
	return bs
}

// TestCBORForm: the CBOR form is the JSON form's map with the same keys
// and values, each base64 byte string a CBOR byte string of the bytes it
// encodes: a generic CBOR decoder and a generic JSON decoder agree on
// every bundle shape. The forms read back as the same bundle, gzip'd or
// not.
func TestCBORForm(t *testing.T) {
	for i, b := range formBundles(t) {
		js, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		cb, err := b.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		var j any
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.UseNumber()
		if err := dec.Decode(&j); err != nil {
			t.Fatal(err)
		}
		var c any
		dm, err := cbor.DecOptions{DefaultMapType: reflect.TypeFor[map[string]any]()}.DecMode()
		if err != nil {
			t.Fatal(err)
		}
		if err := dm.Unmarshal(cb, &c); err != nil {
			t.Fatalf("bundle %d: a generic CBOR decoder: %v", i, err)
		}
		if err := sameValue("", j, c); err != nil {
			t.Errorf("bundle %d (%s): %v", i, b.Question.Type, err)
		}
		if len(cb) >= len(js) {
			t.Errorf("bundle %d: CBOR %d B, JSON %d B", i, len(cb), len(js))
		}
		for _, form := range [][]byte{js, cb, proof.Compress(js), proof.Compress(cb)} {
			got, err := proof.ParseAny(form)
			if err != nil {
				t.Fatalf("bundle %d: %v", i, err)
			}
			mustSameJSON(t, got, b)
		}
	}
}

// sameValue reports where the JSON value j and the CBOR value c differ,
// by the CBOR form's rule: same keys, same text, numbers, booleans and
// nulls, and a CBOR byte string for each base64 text.
func sameValue(path string, j, c any) error {
	switch jv := j.(type) {
	case map[string]any:
		cv, ok := c.(map[string]any)
		if !ok || len(cv) != len(jv) {
			return fmt.Errorf("%s: JSON object of %d members, CBOR %T %v", path, len(jv), c, c)
		}
		for k, v := range jv {
			if err := sameValue(path+"."+k, v, cv[k]); err != nil {
				return err
			}
		}
	case []any:
		cv, ok := c.([]any)
		if !ok || len(cv) != len(jv) {
			return fmt.Errorf("%s: JSON array of %d, CBOR %T", path, len(jv), c)
		}
		for i := range jv {
			if err := sameValue(fmt.Sprintf("%s[%d]", path, i), jv[i], cv[i]); err != nil {
				return err
			}
		}
	case string:
		switch cv := c.(type) {
		case string:
			if cv != jv {
				return fmt.Errorf("%s: JSON %q, CBOR %q", path, jv, cv)
			}
		case []byte:
			want, err := base64.StdEncoding.DecodeString(jv)
			if err != nil || !bytes.Equal(want, cv) {
				return fmt.Errorf("%s: CBOR bytes that are not JSON's base64 %q", path, jv)
			}
		default:
			return fmt.Errorf("%s: JSON text, CBOR %T", path, c)
		}
	case json.Number:
		if fmt.Sprint(c) != jv.String() {
			return fmt.Errorf("%s: JSON %s, CBOR %T %v", path, jv, c, c)
		}
	case bool, nil:
		if c != j {
			return fmt.Errorf("%s: JSON %v, CBOR %v", path, j, c)
		}
	default:
		return fmt.Errorf("%s: JSON %T", path, j)
	}
	return nil
}

// TestParseBundleCBOR: the CBOR form and gzip are read strictly; what
// they cannot hold is ErrMalformed.
func TestParseBundleCBOR(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{})
	b := w.Bundle(collegeQuestion())
	raw, err := b.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	// edit re-encodes the bundle's generic map after change.
	edit := func(change func(m map[string]any)) []byte {
		var m map[string]any
		dm, err := cbor.DecOptions{DefaultMapType: reflect.TypeFor[map[string]any]()}.DecMode()
		if err != nil {
			t.Fatal(err)
		}
		if err := dm.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		em, err := cbor.EncOptions{Sort: cbor.SortCoreDeterministic}.EncMode()
		if err != nil {
			t.Fatal(err)
		}
		out, err := em.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if !bytes.Equal(edit(func(map[string]any) {}), raw) {
		t.Fatal("a bundle's CBOR, decoded and encoded again unchanged, is not the same bytes")
	}
	question := func(m map[string]any) map[string]any { return m["question"].(map[string]any) }
	// A map header 0xa0 + n with n = the bundle map's pairs, then its
	// pairs: raw with its first byte as an indefinite-length map (0xbf)
	// and a "break" (0xff) appended.
	indefinite := append(append([]byte{0xbf}, raw[1:]...), 0xff)
	zeros := proof.Compress(make([]byte, proof.MaxBundleSize+1))
	for name, bad := range map[string][]byte{
		"version 2":                    edit(func(m map[string]any) { m["version"] = 2 }),
		"version 0":                    edit(func(m map[string]any) { delete(m, "version") }),
		"an unknown key":               edit(func(m map[string]any) { m["extra"] = 0 }),
		"a key in another case":        edit(func(m map[string]any) { m["Leaf"] = m["leaf"]; delete(m, "leaf") }),
		"a leaf as base64 text":        edit(func(m map[string]any) { m["leaf"] = base64.StdEncoding.EncodeToString(b.Leaf) }),
		"a kind as bytes":              edit(func(m map[string]any) { m["records"].([]any)[0].(map[string]any)["kind"] = []byte("framework") }),
		"a short hash":                 edit(func(m map[string]any) { m["inclusion"] = append(m["inclusion"].([]byte), 0) }),
		"a time as a tag":              edit(func(m map[string]any) { question(m)["at"] = cbor.Tag{Number: 0, Content: question(m)["at"]} }),
		"a time as a number":           edit(func(m map[string]any) { question(m)["at"] = w.Now.Unix() }),
		"an omitted field, written":    edit(func(m map[string]any) { m["leafSize"] = 0 }),
		"an int in a longer head":      bytes.Replace(raw, []byte{0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x01}, []byte{0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x18, 0x01}, 1),
		"an indefinite-length map":     indefinite,
		"trailing data":                append(append([]byte(nil), raw...), 0xa0),
		"a duplicate key":              append(append([]byte{raw[0] + 1}, raw[1:]...), 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x01),
		"cut short":                    raw[:len(raw)-1],
		"gzip of garbage":              proof.Compress([]byte("VERIFIED")),
		"gzip cut short":               proof.Compress(raw)[:40],
		"gzip with data after it":      append(proof.Compress(raw), 0),
		"two gzip members":             append(proof.Compress(raw), proof.Compress(raw)...),
		"gzip of gzip":                 proof.Compress(proof.Compress(raw)),
		"gzip past the size limit":     zeros,
		"more than the size limit":     append(append([]byte(nil), raw...), make([]byte, proof.MaxBundleSize)...),
		"a CBOR array, not a map":      {0x80},
		"JSON after a CBOR map header": append([]byte{0xa1}, []byte(`{"version":1}`)...),
	} {
		if len(bad) > 0 && bad[0]>>5 == 5 {
			if _, err := proof.ParseBundleCBOR(bad); !errors.Is(err, proof.ErrMalformed) {
				t.Errorf("%s: ParseBundleCBOR: %v, want ErrMalformed", name, err)
			}
		}
		if _, err := proof.ParseAny(bad); !errors.Is(err, proof.ErrMalformed) {
			t.Errorf("%s: ParseAny: %v, want ErrMalformed", name, err)
		}
	}
}
