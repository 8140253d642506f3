// Day rollups: per local day and sensor, the counters and exact source sets that make period
// queries fast (SPEC S1, A1–A5).
//
// `DayRollup` is the in-memory, mergeable form the ingest builds and the commit merges into the
// day's existing rollup. `RollupFile` reads the on-disk form in place (mmap) without decoding
// what a query does not touch: ranking a quarter's ports reads only the small sorted counter
// sections; a source set is decoded only when its distinct count is asked for. The layout is
// documented in docs/STORE_FORMAT.md.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/observation.h"
#include "common/status.h"
#include "enrich/geo.h"
#include "store/chunk_sums.h"
#include "store/codec.h"
#include "store/source_set.h"

namespace teiten {

inline constexpr int kSlotMinutes = 5;
// Counters kept per port for its heavy hitters (Misra–Gries): a source sending more than
// 1/(kHeavySlots + 1) of a port's packets in a rollup's span is always kept, its count short by
// at most (port packets − kept counts) / (kHeavySlots + 1).
inline constexpr uint32_t kHeavySlots = 64;
// The sensor number of a period rollup's one entry: every sensor together.
inline constexpr uint16_t kAllSensors = 0xFFFF;
inline constexpr int kMaxSlotsPerDay = 25 * 60 / kSlotMinutes;  // a 25-hour DST day

using HeavyEntry = std::pair<IpAddr, uint64_t>;
// Folds `add` (an exact or summarised count list, any order) into `into` (sorted by address) and
// prunes to `k` counters the Misra–Gries way: subtract the (k+1)-th largest count from every
// counter, drop those left at zero. Mergeable: folding summaries of parts is a summary of the
// whole with the same bound.
void FoldHeavy(std::vector<HeavyEntry>* into, std::vector<HeavyEntry>* add, size_t k);

struct Cell {
  uint64_t packets = 0;
  SourceSet sources;
};

// One destination port's day at one sensor.
struct PortCell {
  PortKey key = 0;
  uint64_t packets = 0;
  SourceSet sources;
  std::unordered_map<CountryCode, uint64_t> countries;  // packets by source country
  std::vector<HeavyEntry> heavy;                        // Misra–Gries summary, sorted by address
  std::vector<HeavyEntry> heavy_pending;                // exact counts of the batch being added
  // Ingest bookkeeping: the source run that last touched the cell, and its packets in that run.
  uint64_t last_run = UINT64_MAX;
  uint64_t run_packets = 0;
};

struct SensorDay {
  Cell total;
  std::deque<PortCell> ports;  // stable addresses while cells are added
  std::unordered_map<CountryCode, Cell> countries;
  std::unordered_map<uint32_t, Cell> asns;
  std::vector<uint64_t> slots;  // packets per 5 minutes from day start

  // The cell of a port key, created on first use. TCP and UDP keys go through a dense index.
  PortCell& Port(PortKey k);
  // Counts `n` packets of one source run (same source, same day) in the country and ASN cells.
  void AddRun(const IpAddr& src, const GeoInfo& geo, uint64_t n);
  void Merge(const SensorDay& o);

 private:
  static constexpr size_t kDenseFromPorts = 256;
  // (proto is UDP) << 16 | port → index in ports, -1 when none; built once the day has
  // kDenseFromPorts ports (sparse_ answers before that, and for other protocols after it).
  std::vector<int32_t> dense_;
  std::unordered_map<PortKey, uint32_t> sparse_;
};

struct DayRollup {
  int32_t day = 0;
  int32_t end_day = 0;  // exclusive; day + 1 for a day rollup (0 is read as day + 1)
  std::map<uint16_t, SensorDay> sensors;

  void Merge(const DayRollup& o);
  // Serializes to the on-disk layout.
  std::vector<uint8_t> Encode();
};

// A read-only view of one rollup file.
class RollupFile {
 public:
  // Record of a keyed section (ports, countries, ASNs), sorted by key.
  struct KeyRec {
    uint32_t key;
    uint32_t heavy_count;  // entries of the port's heavy-hitter summary (0 for other sections)
    uint64_t packets;
    uint64_t sources;     // distinct members of its SourceSet
    uint64_t set_offset;  // where its SourceSet is, from the start of the file
    uint64_t heavy_offset;
  };
  // Record of the port × country section, sorted by (a, b).
  struct PairRec {
    uint32_t a;
    uint32_t b;
    uint64_t packets;
  };
  template <typename T>
  struct Span {
    const T* data = nullptr;
    size_t size = 0;
    const T* begin() const { return data; }
    const T* end() const { return data + size; }
  };
  // Sections of a sensor entry, for CheckSections; the keyed ones (kPorts … kAsns) are
  // numbered 0, 1, 2 for Keys() and Find().
  enum Section : uint32_t { kPorts = 1, kCountries = 2, kAsns = 4, kSlots = 8 };
  struct SensorView {
    const RollupFile* file = nullptr;  // the file the spans below point into
    uint32_t index = 0;                // of the entry in its file
    uint16_t sensor = 0;
    uint64_t packets = 0;
    uint64_t sources = 0;  // distinct members of the total set
    uint64_t set_offset = 0;
    // The keyed sections (ports, countries, ASNs): where each is and its records. Read them
    // with Keys() or Find(), which verify (and in format 6 decode) them first.
    uint64_t key_offset[3] = {0, 0, 0};
    uint64_t key_count[3] = {0, 0, 0};
    uint64_t port_country_offset = 0;  // a zstd frame of PairRec; see PortCountry()
    uint64_t port_country_count = 0;
    Span<uint64_t> slots;
  };

  static Result<std::unique_ptr<RollupFile>> Open(const std::string& path);
  ~RollupFile();
  RollupFile(const RollupFile&) = delete;
  RollupFile& operator=(const RollupFile&) = delete;

  int32_t day() const { return day_; }
  int32_t end_day() const { return end_day_; }  // exclusive
  uint32_t heavy_slots() const { return heavy_slots_; }
  const std::vector<SensorView>& sensors() const { return sensors_; }
  // Verifies the counter sections `mask` (Section bits) of a view before its spans are read;
  // each once per file. The header and directory (packets, distinct sources, set offsets) are
  // verified by Open; sets, heavy lists and port × country blocks when they are read.
  Status CheckSections(const SensorView& v, uint32_t mask) const;
  // The records of keyed section `section` (0 ports, 1 countries, 2 ASNs) of a view, sorted by
  // key and verified: in place (formats 3–5, each section's bytes checked once per file), or
  // decoded from its compressed blocks once per file (format 6). Valid while the file is open.
  Result<Span<KeyRec>> Keys(const SensorView& v, int section) const;
  // The record of `key` in keyed section `section` of a view, or nullptr: a binary search that
  // verifies only the records it reads (formats 3–5), or decodes only the block that may hold
  // the key (format 6), so a lookup of a few keys in many files reads a few KB of each.
  Result<const KeyRec*> Find(const SensorView& v, int section, uint32_t key) const;
  // The port × country records of one entry, sorted by port, then country. Format 5 keeps them
  // in blocks of 1,024 records twice — ordered by port and ordered by country — each block a zstd
  // frame behind an index, so that one port's or one country's records decode only the blocks
  // that hold them (formats 3 and 4: one frame ordered by port).
  Result<std::vector<PairRec>> PortCountry(const SensorView& v) const;
  // Appends the records of port key `port`, by country.
  Status PairsOfPort(const SensorView& v, uint32_t port, std::vector<PairRec>* out) const {
    return PairsOf(v, false, port, out);
  }
  // Appends the records of country `country`, by port.
  Status PairsOfCountry(const SensorView& v, uint32_t country, std::vector<PairRec>* out) const {
    return PairsOf(v, true, country, out);
  }
  // Decodes the source set at `offset` (from a record of this file).
  Result<SourceSet> ReadSet(uint64_t offset) const;
  // Appends the members of the set at `offset` (cheaper than ReadSet when only counting).
  // The verified bytes of the set at `offset` (as SourceSet::AppendTo or AppendPositionsTo
  // wrote it) and, for a set of positions (formats 7 to 9), of its dictionary: its entry's total
  // set. `decoded`: a total set of this file decoded by the caller, used if it is the dictionary.
  Result<SetInput> SetAt(uint64_t offset, const DecodedDict* decoded = nullptr) const;
  // The total set of entry `v`, decoded.
  Result<DecodedDict> DecodeTotal(const SensorView& v) const;
  Result<codec::Reader> SetReader(uint64_t offset) const { return SetBytes(offset); }
  // Gives back the pages of the mapping this process has touched (they stay in the page cache
  // and fault back in when read again): a merge that walks many large parts calls it as it goes,
  // so that what it holds resident is what it reads now, not every byte it has read.
  void ReleasePages() const;
  // How many of `v4` and `v6` (each ascending and unique) the set at `offset` holds.
  // `decoded`: a total set of this file decoded by the caller, used if it is the dictionary.
  Result<uint64_t> CountSetHits(uint64_t offset, const std::vector<uint32_t>& v4,
                                const std::vector<IpAddr>& v6,
                                const DecodedDict* decoded = nullptr) const;
  Status AppendSetMembers(uint64_t offset, std::vector<uint32_t>* v4, std::vector<IpAddr>* v6,
                          const DecodedDict* decoded = nullptr) const;
  // Appends a port record's heavy-hitter summary: (source, count), largest first. The counts
  // are exact when they sum to the record's packets; otherwise each is short by at most
  // (packets − their sum) / (heavy_slots() + 1), and a source missing had at most that many.
  Status AppendHeavy(const KeyRec& r, std::vector<HeavyEntry>* out,
                     const DecodedDict* decoded = nullptr) const;
  // Decodes the whole file back into mergeable form.
  Result<DayRollup> Decode() const;
  // Verifies the checksum over the whole file (for `teiten verify`; a query verifies only what
  // it reads).
  Status Verify() const;
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  RollupFile() = default;
  // Verifies [offset, offset + length) of the body before it is read (format 4; format 3 files
  // are verified whole when opened).
  Status Check(uint64_t offset, uint64_t length) const;
  // The bytes of the source set at `offset`, verified.
  Result<codec::Reader> SetBytes(uint64_t offset) const;
  // A block of the port × country section: its first record's keys, records, compressed bytes
  // and where its frame is.
  struct PairBlock {
    uint32_t a, b, count, comp;
    uint64_t at;
  };
  struct PairIndex {
    std::vector<PairBlock> by_port, by_country;
    std::vector<uint32_t> countries;  // format 10: the section's countries, ascending
  };
  template <typename T>
  static uint64_t KeyOf(const T& r, bool by_country) {
    return by_country ? uint64_t{r.b} << 32 | r.a : uint64_t{r.a} << 32 | r.b;
  }
  Status PairsOf(const SensorView& v, bool by_country, uint32_t key,
                 std::vector<PairRec>* out) const;
  Result<std::shared_ptr<const PairIndex>> PairIndexOf(const SensorView& v) const;
  // Decodes block `i` of `idx`'s blocks in that order, appending its records, verified in order.
  Status DecodePairBlock(const SensorView& v, const PairIndex& idx, bool by_country, size_t i,
                         std::vector<PairRec>* out) const;
  // Formats 3 and 4: the section's one frame.
  Result<std::vector<PairRec>> PairFrame(const SensorView& v) const;
  // Format 6: a block of a keyed section (first key, records, compressed and raw bytes, where).
  struct KeyBlock {
    uint32_t first, count, comp, raw;
    uint64_t at;
  };
  Result<std::shared_ptr<const std::vector<KeyBlock>>> KeyBlocksOf(const SensorView& v,
                                                                   int section) const;
  // Decodes block `i` of a keyed section into `out` (appended), verified.
  Status DecodeKeyBlock(const SensorView& v, int section, const std::vector<KeyBlock>& blocks,
                        size_t i, std::vector<KeyRec>* out) const;
  // Formats 3–5: verifies the bytes of one record read in place.
  Status CheckRecord(const KeyRec* r) const;
  bool v3_ = false;
  bool v6_ = false;             // compressed keys
  bool dicts_ = false;          // formats 7, 8 and 9: sets of positions in their entry's total set
  bool implied_heavy_ = false;  // formats 9 and 10: heavy-hitter lists its records imply are not
                                // written
  bool columns_ = false;        // format 10: key and port × country blocks as columns
  std::vector<uint64_t> dict_offsets_;  // formats 7 to 9: the entries' total sets, ascending
  bool pair_frame_ = false;             // formats 3 and 4
  std::vector<std::array<std::pair<uint64_t, uint64_t>, 4>> section_bytes_;  // per entry
  std::unique_ptr<std::atomic<uint32_t>[]> checked_;                         // per entry
  uint64_t body_end_ = 0;  // where the sets end: the chunk table (format 4) or the footer
  ChunkSums sums_;
  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  int32_t day_ = 0;
  int32_t end_day_ = 0;
  uint32_t heavy_slots_ = 0;
  std::vector<SensorView> sensors_;
  mutable std::mutex pc_mu_;
  mutable std::unordered_map<uint64_t, std::shared_ptr<const PairIndex>> pc_index_;
  mutable std::unordered_map<uint64_t, std::shared_ptr<const std::vector<PairRec>>> pc_frames_;
  // Format 6, by section offset: block indexes, whole decoded sections, decoded blocks.
  mutable std::mutex key_mu_;
  mutable std::unordered_map<uint64_t, std::shared_ptr<const std::vector<KeyBlock>>> key_index_;
  mutable std::unordered_map<uint64_t, std::shared_ptr<const std::vector<KeyRec>>> key_sections_;
  mutable std::unordered_map<uint64_t, std::shared_ptr<const std::vector<KeyRec>>> key_blocks_;
};

// Merges rollup parts of one entry each (a sensor's day, or a period key) into a new part at
// `path`, key by key: what it holds at a time is one key's sets and the port × country records,
// not the parts decoded, so a quarter's part of any size can be merged. Its bytes are those
// Decode, DayRollup::Merge (in the parts' order) and Encode would give. `entry` is the merged
// part's entry (kAllSensors for a pooled key), or -1 for the parts' own, which must agree.
// InvalidArgument when a part holds several entries (decode those). Fsyncs the file; returns
// its size.
// The merged part's header names `span` (by default the first part's days), and its 5-minute
// slots are the parts' summed unless `span.slots` is false: a month or quarter whose parts are
// sensor-day parts keeps its own span and no slots.
struct MergedSpan {
  int32_t day = INT32_MIN;  // INT32_MIN: the first part's
  int32_t end_day = 0;
  bool slots = true;
};
Result<uint64_t> MergeRollupParts(const std::vector<const RollupFile*>& parts, int entry,
                                  const std::string& path, const MergedSpan& span = {});

}  // namespace teiten
