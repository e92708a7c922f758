package tlog

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// Vectors from the C2SP specifications, github.com/C2SP/C2SP at commit
// 5ba5ee830903e91240fc6f9f3a7a9293d49e69c9 (2026-07-22). Each is copied
// verbatim from the file named beside it.
const c2spCommit = "5ba5ee830903e91240fc6f9f3a7a9293d49e69c9"

// signed-note.md, "Verifier keys", "Example".
const (
	c2spNoteVKey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
	c2spNote     = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

// tlog-checkpoint.md, the opening example.
const (
	c2spCheckpointText = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
	c2spCheckpointSig  = "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)

// tlog-cosignature.md: the opening example's witness line, and the signed
// message of "Ed25519 signed message" for that checkpoint.
const (
	c2spCosignatureLine = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
	c2spCosignedMessage = "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)

// tlog-witness.md, "add-checkpoint": the example request and response bodies.
const (
	c2spAddCheckpointBody = "old 20852014\n" +
		"PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n" +
		"jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n" +
		"5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n" +
		"/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n" +
		"\n" +
		"example.com/behind-the-sofa\n" +
		"20852163\n" +
		"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n" +
		"\n" +
		"— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n" +
		"— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
	c2spAddCheckpointResponse = "— witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n" +
		"— witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==\n" +
		"— witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==\n"
)

// tlog-tiles.md, "Merkle Tree" and "Partial Tiles".
const (
	c2spTileIndex     = 1234067
	c2spTileIndexPath = "x001/x234/067"
)

// TestC2SPSignedNote: the signed-note example's vkey and signature line go
// through KeyID and ParseSignatureLines; the signature verifies over the
// note text with the vkey's key.
func TestC2SPSignedNote(t *testing.T) {
	name, rest, _ := strings.Cut(c2spNoteVKey, "+")
	_, key64, _ := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(raw) != 33 || raw[0] != 0x01 {
		t.Fatalf("vector vkey does not decode to an Ed25519 key: %v", err)
	}
	if got := KeyID(name, raw[0], raw[1:]); got != 0x530d903a {
		t.Fatalf("KeyID = %08x, want 530d903a (%s)", got, c2spCommit)
	}
	text, block, ok := strings.Cut(c2spNote, "\n\n")
	if !ok {
		t.Fatal("vector note has no blank line")
	}
	sigs, err := ParseSignatureLines([]byte(block))
	if err != nil || len(sigs) != 1 {
		t.Fatalf("ParseSignatureLines: %v, %d lines", err, len(sigs))
	}
	if sigs[0].Name != "example.com/foo" || sigs[0].Hash != 0x530d903a {
		t.Fatalf("line parsed as %s+%08x", sigs[0].Name, sigs[0].Hash)
	}
	sig, _ := base64.StdEncoding.DecodeString(sigs[0].Base64)
	if !ed25519.Verify(raw[1:], []byte(text+"\n"), sig[4:]) {
		t.Fatal("the example signature does not verify over the text ParseSignatureLines split off")
	}
	// Our verifier, told of a cosignature/v1 key with the same name and
	// public key, gets another key ID (type 0x04), so it must ignore the
	// line as unknown (signed-note: same name, other ID).
	k, err := NewCosignerKey(name, raw[1:])
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyID() == 0x530d903a {
		t.Fatal("a cosignature/v1 key ID equals the plain Ed25519 key ID")
	}
}

// TestC2SPCheckpoint: the tlog-checkpoint example parses, re-marshals to the
// same bytes, and meets the verifier's origin and quorum checks.
func TestC2SPCheckpoint(t *testing.T) {
	cp, err := ParseCheckpoint([]byte(c2spCheckpointText))
	if err != nil {
		t.Fatalf("ParseCheckpoint: %v", err)
	}
	if cp.Origin != "example.com/behind-the-sofa" || cp.Size != 20852163 {
		t.Fatalf("parsed %q %d", cp.Origin, cp.Size)
	}
	if got := string(cp.Marshal()); got != c2spCheckpointText {
		t.Fatalf("Marshal = %q, want the vector", got)
	}
	signed := []byte(c2spCheckpointText + "\n" + c2spCheckpointSig)
	set := mustCosigners(t, 4)
	v, err := NewVerifier(cp.Origin, set.keys(), 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(signed)
	var qe *QuorumError
	if !errors.As(err, &qe) || !errors.Is(err, ErrUnknownKey) || qe.Have != 0 || len(qe.Unknown) != 1 || qe.Unknown[0] != "example.com/behind-the-sofa" {
		t.Fatalf("Verify(example signed by an unknown key) = %v, want a QuorumError naming the log's key as unknown", err)
	}
	other, _ := NewVerifier("example.com/another-log", set.keys(), 0)
	if _, err := other.Verify(signed); !errors.Is(err, ErrWrongOrigin) {
		t.Fatalf("Verify for another origin = %v, want ErrWrongOrigin", err)
	}
	// Our members cosign the example checkpoint; the log's own line stays
	// and is ignored.
	var lines []byte
	for _, s := range set.signers[:3] {
		c, err := s.Sign(cp, time.Unix(1679315147, 0))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, c.Line()...)
	}
	got, err := v.Verify(append(bytes.Clone(signed), lines...))
	if err != nil {
		t.Fatalf("Verify(example cosigned by 3 of 4) = %v", err)
	}
	if len(got.Cosignatures) != 3 || got.Checkpoint != cp {
		t.Fatalf("verified %d cosignatures of %+v", len(got.Cosignatures), got.Checkpoint)
	}
}

// TestC2SPCosignature: the tlog-cosignature example line parses to the
// timestamp of the spec's signed message, and CosignedMessage builds that
// message byte for byte.
func TestC2SPCosignature(t *testing.T) {
	sigs, err := ParseSignatureLines([]byte(c2spCosignatureLine))
	if err != nil || len(sigs) != 1 {
		t.Fatalf("ParseSignatureLines: %v", err)
	}
	c, err := CosignatureFromSignature(sigs[0])
	if err != nil {
		t.Fatalf("CosignatureFromSignature: %v", err)
	}
	if c.Name != "witness.example.com/w1" || c.Time.Unix() != 1679315147 {
		t.Fatalf("parsed %s at %d, want witness.example.com/w1 at 1679315147", c.Name, c.Time.Unix())
	}
	if got := string(CosignedMessage([]byte(c2spCheckpointText), uint64(c.Time.Unix()))); got != c2spCosignedMessage {
		t.Fatalf("CosignedMessage = %q, want the spec's %q", got, c2spCosignedMessage)
	}
	if got := c.Line(); got != c2spCosignatureLine {
		t.Fatalf("Line() = %q, want the vector", got)
	}
}

// TestC2SPAddCheckpoint: the tlog-witness example request parses and
// re-encodes to the same bytes; its checkpoint is the tlog-checkpoint example;
// the example response's lines parse and re-encode.
func TestC2SPAddCheckpoint(t *testing.T) {
	req, err := ParseAddCheckpointRequest([]byte(c2spAddCheckpointBody))
	if err != nil {
		t.Fatalf("ParseAddCheckpointRequest: %v", err)
	}
	if req.OldSize != 20852014 || len(req.Proof) != 4 {
		t.Fatalf("old %d, %d proof lines", req.OldSize, len(req.Proof))
	}
	body, err := req.Marshal()
	if err != nil || string(body) != c2spAddCheckpointBody {
		t.Fatalf("Marshal = %q, %v; want the vector", body, err)
	}
	text, _, _ := bytes.Cut(req.Checkpoint, []byte("\n\n"))
	cp, err := ParseCheckpoint(append(text, '\n'))
	if err != nil || cp.Size != 20852163 {
		t.Fatalf("the request's checkpoint: %+v, %v", cp, err)
	}
	// The example response's signatures are illustrations, not cosignatures
	// of this checkpoint (their bytes decode to no plausible timestamp), so
	// they are checked as signature lines only.
	sigs, err := ParseSignatureLines([]byte(c2spAddCheckpointResponse))
	if err != nil || len(sigs) != 3 {
		t.Fatalf("response: %d lines, %v", len(sigs), err)
	}
	if sigs[0].Name != "witness.example/w1" || sigs[2].Name != "witness.example/w2" {
		t.Fatalf("response names %s, %s", sigs[0].Name, sigs[2].Name)
	}
	if got := string(EncodeSignatureLines(sigs)); got != c2spAddCheckpointResponse {
		t.Fatalf("EncodeSignatureLines = %q, want the vector", got)
	}
}

// TestC2SPTiles: the tlog-tiles examples of index encoding and of the tiles
// of trees of 70,000 and 256 entries.
func TestC2SPTiles(t *testing.T) {
	tile := TileID{Level: 0, Index: c2spTileIndex, Width: TileWidth}
	if got := tile.Path(); got != "tile/0/"+c2spTileIndexPath {
		t.Fatalf("Path = %q, want tile/0/%s", got, c2spTileIndexPath)
	}
	if got, err := ParseTilePath("tile/0/" + c2spTileIndexPath); err != nil || got != tile {
		t.Fatalf("ParseTilePath = %+v, %v", got, err)
	}

	// "a tree of size 70,000 will be represented by 273 full level 0 tiles,
	// one partial level 0 tile of width 112, one full level 1 tile, one
	// partial level 1 tile of width 17, and one partial level 2 tile of
	// width 1."
	type key struct{ level, width int }
	count := func(size uint64) map[key]int {
		m := make(map[key]int)
		for _, t := range Tiles(size) {
			m[key{t.Level, t.Width}]++
		}
		return m
	}
	want := map[key]int{{0, 256}: 273, {0, 112}: 1, {1, 256}: 1, {1, 17}: 1, {2, 1}: 1}
	if got := count(70000); !equalCounts(got, want) {
		t.Fatalf("tiles of 70000: %v, want %v", got, want)
	}
	// "a tree of size 256 will be represented by a full level 0 tile and a
	// partial level 1 tile of width 1."
	if got, want := count(256), map[key]int{{0, 256}: 1, {1, 1}: 1}; !equalCounts(got, want) {
		t.Fatalf("tiles of 256: %v, want %v", got, want)
	}
}

func equalCounts[K comparable](a, b map[K]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
