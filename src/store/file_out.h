// Writing a store file front to back without holding it: buffered appends at any number of
// cursors into one file, then the chunk checksum table and footer computed over what is on disk.
// For files whose parts are made in a stream (a merged rollup part, a merged source index), the
// front's size known before its bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace teiten {

// A file descriptor closed when it goes out of scope.
class OwnedFd {
 public:
  // Creates (or truncates) `path` for reading and writing.
  static Result<OwnedFd> Create(const std::string& path);
  explicit OwnedFd(int fd) : fd_(fd) {}  // takes `fd` (-1: none) to close
  OwnedFd(OwnedFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  OwnedFd& operator=(OwnedFd&&) = delete;
  ~OwnedFd();
  int get() const { return fd_; }

 private:
  int fd_;
};

// Appends to `fd` from an offset through a 1 MiB buffer; several may write one file at
// different offsets. Errors name `path`.
class FileOut {
 public:
  FileOut(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Status Append(const uint8_t* p, size_t n) {
    buf_.insert(buf_.end(), p, p + n);
    at_ += n;
    return buf_.size() >= (size_t{1} << 20) ? Flush() : OkStatus();
  }
  Status Append(const std::vector<uint8_t>& v) { return Append(v.data(), v.size()); }
  Status Flush();
  // Writes `bytes` at `offset` now, whatever the cursor.
  Status WriteAt(uint64_t offset, const std::vector<uint8_t>& bytes) const;
  uint64_t at() const { return at_; }
  // Moves the cursor (what is buffered must have been flushed).
  void Seek(uint64_t at) { at_ = flushed_ = at; }

 private:
  int fd_;
  std::string path_;
  std::vector<uint8_t> buf_;
  uint64_t at_ = 0, flushed_ = 0;
};

// Reads back the first `body` bytes of `fd` a chunk at a time and writes after them the chunk
// checksum table (ChunkSums), the XXH64 of everything before and `magic` (8 bytes), then fsyncs.
// Returns the file's size.
Result<uint64_t> SealChunked(int fd, uint64_t body, const char* magic, const std::string& path);

}  // namespace teiten
