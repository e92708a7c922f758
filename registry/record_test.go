package registry

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// storedTypes names the record type of each table whose values are JSON.
var storedTypes = map[byte]reflect.Type{
	tableOps:           reflect.TypeFor[opRecord](),
	tableResults:       reflect.TypeFor[record.Result](),
	tableFrameworks:    reflect.TypeFor[record.Framework](),
	tableRoots:         reflect.TypeFor[record.RootAccreditor](),
	tableEntities:      reflect.TypeFor[record.Entity](),
	tableAccreditation: reflect.TypeFor[record.Accreditation](),
	tableRecognitions:  reflect.TypeFor[record.Recognition](),
	tableStatusLists:   reflect.TypeFor[record.StatusList](),
	tableListVersions:  reflect.TypeFor[record.StatusListVersion](),
}

// sameDecoding decodes raw with encoding/json and with decodeRecord into
// new values of typ and fails unless both succeed with equal values.
func sameDecoding(t *testing.T, what string, typ reflect.Type, raw []byte) {
	t.Helper()
	v1, v2 := reflect.New(typ), reflect.New(typ)
	if err := json.Unmarshal(raw, v1.Interface()); err != nil {
		t.Fatalf("%s: encoding/json: %v", what, err)
	}
	if err := decodeRecord(raw, v2.Interface()); err != nil {
		t.Fatalf("%s: decodeRecord: %v\n%s", what, err, raw)
	}
	if !reflect.DeepEqual(v1.Interface(), v2.Interface()) {
		t.Fatalf("%s decodes differently:\nencoding/json %+v\ndecodeRecord  %+v\nfrom %s", what, v1.Elem(), v2.Elem(), raw)
	}
}

// Every record a state stores decodes with decodeRecord exactly as with
// encoding/json, whose Marshal wrote it: the apply path and the queries
// read records with decodeRecord, so a difference would change decisions.
func TestRecordsDecodeAsEncodingJSONDoes(t *testing.T) {
	f := &listFixture{mustChain(t)}
	const web = "did:web:college.example%3A8443:campus"
	s1, err := record.NewSigner(mustKey(t, record.KeyEd25519).Key(), web+"#key-1")
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := s1.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	f.mustAccept(f.sign(f.qa, record.OpRegisterEntity, map[string]any{"id": web, "name": "École <Santé> & \u2028Soins", "keys": []any{jwk},
		"metadata": map[string]any{"country": "FR", "identifiers": map[string]string{"ctid": "ce-123", "siret": "é\"quoted\""}}}))
	bits := make([]byte, record.MinStatusListEntries/8)
	if r := f.publish(f.college, "1", "", []string{record.PurposeRevocation, record.PurposeSuspension}, 1, nil, bits); !r.Accepted {
		t.Fatalf("publish: %+v", r)
	}
	f.now = f.now.Add(1234567 * time.Nanosecond)
	f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "audit: <b>&</b> \u00e9\u4e2d"}))
	f.mustAccept(f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": "https://other.example/framework", "resources": []string{nursing}}))
	if r := f.apply(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": "bafkreinotthere"})); r.Accepted {
		t.Fatal("suspending an unknown accreditation was accepted")
	}

	seen := map[byte]int{}
	it, err := f.s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		table := it.Key()[0]
		typ, ok := storedTypes[table]
		if !ok {
			continue
		}
		seen[table]++
		sameDecoding(t, typ.Name(), typ, it.Value())
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	for table, typ := range storedTypes {
		if seen[table] == 0 {
			t.Errorf("the fixture stored no %s (table %#x): the test does not cover it", typ.Name(), table)
		}
	}

	// Values no fixture writes: an offset time zone, nil against empty
	// slices, a validUntil, escapes.
	paris := time.FixedZone("", 3600)
	until := time.Date(2031, 2, 3, 4, 5, 6, 7, paris)
	for _, v := range []any{
		record.Accreditation{ID: "a\u0000b", Resources: []string{}, ValidFrom: time.Date(2025, 1, 1, 0, 0, 0, 1, paris), ValidUntil: &until,
			Evidence: []string{"https://x.example/?a=1&b=<2>"}, Events: []record.StatusEvent{{Status: record.StatusRevoked, EffectiveAt: until, Reason: "\t\"\\"}}},
		record.Accreditation{},
		record.Entity{ID: "did:web:x", Keys: []json.RawMessage{json.RawMessage(`{"kty":"OKP","x":"\u00e9"}`)}, Metadata: &record.EntityMetadata{}},
		record.Result{Signers: []string{}, Reason: "\ufffd"},
		record.StatusListVersion{ValidFrom: &until},
		opRecord{JWS: []byte{0, 1, 2, 0xff}, Signers: nil},
	} {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		sameDecoding(t, reflect.TypeOf(v).Name(), reflect.TypeOf(v), raw)
	}
}
