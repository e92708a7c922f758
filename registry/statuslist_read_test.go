package registry

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// publishedVersion is a version a test published: its registry index and
// commit time as stored.
type publishedVersion struct {
	index uint64
	time  time.Time
	cid   string
}

// publishBatch publishes versions of list id in one batch, version i at
// entry time times[i] (the apply clamps a time that runs backwards) after
// skipping gaps[i] raft indexes, the first naming previous; version n sets
// entry n as well as every entry the versions before it set (a revocation
// list), so an entry's status tells which version answered. It returns
// what was stored.
func (f *listFixture) publishBatch(id, previous string, first int, times []time.Time, gaps []uint64) []publishedVersion {
	f.t.Helper()
	var entries []Entry
	for i, at := range times {
		bits := make([]byte, record.MinStatusListEntries/8)
		for e := 0; e <= first+i; e++ {
			record.SetStatus(bits, e, 1, 1)
		}
		vc, err := record.StatusListCredential(f.college.DID, id, []string{record.PurposeRevocation}, 1, nil, 300000, bits)
		if err != nil {
			f.t.Fatal(err)
		}
		jwt, err := f.college.SignVCJWT(vc)
		if err != nil {
			f.t.Fatal(err)
		}
		f.now = at
		op := f.sign(f.college, record.OpPublishStatusList, map[string]any{"list": id, "previous": previous, "credential": string(jwt)})
		f.index += 1 + gaps[i]
		entries = append(entries, Entry{Index: f.index, Time: at, Data: EncodeOperation(op)})
		previous = record.CIDOf(jwt)
	}
	f.entries = append(f.entries, entries...)
	for i, r := range f.s.ApplyBatch(entries) {
		if !r.Accepted {
			f.t.Fatalf("version %d of %s: %s %s", first+i, id, r.Code, r.Reason)
		}
	}
	v := f.s.View()
	defer v.Close()
	history, _, err := v.StatusListHistory(f.college.DID, id, Page{Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []publishedVersion
	for _, h := range history[len(history)-len(times):] {
		out = append(out, publishedVersion{index: h.Index, time: h.Time, cid: h.CID})
	}
	return out
}

// walkAt is the version of a list current at t as found by walking back
// from the list's last version, decoding each: StatusListAt before it
// bisected, the reference its answers are held to.
func walkAt(t *testing.T, v *View, issuer, id string, at time.Time) *record.StatusListVersion {
	t.Helper()
	p := prefix(tableListVersions, issuer, id)
	it, err := v.snap.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	it.SetBounds(p, upperBound(p))
	for it.Last(); it.Valid(); it.Prev() {
		var ver record.StatusListVersion
		if err := decodeRecord(it.Value(), &ver); err != nil {
			t.Fatal(err)
		}
		if !ver.Time.After(at) {
			return &ver
		}
	}
	return nil
}

// TestStatusListAtMatchesTheWalk: the version StatusListAt and CheckStatus
// find by bisection at a time is the one a walk back through every version
// finds, on lists published at random times (several in one batch, at one
// commit time; entry times running backwards, which the apply clamps;
// registry indexes far apart; another list's versions between them), at
// every version's time, just before and after it, before the first, after
// the last and at random times in between, an entry of a past version read
// from its credential; and, as a status-list proof requires, the version
// after the one found was published after the time.
func TestStatusListAtMatchesTheWalk(t *testing.T) {
	gapChoices := []time.Duration{0, time.Nanosecond, time.Millisecond, time.Second, 7 * time.Minute, -time.Second}
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, 42))
		f := &listFixture{mustChain(t)}
		start := f.now
		var all []publishedVersion
		prev, other, others := "", "", 0
		for len(all) < 40 {
			n := 1 + rng.IntN(3)
			times := make([]time.Time, n)
			gaps := make([]uint64, n)
			for i := range times {
				f.now = f.now.Add(gapChoices[rng.IntN(len(gapChoices))])
				times[i] = f.now
				if rng.IntN(4) == 0 {
					gaps[i] = uint64(rng.IntN(1 << 20))
				}
			}
			got := f.publishBatch("l", prev, len(all), times, gaps)
			all = append(all, got...)
			prev = got[len(got)-1].cid
			if rng.IntN(3) == 0 {
				f.now = f.now.Add(gapChoices[rng.IntN(len(gapChoices))])
				other = f.publishBatch("m", other, others, []time.Time{f.now}, []uint64{0})[0].cid
				others++
			}
		}
		for i := 1; i < len(all); i++ {
			if all[i].time.Before(all[i-1].time) {
				t.Fatalf("seed %d: version %d stored before version %d's time", seed, all[i].index, all[i-1].index)
			}
		}
		var ats []time.Time
		for _, pv := range all {
			ats = append(ats, pv.time, pv.time.Add(-time.Nanosecond), pv.time.Add(time.Nanosecond))
		}
		first, last := all[0].time, all[len(all)-1].time
		ats = append(ats, date(2000, 1, 1), start, first.Add(-time.Hour), last.Add(time.Hour), date(2100, 1, 1))
		for range 100 {
			ats = append(ats, first.Add(-time.Minute+time.Duration(rng.Int64N(int64(last.Sub(first)+2*time.Minute)))))
		}
		// The apply cached every version it published; emptied, the cache
		// leaves each past version's entries to be read from its
		// credential (View.pastStatus).
		f.s.caches.lists = newListCache(listCacheBytes)
		v := f.s.View()
		for _, at := range ats {
			want := walkAt(t, v, f.college.DID, "l", at)
			got, err := v.StatusListAt(f.college.DID, "l", at)
			k := rng.IntN(len(all) + 1)
			e, cerr := v.CheckStatus(f.college.DID, "l", k, at)
			if want == nil {
				if !errors.Is(err, record.ErrStatusRetrieval) || !errors.Is(cerr, record.ErrStatusRetrieval) {
					t.Fatalf("seed %d, at %s, before the first version: %+v %v / %+v %v", seed, at, got, err, e, cerr)
				}
				continue
			}
			if err != nil || cerr != nil {
				t.Fatalf("seed %d, at %s: %v / %v, want version %d", seed, at, err, cerr, want.Index)
			}
			if !reflect.DeepEqual(got.Version, *want) {
				t.Fatalf("seed %d, at %s: version %d (%s), the walk finds %d (%s)", seed, at, got.Version.Index, got.Version.Time, want.Index, want.Time)
			}
			// Version n sets entries 0 to n: entry k is set in it when k <= n.
			n := slices.IndexFunc(all, func(pv publishedVersion) bool { return pv.index == want.Index })
			if e.Version != want.CID || (e.Status == 1) != (k <= n) {
				t.Fatalf("seed %d, at %s: CheckStatus read %s (entry %d: %d), the walk finds version %d %s", seed, at, e.Version, k, e.Status, n, want.CID)
			}
			next, err := v.StatusListNext(f.college.DID, "l", want.Index)
			if err != nil || (next == nil) != (want.Index == got.CurrentIndex) || (next != nil && !next.Time.After(at)) {
				t.Fatalf("seed %d, at %s: the version after %d is %+v %v", seed, at, want.Index, next, err)
			}
		}
		v.Close()
	}
}

// TestVersionMetaIsTheVersionWithoutItsCredential: versionMeta has every
// field of record.StatusListVersion but the credential, and decoding a
// stored version with decodeVersionMeta gives what decoding it whole
// gives, without the credential: through the byte search for records as
// json.Marshal stores them, whatever the credential's escapes, and whole
// for any other layout.
func TestVersionMetaIsTheVersionWithoutItsCredential(t *testing.T) {
	full, meta := reflect.TypeFor[record.StatusListVersion](), reflect.TypeFor[versionMeta]()
	var fields []reflect.StructField
	for i := range full.NumField() {
		if fl := full.Field(i); fl.Name != "Credential" {
			fields = append(fields, fl)
		}
	}
	if meta.NumField() != len(fields) {
		t.Fatalf("versionMeta has %d fields, record.StatusListVersion %d besides its credential", meta.NumField(), len(fields))
	}
	for i, fl := range fields {
		if m := meta.Field(i); m.Name != fl.Name || m.Type != fl.Type || m.Tag != fl.Tag {
			t.Fatalf("versionMeta field %d is %s %s %q, record.StatusListVersion's %s %s %q", i, m.Name, m.Type, m.Tag, fl.Name, fl.Type, fl.Tag)
		}
	}
	from, until := date(2026, 1, 1), date(2027, 1, 1)
	base := record.StatusListVersion{CID: "bafkreiversion", Index: 77, Time: date(2026, 4, 1).Add(123456789), Previous: "bafkreiprevious",
		ValidFrom: &from, ValidUntil: &until, Operation: "bafkreioperation"}
	stored := func(cred string) string {
		v := base
		v.Credential = cred
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	jwt := "eyJhbGciOiJFZERTQSJ9.eyJ2YyI6e319.c2ln"
	di := `{"@context":["https://www.w3.org/ns/credentials/v2"],"name":"a \"quoted\" \\ back\\slash\\","proof":{"proofValue":"z58"}}`
	for _, c := range []struct {
		name, stored string
		searched     bool
	}{
		{"a VC-JWT", stored(jwt), true},
		{"a Data Integrity credential", stored(di), true},
		{"a credential ending in a backslash", stored(`ends in \`), true},
		{"a credential holding the member's own bytes", stored(`,"credential":"x"}`), true},
		{"unicode and control escapes", stored("é\u2028\x01<>&"), true},
		{"no previous or validity", strings.Replace(stored(jwt), `,"previous":"bafkreiprevious","validFrom":"2026-01-01T00:00:00Z","validUntil":"2027-01-01T00:00:00Z"`, "", 1), true},
		{"the credential first", `{"credential":"` + jwt + `","cid":"bafkreiversion","index":77,"time":"2026-04-01T00:00:00.123456789Z","previous":"bafkreiprevious","validFrom":"2026-01-01T00:00:00Z","validUntil":"2027-01-01T00:00:00Z","operation":"bafkreioperation"}`, false},
		{"the credential in the middle", strings.Replace(stored(jwt), `,"operation":"bafkreioperation","credential":"`+jwt+`"}`, `,"credential":"`+jwt+`","operation":"bafkreioperation"}`, 1), false},
		{"space before the end", strings.TrimSuffix(stored(jwt), "}") + " }", false},
		{"no credential", strings.Replace(stored(jwt), `,"credential":"`+jwt+`"`, "", 1), false},
	} {
		var whole record.StatusListVersion
		if err := decodeRecord([]byte(c.stored), &whole); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		whole.Credential = ""
		got, err := decodeVersionMeta([]byte(c.stored))
		if err != nil || !reflect.DeepEqual(got, whole) {
			t.Fatalf("%s: %+v %v, want %+v", c.name, got, err, whole)
		}
		if searched := lastCredential([]byte(c.stored)) >= 0; searched != c.searched {
			t.Fatalf("%s: found by the byte search %v, want %v", c.name, searched, c.searched)
		}
	}
}

// FuzzDecodeVersionMeta: whatever a stored version holds, decodeVersionMeta
// decodes what a whole decode does, without the credential.
func FuzzDecodeVersionMeta(f *testing.F) {
	f.Add(`{"cid":"c","index":1,"time":"2026-04-01T00:00:00Z","operation":"o","credential":"a.b.c"}`)
	f.Add(`{"cid":"c","index":1,"time":"2026-04-01T00:00:00Z","operation":"o","credential":"{\"a\":\"\\\\\"}"}`)
	f.Add(`{"cid":"c","index":1,"time":"2026-04-01T00:00:00Z","credential":"x","operation":"o"}`)
	f.Fuzz(func(t *testing.T, stored string) {
		var whole record.StatusListVersion
		if decodeRecord([]byte(stored), &whole) != nil {
			return
		}
		whole.Credential = ""
		got, err := decodeVersionMeta([]byte(stored))
		if err != nil || !reflect.DeepEqual(got, whole) {
			t.Fatalf("%+v %v, want %+v", got, err, whole)
		}
	})
}

// TestPastVersionsLeaveCurrentListsCached: entries of past versions of one
// list, cycled through more bitstrings than the cache holds, are read
// from each version (the entry a version set tells which) and add nothing
// to the cache: another list's current bitstring stays cached, alone; and
// a past version the cache still holds (it was current when cached)
// answers from it without being made more recent.
func TestPastVersionsLeaveCurrentListsCached(t *testing.T) {
	f := &listFixture{mustChain(t)}
	f.now = date(2026, 4, 1)
	const size = record.MinStatusListEntries / 8 // one version's bitstring
	cur := f.publishBatch("current", "", 0, []time.Time{f.now}, []uint64{0})[0]
	var past []publishedVersion
	prev := ""
	for i := range 12 {
		f.now = f.now.Add(time.Minute)
		pv := f.publishBatch("cycled", prev, i, []time.Time{f.now}, []uint64{0})[0]
		past, prev = append(past, pv), pv.cid
	}
	c := newListCache(4 * size)
	f.s.caches.lists = c
	if e, err := f.s.CheckStatus(f.college.DID, "current", 0, time.Time{}); err != nil || e.Version != cur.cid {
		t.Fatalf("current list: %+v %v", e, err)
	}
	// The cycled list's current version is the last; the 11 before it
	// are past, 11 bitstrings against room for 4. Version i sets entries
	// 0 to i.
	for range 3 {
		for i, pv := range past[:len(past)-1] {
			for _, entry := range []int{i, i + 1} {
				e, err := f.s.CheckStatus(f.college.DID, "cycled", entry, pv.time)
				if err != nil || e.Version != pv.cid || (e.Status == 1) != (entry == i) {
					t.Fatalf("past version %d, entry %d: %+v %v", i, entry, e, err)
				}
			}
		}
	}
	if k := c.lru.Keys(); len(k) != 1 || k[0] != cur.cid || c.bytes != size {
		t.Fatalf("after the past versions, the cache holds %v (%d bytes), want the current list's %s alone", k, c.bytes, cur.cid)
	}
	// The apply caches what it checks against and what it publishes as
	// current: version 11 of the cycled list, current, then version 12,
	// which makes 11 past.
	f.now = f.now.Add(time.Minute)
	v12 := f.publishBatch("cycled", prev, 12, []time.Time{f.now}, []uint64{0})[0]
	v11 := past[len(past)-1]
	if k := c.lru.Keys(); len(k) != 3 || k[0] != cur.cid || k[1] != v11.cid || k[2] != v12.cid {
		t.Fatalf("cache %v, want %s %s %s from oldest", k, cur.cid, v11.cid, v12.cid)
	}
	// The cached bitstring answers: version 11 set entries 0 to 11.
	for _, entry := range []int{11, 12} {
		if e, err := f.s.CheckStatus(f.college.DID, "cycled", entry, v11.time); err != nil || e.Version != v11.cid || (e.Status == 1) != (entry == 11) {
			t.Fatalf("version 11 at its time, entry %d: %+v %v", entry, e, err)
		}
	}
	if k := c.lru.Keys(); len(k) != 3 || k[1] != v11.cid {
		t.Fatalf("a read of past version 11 reordered the cache: %v", k)
	}
}

// TestStatusListVersionPagesEndAtTheirByteBound: a page of a list's
// versions ends once the stored records it read (each with its
// credential) hold MaxOperationPageBytes (here made the size of a few), with
// a next page, however high its limit; the pages list every version once,
// in order, as one page without the bound does.
func TestStatusListVersionPagesEndAtTheirByteBound(t *testing.T) {
	f := &listFixture{mustChain(t)}
	f.now = date(2026, 4, 1)
	times := make([]time.Time, 7)
	for i := range times {
		times[i] = f.now.Add(time.Duration(i) * time.Minute)
	}
	f.publishBatch("l", "", 0, times, make([]uint64, len(times)))
	v := f.s.View()
	defer v.Close()
	all, next, err := v.StatusListHistory(f.college.DID, "l", Page{Limit: record.MaxPageLimit})
	if err != nil || len(all) != len(times) || next != "" {
		t.Fatalf("one page: %d versions, next %q, %v; want %d and no next page", len(all), next, err, len(times))
	}
	stored := func(ver record.StatusListVersion) int {
		val, closer, err := v.snap.Get(versionKey(prefix(tableListVersions, f.college.DID, "l"), ver.Index))
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		return len(val)
	}
	bound := 2*stored(all[0]) + 1 // about three records
	v.opPageBound = bound
	var got []record.StatusListVersion
	pages, cursor := 0, ""
	for ; pages < len(times); pages++ {
		items, next, err := v.StatusListHistory(f.college.DID, "l", Page{Cursor: cursor, Limit: record.MaxPageLimit})
		if err != nil || len(items) == 0 {
			t.Fatalf("page %d: %d versions, %v", pages, len(items), err)
		}
		size := 0
		for _, ver := range items {
			size += stored(ver)
		}
		last := stored(items[len(items)-1])
		if size-last >= bound || (next != "" && size < bound) {
			t.Fatalf("page %d: %d versions of %d bytes stored, the last %d, next %q; the bound is %d", pages, len(items), size, last, next, bound)
		}
		got = append(got, items...)
		if next == "" {
			break
		}
		cursor = next
	}
	if pages < 2 || !reflect.DeepEqual(got, all) {
		t.Fatalf("%d pages listed %d versions, want several pages listing the %d of one page", pages+1, len(got), len(all))
	}
}

// TestStatusListNextLeavesTheCredential: StatusListNext gives the version
// after each one, as stored but without its credential, which it does not
// decode, and nil after the last.
func TestStatusListNextLeavesTheCredential(t *testing.T) {
	f := &listFixture{mustChain(t)}
	f.now = date(2026, 4, 1)
	vs := f.publishBatch("l", "", 0, []time.Time{f.now, f.now.Add(time.Minute), f.now.Add(2 * time.Minute)}, []uint64{0, 5, 0})
	v := f.s.View()
	defer v.Close()
	for i, pv := range vs {
		next, err := v.StatusListNext(f.college.DID, "l", pv.index)
		if err != nil {
			t.Fatal(err)
		}
		if i == len(vs)-1 {
			if next != nil {
				t.Fatalf("after the last version: %+v", next)
			}
			continue
		}
		var want record.StatusListVersion
		if ok, err := getJSON(v.snap, versionKey(prefix(tableListVersions, f.college.DID, "l"), vs[i+1].index), &want); !ok || err != nil || want.Credential == "" {
			t.Fatalf("version %d as stored: %v %v", i+1, ok, err)
		}
		want.Credential = ""
		if next == nil || !reflect.DeepEqual(*next, want) {
			t.Fatalf("after version %d: %+v, want version %d without its credential %+v", i, next, i+1, want)
		}
	}
}
