// Chunk checksums: a file's body cut into 16 KiB chunks, each with its own XXH3-64, so that a
// reader verifies exactly the chunks it reads instead of the whole file (a per-IP lookup reads a
// few KB of a source index that may hold a gigabyte). The table sits at the end of the file:
//
//   body | n × u64 XXH3-64(chunk i) | u64 chunk size | u64 n | u64 XXH3-64(the table, size, n)
//
// followed by the file's own footer. The whole-file checksum in that footer stays for
// `teiten verify`.
//
//   ChunkSums sums;
//   RETURN_IF_ERROR(sums.Open(base, table_end, path));   // checks the table itself
//   RETURN_IF_ERROR(sums.Check(offset, length));         // before reading [offset, +length)
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace teiten {

class ChunkSums {
 public:
  static constexpr uint64_t kChunk = 16384;  // what Append writes; readers take the file's

  // Appends the table for out[0, out.size()) to `out`.
  static void Append(std::vector<uint8_t>* out);

  // Reads the table that ends at `table_end` (the table's last byte + 1) of the mapping at
  // `base`; the body is everything before the table. DataLoss naming `path` when the table does
  // not fit the file. The table's own checksum is left to whole-file verification: a damaged
  // entry fails its chunk's check.
  Status Open(const uint8_t* base, uint64_t table_end, const std::string& path);
  uint64_t body_size() const { return body_size_; }

  // Verifies every chunk that [offset, offset + length) touches, each once per ChunkSums
  // (thread-safe: two threads may both verify a chunk). DataLoss naming the file, the chunk
  // and the byte range asked for; a range past the body is DataLoss too.
  Status Check(uint64_t offset, uint64_t length) const;

 private:
  const uint8_t* base_ = nullptr;
  const uint8_t* table_ = nullptr;
  uint64_t body_size_ = 0, chunks_ = 0, chunk_ = kChunk;
  std::string path_;
  std::unique_ptr<std::atomic<uint8_t>[]> verified_;
};

}  // namespace teiten
