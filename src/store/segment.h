// Segments: every observation, compressed column by column (SPEC S1).
//
// A segment holds the observations of one local day from one flush of an ingest, sorted by
// (source, time) and cut into blocks of up to 65,536 rows. A block stores each column as a few
// separately compressed streams, after transforms that expose redundancy: sources as runs
// (address, country, ASN, run length), times as deltas within a run, the fields a tool's packets
// share as a per-row class, the others predicted from the previous row, the destination or a
// retransmitted probe where a tool makes them so. The footer indexes blocks by source range and
// time range, so `teiten ip` decodes only the blocks that can hold the address, and a scan for
// one column decodes only that column's streams.
// The layout is documented in docs/STORE_FORMAT.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/observation.h"
#include "common/status.h"
#include "enrich/geo.h"

namespace teiten {

inline constexpr size_t kBlockRows = 65536;

// Columns a reader may ask for; kAll decodes every one.
namespace col {
inline constexpr uint32_t kSrc = 1u << 0;  // src, country, asn
inline constexpr uint32_t kTs = 1u << 1;
inline constexpr uint32_t kSensor = 1u << 2;
inline constexpr uint32_t kDst = 1u << 3;
inline constexpr uint32_t kPorts = 1u << 4;  // proto, sport, dport, icmp type/code, flags
// ip_len, ttl, ip_id, tcp flags, seq, ack, window, payload_len
inline constexpr uint32_t kHeader = 1u << 5;
inline constexpr uint32_t kBlob = 1u << 6;  // TCP options and payload prefix
inline constexpr uint32_t kAll = 0x7F;
}  // namespace col

// Rows decoded from a block: observations plus the enrichment stored with them.
struct DecodedBlock {
  ObservationBatch batch;
  std::vector<GeoInfo> geo;  // per row, when col::kSrc was asked for
};

// Writes one segment file. Rows must arrive sorted by (src, ts), with geo[i] for rows[i].
// An encoder's buffers, kept from one SegmentWriter::Write to the next (by one thread at a
// time): a fresh encoder grows every buffer again, and the kernel zeroes each new page.
class SegmentScratch {
 public:
  SegmentScratch();
  ~SegmentScratch();
  SegmentScratch(const SegmentScratch&) = delete;
  SegmentScratch& operator=(const SegmentScratch&) = delete;

 private:
  friend class SegmentWriter;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class SegmentWriter {
 public:
  struct BlockInfo {
    uint64_t offset = 0;
    uint32_t size = 0;
    uint32_t rows = 0;
    IpAddr src_min, src_max;
    int64_t ts_min = 0, ts_max = 0;
    uint64_t checksum = 0;
  };
  // Writes the whole segment to `path` (a new file) and fsyncs it. `scratch`: the encoder to
  // use (the calling thread's own when null).
  static Status Write(const std::string& path, const ObservationBatch& batch,
                      const std::vector<uint32_t>& order, const std::vector<GeoInfo>& geo,
                      int zstd_level, uint64_t* bytes_written, SegmentScratch* scratch = nullptr);
};

class SegmentReader {
 public:
  static Result<std::unique_ptr<SegmentReader>> Open(const std::string& path);
  ~SegmentReader();
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  const std::vector<SegmentWriter::BlockInfo>& blocks() const { return blocks_; }
  uint64_t rows() const;
  // Decodes block `i`, only the columns in `columns` and those they are predicted from (time
  // fills sources; header fills destination and ports). Corruption is a DataLoss naming the
  // file, the block and the column.
  Status ReadBlock(size_t i, uint32_t columns, DecodedBlock* out) const;

 private:
  SegmentReader() = default;
  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  std::vector<SegmentWriter::BlockInfo> blocks_;
};

}  // namespace teiten
