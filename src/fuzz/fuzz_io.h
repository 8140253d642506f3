// Helpers for the libFuzzer targets: hand the fuzzer's bytes to readers that take a path.
//
// MemFile puts the bytes in an anonymous memory file (memfd) and names it by /proc/self/fd/N,
// so open(), read() and mmap() behave as on a regular file with no disk traffic. Guaranteed:
// path() is readable until the MemFile is destroyed. Not guaranteed: anything on systems without
// memfd_create (Linux only; the targets abort there rather than test nothing).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace teiten::fuzz {

class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size) {
    fd_ = memfd_create("teiten-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) abort();
    size_t done = 0;
    while (done < size) {
      ssize_t n = write(fd_, data + done, size - done);
      if (n <= 0) abort();
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace teiten::fuzz
