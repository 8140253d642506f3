#include "store/file_out.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>

#include "store/chunk_sums.h"
#include "store/codec.h"

namespace teiten {
namespace {

Status PwriteAll(int fd, const uint8_t* p, size_t n, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = ::pwrite(fd, p + done, n - done, static_cast<off_t>(offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return IoError(path + ": write");
    done += static_cast<size_t>(w);
  }
  return OkStatus();
}

}  // namespace

Result<OwnedFd> OwnedFd::Create(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(path);
  return OwnedFd(fd);
}

OwnedFd::~OwnedFd() {
  if (fd_ >= 0) ::close(fd_);
}

Status FileOut::Flush() {
  RETURN_IF_ERROR(PwriteAll(fd_, buf_.data(), buf_.size(), flushed_, path_));
  flushed_ += buf_.size();
  buf_.clear();
  return OkStatus();
}

Status FileOut::WriteAt(uint64_t offset, const std::vector<uint8_t>& bytes) const {
  return PwriteAll(fd_, bytes.data(), bytes.size(), offset, path_);
}

Result<uint64_t> SealChunked(int fd, uint64_t body, const char* magic, const std::string& path) {
  std::vector<uint8_t> tail;
  XXH64_state_t* whole = XXH64_createState();
  XXH64_reset(whole, 0);
  std::vector<uint8_t> chunk(ChunkSums::kChunk);
  for (uint64_t at = 0; at < body; at += ChunkSums::kChunk) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(ChunkSums::kChunk, body - at));
    size_t got = 0;
    while (got < len) {
      ssize_t r = ::pread(fd, chunk.data() + got, len - got, static_cast<off_t>(at + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        XXH64_freeState(whole);
        return IoError(path + ": read back");
      }
      got += static_cast<size_t>(r);
    }
    codec::PutFixed<uint64_t>(&tail, XXH3_64bits(chunk.data(), len));
    XXH64_update(whole, chunk.data(), len);
  }
  const size_t n_chunks = tail.size() / 8;
  codec::PutFixed<uint64_t>(&tail, ChunkSums::kChunk);
  codec::PutFixed<uint64_t>(&tail, n_chunks);
  codec::PutFixed<uint64_t>(&tail, XXH3_64bits(tail.data(), tail.size()));
  XXH64_update(whole, tail.data(), tail.size());
  codec::PutFixed<uint64_t>(&tail, XXH64_digest(whole));
  XXH64_freeState(whole);
  tail.insert(tail.end(), magic, magic + 8);
  RETURN_IF_ERROR(PwriteAll(fd, tail.data(), tail.size(), body, path));
  if (::fsync(fd) != 0) return IoError(path + ": fsync");
  return body + tail.size();
}

}  // namespace teiten
