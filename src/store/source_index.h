// Source index: for one ingest transaction, which (segment, block) pairs hold each source, so
// that `teiten ip` decodes only the blocks holding the address instead of every block whose
// source range covers it (SPEC A7, §4).
//
// One file per transaction (idx/NNNNNNNN.tsix), written with its segments and committed by the
// same manifest rename; immutable. Layout in docs/STORE_FORMAT.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/ip.h"
#include "common/status.h"

namespace teiten {

struct BlockRef {
  uint64_t segment = 0;
  uint32_t block = 0;
  bool operator==(const BlockRef&) const = default;
};

// Collects (source, block) pairs while a transaction writes its segments.
class SourceIndexBuilder {
 public:
  // A block of a segment; returns its reference number for Add.
  uint32_t AddBlock(uint64_t segment, uint32_t block);
  void Add(const IpAddr& src, uint32_t ref) {
    if (src.is_v4()) {
      v4_.push_back((uint64_t{src.v4()} << 32) | ref);
    } else {
      v6_.push_back({src, ref});
    }
  }
  bool empty() const { return v4_.empty() && v6_.empty(); }
  size_t bytes() const { return v4_.capacity() * 8 + v6_.capacity() * sizeof(v6_[0]); }
  // Writes the index to `path` (a new file) and fsyncs it.
  Status Write(const std::string& path);

 private:
  std::vector<BlockRef> refs_;
  std::vector<uint64_t> v4_;  // address << 32 | ref
  std::vector<std::pair<IpAddr, uint32_t>> v6_;
};

class SourceIndex {
 public:
  static Result<std::unique_ptr<SourceIndex>> Open(const std::string& path);
  ~SourceIndex();
  SourceIndex(const SourceIndex&) = delete;
  SourceIndex& operator=(const SourceIndex&) = delete;

  // Appends the blocks that hold `addr` (none when the transaction never saw it).
  Status Lookup(const IpAddr& addr, std::vector<BlockRef>* out) const;
  uint64_t sources() const { return n4_ + n6_; }

 private:
  SourceIndex() = default;
  Status Postings(uint64_t begin, uint64_t end, std::vector<BlockRef>* out) const;
  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint32_t nrefs_ = 0;
  const uint8_t* refs_ = nullptr;  // nrefs × (u64 segment, u32 block, u32 0)
  uint64_t n4_ = 0, n6_ = 0;
  const uint8_t* addr4_ = nullptr;  // n4 × u32, ascending
  const uint8_t* off4_ = nullptr;   // (n4 + 1) × u64 posting offsets
  const uint8_t* addr6_ = nullptr;  // n6 × 16 bytes, ascending
  const uint8_t* off6_ = nullptr;
  const uint8_t* postings_ = nullptr;
  uint64_t postings_size_ = 0;
};

}  // namespace teiten
