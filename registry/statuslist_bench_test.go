package registry

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// benchListVersions publishes versions versions of list id, a revocation
// list of entries 1-bit entries, one second apart, the first with 1/200 of
// its entries set at random, each later one 1/20,000 more (a list in use:
// at 2^20 entries, credentials of 18-66 KB over 1,000 versions), and
// returns their commit times.
func benchListVersions(b *testing.B, f *listFixture, id string, versions, entries int) []time.Time {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	bits := make([]byte, entries/8)
	var times []time.Time
	prev := ""
	for range entries / 200 {
		record.SetStatus(bits, rng.IntN(entries), 1, 1)
	}
	for v := range versions {
		for range entries / 20000 {
			record.SetStatus(bits, rng.IntN(entries), 1, 1)
		}
		vc, err := record.StatusListCredential(f.college.DID, id, []string{record.PurposeRevocation}, 1, nil, 300000, bits)
		if err != nil {
			b.Fatal(err)
		}
		r := f.publishVC(f.college, f.college, id, prev, vc)
		if !r.Accepted {
			b.Fatalf("version %d: %s %s", v, r.Code, r.Reason)
		}
		times = append(times, f.now)
		l, err := f.s.StatusList(f.college.DID, id)
		if err != nil {
			b.Fatal(err)
		}
		prev = l.Current
	}
	if err := f.s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	return times
}

// BenchmarkStatusListAt reads a list of 1,000 versions (2^20 entries) at a
// time (?timestamp= on a list, its record or an entry, with proof=true
// too), the entry of its current version, and the first page of its
// versions without credentials (/versions?limit=1000, as many versions as
// MaxOperationPageBytes of stored records hold: the versions/page metric):
// what any client may ask for. Each read takes a view of its own, as a
// request does.
//
//	go test ./registry -run '^$' -bench BenchmarkStatusListAt -benchtime 200x
func BenchmarkStatusListAt(b *testing.B) {
	f := &listFixture{mustChain(b)}
	times := benchListVersions(b, f, "l", 1000, 1<<20)
	did := f.college.DID
	pageVersions := 0 // the versions of the last page read
	for _, c := range []struct {
		name string
		read func() error
	}{
		{"list/before_first", func() error {
			_, err := f.s.StatusListAt(did, "l", times[0].Add(-time.Hour))
			if err == nil {
				return errUnexpected
			}
			return nil
		}},
		{"list/first", func() error { _, err := f.s.StatusListAt(did, "l", times[0]); return err }},
		{"list/middle", func() error { _, err := f.s.StatusListAt(did, "l", times[500]); return err }},
		{"list/last", func() error { _, err := f.s.StatusListAt(did, "l", times[999]); return err }},
		{"entry/middle", func() error { _, err := f.s.CheckStatus(did, "l", 0, times[500]); return err }},
		{"entry/current", func() error { _, err := f.s.CheckStatus(did, "l", 0, time.Time{}); return err }},
		{"versions/limit=1000", func() error {
			l, next, err := f.s.StatusListHistory(did, "l", Page{Limit: 1000})
			if err == nil && (len(l) == 0 || len(l) == 1000) != (next == "") {
				return errUnexpected
			}
			pageVersions = len(l)
			return err
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.read(); err != nil {
					b.Fatal(err)
				}
			}
			if pageVersions > 0 {
				b.ReportMetric(float64(pageVersions), "versions/page")
			}
		})
	}
}

// errUnexpected is a benchmark read's answer that is not the one expected.
var errUnexpected = errors.New("benchmark: unexpected answer")

// BenchmarkCheckStatusAfterPastVersions reads an entry of a list's current
// version (2^24 entries, a 2 MiB bitstring) after a client read an entry of
// each of 39 past versions of another list (2^20 entries, 128 KiB each,
// 4.9 MiB together), with the list cache scaled down to 4 MiB
// (listCacheBytes: 256 MiB), as when past versions of 16 MiB bitstrings
// are cycled through at full size. The past reads are not timed.
//
//	go test ./registry -run '^$' -bench BenchmarkCheckStatusAfterPastVersions -benchtime 20x
func BenchmarkCheckStatusAfterPastVersions(b *testing.B) {
	f := &listFixture{mustChain(b)}
	current := make([]byte, 1<<24/8)
	record.SetStatus(current, 1<<24-1, 1, 1)
	if r := f.publish(f.college, "current", "", []string{record.PurposeRevocation}, 1, nil, current); !r.Accepted {
		b.Fatal(r.Reason)
	}
	times := benchListVersions(b, f, "cycled", 40, 1<<20)
	f.s.caches.lists = newListCache(4 << 20)
	did := f.college.DID
	read := func() {
		if e, err := f.s.CheckStatus(did, "current", 1<<24-1, time.Time{}); err != nil || e.Status != 1 {
			b.Fatal(e, err)
		}
	}
	read()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for _, at := range times[:len(times)-1] {
			if _, err := f.s.CheckStatus(did, "cycled", 0, at); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		read()
	}
}

// BenchmarkCheckStatusPastUncached reads one entry (the first, the middle
// one, the last) of a past version whose bitstring no cache holds (the
// list cache is emptied before each read, untimed): of a list of 2^20
// entries (a 128 KiB bitstring, its first version of 1,000) and of one of
// 2^27 (16 MiB, the largest bitstring, 1/20,000 of its entries set, its
// first version of two). Anyone may ask for an entry at any past time.
//
//	go test ./registry -run '^$' -bench BenchmarkCheckStatusPastUncached -benchtime 20x
func BenchmarkCheckStatusPastUncached(b *testing.B) {
	f := &listFixture{mustChain(b)}
	did := f.college.DID
	small := benchListVersions(b, f, "small", 1000, 1<<20)
	const large = 1 << 27
	rng := rand.New(rand.NewPCG(3, 4))
	bits := make([]byte, large/8)
	var largeTimes []time.Time
	prev := ""
	for v := range 2 {
		for range large / 20000 {
			record.SetStatus(bits, rng.IntN(large), 1, 1)
		}
		if r := f.publish(f.college, "large", prev, []string{record.PurposeRevocation}, 1, nil, bits); !r.Accepted {
			b.Fatalf("version %d: %s %s", v, r.Code, r.Reason)
		}
		largeTimes = append(largeTimes, f.now)
		l, err := f.s.StatusList(did, "large")
		if err != nil {
			b.Fatal(err)
		}
		prev = l.Current
	}
	if err := f.s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		list    string
		entries int
		at      time.Time
	}{{"small", 1 << 20, small[0]}, {"large", large, largeTimes[0]}} {
		for _, entry := range []struct {
			name  string
			index int
		}{{"first", 0}, {"middle", c.entries / 2}, {"last", c.entries - 1}} {
			b.Run(fmt.Sprintf("entries=%d/%s", c.entries, entry.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					f.s.caches.lists = newListCache(listCacheBytes)
					b.StartTimer()
					if _, err := f.s.CheckStatus(did, c.list, entry.index, c.at); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
