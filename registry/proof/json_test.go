package proof

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// jsonPieces are strings that exercise every escape encoding/json makes.
var jsonPieces = []string{
	"", "a", "did:web:college.example", "https://example.org/fw?x=1&y=<2>", `quote " back \ slash`,
	"\b\f\n\r\t\x00\x01\x1f\x7f", "ünïcödé — ✓", "\u2028\u2029", "bad \xff\xfe utf8", "\xe2\x80", "😀",
	"— nobody AAAA\n", "<script>&amp;</script>",
}

func randString(r *rand.Rand) string {
	var b []byte
	for range r.IntN(4) {
		b = append(b, jsonPieces[r.IntN(len(jsonPieces))]...)
	}
	return string(b)
}

func randBytes(r *rand.Rand) []byte {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, r.IntN(300))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randHashes(r *rand.Rand) Hashes {
	if r.IntN(5) == 0 {
		return nil
	}
	h := make(Hashes, r.IntN(12))
	for i := range h {
		h[i] = make([]byte, 32)
		for j := range h[i] {
			h[i][j] = byte(r.Uint32())
		}
	}
	return h
}

func randBundle(r *rand.Rand) *Bundle {
	t, f := true, false
	b := &Bundle{
		Version: r.IntN(3),
		Question: Question{Type: randString(r), Entity: randString(r), Framework: randString(r), Action: randString(r),
			Resource: randString(r), Jurisdiction: randString(r), Recognized: randString(r), List: randString(r),
			At:   time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("x", (r.IntN(49)-24)*1800)),
			AsOf: uint64(r.IntN(3)) * r.Uint64(), Applied: r.Uint64()},
		Answer:    Answer{Reason: randString(r), Root: randString(r), Index: r.Uint64()},
		MapProof:  randBytes(r),
		Leaf:      randBytes(r),
		LeafIndex: r.Uint64(),
		LeafSize:  uint64(r.IntN(2)) * r.Uint64(),
		Inclusion: randHashes(r), Consistency: randHashes(r),
		Checkpoint: randString(r),
	}
	switch r.IntN(3) {
	case 0:
		b.Answer.Authorized = &t
	case 1:
		b.Answer.Recognized = &f
	}
	for range r.IntN(3) {
		b.Answer.Chain = append(b.Answer.Chain, randString(r))
	}
	if r.IntN(4) > 0 {
		b.Records = []Record{}
		for range r.IntN(6) {
			b.Records = append(b.Records, Record{Kind: randString(r), A: randString(r), B: randString(r), Bytes: randBytes(r)})
		}
	}
	if r.IntN(3) == 0 {
		b.StatusList = &StatusListRecords{List: randBytes(r), VersionIndex: r.Uint64(), Version: randBytes(r)}
	}
	if r.IntN(3) == 0 {
		b.Cosigners = &Cosigners{Record: randBytes(r)}
		if r.IntN(3) > 0 {
			b.Cosigners.Changes = []CosignerChange{}
			for range r.IntN(3) {
				b.Cosigners.Changes = append(b.Cosigners.Changes, CosignerChange{JWS: randBytes(r), Leaf: randBytes(r), LeafIndex: r.Uint64(), Inclusion: randHashes(r)})
			}
		}
	}
	return b
}

// TestAppendJSONIsMarshal: the reflection-free encoder writes exactly the
// bytes encoding/json writes for the Bundle type, over bundles of every
// shape (absent and empty members, every string escape, hash lists of
// every length, status lists and cosigner changes).
func TestAppendJSONIsMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(32, 1))
	for i := range 3000 {
		b := randBundle(r)
		want, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatalf("bundle %d: %v", i, err)
		}
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("bundle %d:\n got %s\nwant %s", i, got[len("prefix"):], want)
		}
	}
}

// TestAppendJSONRefusesWhatMarshalRefuses: a hash not of 32 bytes and a
// time json.Marshal cannot write are errors, as they are for Marshal.
func TestAppendJSONRefusesWhatMarshalRefuses(t *testing.T) {
	short := &Bundle{Inclusion: Hashes{make([]byte, 31)}}
	if _, err := short.AppendJSON(nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a 31-byte hash: %v, want ErrMalformed", err)
	}
	if _, err := json.Marshal(short); err == nil {
		t.Fatal("json.Marshal wrote a 31-byte hash")
	}
	late := &Bundle{Question: Question{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if _, err := late.AppendJSON(nil); err == nil {
		t.Fatal("year 10000 was written")
	}
	if _, err := json.Marshal(late); err == nil {
		t.Fatal("json.Marshal wrote year 10000")
	}
}

// TestAppendJSONKnowsEveryField: the types AppendJSON writes member by
// member have exactly the JSON members it writes. A field added to one of
// them fails here until AppendJSON writes it too (an omitempty field
// would otherwise be dropped without TestAppendJSONIsMarshal noticing,
// since it sets only the fields it knows).
func TestAppendJSONKnowsEveryField(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{Bundle{}, "version question answer records statusList mapProof leaf leafIndex leafSize inclusion consistency checkpoint cosigners"},
		{Question{}, "type entity framework action resource jurisdiction recognized list at asOf applied"},
		{Answer{}, "authorized recognized reason chain root index"},
		{Record{}, "kind a b bytes"},
	} {
		typ := reflect.TypeOf(tc.v)
		var got []string
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			got = append(got, name)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s's JSON members are %q; AppendJSON writes %q: teach it the new ones", typ.Name(), strings.Join(got, " "), tc.want)
		}
	}
}
