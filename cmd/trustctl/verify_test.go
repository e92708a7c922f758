package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/proof/prooftest"
	"github.com/trustreg/trustreg/registry/record"
)

// writeBundle writes the genesis and a bundle of the world's college
// question (changed by change, when not nil) and returns their paths.
func writeBundle(t *testing.T, w *prooftest.World, change func(b *proof.Bundle)) (genesis, bundle string) {
	t.Helper()
	b := w.Bundle(decide.Question{Entity: prooftest.College, Framework: prooftest.Framework, Action: record.ActionIssue, Resource: prooftest.Nursing})
	if change != nil {
		change(b)
	}
	raw, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	genesis, bundle = filepath.Join(dir, "genesis.json"), filepath.Join(dir, "bundle.json")
	if err := os.WriteFile(genesis, w.Genesis, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bundle, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return genesis, bundle
}

// TestVerifyCommand: trustctl verify prints VERIFIED with the decision,
// the cosigners and the checkpoint's age and exits 0; a bundle whose
// records were changed prints NOT VERIFIED and the reason and exits 4
// (--json: its code); a stale checkpoint is refused under --max-age; no
// --genesis, or a genesis CID instead of the file, is a usage error.
func TestVerifyCommand(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{Now: time.Now().Add(-time.Minute)})
	genesis, good := writeBundle(t, w, nil)
	_, tampered := writeBundle(t, w, func(b *proof.Bundle) {
		r := &b.Records[2] // the college's accreditation: another credential type
		r.Bytes = bytes.Replace(r.Bytes, []byte(prooftest.Nursing), []byte(prooftest.Nursing+"Assistant"), 1)
	})

	// The same question about an hour ago, cosigned as freshly.
	_, past := writeBundle(t, w, func(b *proof.Bundle) {
		*b = *w.Bundle(decide.Question{Entity: prooftest.College, Framework: prooftest.Framework, Action: record.ActionIssue, Resource: prooftest.Nursing, At: w.Now.Add(-time.Hour)})
	})

	badGenesis := filepath.Join(t.TempDir(), "genesis.json")
	if err := os.WriteFile(badGenesis, []byte(`{"consortium": "not a genesis"`), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // each in stdout; nil for nothing at all
		stderr string   // in stderr; "-" for nothing at all
	}{
		{"verified", []string{"verify", good, "--genesis", genesis}, 0,
			[]string{"VERIFIED: AUTHORIZED (active): " + prooftest.College, "cosigned by 5 of the genesis's cosigners (quorum 4): member-1.example.org, ", " old (max 5m0s)", "1. " + w.Acc3}, "-"},
		{"verified --json", []string{"--json", "verify", good, "--genesis", genesis}, 0, []string{`"verified": true`, `"authorized": true`, `"ageSeconds": `}, "-"},
		{"verified -q", []string{"-q", "verify", good, "--genesis", genesis}, 0, nil, "-"},
		{"tampered", []string{"verify", tampered, "--genesis", genesis}, 4, []string{"NOT VERIFIED: proof: record digests do not match the map root"}, "-"},
		{"tampered --json", []string{"--json", "verify", tampered, "--genesis", genesis}, 4, []string{`"verified": false`, `"reason": "record_digest"`}, "-"},
		{"too old", []string{"verify", good, "--genesis", genesis, "--max-age", "30s"}, 4, []string{"NOT VERIFIED: proof: checkpoint older than the maximum age"}, "-"},
		{"the question asked", []string{"verify", good, "--genesis", genesis, "--entity", prooftest.College, "--framework", prooftest.Framework,
			"--action", record.ActionIssue, "--resource", prooftest.Nursing, "--jurisdiction", "", "--at", "now", "--as-of", "latest"}, 0,
			[]string{"VERIFIED: AUTHORIZED (active): " + prooftest.College + " for issue " + prooftest.Nursing + " (no jurisdiction named) under"}, "-"},
		// A genuine bundle for another question: what it proves is not
		// what was asked.
		{"another entity asked", []string{"verify", good, "--genesis", genesis, "--entity", "did:web:other.example"}, 4,
			[]string{`NOT VERIFIED: proof: the bundle answers another question: it answers for entity "` + prooftest.College + `", and --entity is "did:web:other.example"`}, "-"},
		{"a jurisdiction asked", []string{"--json", "verify", good, "--genesis", genesis, "--jurisdiction", "FR"}, 4, []string{`"reason": "wrong_question"`}, "-"},
		{"another time asked", []string{"verify", good, "--genesis", genesis, "--at", "2020-01-01"}, 4, []string{"and --at is 2020-01-01T00:00:00Z"}, "-"},
		{"an older state asked", []string{"verify", good, "--genesis", genesis, "--as-of", "3"}, 4, []string{"and --as-of is 3"}, "-"},
		{"a past time, asked about now", []string{"--json", "verify", past, "--genesis", genesis, "--at", "now"}, 4, []string{`"reason": "wrong_question"`, "and --at now allows 5m0s"}, "-"},
		{"the past time asked", []string{"verify", past, "--genesis", genesis, "--at", w.Now.Add(-time.Hour).UTC().Format(time.RFC3339Nano)}, 0, []string{"VERIFIED: AUTHORIZED"}, "-"},
		{"--at yesterday", []string{"verify", good, "--genesis", genesis, "--at", "yesterday"}, 2, nil, "--at \"yesterday\" must be RFC 3339"},
		{"--as-of 0", []string{"verify", good, "--genesis", genesis, "--as-of", "0"}, 2, nil, "must be a registry index"},
		{"no genesis", []string{"verify", good}, 2, nil, "--genesis is required"},
		{"genesis CID", []string{"verify", good, "--genesis", record.CIDOf(w.Genesis)}, 2, nil, "not its CID"},
		{"malformed genesis", []string{"verify", good, "--genesis", badGenesis}, 2, nil, "is not a consortium genesis"},
		{"no bundle file", []string{"verify", good + ".missing", "--genesis", genesis}, 1, nil, "no such file"},
		{"no FILE", []string{"verify", "--genesis", genesis}, 2, nil, "accepts 1 arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errw := runProcess(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errw)
			}
			if tc.stdout == nil && out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(out, want) {
					t.Errorf("stdout %q, want %q in it", out, want)
				}
			}
			if tc.stderr == "-" && errw != "" || tc.stderr != "-" && !strings.Contains(errw, tc.stderr) {
				t.Errorf("stderr %q, want %q", errw, tc.stderr)
			}
		})
	}

	// The bundle's other forms: CBOR, and gzip of either.
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// A node's whole answer with its proof (GET ...&proof=true, trustctl
	// trust --proof --json), even one whose proof verifies, is not
	// VERIFIED: its own fields are not what the proof proves (here it
	// claims another entity). The message says to give the bundle.
	answer := []byte(`{"entity":"did:web:evil.example","authorized":true,"reason":"active","proof":` + string(raw) + `}`)
	answerFile := filepath.Join(t.TempDir(), "answer.json")
	if err := os.WriteFile(answerFile, answer, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errw := runProcess(t, "verify", answerFile, "--genesis", genesis); code != 4 || !strings.Contains(out, "NOT VERIFIED") || !strings.Contains(out, "give the bundle") {
		t.Errorf("a node's whole answer: exit code %d, want 4\nstdout: %s\nstderr: %s", code, out, errw)
	}
	b, err := proof.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	for name, form := range map[string][]byte{"CBOR": cb, "gzip of CBOR": proof.Compress(cb), "gzip of JSON": proof.Compress(raw)} {
		file := filepath.Join(t.TempDir(), "bundle")
		if err := os.WriteFile(file, form, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errw := runProcess(t, "verify", file, "--genesis", genesis)
		if code != 0 || !strings.Contains(out, "VERIFIED: AUTHORIZED (active): "+prooftest.College) {
			t.Errorf("%s: exit code %d\nstdout: %s\nstderr: %s", name, code, out, errw)
		}
	}

	// In process, from stdin: the JSON output is the recomputed decision.
	var out, errw bytes.Buffer
	if err := run(context.Background(), []string{"--json", "verify", "-", "--genesis", genesis}, bytes.NewReader(raw), &out, &errw); err != nil {
		t.Fatalf("verify -: %v\n%s", err, errw.String())
	}
	var res verifyResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	// The checkpoint was cosigned a minute before the world's start.
	if !res.Verified || res.Decision == nil || len(res.Decision.Chain) != 3 || len(res.Cosigners) != 5 || res.CheckpointSize != w.LogSize() ||
		res.AgeSeconds == nil || *res.AgeSeconds < 60 {
		t.Fatalf("result %+v", res)
	}
}

// Strings in a bundle are the node's or whoever handed it on, and the
// verdict is read from a terminal: a question about an entity whose name
// rewrites the line ("\r", an escape sequence) or hides a character is
// printed with those escaped, so what VERIFIED says is what was proven.
func TestVerifyEscapesTheBundlesText(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{Now: time.Now().Add(-time.Minute)})
	fake := "\r\x1b[2KVERIFIED: AUTHORIZED (active): " + prooftest.College
	b := w.Bundle(decide.Question{Entity: fake, Framework: prooftest.Framework + "\u200b", Action: record.ActionIssue, Resource: prooftest.Nursing})
	raw, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	genesis, bundle := filepath.Join(dir, "genesis.json"), filepath.Join(dir, "bundle.json")
	if err := os.WriteFile(genesis, w.Genesis, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bundle, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errw := runProcess(t, "verify", bundle, "--genesis", genesis)
	if code != 0 || strings.ContainsAny(out, "\r\x1b\u200b") || !strings.Contains(out, `VERIFIED: NOT AUTHORIZED`) ||
		!strings.Contains(out, `\x0d\x1b[2KVERIFIED: AUTHORIZED (active): `) || !strings.Contains(out, prooftest.Framework+`\u200b`) {
		t.Fatalf("exit code %d\nstdout: %q\nstderr: %s", code, out, errw)
	}
}
