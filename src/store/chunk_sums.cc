#include "store/chunk_sums.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <cstring>

#include "store/codec.h"

namespace teiten {
namespace {

uint64_t LoadU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

void ChunkSums::Append(std::vector<uint8_t>* out) {
  const uint64_t body = out->size();
  const uint64_t n = (body + kChunk - 1) / kChunk;
  const size_t table_at = out->size();
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t len = std::min(kChunk, body - i * kChunk);
    codec::PutFixed<uint64_t>(out, XXH3_64bits(out->data() + i * kChunk, len));
  }
  codec::PutFixed<uint64_t>(out, kChunk);
  codec::PutFixed<uint64_t>(out, n);
  codec::PutFixed<uint64_t>(out, XXH3_64bits(out->data() + table_at, out->size() - table_at));
}

Status ChunkSums::Open(const uint8_t* base, uint64_t table_end, const std::string& path) {
  path_ = path;
  base_ = base;
  auto bad = [&](const std::string& what) {
    return DataLoss(fmt::format("{}: chunk checksum table: {}", path, what));
  };
  if (table_end < 24) return bad("cut short");
  uint64_t n = LoadU64(base + table_end - 16);
  uint64_t want = LoadU64(base + table_end - 8);
  chunk_ = LoadU64(base + table_end - 24);
  if (chunk_ < 4096 || chunk_ > (uint64_t{1} << 24) || (chunk_ & (chunk_ - 1)) != 0) {
    return bad(fmt::format("chunk size {} is not a power of two in 4 KiB..16 MiB", chunk_));
  }
  if (n > (table_end - 24) / 8) return bad(fmt::format("{} chunks do not fit", n));
  uint64_t table_at = table_end - 24 - n * 8;
  // The table's own checksum is not read here (that would read the whole table, a part of the
  // file in proportion to its size, for every open): a damaged entry only makes its chunk's
  // check fail, reported as damage. `teiten verify` checks the whole file.
  (void)want;
  body_size_ = table_at;
  if ((body_size_ + chunk_ - 1) / chunk_ != n) {
    return bad(fmt::format("{} chunks for a body of {} bytes", n, body_size_));
  }
  chunks_ = n;
  table_ = base + table_at;
  verified_.reset(new std::atomic<uint8_t>[n]);
  for (uint64_t i = 0; i < n; ++i) verified_[i].store(0, std::memory_order_relaxed);
  return OkStatus();
}

Status ChunkSums::Check(uint64_t offset, uint64_t length) const {
  if (offset > body_size_ || length > body_size_ - offset) {
    return DataLoss(fmt::format("{}: bytes {}..{} lie past the body ({} bytes)", path_, offset,
                                offset + length, body_size_));
  }
  if (length == 0) return OkStatus();
  for (uint64_t c = offset / chunk_; c <= (offset + length - 1) / chunk_; ++c) {
    if (verified_[c].load(std::memory_order_acquire)) continue;
    uint64_t len = std::min(chunk_, body_size_ - c * chunk_);
    if (XXH3_64bits(base_ + c * chunk_, len) != LoadU64(table_ + c * 8)) {
      return DataLoss(fmt::format(
          "{}: checksum mismatch in bytes {}..{} (read for {}..{}): the file is damaged", path_,
          c * chunk_, c * chunk_ + len, offset, offset + length));
    }
    verified_[c].store(1, std::memory_order_release);
  }
  return OkStatus();
}

}  // namespace teiten
