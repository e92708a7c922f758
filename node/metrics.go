package node

import (
	"strconv"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustreg/trustreg/registry"
)

// Pebble database names, the db label of the trustd_pebble_ metrics.
const (
	dbState   = "state"    // the registry's state (registry.State)
	dbRaftLog = "raft_log" // raft's log and stable store (consensus.LogStore)
)

func pebbleDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("trustd_pebble_"+name, help, append([]string{"db"}, labels...), nil)
}

var (
	descPebbleDiskUsage = pebbleDesc("disk_usage_bytes",
		"Disk space the database uses: live and obsolete sstables, WAL, manifest and options files.")
	descPebbleLevelSize = pebbleDesc("level_size_bytes",
		"Size of the sstables in each LSM level.", "level")
	descPebbleLevelTables = pebbleDesc("level_tables",
		"Number of sstables in each LSM level.", "level")
	descPebbleWAL = pebbleDesc("wal_size_bytes",
		"Size of the live write-ahead log.")
	descPebbleMemtable = pebbleDesc("memtable_size_bytes",
		"Bytes allocated by memtables.")
	descPebbleCompactions = pebbleDesc("compactions_total",
		"Compactions since the database was opened.")
	descPebbleCompactionTime = pebbleDesc("compaction_duration_seconds_total",
		"Time spent in compactions since the database was opened, those running included.")
	descPebbleCompactionDebt = pebbleDesc("compaction_debt_bytes",
		"Estimated bytes left to compact for the LSM to reach a stable shape.")
	descPebbleCompacting = pebbleDesc("compactions_in_progress",
		"Compactions running now.")
	descPebbleFlushes = pebbleDesc("flushes_total",
		"Memtable flushes since the database was opened.")
	descPebbleFlushedBytes = pebbleDesc("flushed_bytes_total",
		"Bytes memtable flushes wrote into sstables since the database was opened.")
	descPebbleCompactedBytes = pebbleDesc("compacted_bytes_total",
		"Bytes compactions wrote into sstables since the database was opened: with the flushed bytes, the database's write amplification.")
	descPebbleReadAmp = pebbleDesc("read_amplification",
		"Read amplification: L0 sublevels plus non-empty levels below L0.")
	descPebbleCacheHits = pebbleDesc("block_cache_hits_total",
		"Block cache hits since the database was opened.")
	descPebbleCacheMisses = pebbleDesc("block_cache_misses_total",
		"Block cache misses since the database was opened.")
)

// pebbleCollector reads the Pebble metrics of the node's databases when
// scraped. A source that returns nil (a database closed or closing) is
// left out of that scrape.
type pebbleCollector struct {
	sources map[string]func() *pebble.Metrics // by db label
}

func (pc pebbleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPebbleDiskUsage, descPebbleLevelSize, descPebbleLevelTables, descPebbleWAL,
		descPebbleMemtable, descPebbleCompactions, descPebbleCompactionTime, descPebbleCompactionDebt,
		descPebbleCompacting, descPebbleFlushes, descPebbleFlushedBytes, descPebbleCompactedBytes, descPebbleReadAmp,
		descPebbleCacheHits, descPebbleCacheMisses} {
		ch <- d
	}
}

func (pc pebbleCollector) Collect(ch chan<- prometheus.Metric) {
	for db, read := range pc.sources {
		m := read()
		if m == nil {
			continue
		}
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{db}, labels...)...)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, db)
		}
		gauge(descPebbleDiskUsage, float64(m.DiskSpaceUsage()))
		for i, l := range m.Levels {
			level := strconv.Itoa(i)
			gauge(descPebbleLevelSize, float64(l.TablesSize), level)
			gauge(descPebbleLevelTables, float64(l.TablesCount), level)
		}
		gauge(descPebbleWAL, float64(m.WAL.Size))
		gauge(descPebbleMemtable, float64(m.MemTable.Size))
		counter(descPebbleCompactions, float64(m.Compact.Count))
		counter(descPebbleCompactionTime, m.Compact.Duration.Seconds())
		gauge(descPebbleCompactionDebt, float64(m.Compact.EstimatedDebt))
		gauge(descPebbleCompacting, float64(m.Compact.NumInProgress))
		counter(descPebbleFlushes, float64(m.Flush.Count))
		total := m.Total()
		counter(descPebbleFlushedBytes, float64(total.TableBytesFlushed))
		counter(descPebbleCompactedBytes, float64(total.TableBytesCompacted))
		gauge(descPebbleReadAmp, float64(m.ReadAmp()))
		counter(descPebbleCacheHits, float64(m.BlockCache.Hits))
		counter(descPebbleCacheMisses, float64(m.BlockCache.Misses))
	}
}

// stateDBMetrics returns the state database's metrics, or nil once Close
// has begun: the scrape counts as a call into the state, which Close
// waits for before it closes the database.
func (n *Node) stateDBMetrics() *pebble.Metrics {
	if err := n.enter(); err != nil {
		return nil
	}
	defer n.calls.leave()
	return n.State.DBMetrics()
}

var descStateDiskUsage = prometheus.NewDesc("trustd_state_disk_usage_bytes",
	"Disk space each part of the state takes (registry.State.DiskUsage): records, results, meta, the commitment's map nodes, log nodes and log leaves, other; Pebble's estimate over each part's keys, of the sstables and blob files, without the WAL and unflushed writes.",
	[]string{"part"}, nil)

// stateUsageCollector reads the state's disk usage by part when scraped.
// A source that returns nil (a database closed or closing, or an estimate
// that failed) is left out of that scrape.
type stateUsageCollector struct {
	source func() []registry.PartUsage
}

func (sc stateUsageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descStateDiskUsage }

func (sc stateUsageCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range sc.source() {
		ch <- prometheus.MustNewConstMetric(descStateDiskUsage, prometheus.GaugeValue, float64(p.Bytes), p.Part)
	}
}

// stateDiskUsage returns the state's disk usage by part, or nil once
// Close has begun (as stateDBMetrics) or when Pebble's estimate fails.
func (n *Node) stateDiskUsage() []registry.PartUsage {
	if err := n.enter(); err != nil {
		return nil
	}
	defer n.calls.leave()
	parts, err := n.State.DiskUsage()
	if err != nil {
		return nil
	}
	return parts
}

// storageCollectors are the node's metric collectors over raft and its
// databases.
func (n *Node) storageCollectors() []prometheus.Collector {
	return []prometheus.Collector{
		n.cluster.Collector(),
		pebbleCollector{sources: map[string]func() *pebble.Metrics{
			dbState:   n.stateDBMetrics,
			dbRaftLog: n.cluster.LogDBMetrics,
		}},
		stateUsageCollector{source: n.stateDiskUsage},
		stateCommitCollector{source: n.State.CommitTimes},
	}
}

var (
	descStateCommits = prometheus.NewDesc("trustd_state_commits_total",
		"Pebble commits of the state's apply: one per applied batch of raft entries, and one per flush of the state map's overlay.", nil, nil)
	descStateCommitTime = prometheus.NewDesc("trustd_state_commit_seconds_total",
		"Time the state's apply spent in Pebble's commit of its batches: the write-ahead log's write (not synced), the memtable's insertion, and write stalls.", nil, nil)
	descStateWriteStall = prometheus.NewDesc("trustd_state_write_stall_seconds_total",
		"Part of trustd_state_commit_seconds_total spent stalled: cause memtables, waiting for a memtable flush; l0, waiting for L0 to be compacted.", []string{"cause"}, nil)
)

// stateCommitCollector reads the time the state's apply spent in Pebble's
// commits (registry.State.CommitTimes) when scraped.
type stateCommitCollector struct {
	source func() registry.CommitTimes
}

func (sc stateCommitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descStateCommits
	ch <- descStateCommitTime
	ch <- descStateWriteStall
}

func (sc stateCommitCollector) Collect(ch chan<- prometheus.Metric) {
	c := sc.source()
	ch <- prometheus.MustNewConstMetric(descStateCommits, prometheus.CounterValue, float64(c.Commits))
	ch <- prometheus.MustNewConstMetric(descStateCommitTime, prometheus.CounterValue, c.Total.Seconds())
	ch <- prometheus.MustNewConstMetric(descStateWriteStall, prometheus.CounterValue, c.MemTableStall.Seconds(), "memtables")
	ch <- prometheus.MustNewConstMetric(descStateWriteStall, prometheus.CounterValue, c.L0Stall.Seconds(), "l0")
}
