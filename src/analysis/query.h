// Queries behind `teiten top`, `series`, `summary` and `ip` (SPEC A1–A5, A7).
//
// They read rollups for anything at day granularity or coarser — a quarter's or month's of every
// sensor together (or of each counted sensor), a day's of every sensor together, or each
// sensor's day — touching only their small counter sections and the stored distinct counts, or
// the union of source sets where several rollups cover a span; finer time buckets scan the
// stored observations, and per-IP history reads the source indexes. Distinct-source counts are
// exact everywhere: stored counts or unions of exact sets.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "analysis/period.h"
#include "common/observation.h"
#include "common/status.h"
#include "enrich/geo.h"
#include "store/source_index.h"
#include "store/store.h"

namespace teiten {

enum class Dimension { kPort, kCountry, kAsn, kSensor };
const char* DimensionName(Dimension d);

// Which sensors a query counts; empty means all.
struct SensorSelection {
  std::vector<uint16_t> sensors;
  bool Allows(uint16_t s) const;
};
// Resolves --sensor and --group names against the store; unknown names are an error.
Result<SensorSelection> ResolveSensors(const Store& store, const std::vector<std::string>& ids,
                                       const std::vector<std::string>& groups);

// Previous-period rank markers.
inline constexpr int kRankOutOfTop = -1;  // seen, but below the cutoff ("out of top 10", 圏外)
inline constexpr int kRankNew = -2;       // not seen at all in the previous period
inline constexpr int kRankNoData = -3;    // the store holds nothing for the previous period

struct RankRow {
  int rank = 0;
  uint64_t key = 0;  // PortKey, CountryCode, ASN or sensor index
  uint64_t packets = 0;
  uint64_t sources = 0;
  double share = 0;  // of the period's packets
  int prev_rank = kRankNew;
};

struct TopResult {
  Period period;
  Period previous;
  uint64_t total_packets = 0;
  uint64_t total_sources = 0;
  std::vector<RankRow> rows;
};

// The top `n` keys of `dim` by packets, each with exact distinct sources and its rank in the
// previous period (shown as a number up to `prev_cutoff`).
Result<TopResult> Top(const Store& store, Dimension dim, const Period& period,
                      const SensorSelection& filter, size_t n, int prev_cutoff = 10);
// The top `n` keys of `dim` by packets alone, ties by key as Top ranks them: for callers that
// choose keys to read further (candidates of findings, MUSTAN, outages) and need no sources,
// which over days that are not one stored period are a union of every day's sets.
Result<std::vector<uint64_t>> TopKeys(const Store& store, Dimension dim, const Period& period,
                                      const SensorSelection& f, size_t n);

enum class Granularity { k5Min, kHour, kDay, kWeek, kMonth };
Result<Granularity> ParseGranularity(const std::string& s);

struct SeriesPoint {
  int64_t start_us = 0;           // bucket start (UTC instant)
  std::string label;              // local time, e.g. "2018-08-12" or "2018-08-12 13:00"
  std::vector<uint64_t> packets;  // per series
  std::vector<uint64_t> sources;
};
struct SeriesResult {
  std::vector<std::string> names;  // one per series
  std::vector<uint64_t> keys;
  std::vector<SeriesPoint> points;
};

// Series for the given keys of `dim` (empty keys: the whole traffic as one series).
Result<SeriesResult> Series(const Store& store, Dimension dim, const std::vector<uint64_t>& keys,
                            const Period& period, Granularity g, const SensorSelection& filter);
// One port's daily packets broken down by source country: the top `n` countries and "other".
Result<SeriesResult> PortByCountry(const Store& store, PortKey port, const Period& period,
                                   const SensorSelection& filter, size_t n);
// One country's daily packets broken down by destination port: the top `n` ports and "other"
// (the same port x country pairs, read the other way).
Result<SeriesResult> CountryByPort(const Store& store, CountryCode country, const Period& period,
                                   const SensorSelection& filter, size_t n);

struct SummaryResult {
  Period period;
  uint64_t packets = 0;
  uint64_t sources = 0;
  int sensors = 0;      // sensors with data in the period
  int days = 0;         // days in the period
  int sensor_days = 0;  // (sensor, day) pairs with data
  double packets_per_sensor_day = 0;
  double sources_per_sensor_day = 0;  // mean of each sensor-day's distinct sources
  double packets_per_source = 0;      // the two averages' ratio, as TALOT2 gives it
  std::vector<RankRow> ports;         // shares by port (share = of packets)
  std::vector<double> port_source_share;
  std::vector<RankRow> countries;
  std::vector<double> country_source_share;
};
Result<SummaryResult> Summary(const Store& store, const Period& period,
                              const SensorSelection& filter, size_t n);

struct IpHistory {
  IpAddr addr;
  bool seen = false;
  GeoInfo geo;
  int64_t first_us = 0, last_us = 0;
  uint64_t packets = 0;
  std::map<PortKey, uint64_t> ports;
  std::map<uint16_t, uint64_t> sensors;
  std::map<int32_t, uint64_t> days;
  std::map<uint8_t, uint64_t> ttls;
  std::map<uint16_t, uint64_t> windows;  // TCP windows: filled only when asked for (below)
};
// One source's entries in every input's source index, looked up once: what SourceHistory sums
// and what ScanSourceRows and TagSource read the blocks of. A command that asks all three
// (`teiten ip`, a finding's dominant source) looks the source up in each index file once, not
// once for each (at 1 G packets each lookup of the busiest source opened 27 index files).
struct SourceEntries {
  IpAddr addr;
  struct Entry {
    uint64_t index_id = 0;
    SourceSummary sum;
  };
  std::vector<Entry> entries;    // in manifest order, inputs whose index holds the source
  std::set<uint64_t> unindexed;  // segments of inputs without a source index
};
Result<SourceEntries> LookupSource(const Store& store, const IpAddr& addr);

// Everything one source did, from the source indexes' visit summaries: no observation is
// decoded, so it takes milliseconds on any store. `windows` stays empty.
Result<IpHistory> SourceHistory(const Store& store, const IpAddr& addr);
Result<IpHistory> SourceHistory(const Store& store, const SourceEntries& entries,
                                bool with_windows = false);
// The same; `with_windows` also decodes the blocks holding the source for its TCP windows.
Result<IpHistory> SourceHistory(const Store& store, const IpAddr& addr, bool with_windows);
// The same at the selected sensors only (everything when `sel` is empty): a group report's
// history of a source is the group's. With a selection the source's rows are decoded from the
// blocks its index entries name (milliseconds for one source), so days whose observations
// retention dropped are not seen; windows are filled.
Result<IpHistory> SourceHistory(const Store& store, const IpAddr& addr, const SensorSelection& sel);
Result<IpHistory> SourceHistory(const Store& store, const SourceEntries& entries,
                                const SensorSelection& sel);

struct SourceCount {
  IpAddr addr;
  uint64_t packets = 0;
  // The true count lies in [packets, packets + error]; 0 means exact.
  uint64_t error = 0;
};
// The `n` sources that sent the most packets to `port` in the period, most first (ties by
// address), from the rollups' per-port heavy-hitter summaries (kHeavySlots counters per port,
// Misra–Gries). Guarantee: every source that sent more than 1/(kHeavySlots + 1) of the port's
// packets in the period is listed (if n allows), and every count is short by at most `error`,
// the same for all rows: the summed slack of the summaries read, 0 — exact — whenever each held
// all of its port's sources (a port with at most kHeavySlots sources a day, or any period whose
// summaries never had to drop one).
Result<std::vector<SourceCount>> TopSources(const Store& store, PortKey port, const Period& period,
                                            const SensorSelection& filter, size_t n);
// The same, always exact, by scanning the period's stored observations (seconds on a big store).
Result<std::vector<SourceCount>> TopSourcesExact(const Store& store, PortKey port,
                                                 const Period& period,
                                                 const SensorSelection& filter, size_t n);

// The one general row scan the row analyses (scans, DoS backscatter, payloads, OS guesses) are
// built on: calls `fn` once per decoded block of every segment of the period's local days, with
// only the columns in `columns` (col:: bits of store/segment.h; col::kSensor is always added)
// and only the rows of sensors `filter` allows (the block's rows are compacted; blob offsets stay
// valid, and `geo` stays parallel to the rows when col::kSrc was asked for). Guarantees: every
// stored observation of the period and selection is passed exactly once. Not guaranteed: any
// order across blocks — rows are sorted by (source, time) within a segment only, and a source
// appears in many segments — so a caller needing time order sorts itself. A corrupt block ends
// the scan with its DataLoss (naming file, block and column); rows already passed stay passed.
Status ScanRows(const Store& store, const Period& period, const SensorSelection& filter,
                uint32_t columns, const std::function<void(const DecodedBlock&)>& fn);
// The same over the period's backscatter rows only (common/backscatter.h: SYN-ACK, RST, ICMP
// replies and errors): `teiten dos`'s rows. Guarantees: every stored backscatter row of the
// period and selection is passed exactly once, and no other row. Cost: the embedded store keeps
// an ingest's backscatter rows in segments of their own (SegmentRows) and reads only those, and
// whole the segments written before it split them; a backend with a query language answers it as
// a WHERE on protocol, TCP flags and ICMP type.
// Blocks come day by day, local days ascending; with `day_done`, it is called after each day's
// last block, so a caller can finish what no later row can change (a DoS flow ends at a gap).
Status ScanBackscatterRows(const Store& store, const Period& period, const SensorSelection& filter,
                           uint32_t columns, const std::function<void(const DecodedBlock&)>& fn,
                           const std::function<void(int32_t day)>& day_done = nullptr);
// The rows ScanBackscatterRows decodes for the period (at every sensor): what it costs.
uint64_t BackscatterScanCost(const Store& store, const Period& period);

// Every stored row of one source: calls `fn(block, i)` for each row i of a decoded block whose
// source is `addr`, exactly once per row. Reads only the blocks its source-index entries name
// (and, for inputs without an index, the blocks whose source range holds it), with `columns`
// (col::kSrc is always added). Rows of days dropped by retention are gone.
Status ScanSourceRows(const Store& store, const IpAddr& addr, uint32_t columns,
                      const std::function<void(const DecodedBlock&, size_t)>& fn);
// The same over a bounded sample: of the blocks the source's index entries name, only the
// `max_blocks` of its latest days are read (`read` and `named` say how many of how many; blocks
// of inputs without an index are all read and counted in both). A busy source seen every day at
// ten sensors names about a thousand blocks over a quarter (0.45 s to decode at 100 M packets).
// With `max_rows`, no further block is read once the blocks read hold that many of the source's
// rows (the latest days' first): a busy source's 750 rows a block need not fill 8 blocks.
struct SourceSample {
  size_t max_blocks = SIZE_MAX;
  size_t max_rows = SIZE_MAX;
  size_t read = 0, named = 0, rows = 0;
};
Status ScanSourceRows(const Store& store, const IpAddr& addr, uint32_t columns,
                      const std::function<void(const DecodedBlock&, size_t)>& fn,
                      SourceSample* sample);
// The same over entries already looked up.
Status ScanSourceRows(const Store& store, const SourceEntries& entries, uint32_t columns,
                      const std::function<void(const DecodedBlock&, size_t)>& fn,
                      SourceSample* sample = nullptr);

}  // namespace teiten
