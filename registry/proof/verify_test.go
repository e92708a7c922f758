package proof_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/proof"
	"github.com/trustreg/trustreg/registry/proof/prooftest"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// collegeQuestion asks whether the world's college may issue nursing
// credentials now.
func collegeQuestion() decide.Question {
	return decide.Question{Entity: prooftest.College, Framework: prooftest.Framework, Action: record.ActionIssue, Resource: prooftest.Nursing}
}

// mustVerify verifies b after a round trip through its JSON, as a
// verifier that received it would, and fails the test on any error (the
// CBOR form must read back to the same bundle: see verifyJSON).
func mustVerify(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Verified {
	t.Helper()
	v, err := verifyJSON(t, w, b, proof.Options{Now: w.Now})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return v
}

func verifyJSON(t *testing.T, w *prooftest.World, b *proof.Bundle, opts proof.Options) (*proof.Verified, error) {
	t.Helper()
	raw, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := proof.ParseBundle(raw)
	if err != nil {
		t.Fatalf("parse the bundle's own JSON: %v", err)
	}
	mustSameCBOR(t, parsed)
	return proof.Verify(parsed, w.Genesis, opts)
}

// mustSameCBOR checks that b, read from JSON, reads back from its CBOR
// form, and from the gzip of that, as the same bundle: every test that
// verifies through verifyJSON verifies the CBOR form's bundle too.
func mustSameCBOR(t *testing.T, b *proof.Bundle) {
	t.Helper()
	mustRoundTrip(t, b)
	raw, err := b.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	got, err := proof.ParseAny(proof.Compress(raw))
	if err != nil {
		t.Fatalf("parse the gzip of the bundle's own CBOR: %v", err)
	}
	mustSameJSON(t, got, b)
}

// mustSameJSON fails the test unless got and want have the same JSON (a
// time read from CBOR may carry time.UTC where one read from JSON carries
// no location: the same instant, not DeepEqual).
func mustSameJSON(t *testing.T, got, want *proof.Bundle) {
	t.Helper()
	g, err := got.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	w, err := want.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Fatalf("the bundle reads back as\n%s\nnot\n%s", g, w)
	}
}

// TestVerifyDepth3Chain: the college's authorization through a chain of
// three accreditations verifies, and Verify reports the recomputed
// decision, the five cosigners and the checkpoint's age.
func TestVerifyDepth3Chain(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{Filler: 200, LogPad: 50})
	b := w.Bundle(collegeQuestion())
	w.Now = w.Now.Add(30 * time.Second) // the verifier reads it half a minute later
	v := mustVerify(t, w, b)
	d := v.Decision
	if d == nil || !d.Authorized || d.Reason != record.ReasonActive || len(d.Chain) != 3 || d.Root != prooftest.Root {
		t.Fatalf("decision %+v", d)
	}
	if got := []string{d.Chain[0].Accreditation, d.Chain[1].Accreditation, d.Chain[2].Accreditation}; !slices.Equal(got, []string{w.Acc3, w.Acc2, w.Acc1}) {
		t.Fatalf("chain %q", got)
	}
	if len(v.Cosigners) != 5 || v.Quorum != 4 || v.CheckpointSize != w.LogSize() || v.Age != 30*time.Second || v.Leaf.Index != w.Applied() {
		t.Fatalf("verified %+v", v)
	}
	if len(b.Records) != 6 {
		t.Fatalf("%d records proven, want the framework, the listing, three accreditations and the root's record: %+v", len(b.Records), b.Records)
	}
}

// TestVerifyIgnoresOtherCosigners: a quorum of genesis cosigners
// verifies whatever other lines the note carries (an outside witness's),
// and only the genesis cosigners are reported.
func TestVerifyIgnoresOtherCosigners(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{})
	b := w.Bundle(collegeQuestion())
	witness := prooftest.NewCosignatureSigner(t, "witness.example.net")
	b.Checkpoint = w.Checkpoint(w.Now, append([]*tlog.CosignatureSigner{witness}, w.Cosigners[:4]...)...)
	v := mustVerify(t, w, b)
	if len(v.Cosigners) != 4 || slices.Contains(v.Cosigners, "witness.example.net") {
		t.Fatalf("cosigners %q", v.Cosigners)
	}
}

// TestVerifyUnknownEntity: an unknown entity's "not authorized" is
// provable: the framework's record and the absence of any accreditation
// it received.
func TestVerifyUnknownEntity(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{Filler: 200})
	q := collegeQuestion()
	q.Entity = "did:web:diploma-mill.example"
	b := w.Bundle(q)
	v := mustVerify(t, w, b)
	if v.Decision.Authorized || v.Decision.Reason != record.ReasonNeverAuthorized {
		t.Fatalf("decision %+v", v.Decision)
	}
	if len(b.Records) != 2 || b.Records[1].Kind != "received" || b.Records[1].Bytes != nil {
		t.Fatalf("records %+v, want the framework and the absent listing", b.Records)
	}
	// And an unknown framework: its absence alone.
	q.Framework = "https://framework.example.org/none"
	v = mustVerify(t, w, w.Bundle(q))
	if v.Decision.Reason != record.ReasonUnknownFramework {
		t.Fatalf("decision %+v", v.Decision)
	}
}

// TestVerifyRecognition: a recognition answer verifies.
func TestVerifyRecognition(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{})
	v := mustVerify(t, w, w.RecognitionBundle(decide.RecognitionQuestion{Framework: prooftest.Framework, Recognized: prooftest.Other}))
	if v.Recognition == nil || !v.Recognition.Recognizes || v.Decision != nil {
		t.Fatalf("verified %+v", v)
	}
}

// TestVerifyAsOfOlderLeaf: an answer as of an older index, proven against
// that index's leaf plus a consistency proof to the latest checkpoint,
// verifies; a broken consistency proof does not.
func TestVerifyAsOfOlderLeaf(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{LogPad: 20})
	q := collegeQuestion()
	q.AsOf = w.Applied()
	b := w.Bundle(q)
	w.Revoke(w.Acc3, w.Now.Add(-time.Hour))
	w.Revoke(w.Acc2, w.Now.Add(-time.Hour))
	w.AttachLog(b, b.LeafIndex+1)
	if len(b.Consistency) == 0 {
		t.Fatal("no consistency proof")
	}
	v := mustVerify(t, w, b)
	if !v.Decision.Authorized || v.CheckpointSize != b.LeafIndex+3 {
		t.Fatalf("verified %+v", v)
	}
	b.Consistency[0][0] ^= 1
	if _, err := verifyJSON(t, w, b, proof.Options{Now: w.Now}); !errors.Is(err, proof.ErrConsistency) {
		t.Fatalf("altered consistency proof: %v, want ErrConsistency", err)
	}
}

// TestAttacks: each way a node (or anything between it and the verifier)
// can lie fails verification with its own reason.
func TestAttacks(t *testing.T) {
	for _, tc := range []struct {
		name string
		// attack changes the honest world or bundle and returns the
		// bundle to verify.
		attack func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle
		opts   proof.Options
		want   error
	}{
		{"a record byte changed", func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle {
			r := findRecord(t, b, "accreditation", w.Acc2)
			r.Bytes = []byte(strings.Replace(string(r.Bytes), prooftest.Nursing, prooftest.Nursing+"s", 1))
			return b
		}, proof.Options{}, proof.ErrRecordDigest},

		{"a present record claimed absent", func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle {
			// The college's listing claimed absent: "never authorized".
			// The map proof is rewritten so the root still comes out
			// right: the listing's own leaf is sent as "another key's".
			r := findRecord(t, b, "received", prooftest.College)
			claims := claimsOf(t, b)
			r.Bytes = nil
			b.MapProof = presentAsOther(t, claims, b.MapProof, proof.MapKey(decide.ReceivedKey(prooftest.College, prooftest.Framework)))
			no := false
			b.Answer = proof.Answer{Authorized: &no, Reason: record.ReasonNeverAuthorized, Index: b.Answer.Index}
			return b
		}, proof.Options{}, proof.ErrMapProof},

		{"a status event hidden: the last event cut from the record", func(t *testing.T, w *prooftest.World, _ *proof.Bundle) *proof.Bundle {
			w.Revoke(w.Acc2, w.Now.Add(-time.Minute))
			b := w.Bundle(collegeQuestion())
			if b.Answer.Reason != record.ReasonChainBroken {
				t.Fatalf("honest answer %+v", b.Answer)
			}
			r := findRecord(t, b, "accreditation", w.Acc2)
			var a record.Accreditation
			if err := json.Unmarshal(r.Bytes, &a); err != nil {
				t.Fatal(err)
			}
			a.Events = a.Events[:len(a.Events)-1]
			r.Bytes, _ = json.Marshal(a)
			b.Answer = authorizedAnswer(w, b.Answer.Index)
			return b
		}, proof.Options{}, proof.ErrRecordDigest},

		{"a status event hidden: the honest older answer", func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle {
			w.Revoke(w.Acc2, w.Now.Add(-time.Minute))
			w.AttachLog(b, 0) // the old leaf, proven in the new checkpoint's tree
			return b
		}, proof.Options{}, proof.ErrNotLatest},

		{"a status event hidden: the honest older answer with a consistency proof", func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle {
			w.Revoke(w.Acc2, w.Now.Add(-time.Minute))
			w.AttachLog(b, b.LeafIndex+1)
			return b
		}, proof.Options{}, proof.ErrNotLatest},

		{"a checkpoint older than the maximum age", func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle {
			w.Now = w.Now.Add(6 * time.Minute)
			return b
		}, proof.Options{MaxAge: 5 * time.Minute}, proof.ErrCheckpointTooOld},

		{"a checkpoint cosigned ahead of the verifier's clock", func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle {
			// Taken, it would pass the age check for years to come.
			b.Checkpoint = w.Checkpoint(w.Now.Add(3*time.Minute), w.Cosigners...)
			return b
		}, proof.Options{}, proof.ErrCheckpointFromFuture},

		{"fewer cosignatures than the quorum", func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle {
			b.Checkpoint = w.Checkpoint(w.Now, w.Cosigners[:3]...) // 3 of 5, the quorum is 4
			return b
		}, proof.Options{}, proof.ErrTooFewCosigners},

		{"cosignatures by keys not in the genesis", func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle {
			var fake []*tlog.CosignatureSigner
			for _, s := range w.Cosigners { // the same names, other keys
				fake = append(fake, prooftest.NewCosignatureSigner(t, s.Key().Name))
			}
			b.Checkpoint = w.Checkpoint(w.Now, fake...)
			return b
		}, proof.Options{}, proof.ErrUnknownCosigner},

		{"a cosignature altered", func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle {
			lines := strings.Split(b.Checkpoint, "\n")
			sig := lines[4] // origin, size, root, blank, the first signature line
			i := strings.LastIndex(sig, " ") + 20
			c := byte('A')
			if sig[i] == 'A' {
				c = 'B'
			}
			lines[4] = sig[:i] + string(c) + sig[i+1:]
			b.Checkpoint = strings.Join(lines, "\n")
			return b
		}, proof.Options{}, proof.ErrBadCosignature},

		{"a checkpoint of another consortium's log", func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle {
			other := prooftest.New(t, prooftest.Options{})
			b.Checkpoint = other.Checkpoint(w.Now, other.Cosigners...)
			return b
		}, proof.Options{}, proof.ErrWrongLog},

		{"a leaf not in the log", func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle {
			b.Inclusion[0][0] ^= 1
			return b
		}, proof.Options{}, proof.ErrLogInclusion},

		{"a decision that does not follow from the records", func(t *testing.T, w *prooftest.World, _ *proof.Bundle) *proof.Bundle {
			w.Revoke(w.Acc3, w.Now.Add(-time.Minute))
			b := w.Bundle(collegeQuestion())
			if b.Answer.Reason != record.ReasonRevoked {
				t.Fatalf("honest answer %+v", b.Answer)
			}
			b.Answer = authorizedAnswer(w, b.Answer.Index)
			return b
		}, proof.Options{}, proof.ErrDecisionMismatch},

		{"a claimed applied index other than the leaf's", func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle {
			b.Question.Applied++
			return b
		}, proof.Options{}, proof.ErrDecisionMismatch},

		{"a record the decision needs left out", func(t *testing.T, w *prooftest.World, b *proof.Bundle) *proof.Bundle {
			b.Records = slices.DeleteFunc(b.Records, func(r proof.Record) bool { return r.Kind == "accreditation" && r.A == w.Acc2 })
			w.ReproveMap(b) // a map proof of exactly what is left
			return b
		}, proof.Options{}, proof.ErrNotProven},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := prooftest.New(t, prooftest.Options{Filler: 100, LogPad: 10})
			b := tc.attack(t, w, w.Bundle(collegeQuestion()))
			opts := tc.opts
			opts.Now = w.Now
			_, err := verifyJSON(t, w, b, opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("verify: %v, want %v", err, tc.want)
			}
			if code := proof.ReasonOf(err); code == "" || code != proof.ReasonOf(tc.want) {
				t.Fatalf("ReasonOf(%v) = %q, want the code of %v", err, code, tc.want)
			}
			for _, other := range allReasons {
				if other != tc.want && errors.Is(err, other) {
					t.Fatalf("verify: %v is also %v: each attack has its own reason", err, other)
				}
			}
			t.Log(err)
		})
	}
}

var allReasons = []error{
	proof.ErrMalformed, proof.ErrWrongQuestion, proof.ErrBadGenesis, proof.ErrNoCosigners, proof.ErrWrongLog, proof.ErrBadCosignature,
	proof.ErrTooFewCosigners, proof.ErrUnknownCosigner, proof.ErrCheckpointTooOld, proof.ErrCheckpointFromFuture, proof.ErrLogInclusion,
	proof.ErrConsistency, proof.ErrNotLatest, proof.ErrRecordDigest, proof.ErrMapProof, proof.ErrNotProven,
	proof.ErrDecisionMismatch,
}

// authorizedAnswer is the answer the untouched chain gives.
func authorizedAnswer(w *prooftest.World, index uint64) proof.Answer {
	yes := true
	return proof.Answer{Authorized: &yes, Reason: record.ReasonActive, Chain: []string{w.Acc3, w.Acc2, w.Acc1}, Root: prooftest.Root, Index: index}
}

func findRecord(t *testing.T, b *proof.Bundle, kind, a string) *proof.Record {
	t.Helper()
	for i := range b.Records {
		if b.Records[i].Kind == kind && b.Records[i].A == a {
			return &b.Records[i]
		}
	}
	t.Fatalf("no %s record %s in the bundle", kind, a)
	return nil
}

// TestVerifyExpect: with Options.Expect, a bundle must answer the question
// asked: another entity, another asOf, or for a "now" question a time
// further from the verifier's clock than MaxAge, is ErrWrongQuestion.
func TestVerifyExpect(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{})
	b := w.Bundle(collegeQuestion())
	asked := proof.Question{Type: proof.TypeAuthorization, Entity: prooftest.College, Framework: prooftest.Framework,
		Action: record.ActionIssue, Resource: prooftest.Nursing}
	verify := func(want proof.Question, now time.Time) error {
		_, err := verifyJSON(t, w, b, proof.Options{Now: now, Expect: &want})
		return err
	}
	if err := verify(asked, w.Now.Add(time.Minute)); err != nil {
		t.Fatalf("the question asked: %v", err)
	}
	at := asked
	at.At = w.Now
	if err := verify(at, w.Now); err != nil {
		t.Fatalf("the question asked, with its time: %v", err)
	}
	for name, c := range map[string]struct {
		q   func(q *proof.Question)
		now time.Time
	}{
		"another entity":                  {func(q *proof.Question) { q.Entity = prooftest.Agency }, w.Now},
		"another asOf":                    {func(q *proof.Question) { q.AsOf = 3 }, w.Now},
		"another time":                    {func(q *proof.Question) { q.At = w.Now.Add(-time.Hour) }, w.Now},
		"now, answered for an older time": {func(q *proof.Question) {}, w.Now.Add(6 * time.Minute)},
	} {
		q := asked
		c.q(&q)
		if err := verify(q, c.now); !errors.Is(err, proof.ErrWrongQuestion) {
			t.Errorf("%s: %v, want ErrWrongQuestion", name, err)
		}
	}
}

// TestVerifyGenesis: a genesis that does not parse, and one without
// cosigners, are clear errors.
func TestVerifyGenesis(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{})
	b := w.Bundle(collegeQuestion())
	if _, err := proof.Verify(b, []byte("{"), proof.Options{Now: w.Now}); !errors.Is(err, proof.ErrBadGenesis) {
		t.Fatalf("bad genesis: %v", err)
	}
	var g record.Genesis
	if err := json.Unmarshal(w.Genesis, &g); err != nil {
		t.Fatal(err)
	}
	g.Cosigners = nil
	none, _ := json.Marshal(g)
	if _, err := proof.Verify(b, none, proof.Options{Now: w.Now}); !errors.Is(err, proof.ErrNoCosigners) {
		t.Fatalf("genesis without cosigners: %v", err)
	}
}

// TestParseBundle: the format is read strictly, and a bundle whose
// fields make no sense is ErrMalformed.
func TestParseBundle(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{})
	raw, err := w.Bundle(collegeQuestion()).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"version 2":        strings.Replace(string(raw), `"version":1`, `"version":2`, 1),
		"an unknown field": strings.Replace(string(raw), `"version":1`, `"version":1,"extra":0`, 1),
		"trailing data":    string(raw) + "{}",
		"a short hash":     strings.Replace(string(raw), `"inclusion":"`, `"inclusion":"AAAA`, 1),
		"not JSON":         "VERIFIED",
		// Two readers could take these two ways (encoding/json the last
		// of two members and a name in any case; others the first, or
		// neither): the question's entity, say, shown one way and
		// verified another.
		"a member twice":            strings.Replace(string(raw), `"entity":`, `"entity":"did:key:zFAKE","entity":`, 1),
		"a member in other case":    strings.Replace(string(raw), `"entity":`, `"entity":"did:key:zFAKE","ENTITY":`, 1),
		"the version in other case": strings.Replace(string(raw), `"version":1`, `"Version":1`, 1),
	} {
		if _, err := proof.ParseBundle([]byte(bad)); !errors.Is(err, proof.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	for name, change := range map[string]func(b *proof.Bundle){
		"an unknown kind":        func(b *proof.Bundle) { b.Records[0].Kind = "frameworks" },
		"no valid time":          func(b *proof.Bundle) { b.Question.At = time.Time{} },
		"empty record bytes":     func(b *proof.Bundle) { b.Records[0].Bytes = []byte{} },
		"a record twice":         func(b *proof.Bundle) { b.Records = append(b.Records, b.Records[0]) },
		"no records":             func(b *proof.Bundle) { b.Records = nil },
		"an unknown type":        func(b *proof.Bundle) { b.Question.Type = "identity" },
		"a recognition answer":   func(b *proof.Bundle) { b.Answer.Recognized, b.Answer.Authorized = b.Answer.Authorized, nil },
		"a root without its DID": func(b *proof.Bundle) { findRecord(t, b, "root", prooftest.Framework).B = "" },
	} {
		b, err := proof.ParseBundle(raw)
		if err != nil {
			t.Fatal(err)
		}
		change(b)
		if _, err := proof.Verify(b, w.Genesis, proof.Options{Now: w.Now}); !errors.Is(err, proof.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// Clocks differ a little: a checkpoint cosigned up to MaxClockSkew past
// the verifier's clock verifies, one further on does not.
func TestCheckpointWithinClockSkew(t *testing.T) {
	w := prooftest.New(t, prooftest.Options{})
	for _, tc := range []struct {
		ahead, skew time.Duration
		want        error
	}{
		{time.Minute, 0, nil},
		{proof.DefaultMaxClockSkew + time.Second, 0, proof.ErrCheckpointFromFuture},
		{10 * time.Minute, 15 * time.Minute, nil},
		{10 * time.Minute, 5 * time.Minute, proof.ErrCheckpointFromFuture},
	} {
		b := w.Bundle(collegeQuestion())
		b.Checkpoint = w.Checkpoint(w.Now.Add(tc.ahead), w.Cosigners...)
		_, err := proof.Verify(b, w.Genesis, proof.Options{Now: w.Now, MaxClockSkew: tc.skew})
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("cosigned %s ahead, skew %s: %v, want %v", tc.ahead, tc.skew, err, tc.want)
		}
	}
}
