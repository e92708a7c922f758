package registry

import (
	"encoding/binary"

	"github.com/trustreg/trustreg/registry/decide"
)

// Table prefixes of the state database. Each is one byte with a fixed number;
// numbers are never reused. Keys made of several strings separate them with
// 0x00, which validated identifiers never contain.
const (
	tableMeta          byte = 0x01                      // name -> value (applied index, commit time, genesis)
	tableOps           byte = 0x02                      // operation CID -> opRecord
	tableResults       byte = 0x03                      // index (u64 BE) -> Result of the entry at that index
	tableSigs          byte = 0x04                      // sha256(signature) -> operation CID (replay detection below FeatureLevelSignedContent; read-only from it on)
	tableFrameworks         = decide.TableFrameworks    // framework id -> Framework
	tableRoots              = decide.TableRoots         // framework 0 did -> RootAccreditor
	tableEntities           = decide.TableEntities      // did -> Entity
	tableAccreditation      = decide.TableAccreditation // accreditation id -> Accreditation
	tableReceived           = decide.TableReceived      // subject 0 framework 0 id -> nil
	tableGranted       byte = 0x0a                      // accreditor 0 framework 0 id -> nil
	tableByFramework   byte = 0x0b                      // framework 0 id -> nil
	tableHistory       byte = 0x0c                      // did 0 index (u64 BE) -> operation CID
	tableRecognitions       = decide.TableRecognitions  // framework 0 recognized framework -> Recognition
	tableOpsByIndex    byte = 0x0e                      // index (u64 BE) -> operation CID (accepted only)
	tableStatusLists   byte = 0x0f                      // issuer 0 list id -> StatusList
	tableListVersions  byte = 0x10                      // issuer 0 list id 0 index (u64 BE) -> StatusListVersion
	// tableSignedContent: sha256(JWS signing input) of each signature, and
	// for operations governance accepted sha256(BASE64URL(payload)) ->
	// operation CID: replay detection from FeatureLevelSignedContent on
	// (apply.go).
	tableSignedContent byte = 0x11
	// The commitment (commitment.go), written from FeatureLevelCommitment
	// on: the state map's node records, the transparency log's node
	// hashes, and its encoded leaves.
	tableMapNodes  byte = 0x12 // smt node key -> smt node record
	tableLogNodes  byte = 0x13 // tlog NodeID key (level, index u64 BE) -> hash
	tableLogLeaves byte = 0x14 // leaf index (u64 BE) -> encoded tlog.Leaf
	// tableCosigners holds one record, under the key of the table byte
	// alone, from the first setCosigners on (FeatureLevelCosignerSet):
	// the record.CosignerSet in force (apply_cosigners.go).
	tableCosigners = decide.TableCosigners
	// tableMapJournal holds the state map's changes of each batch applied
	// since the map's node records were last written (journal.go): the
	// index (u64 BE) of the batch's last entry -> its journal record. A
	// flush writes the records and deletes the table; snapshots leave it
	// out (they carry the records instead).
	tableMapJournal byte = 0x16
)

// Meta keys.
var (
	metaApplied    = []byte{tableMeta, 'a'}
	metaCommitTime = []byte{tableMeta, 't'}
	metaGenesis    = []byte{tableMeta, 'g'}
	// metaRestoring marked a state being restored in place by older
	// builds; Open clears a state a cut-off restore left it in. Restores
	// now swap the state in one step and never write it.
	metaRestoring = []byte{tableMeta, 'r'}
	// metaFeatureLevel is the cluster's feature level (one byte); absent
	// means FeatureLevelBase. It travels in snapshots like every meta key.
	metaFeatureLevel = []byte{tableMeta, 'f'}
	// The commitment after the last applied entry (commitment.go), present
	// from FeatureLevelCommitment on: the map root (32 bytes), the log's
	// size (u64 BE) and its root (32 bytes).
	metaMapRoot = []byte{tableMeta, 'm'}
	metaLogSize = []byte{tableMeta, 'n'}
	metaLogRoot = []byte{tableMeta, 'o'}
)

// domainTables are the tables whose contents make up the registry's state for
// StateDigest: what the registry knows, not bookkeeping about entries. The
// commitment's tables are not among them: the map is a function of these
// tables, and the log, like the results, grows with every entry, rejected
// ones too, while a rejected operation leaves the digest unchanged.
var domainTables = []byte{
	tableOps, tableSigs, tableFrameworks, tableRoots, tableEntities,
	tableAccreditation, tableReceived, tableGranted, tableByFramework,
	tableHistory, tableRecognitions, tableOpsByIndex, tableStatusLists, tableListVersions,
	tableSignedContent, tableCosigners,
}

// key is a record's store key: its table, then its parts separated by
// 0x00 (decide.Key, which the offline verifier computes the same way).
func key(table byte, parts ...string) []byte { return decide.Key(table, parts...) }

// prefix is key(...) followed by the separator, for scanning all keys that
// start with the given parts.
func prefix(table byte, parts ...string) []byte {
	k := key(table, parts...)
	if len(parts) > 0 {
		k = append(k, 0)
	}
	return k
}

func indexKey(table byte, index uint64) []byte {
	k := make([]byte, 9)
	k[0] = table
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

func historyKey(did string, index uint64) []byte {
	k := prefix(tableHistory, did)
	return binary.BigEndian.AppendUint64(k, index)
}

// upperBound returns the smallest key greater than every key with prefix p.
func upperBound(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// decodeRecord decodes a stored record (decide.DecodeRecord).
func decodeRecord(val []byte, v any) error { return decide.DecodeRecord(val, v) }
