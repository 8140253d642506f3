// PcapWriter: a buffered writer of classic microsecond pcap files, for generated traffic.
//
//   ASSIGN_OR_RETURN(auto w, PcapWriter::Create("/tmp/t.pcap", kLinkEthernet));
//   uint8_t* frame = w->Begin(64);   // room for up to 64 bytes of frame
//   ... fill frame ...
//   w->End(ts_us, 60);               // the frame is 60 bytes
//   RETURN_IF_ERROR(w->Finish());    // flush, close, rename into place
//
// Why not pcap_dump(): libpcap writes each record with two stdio calls and gives no way to build
// the frame in place; here a record is built directly in a buffer that goes out in one write(2).
// The buffer is small on purpose (128 KiB): it stays in the L2 cache, so building frames does not
// wait on memory and write(2) copies from cache; a multi-megabyte buffer measured slower. The
// format is the classic one every reader accepts (magic a1b2c3d4 in host order, version 2.4).
//
// With `direct`, the file is opened with O_DIRECT where the file system allows it (not tmpfs):
// whole 4 KiB blocks go from the buffer to the device without the page cache, and the last
// partial block is written normally on Finish(). A full-scale scenario writes more than the
// machine's memory; through the page cache, copying and reclaiming cost more CPU than
// generating the packets (this VM: 36 s of system time per 25 GB written, against 1.5 s per
// 10 GB with O_DIRECT).
//
// The file is written as `<path>.partial` and renamed on Finish(), so a crash or error never
// leaves a half-written trace under the final name; the destructor of an unfinished writer
// removes the partial file. A target that exists and is not a regular file (/dev/null, a FIFO) is
// written in place. Not thread-safe.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace teiten::simulate {

inline constexpr uint32_t kLinkEthernet = 1;  // DLT_EN10MB

class PcapWriter {
 public:
  static Result<std::unique_ptr<PcapWriter>> Create(const std::string& path, uint32_t linktype,
                                                    size_t buffer_bytes = 128 << 10,
                                                    bool direct = false);
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  // Returns room for a frame of up to `max_len` bytes (≤ 65535). Valid until End().
  uint8_t* Begin(size_t max_len) {
    if (used_ + 16 + max_len > cap_) Flush();
    return buf_.get() + used_ + 16;
  }
  // Commits the frame begun last, `len` bytes long, at `ts_us` (microseconds since the epoch).
  void End(int64_t ts_us, size_t len) {
    const uint32_t rec[4] = {static_cast<uint32_t>(ts_us / 1000000),
                             static_cast<uint32_t>(ts_us % 1000000), static_cast<uint32_t>(len),
                             static_cast<uint32_t>(len)};
    std::memcpy(buf_.get() + used_, rec, sizeof rec);
    used_ += 16 + len;
  }

  // Writes what is buffered, closes the file and moves it to its final name. After an I/O error
  // (reported here, whenever it happened) the partial file is removed.
  Status Finish();

  uint64_t bytes_written() const { return bytes_written_ + used_; }

 private:
  PcapWriter() = default;
  void Flush();
  void WriteAll(const uint8_t* p, size_t n);

  std::string path_, tmp_path_;
  int fd_ = -1;
  bool finished_ = false;
  bool direct_ = false;  // fd_ has O_DIRECT: Flush() writes whole blocks only
  int write_errno_ = 0;
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t[], Free> buf_;  // 4 KiB aligned
  size_t cap_ = 0;
  size_t used_ = 0;
  uint64_t bytes_written_ = 0;
};

}  // namespace teiten::simulate
