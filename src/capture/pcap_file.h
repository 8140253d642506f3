// PcapFile: reads pcap and pcapng captures, plain or compressed with gzip or zstd.
//
// Compression is recognised by the file's first bytes, not its name. Classic pcap (the format
// sensors write, and by far the bulk) is parsed here from a large buffer with no per-packet copy
// or system call; pcapng goes through libpcap, fed the decompressed bytes as a stdio stream.
// `offset()` counts in the decompressed capture.
//
//   ASSIGN_OR_RETURN(auto f, PcapFile::Open("day1.pcap.zst"));
//   PcapFile::Packet pkt;
//   while (true) {
//     ASSIGN_OR_RETURN(bool more, f->Next(&pkt));
//     if (!more) break;
//     ...
//   }
//
// A PcapFile is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

struct pcap;

namespace teiten {

enum class Compression { kNone, kGzip, kZstd };

class PcapFile {
 public:
  struct Packet {
    int64_t ts_us = 0;
    const uint8_t* data = nullptr;  // valid until the next call to Next()
    uint32_t caplen = 0;
    uint32_t wirelen = 0;
  };

  // Opens a capture. Errors name the file and say what was wrong (not a capture, bad header,
  // unreadable, corrupt compressed stream).
  static Result<std::unique_ptr<PcapFile>> Open(const std::string& path);
  ~PcapFile();
  PcapFile(const PcapFile&) = delete;
  PcapFile& operator=(const PcapFile&) = delete;

  // Reads the next packet: true with `out` filled, false at a clean end. A record cut short by a
  // truncated file or a corrupt record header is an error naming the file and the offset of the
  // record; the packets before it have been delivered.
  Result<bool> Next(Packet* out);

  // The link type: a LINKTYPE_ value for classic pcap, the DLT_ value libpcap gives for pcapng
  // (Decoder accepts both).
  int datalink() const { return dlt_; }
  Compression compression() const { return compression_; }
  const std::string& path() const { return path_; }
  // Offset in the (decompressed) capture of the next record to be read.
  uint64_t offset() const;
  uint64_t packets_read() const { return packets_; }
  // Packets skipped (and counted in packets_read) because their timestamp is outside
  // 1970..9999 (pcapng's 64-bit timestamps can say anything).
  uint64_t bad_timestamps() const { return bad_timestamps_; }

 private:
  PcapFile() = default;
  Status OpenWithLibpcap();
  Result<bool> NextClassic(Packet* out);
  bool Fill(size_t need);  // makes `need` bytes available at pos_; false if the stream ends first

  std::string path_;
  struct pcap* pcap_ = nullptr;  // pcapng only
  FILE* stream_ = nullptr;
  struct ByteStream* bytes_ = nullptr;  // classic pcap only
  // Read buffer, left uninitialised: zero-filling 4 MiB cost more than reading a small capture.
  struct Buffer {
    std::unique_ptr<uint8_t[]> bytes;
    size_t n = 0;
    uint8_t* data() const { return bytes.get(); }
    size_t size() const { return n; }
    void Allocate(size_t k) {
      bytes.reset(new uint8_t[k]);
      n = k;
    }
  };
  Buffer buf_;
  size_t pos_ = 0, end_ = 0;
  uint64_t buf_offset_ = 0;  // stream offset of buf_[0]
  bool swapped_ = false, nano_ = false;
  std::string read_error_;
  Compression compression_ = Compression::kNone;
  int dlt_ = 0;
  uint64_t packets_ = 0;
  uint64_t bad_timestamps_ = 0;
};

// Detects compression from a file's first bytes.
Result<Compression> DetectCompression(const std::string& path);

// XXH3-128 of a file's raw bytes as 32 hex digits: the identity that makes ingest idempotent.
Result<std::string> HashFile(const std::string& path);

}  // namespace teiten
