package registry

import (
	"testing"
)

// TestDiskUsageByPart: on a state with the commitment on and its writes
// flushed to sstables, every part the writes made takes space, nothing
// falls in PartOther, and the parts add up to about the database's live
// sstables and blob files.
func TestDiskUsageByPart(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelCommitment)
	loadColleges(t, f, 2000)
	if err := f.s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	parts, err := f.s.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != len(diskPartOrder) {
		t.Fatalf("DiskUsage returned %d parts, want %d: %+v", len(parts), len(diskPartOrder), parts)
	}
	var sum, commitment uint64
	for i, p := range parts {
		t.Logf("%-22s %8d bytes", p.Part, p.Bytes)
		if p.Part != diskPartOrder[i] {
			t.Errorf("part %d is %q, want %q", i, p.Part, diskPartOrder[i])
		}
		if (p.Bytes == 0) != (p.Part == PartOther) {
			t.Errorf("part %s takes %d bytes", p.Part, p.Bytes)
		}
		sum += p.Bytes
		if p.IsCommitment() {
			commitment += p.Bytes
		}
	}
	m := f.s.DBMetrics()
	live := uint64(m.Total().TablesSize) + m.BlobFiles.LiveSize
	t.Logf("sum %d, live sstables and blob files %d, commitment %d", sum, live, commitment)
	if sum < live*9/10 || sum > live*11/10 {
		t.Errorf("the parts add up to %d bytes, the live sstables and blob files take %d", sum, live)
	}
	if commitment == 0 || commitment >= sum {
		t.Errorf("the commitment's parts take %d of %d bytes", commitment, sum)
	}
}
