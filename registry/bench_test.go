package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

func BenchmarkDecide(b *testing.B) {
	f := mustChain(b)
	q := decide.Question{Entity: f.college.DID, Framework: fwID, Action: record.ActionIssue, Resource: nursing, At: date(2025, 1, 1)}
	b.ReportAllocs()
	for b.Loop() {
		d, err := f.s.Decide(q, f.now)
		if err != nil || !d.Authorized {
			b.Fatalf("%v %v", d, err)
		}
	}
}

// BenchmarkApplyAccredit applies signed accredit operations in batches of
// 64, as Raft's batching hands them over under load, and one at a time, as
// a lone writer's arrive (signature checks included), at
// the level just below FeatureLevelCommitment and at it, side by side,
// with the bytes each write puts into Pebble (its share of the batches), the
// bytes Pebble's memtable flushes and compactions wrote into sstables per
// write and the compaction debt the run left (its growth per write), the
// process's CPU time per write (signature checks and Pebble's background
// work included), its minor page faults per write, and at the level with
// the commitment the map records below the top cache's depth it keeps in
// memory at the end. Compactions show only in long runs: -benchtime
// 102400x or more.
func BenchmarkApplyAccredit(b *testing.B) {
	for _, level := range []int{FeatureLevelCommitment - 1, FeatureLevelCommitment} {
		for _, batch := range []int{64, 1} {
			b.Run(fmt.Sprintf("level=%d/batch=%d", level, batch), func(b *testing.B) {
				benchApplyAccredit(b, level, batch)
			})
		}
	}
}

func benchApplyAccredit(b *testing.B, level, batch int) {
	f := mustChain(b)
	f.mustRaiseLevel(level)
	ops := make([][]byte, 0, b.N+batch)
	for i := range b.N + batch {
		ops = append(ops, f.sign(f.qa, record.OpAccredit, map[string]any{
			"framework": fwID, "accreditor": f.qa.DID, "subject": fmt.Sprintf("did:web:college-%d.example", i),
			"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
			"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
		}))
	}
	b.ReportAllocs()
	before := f.s.db.Metrics()
	b.ResetTimer()
	cpuBefore, faultsBefore := cpuUsage()
	for i := 0; i < b.N; i += batch {
		entries := make([]Entry, 0, batch)
		for j := i; j < i+batch && j < b.N; j++ {
			f.index++
			entries = append(entries, Entry{Index: f.index, Time: f.now.Add(time.Duration(j) * time.Microsecond), Data: EncodeOperation(ops[j])})
		}
		for _, r := range f.s.ApplyBatch(entries) {
			if !r.Accepted {
				b.Fatal(r.Reason)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	cpu, faults := cpuUsage()
	after := f.s.db.Metrics()
	tb, ta := before.Total(), after.Total()
	b.ReportMetric(float64(after.WAL.BytesIn-before.WAL.BytesIn)/float64(b.N), "WAL-B/write")
	b.ReportMetric(float64(ta.TableBytesFlushed-tb.TableBytesFlushed)/float64(b.N), "flushed-B/write")
	b.ReportMetric(float64(ta.TableBytesCompacted-tb.TableBytesCompacted)/float64(b.N), "compacted-B/write")
	b.ReportMetric((float64(after.Compact.EstimatedDebt)-float64(before.Compact.EstimatedDebt))/float64(b.N), "debt-B/write")
	b.ReportMetric(float64((cpu-cpuBefore).Microseconds())/float64(b.N), "cpu-µs/write")
	b.ReportMetric(float64(faults-faultsBefore)/float64(b.N), "faults/write")
	if top := f.s.apply.mapTop.Load(); top != nil {
		// The records below the top the apply keeps in memory at the end
		// (-1: dropped), and the share of the last count's reads below the
		// top it answered while full.
		deep, hits := -1, 0.0
		if top.deep != nil {
			deep = top.deep.len()
			if top.deepReads > 0 {
				hits = float64(top.deepHits) / float64(top.deepReads)
			}
		}
		b.ReportMetric(float64(deep), "deep-records")
		b.ReportMetric(hits, "deep-hit-ratio")
	}
}

// BenchmarkCommitmentDisk loads 100,000 accreditations with the commitment
// on and reports what its tables take on disk after a full compaction: per
// map key (each accreditation's record and its subject's received listing:
// two per write), per log leaf (one per write), and against the rest of the
// state. It measures once, whatever b.N.
func BenchmarkCommitmentDisk(b *testing.B) {
	const n = 100_000
	f := mustChain(b)
	f.mustRaiseLevel(FeatureLevelCommitment)
	loadColleges(b, f, n)
	db := f.s.db
	if err := f.s.flushMapOverlay(); err != nil { // the map journal's records, as a clean stop writes them
		b.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := db.Compact(context.Background(), []byte{0x00}, []byte{0xff}, false); err != nil {
		b.Fatal(err)
	}
	usage := func(lo, hi byte) float64 {
		u, err := db.EstimateDiskUsage([]byte{lo}, []byte{hi})
		if err != nil {
			b.Fatal(err)
		}
		return float64(u)
	}
	mapBytes, logBytes := usage(tableMapNodes, tableMapNodes+1), usage(tableLogNodes, tableLogLeaves+1)
	total := usage(0x00, 0xff)
	c := mustCommitment(b, f.s)
	keys, err := countMapLeaves(db, f.s.mapOverlay.Load())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
	}
	b.ReportMetric(mapBytes/float64(keys), "map-B/key")
	b.ReportMetric(logBytes/float64(c.LogSize), "log-B/leaf")
	b.ReportMetric((mapBytes+logBytes)/float64(n), "commitment-B/write")
	b.ReportMetric((total-mapBytes-logBytes)/float64(n), "state-B/write")
	b.ReportMetric(100*(mapBytes+logBytes)/(total-mapBytes-logBytes), "%added")
}

// BenchmarkCheckStatus fetches and checks one entry of a list's current
// version, for a 131,072-entry list and a 2^24-entry list. The decoded
// bitstring is cached per version, so neither decompresses per read.
func BenchmarkCheckStatus(b *testing.B) {
	for _, entries := range []int{record.MinStatusListEntries, 1 << 24} {
		b.Run(fmt.Sprintf("entries=%d", entries), func(b *testing.B) {
			f := &listFixture{mustChain(b)}
			bits := make([]byte, entries/8)
			record.SetStatus(bits, entries-1, 1, 1)
			if r := f.publish(f.college, "bench", "", []string{record.PurposeRevocation}, 1, nil, bits); !r.Accepted {
				b.Fatal(r.Reason)
			}
			f.s.caches.lists = newListCache(listCacheBytes) // start cold: the first read decodes
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				e, err := f.s.CheckStatus(f.college.DID, "bench", entries-1, time.Time{})
				if err != nil || e.Status != 1 {
					b.Fatal(e, err)
				}
			}
		})
	}
}

// BenchmarkRestore restores a snapshot of a state holding 20,000
// accreditations (about 60,000 records) into a fresh state: what a node
// catching up spends after the transfer.
func BenchmarkRestore(b *testing.B) {
	f := mustChain(b)
	loadAccreditations(b, f, 20_000)
	stream := snapshotBytes(b, f.s)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		fresh, err := Open(b.TempDir(), f.raw, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := fresh.Restore(bytes.NewReader(stream)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		fresh.Close()
		b.StartTimer()
	}
}

// BenchmarkPreVerify parses and checks the signature of fresh operations,
// as a node receiving writes does, for each kind of signer: a did:key
// carries its key; a registered did:web names one of its entity's JWKs.
func BenchmarkPreVerify(b *testing.B) {
	f := mustChain(b)
	signers := map[string]*record.Signer{}
	for _, kind := range []string{record.KeyEd25519, record.KeyP256} {
		signers["did:key "+kind] = mustKey(b, kind)
		did := "did:web:signer-" + strings.ToLower(kind) + ".example"
		web, err := mustKey(b, kind).WithKID(did + "#key-1")
		if err != nil {
			b.Fatal(err)
		}
		jwk, err := web.PublicJWK()
		if err != nil {
			b.Fatal(err)
		}
		f.mustAccept(f.sign(f.qa, record.OpRegisterEntity, map[string]any{"id": did, "name": "Signer", "keys": []any{jwk}}))
		signers["did:web "+kind] = web
	}
	for _, name := range []string{"did:key " + record.KeyEd25519, "did:key " + record.KeyP256, "did:web " + record.KeyEd25519, "did:web " + record.KeyP256} {
		s := signers[name]
		b.Run(strings.ReplaceAll(name, " ", "-"), func(b *testing.B) {
			ops := make([][]byte, b.N)
			for i := range ops {
				ops[i] = f.sign(s, record.OpUpdateEntity, map[string]any{"id": s.DID, "name": fmt.Sprintf("Signer %d", i)})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := f.s.PreVerify(ops[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecideUncached answers questions about 20,000 colleges, each
// asked once per pass, so their accreditations and received lists are read
// from Pebble and decoded; the framework, root and agency records stay
// cached, as on a node asked about many colleges.
func BenchmarkDecideUncached(b *testing.B) {
	f := mustChain(b)
	const n = 20000
	loadColleges(b, f, n)
	// The records are read from sstables, as on a node loaded long ago.
	if err := f.s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%n == 0 {
			b.StopTimer()
			f.s.caches.records.clear()
			f.s.Decide(decide.Question{Entity: "did:web:college-0.example", Framework: fwID, Action: record.ActionIssue, Resource: nursing, At: at}, f.now)
			b.StartTimer()
		}
		d, err := f.s.Decide(decide.Question{Entity: fmt.Sprintf("did:web:college-%d.example", i%n), Framework: fwID, Action: record.ActionIssue, Resource: nursing, At: at}, f.now)
		if err != nil || !d.Authorized {
			b.Fatalf("%v %v", d, err)
		}
		i++
	}
}

// loadColleges accredits n colleges did:web:college-<i>.example under the
// fixture's QA agency, applied in batches of 64.
func loadColleges(b testing.TB, f *chainFixture, n int) {
	applyInBatches(b, f, n, func(i int) []byte {
		return f.sign(f.qa, record.OpAccredit, map[string]any{
			"framework": fwID, "accreditor": f.qa.DID, "subject": fmt.Sprintf("did:web:college-%d.example", i),
			"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
			"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
		})
	})
}

// applyInBatches applies the n operations op makes in batches of 64, a
// microsecond apart, each of which must be accepted.
func applyInBatches(b testing.TB, f *chainFixture, n int, op func(i int) []byte) {
	const batch = 64
	var entries []Entry
	for i := range n {
		f.index++
		entries = append(entries, Entry{Index: f.index, Time: f.now.Add(time.Duration(i) * time.Microsecond), Data: EncodeOperation(op(i))})
		if len(entries) == batch || i == n-1 {
			for _, r := range f.s.ApplyBatch(entries) {
				if !r.Accepted {
					b.Fatal(r.Reason)
				}
			}
			entries = entries[:0]
		}
	}
}

// BenchmarkTIRIssuers answers the last page of the TIR binding's issuer
// list over 20,000 issuers: walk counts them all for each request (the
// first listing, or one after a root's change), marks pages from the marks
// kept for the state, after-write pages after one accreditation of a new
// subject (not timed) from the marks brought up to date.
func BenchmarkTIRIssuers(b *testing.B) {
	f := mustChain(b)
	const n = 20000
	loadColleges(b, f, n)
	if err := f.s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"walk", "marks", "after-write"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				switch mode {
				case "walk":
					f.s.caches.issuers.clear()
				case "after-write":
					b.StopTimer()
					f.tick()
					f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{
						"framework": fwID, "accreditor": f.qa.DID, "subject": fmt.Sprintf("did:web:college-%dw.example", i),
						"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
						"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
					}))
					b.StartTimer()
				}
				v := f.s.View()
				dids, total, err := v.TIRIssuers(n-10, 50)
				v.Close()
				if err != nil || total < n || len(dids) == 0 {
					b.Fatalf("%d of %d: %v", len(dids), total, err)
				}
			}
		})
	}
}

// BenchmarkMapOverlay measures the reads the map journal (journal.go)
// puts in front of Pebble, over 16,000 accreditations with 3,712
// entries' map changes in the overlay (58 batches of 64: four layers):
// prove proves one received listing from a fresh view (no kept view's
// memory), with the overlay and then with it flushed into Pebble (the
// overlay's lookups before each Pebble read must not make proof answers
// slower); replay is Open's replay of the journal's 58 records.
func BenchmarkMapOverlay(b *testing.B) {
	const n = 16000
	f := mustChain(b)
	f.mustRaiseLevel(FeatureLevelCommitment)
	loadColleges(b, f, n)
	prove := func(b *testing.B) {
		i := 0
		for b.Loop() {
			v := f.s.View()
			k := decide.ReceivedKey(fmt.Sprintf("did:web:college-%d.example", (i*7919)%n), fwID)
			if _, _, err := v.ProveRecords([]decide.RecordKey{k}); err != nil {
				b.Fatal(err)
			}
			v.Close()
			i++
		}
	}
	ov := f.s.mapOverlay.Load()
	if ov.empty() {
		b.Fatal("nothing in the overlay")
	}
	b.Run(fmt.Sprintf("prove/overlay=%d-entries-%d-layers", ov.entries, len(ov.layers)), func(b *testing.B) {
		prove(b)
		b.ReportMetric(float64(ov.bytes)/(1<<20), "overlay-MiB")
	})
	b.Run("replay", func(b *testing.B) {
		for b.Loop() {
			if _, err := replayJournal(f.s.db); err != nil {
				b.Fatal(err)
			}
		}
	})
	if err := f.s.flushMapOverlay(); err != nil {
		b.Fatal(err)
	}
	b.Run("prove/flushed", prove)
}

// loadAccreditations applies n accreditations of new colleges under the
// fixture's QA agency, in batches of 256.
func loadAccreditations(b *testing.B, f *chainFixture, n int) {
	b.Helper()
	const batch = 256
	for i := 0; i < n; i += batch {
		entries := make([]Entry, 0, batch)
		for j := i; j < i+batch && j < n; j++ {
			f.index++
			op := f.sign(f.qa, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.qa.DID, "subject": fmt.Sprintf("did:web:college-%d.example", j),
				"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
			})
			entries = append(entries, Entry{Index: f.index, Time: f.now, Data: EncodeOperation(op)})
		}
		for _, r := range f.s.ApplyBatch(entries) {
			if !r.Accepted {
				b.Fatal(r.Reason)
			}
		}
	}
}

// BenchmarkSnapshotCapture compares, on a state of 20,000 accreditations
// with the commitment on, what a raft snapshot streamed when taken costs
// (the whole state through zstd: Snapshot.WriteTo, as every snapshot was
// made before they were kept as checkpoints) with what a Pebble
// checkpoint of the same state costs (hard links to its sstables and blob
// files, a copy of the WAL and the manifest), the capture a node's raft
// snapshot makes now; the stream is made from it only when one is sent.
// Each reports the process's CPU per snapshot.
func BenchmarkSnapshotCapture(b *testing.B) {
	f := mustChain(b)
	f.mustRaiseLevel(FeatureLevelCommitment)
	loadAccreditations(b, f, 20_000)
	b.Run("stream", func(b *testing.B) {
		var n int64
		cpu0, _ := cpuUsage()
		for b.Loop() {
			sn := f.s.Snapshot()
			w, err := sn.WriteTo(io.Discard)
			sn.Release()
			if err != nil {
				b.Fatal(err)
			}
			n = w
		}
		cpu1, _ := cpuUsage()
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/snapshot")
		b.ReportMetric(float64(n)/(1<<20), "MiB")
	})
	b.Run("checkpoint", func(b *testing.B) {
		dir := b.TempDir()
		var cpu time.Duration // around the checkpoints only, not their removal
		for i := 0; b.Loop(); i++ {
			d := filepath.Join(dir, strconv.Itoa(i))
			cpu0, _ := cpuUsage()
			if err := f.s.db.Checkpoint(d, pebble.WithFlushedWAL()); err != nil {
				b.Fatal(err)
			}
			cpu1, _ := cpuUsage()
			cpu += cpu1 - cpu0
			b.StopTimer()
			if err := os.RemoveAll(d); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/snapshot")
	})
}

// BenchmarkCollection measures what a full garbage collection costs a
// state of 100,000 accreditations with the commitment on, whose apply
// holds its deep map records and received listings in memory
// (arenaMap): the process's CPU per collection, the heap's objects and
// bytes, and the records and listings held, which the collector should
// not have to mark one by one.
func BenchmarkCollection(b *testing.B) {
	f := mustChain(b)
	f.mustRaiseLevel(FeatureLevelCommitment)
	loadColleges(b, f, 100000)
	top, l := f.s.apply.mapTop.Load(), f.s.apply.listings
	if top.deep == nil || l == nil {
		b.Fatal("the apply dropped its deep records or listings: the benchmark would not measure them")
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ResetTimer()
	cpuBefore, _ := cpuUsage()
	for b.Loop() {
		runtime.GC()
	}
	cpu, _ := cpuUsage()
	b.ReportMetric(float64((cpu-cpuBefore).Microseconds())/1000/float64(b.N), "cpu-ms/collection")
	b.ReportMetric(float64(ms.HeapObjects), "heap-objects")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(top.deep.len()), "deep-records")
	b.ReportMetric(float64(l.m.len()), "listings")
}

// BenchmarkGrantBesideManyEvents applies grants to a subject that holds
// accreditations full of status events placed by a peer agency (16
// accreditations of 255 suspensions and reinstatements each, what one
// accreditor may place at FeatureLevelStanding), beside grants to a subject
// holding none: grantStanding reads each suspension's operation and asks
// whether its placer binds the grantor (a peer binds nothing), for every
// grant to that subject, and the leader's check does the same for every
// grant submitted. Signing and the signature check are in both.
func BenchmarkGrantBesideManyEvents(b *testing.B) {
	for _, accs := range []int{0, 16} {
		b.Run(fmt.Sprintf("peer_accreditations=%d", accs), func(b *testing.B) {
			f := mustChain(b)
			f.mustRaiseLevel(FeatureLevel)
			qa2, acc2 := f.peerAgency()
			subject := "did:web:crowded.example"
			for i := range accs {
				f.tick()
				id := f.mustAccept(f.sign(qa2, record.OpAccredit, map[string]any{
					"framework": fwID, "accreditor": qa2.DID, "subject": subject, "action": record.ActionIssue,
					"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": acc2,
					"validFrom": "2024-06-01T00:00:00Z", "validUntil": fmt.Sprintf("2029-01-%02dT00:00:00Z", i+1),
				})).ID
				for j := 1; j < maxStatusEvents; j++ {
					f.tick()
					op := record.OpSuspend
					if j%2 == 0 {
						op = record.OpReinstate
					}
					f.mustAccept(f.sign(qa2, op, map[string]any{"accreditation": id}))
				}
			}
			i := 0
			b.ResetTimer()
			for b.Loop() {
				f.tick()
				i++
				f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{
					"framework": fwID, "accreditor": f.qa.DID, "subject": subject, "action": record.ActionIssue,
					"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
					"validFrom": "2026-01-01T00:00:00Z", "validUntil": time.Date(2028, 1, 1, 0, 0, i, 0, time.UTC).Format(time.RFC3339),
				}))
			}
		})
	}
}

// BenchmarkTIRIssuerReads answers the TIR binding's per-issuer reads about
// a subject holding k accreditations (each for a resource of its own, from
// one agency): the whole build each answer made before it read pages
// (before_whole_build, the registry's part of every answer:
// tirIssuerBefore), then what each answer reads now: the issuer (v5's
// answer), a page of one and the last page of 50 attributes (from the
// marks of the subject's received index, kept for the state; _walk: the
// first page after a write to the subject, which counts every key), an
// attribute by its id, a page of its revisions, a revision by its id, and
// every attribute (v4's answer, which shows them inline).
func BenchmarkTIRIssuerReads(b *testing.B) {
	for _, k := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			f := mustChain(b)
			big := loadBigSubject(b, f, k)
			if err := f.s.db.Flush(); err != nil {
				b.Fatal(err)
			}
			now := f.now
			v := f.s.View()
			x, err := v.TIRIssuerView(big, now)
			if err != nil {
				b.Fatal(err)
			}
			last, total, err := x.Attributes(k-1, 1)
			v.Close()
			if err != nil || total != k || len(last) != 1 {
				b.Fatalf("%d attributes of %d: %v", len(last), total, err)
			}
			id := last[0].ID
			read := func(name string, read func(v *View, x *TIRIssuerView) (int, error)) {
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						v := f.s.View()
						x, err := v.TIRIssuerView(big, now)
						if err != nil {
							b.Fatal(err)
						}
						n, err := read(v, x)
						v.Close()
						if err != nil || n == 0 {
							b.Fatalf("%d: %v", n, err)
						}
					}
				})
			}
			read("before_whole_build", func(v *View, _ *TIRIssuerView) (int, error) {
				attrs, err := v.tirIssuerBefore(big, now)
				return len(attrs), err
			})
			read("issuer", func(*View, *TIRIssuerView) (int, error) { return 1, nil })
			read("attributes_page_size_1", func(_ *View, x *TIRIssuerView) (int, error) {
				attrs, _, err := x.Attributes(0, 1)
				return len(attrs), err
			})
			read("attributes_last_page_size_50", func(_ *View, x *TIRIssuerView) (int, error) {
				attrs, _, err := x.Attributes(k-50, 50)
				return len(attrs), err
			})
			read("attributes_page_size_1_walk", func(_ *View, x *TIRIssuerView) (int, error) {
				f.s.caches.received.clear()
				attrs, _, err := x.Attributes(0, 1)
				return len(attrs), err
			})
			read("attributes_last_page_size_50_walk", func(_ *View, x *TIRIssuerView) (int, error) {
				f.s.caches.received.clear()
				attrs, _, err := x.Attributes(k-50, 50)
				return len(attrs), err
			})
			read("attribute", func(_ *View, x *TIRIssuerView) (int, error) {
				a, err := x.Attribute(id)
				return len(a.Body), err
			})
			read("revisions", func(_ *View, x *TIRIssuerView) (int, error) {
				a, err := x.Attribute(id)
				if err != nil {
					return 0, err
				}
				revs, err := x.Revisions(a, 0, 50)
				return len(revs), err
			})
			read("revision", func(_ *View, x *TIRIssuerView) (int, error) {
				a, err := x.Attribute(id)
				if err != nil {
					return 0, err
				}
				rev, err := x.Revision(a, id)
				return len(rev.JWS), err
			})
			read("every_attribute", func(_ *View, x *TIRIssuerView) (int, error) {
				attrs, _, err := x.Attributes(0, math.MaxInt)
				return len(attrs), err
			})
		})
	}
}

// loadBigSubject accredits an agency under the fixture's root to accredit
// for every resource, and the agency grants did:web:big.example k
// accreditations to issue, each for a resource of its own, applied in
// batches of 64; it returns the subject.
func loadBigSubject(b testing.TB, f *chainFixture, k int) string {
	agency := mustKey(b, record.KeyEd25519)
	acc := f.mustAccept(f.sign(f.root, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.root.DID, "subject": agency.DID, "action": record.ActionAccredit,
		"resources": []string{"*"}, "validFrom": "2024-01-01T00:00:00Z", "validUntil": "2030-01-01T00:00:00Z",
	})).ID
	big := "did:web:big.example"
	applyInBatches(b, f, k, func(i int) []byte {
		return f.sign(agency, record.OpAccredit, map[string]any{
			"framework": fwID, "accreditor": agency.DID, "subject": big, "action": record.ActionIssue,
			"resources": []string{fmt.Sprintf("https://example.org/credentials/Program-%06d", i)}, "parent": acc,
			"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z",
		})
	})
	f.now = f.now.Add(time.Second)
	return big
}
