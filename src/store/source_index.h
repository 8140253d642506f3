// Source index: for one ingest transaction, each source's visits — its packets in one segment
// (a local day of one flush), summarised: blocks, day, sensor, packets, first and last time,
// enrichment, packets per port and per TTL. `teiten ip` answers from these without decoding a
// block, and decodes only the visit's blocks for anything else (SPEC A7, §4).
//
// One file per transaction (idx/NNNNNNNN.tsix), written with its segments and committed by the
// same manifest rename; immutable. Layout in docs/STORE_FORMAT.md.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/ip.h"
#include "common/observation.h"
#include "common/status.h"
#include "enrich/geo.h"
#include "store/chunk_sums.h"

namespace teiten {

struct BlockRef {
  uint64_t segment = 0;
  uint32_t block = 0;
  bool operator==(const BlockRef&) const = default;
};

// A source's packets in one segment.
struct Visit {
  BlockRef first;       // the first block holding these packets
  uint32_t blocks = 1;  // consecutive blocks from `first`
  int32_t day = 0;      // the segment's local day
  uint16_t sensor = 0;
  uint64_t packets = 0;
};

// What one transaction saw of a source.
struct SourceSummary {
  GeoInfo geo;  // as enriched at ingest
  uint64_t packets = 0;
  int64_t first_us = 0, last_us = 0;
  std::vector<std::pair<PortKey, uint64_t>> ports;  // ascending key
  std::vector<std::pair<uint8_t, uint64_t>> ttls;   // ascending TTL
  std::vector<Visit> visits;
};

// One source's entry in an index file as stored, its visits by block-table index (for the
// index's writer and Merge; readers get a SourceSummary).
struct IndexEntry {
  uint16_t country = 0;
  uint32_t asn = 0;
  uint64_t packets = 0;
  int64_t first_us = 0, last_us = 0;
  std::vector<std::pair<PortKey, uint64_t>> ports;  // ascending key
  std::vector<std::pair<uint8_t, uint64_t>> ttls;   // ascending TTL
  struct V {
    uint64_t ref, blocks_m1, sensor, packets;
  };
  std::vector<V> visits;  // ascending ref
};

// Collects visits while a transaction writes its segments.
class SourceIndexBuilder {
 public:
  // A block of a segment; returns its reference number for AddRun.
  uint32_t AddBlock(uint64_t segment, uint32_t block, int32_t day);
  // Rows of one source at one sensor within one segment, which lie in `blocks` blocks from block
  // reference `ref`.
  void AddRun(const Observation* const* rows, size_t n, uint32_t ref, uint32_t blocks,
              const GeoInfo& geo);
  bool empty() const { return v4_.empty() && v6_.empty(); }
  size_t bytes() const {
    return arena_.capacity() + v4_.capacity() * sizeof(v4_[0]) + v6_.capacity() * sizeof(v6_[0]);
  }
  // Writes the index to `path` (a new file, format 5) and fsyncs it.
  Status Write(const std::string& path);

 private:
  std::vector<BlockRef> refs_;
  std::vector<int32_t> ref_days_;
  std::vector<uint8_t> arena_;                     // encoded visits, each after its varint length
  std::vector<std::pair<uint32_t, uint64_t>> v4_;  // (address, arena offset)
  std::vector<std::pair<IpAddr, uint64_t>> v6_;
  std::vector<PortKey> scratch_ports_;
  std::vector<uint8_t> scratch_visit_;
};

class SourceIndex {
 public:
  static Result<std::unique_ptr<SourceIndex>> Open(const std::string& path);
  ~SourceIndex();
  SourceIndex(const SourceIndex&) = delete;
  SourceIndex& operator=(const SourceIndex&) = delete;

  // Verifies the whole file (its footer checksum, and the chunk table's): for `teiten verify`;
  // lookups verify only the chunks they read.
  Status Verify() const;
  // Gives back the pages of the mapping this process has touched (RollupFile::ReleasePages).
  void ReleasePages() const;
  // What the transaction saw of `addr`; false when it never saw it.
  Result<bool> Lookup(const IpAddr& addr, SourceSummary* out) const;
  // Calls `f` with every address the index holds, ascending (IPv4, then IPv6); stops at the
  // first error, or at damage (DataLoss naming the file and where).
  Status ForEachSource(const std::function<Status(const IpAddr&)>& f) const;
  uint64_t sources() const { return n4_ + n6_; }
  uint64_t size() const { return size_; }
  // Walks every entry (for `teiten verify`): adds each visit's packets to its segment's count,
  // and checks that addresses ascend and that each entry's packets are its visits' sum. An
  // index is right only if these equal the rows of its input's segments.
  Status PacketsBySegment(std::map<uint64_t, uint64_t>* out) const;

  // Merges the index files of one input (its spills, in the order they were written) into one
  // file at `path`, equal in every answer to the index one unspilled transaction would have
  // written: a source's entries summed, its visits listed in order, its enrichment the last
  // part's. Streams: what it holds is one source's entries and a few write buffers, whatever the
  // parts' size; every byte read is verified first. Fsyncs the file; returns its size.
  static Result<uint64_t> Merge(const std::vector<const SourceIndex*>& parts,
                                const std::string& path);

 private:
  template <typename K>
  friend class IndexCursor;
  SourceIndex() = default;
  Status OpenBlocks();  // format 5: the tail and the block records
  // Format 3 and 4: the entry at [begin, end) of the postings.
  Status DecodeEntry(uint64_t begin, uint64_t end, IndexEntry* out) const;
  // Format 5: block `b` of the IPv4 (`v6` false) or IPv6 records, its addresses as 16 bytes
  // (IPv4 host order in the first 4) and its entries.
  // `only`: an address looked up; only its entry is filled in. When the block is of format 7 and
  // IPv4 and does not hold it, `keys` and `entries` are left empty and the frame is not
  // decompressed.
  Status DecodeBlock(bool v6, uint64_t b, std::vector<std::array<uint8_t, 16>>* keys,
                     std::vector<IndexEntry>* entries,
                     const std::array<uint8_t, 16>* only = nullptr) const;
  // Adds an entry's sums and visits to `out`.
  Status Summarise(const IndexEntry& e, SourceSummary* out) const;
  // Verifies the chunks holding [p, p + n) before they are read (format 4).
  Status Check(const uint8_t* p, uint64_t n) const;
  ChunkSums sums_;
  int format_ = 4;
  bool chunked_ = false;
  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint32_t nrefs_ = 0;
  const uint8_t* refs_ = nullptr;  // nrefs × (u64 segment, u32 block, i32 day)
  uint64_t n4_ = 0, n6_ = 0;
  const uint8_t* addr4_ = nullptr;  // n4 × u32, ascending
  const uint8_t* off4_ = nullptr;   // (n4 + 1) × u64 posting offsets
  const uint8_t* addr6_ = nullptr;  // n6 × 16 bytes, ascending
  const uint8_t* off6_ = nullptr;
  const uint8_t* postings_ = nullptr;
  uint64_t postings_size_ = 0;
  // Format 5: compressed blocks of entries in [blocks_at_, records_at_), then b4_ + b6_ block
  // records of 40 bytes.
  uint64_t blocks_at_ = 0, records_at_ = 0, b4_ = 0, b6_ = 0;
};

}  // namespace teiten
