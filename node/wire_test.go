package node

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway/api"
)

// fillAll sets every field of the struct v points to (recursively, slices
// with one element) to a value that is not its zero, so a field the wire
// copy forgets shows up in the JSON.
func fillAll(t *testing.T, v reflect.Value, n *int) {
	t.Helper()
	*n++
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(int64(1_700_000_000+*n), 0).UTC()))
			return
		}
		for i := range v.NumField() {
			fillAll(t, v.Field(i), n)
		}
	case reflect.String:
		v.SetString("s" + string(rune('a'+*n%26)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillAll(t, s.Index(0), n)
		v.Set(s)
	default:
		t.Fatalf("fillAll: add a case for %s", v.Type())
	}
}

// The admin and status documents are consensus's types copied field by
// field into the gateway's wire types: the JSON must be the same, so a field
// added to consensus and not to the copy fails here.
func TestWireStatusCopiesEveryField(t *testing.T) {
	var st consensus.Status
	var ms consensus.MemberStatus
	n := 0
	fillAll(t, reflect.ValueOf(&st).Elem(), &n)
	fillAll(t, reflect.ValueOf(&ms).Elem(), &n)
	for _, tc := range []struct {
		name           string
		source, copied any
	}{
		{"status", st, api.RaftStatus(raftStatus(st))}, // the gateway's type is what goes on the wire
		{"member status", []consensus.MemberStatus{ms}, memberStatuses([]consensus.MemberStatus{ms})},
	} {
		want, err := json.Marshal(tc.source)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(tc.copied)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s on the wire:\n got %s\nwant %s", tc.name, got, want)
		}
	}
}
