package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/proof/prooftest"
	"github.com/trustreg/trustreg/registry/record"
)

func TestProofBundlesAreSizedFromTheirProofMember(t *testing.T) {
	// Two real bundles of different sizes: a trust answer's, and a records
	// bundle of the framework alone.
	w := prooftest.New(t, prooftest.Options{})
	trust, err := w.Bundle(decide.Question{Entity: prooftest.College, Framework: prooftest.Framework, Action: record.ActionIssue, Resource: prooftest.Nursing}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	small, err := w.RecordsBundle(decide.FrameworkKey(prooftest.Framework)).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	body := func(p []byte) []byte { return append(append([]byte(`{"authorized":true,"proof":`), p...), '}') }
	s, err := measureBundles([][]byte{body(small), body(trust)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Answers != 2 || s.Max != len(trust) || s.Mean != float64(len(small)+len(trust))/2 {
		t.Fatalf("bundle sizes %+v, want 2 answers, max %d, mean %.1f", s, len(trust), float64(len(small)+len(trust))/2)
	}
	// Gzip shrinks the JSON; the compact form (gzip'd CBOR) is smaller
	// still, and is what proof.Compress of the CBOR form makes.
	cb, err := w.Bundle(decide.Question{Entity: prooftest.College, Framework: prooftest.Framework, Action: record.ActionIssue, Resource: prooftest.Nursing}).MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	if s.GzipMax >= s.Max || s.GzipMean <= 0 || s.CompactMax >= s.GzipMax || s.CompactMax != len(proof.Compress(cb)) || s.CompactMean <= 0 {
		t.Fatalf("gzip and compact sizes %+v of bundles of %d and %d bytes (compact %d)", s, len(small), len(trust), len(proof.Compress(cb)))
	}
	for _, body := range []string{`{"authorized":true}`, `{"authorized":true,"proof":null}`} {
		if _, err := measureBundles([][]byte{[]byte(body)}); !errors.Is(err, ErrNoProof) {
			t.Fatalf("a body without a proof (%s): %v, want ErrNoProof", body, err)
		}
	}
	for _, b := range []string{"<html>", `{"proof":{"v":1}}`} {
		if _, err := measureBundles([][]byte{[]byte(b)}); err == nil {
			t.Fatalf("%s is sized without an error", b)
		}
	}
}

func TestProofRowIsPrintedAndSavedAndOldReportsStillLoad(t *testing.T) {
	rep := &report{Mode: "short", Machine: "test", Reads: []readResult{{
		Entities: 2000, Questions: 1024, Conns: 64, Trustd: stats{PerSecond: 10000}, Baseline: stats{PerSecond: 20000}, Ratio: 0.5,
		Proof: &proofResult{Trustd: stats{PerSecond: 3500, P50: 12.25, P99: 40.5}, RatioToPlain: 0.35, CPUus: 250.5,
			Bundle: bundleSizes{Answers: 1024, Mean: 4100, Max: 4321, GzipMean: 2100, GzipMax: 2222, CompactMean: 1900, CompactMax: 2001}},
	}}}
	var out bytes.Buffer
	if err := printReport(&out, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Proof answers: GET /v1/trust?...&proof=true",
		"      2000         3500     12.25     40.50           0.35       250.5 us      4100/4321 B      2100/2222 B        1900/2001 B\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("the report lacks %q:\n%s", want, out.String())
		}
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"ratio_to_plain":0.35,"cpu_us_per_query":250.5,"bundle":{"answers":1024,"mean_bytes":4100,"max_bytes":4321,"gzip_mean_bytes":2100,"gzip_max_bytes":2222,"compact_mean_bytes":1900,"compact_max_bytes":2001}`) {
		t.Fatalf("the JSON report does not carry the proof row: %s", raw)
	}
	dir := t.TempDir()
	back, err := loadReport(writeReport(t, dir, "new.json", rep))
	if err != nil || back.Reads[0].Proof == nil || *back.Reads[0].Proof != *rep.Reads[0].Proof {
		t.Fatalf("the proof row does not load back: %+v, %v", back, err)
	}

	// A report from before the proof row loads, and prints none.
	old := writeReport(t, dir, "old.json", &report{Mode: "short", Machine: "test", Reads: []readResult{{Entities: 2000, Trustd: stats{PerSecond: 9000}}}})
	r, err := loadReport(old)
	if err != nil || r.Reads[0].Proof != nil {
		t.Fatalf("an old report: %+v, %v", r, err)
	}
	out.Reset()
	if err := printReport(&out, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "Proof answers") {
		t.Fatalf("a report without proofs prints a proof row:\n%s", out.String())
	}

	text := compareOut(t, old, filepath.Join(dir, "new.json"))
	for _, want := range []string{
		row("reads, 2000 entities: proof r/s", "-", "3500", "-"),
		row("reads, 2000 entities: proof p99 (ms)", "-", "40.5", "-"),
		row("reads, 2000 entities: proof r/s / plain trustd r/s", "-", "0.35", "-"),
		row("reads, 2000 entities: proof CPU per query (µs)", "-", "250", "-"),
		row("reads, 2000 entities: proof bundle mean (bytes)", "-", "4100", "-"),
		row("reads, 2000 entities: proof bundle max (bytes)", "-", "4321", "-"),
		row("reads, 2000 entities: proof bundle gzip mean (bytes)", "-", "2100", "-"),
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("compare lacks %q:\n%s", want, text)
		}
	}
	if text := compareOut(t, old, old); strings.Contains(text, "proof") {
		t.Fatalf("comparing two reports without proofs shows proof rows:\n%s", text)
	}
}

func TestCheckpointIsAwaitedWithADeadline(t *testing.T) {
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/checkpoint" {
			http.NotFound(w, r)
			return
		}
		if asked.Add(1) < 3 {
			http.Error(w, `{"error":"no_checkpoint"}`, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("trustreg/log/x\n1\nroot\n"))
	}))
	defer srv.Close()
	if err := waitCheckpoint(t.Context(), srv.URL, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := asked.Load(); n != 3 {
		t.Fatalf("asked %d times, want 3 (twice 503, then 200)", n)
	}

	never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"no_checkpoint"}`, http.StatusServiceUnavailable)
	}))
	defer never.Close()
	if err := waitCheckpoint(t.Context(), never.URL, 300*time.Millisecond); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("a node that never has a checkpoint: %v, want ErrNoCheckpoint", err)
	}

	// 404 no_cosigners: no checkpoint will ever come, so no waiting.
	none := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"no_cosigners"}`, http.StatusNotFound)
	}))
	defer none.Close()
	if err := waitCheckpoint(t.Context(), none.URL, time.Hour); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("a node without cosigners: %v, want ErrNoCheckpoint", err)
	}
}

func TestProofAnswersAreFetchedOnceEachWithTheirProof(t *testing.T) {
	// Each entity's answer carries a bundle of its own size: a's the
	// framework's records bundle, bb's a trust answer's.
	w := prooftest.New(t, prooftest.Options{})
	small, err := w.RecordsBundle(decide.FrameworkKey(prooftest.Framework)).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	large, err := w.Bundle(decide.Question{Entity: prooftest.College, Framework: prooftest.Framework, Action: record.ActionIssue, Resource: prooftest.Nursing}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	bundles := map[string][]byte{"did:key:a": small, "did:key:bb": large}
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Query().Get("proof") != "true" {
			w.Write([]byte(`{"authorized":true}`))
			return
		}
		w.Write([]byte(`{"authorized":true,"proof":` + string(bundles[r.URL.Query().Get("entity")]) + `}`))
	}))
	defer srv.Close()
	urls := []string{trustURL(srv.URL, "did:key:a"), trustURL(srv.URL, "did:key:bb")}
	bodies, err := fetchProofs(t.Context(), urls)
	if err != nil {
		t.Fatal(err)
	}
	s, err := measureBundles(bodies)
	if err != nil {
		t.Fatal(err)
	}
	if requests.Load() != 2 || s.Answers != 2 || s.Max != len(large) || s.Mean != float64(len(small)+len(large))/2 {
		t.Fatalf("%d requests, sizes %+v", requests.Load(), s)
	}

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"no_proven_state"}`, http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	if _, err := fetchProofs(t.Context(), []string{trustURL(failing.URL, "did:key:a")}); err == nil {
		t.Fatal("a 503 proof answer is taken as an answer")
	}
}

// The uncached proof run asks no two requests alike (the node's proof
// cache is keyed by the query), each pinned to a valid instant before the
// run's start.
func TestUncachedProofRequestsAreAllDistinct(t *testing.T) {
	from := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	next := uncachedProofs([]string{"http://127.0.0.1:1/v1/trust?entity=a", "http://127.0.0.1:1/v1/trust?entity=b"}, from)
	seen := map[string]bool{}
	for i := int64(0); i < 5000; i++ {
		r, ok := next(int(i%64), i)
		if !ok || seen[r.url] {
			t.Fatalf("request %d: %q (ok %v, seen before %v)", i, r.url, ok, seen[r.url])
		}
		seen[r.url] = true
		u, err := url.Parse(r.url)
		if err != nil {
			t.Fatal(err)
		}
		at, err := time.Parse(time.RFC3339Nano, u.Query().Get("at"))
		if err != nil || at.After(from) || u.Query().Get("proof") != "true" {
			t.Fatalf("request %d: %q (at %v, %v)", i, r.url, at, err)
		}
	}
}
