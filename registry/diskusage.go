package registry

import (
	"bytes"
	"fmt"
	"strings"
)

// Parts of the state on disk, the part label of DiskUsage. Each is a set
// of tables (schema.go); a table this build does not know (none today) is
// counted in PartOther.
const (
	PartMeta    = "meta"    // tableMeta: applied index, commit time, genesis, feature level, commitment roots
	PartRecords = "records" // domainTables: what the registry knows, and the indexes over it
	PartResults = "results" // tableResults: the result of every applied entry, rejected ones too
	// The commitment (commitment.go).
	PartCommitmentMap        = "commitment_map"        // tableMapNodes, tableMapJournal: the state map's node records and its journal
	PartCommitmentLogNodes   = "commitment_log_nodes"  // tableLogNodes: the transparency log's node hashes
	PartCommitmentLogLeaves  = "commitment_log_leaves" // tableLogLeaves: the log's encoded leaves
	PartOther                = "other"                 // any other table
	commitmentPartNamePrefix = "commitment_"
)

// PartUsage is the disk space one part of the state takes.
type PartUsage struct {
	Part  string
	Bytes uint64
}

// IsCommitment reports whether the part is one of the commitment's.
func (p PartUsage) IsCommitment() bool {
	return strings.HasPrefix(p.Part, commitmentPartNamePrefix)
}

// partOfTable names the part each table belongs to; tables not listed are
// PartOther.
func partOfTable(table byte) string {
	switch {
	case table == tableMeta:
		return PartMeta
	case bytes.IndexByte(domainTables, table) >= 0:
		return PartRecords
	case table == tableResults:
		return PartResults
	case table == tableMapNodes, table == tableMapJournal:
		return PartCommitmentMap
	case table == tableLogNodes:
		return PartCommitmentLogNodes
	case table == tableLogLeaves:
		return PartCommitmentLogLeaves
	}
	return PartOther
}

// diskPartOrder is the order DiskUsage reports the parts in.
var diskPartOrder = []string{PartMeta, PartRecords, PartResults,
	PartCommitmentMap, PartCommitmentLogNodes, PartCommitmentLogLeaves, PartOther}

// lastKey is an inclusive end past every key of table 0xff that the
// schema can make (keys are a table byte and far fewer than 64 0xff
// bytes after it).
var lastKey = bytes.Repeat([]byte{0xff}, 64)

// DiskUsage returns the disk space each part of the state takes, in
// diskPartOrder, every part listed (0 when empty): Pebble's estimate over
// each part's key ranges (pebble.DB.EstimateDiskUsage). It counts the
// sstables and the blob files they reference: a table wholly inside a
// part counts whole, one that spans parts counts by its data blocks in
// each (so its index and filter blocks go uncounted, and a data block
// across a part boundary counts in both). Writes still in the memtable
// and the WAL are in no part, and neither are obsolete files, so the sum
// is about the live sstables' size, below the directory's size
// (trustd_pebble_disk_usage_bytes). It only reads; the caller must not
// call it once Close has begun.
func (s *State) DiskUsage() ([]PartUsage, error) {
	byPart := map[string]uint64{}
	// Runs of consecutive table bytes of one part, each estimated once:
	// [start, next start], inclusive as Pebble's bounds are (no key is a
	// lone table byte, so the next run's first table byte alone is no key
	// of the state).
	for lo := 0; lo <= 0xff; {
		part := partOfTable(byte(lo))
		hi := lo + 1
		for hi <= 0xff && partOfTable(byte(hi)) == part {
			hi++
		}
		end := lastKey
		if hi <= 0xff {
			end = []byte{byte(hi)}
		}
		n, err := s.db.EstimateDiskUsage([]byte{byte(lo)}, end)
		if err != nil {
			return nil, fmt.Errorf("state disk usage of tables %#02x–%#02x: %w", lo, hi-1, err)
		}
		byPart[part] += n
		lo = hi
	}
	out := make([]PartUsage, 0, len(diskPartOrder))
	for _, p := range diskPartOrder {
		out = append(out, PartUsage{Part: p, Bytes: byPart[p]})
	}
	return out, nil
}
