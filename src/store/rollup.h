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
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/observation.h"
#include "common/status.h"
#include "enrich/geo.h"
#include "store/source_set.h"

namespace teiten {

inline constexpr int kSlotMinutes = 5;
inline constexpr int kMaxSlotsPerDay = 25 * 60 / kSlotMinutes;  // a 25-hour DST day

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
  std::vector<int32_t> dense_;  // (proto is UDP) << 16 | port → index in ports, -1 when none
  std::unordered_map<PortKey, uint32_t> sparse_;
};

struct DayRollup {
  int32_t day = 0;
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
    uint32_t set_offset;  // where its SourceSet is, from the start of the file
    uint64_t packets;
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
  struct SensorView {
    const RollupFile* file = nullptr;  // the file the spans below point into
    uint16_t sensor = 0;
    uint64_t packets = 0;
    uint64_t set_offset = 0;
    Span<KeyRec> ports, countries, asns;
    uint64_t port_country_offset = 0;  // a zstd frame of PairRec; see PortCountry()
    uint64_t port_country_count = 0;
    Span<uint64_t> slots;
  };

  static Result<std::unique_ptr<RollupFile>> Open(const std::string& path);
  ~RollupFile();
  RollupFile(const RollupFile&) = delete;
  RollupFile& operator=(const RollupFile&) = delete;

  int32_t day() const { return day_; }
  const std::vector<SensorView>& sensors() const { return sensors_; }
  // Decodes the port × country records of one sensor (stored compressed: they are many and
  // read only for a port-by-region figure).
  Result<std::vector<PairRec>> PortCountry(const SensorView& v) const;
  // Decodes the source set at `offset` (from a record of this file).
  Result<SourceSet> ReadSet(uint64_t offset) const;
  // Appends the members of the set at `offset` (cheaper than ReadSet when only counting).
  Status AppendSetMembers(uint64_t offset, std::vector<uint32_t>* v4,
                          std::vector<IpAddr>* v6) const;
  // Decodes the whole file back into mergeable form.
  Result<DayRollup> Decode() const;
  // Verifies the checksum over the whole file (for `teiten check`).
  Status Verify() const;
  uint64_t size() const { return size_; }

 private:
  RollupFile() = default;
  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  int32_t day_ = 0;
  std::vector<SensorView> sensors_;
};

}  // namespace teiten
