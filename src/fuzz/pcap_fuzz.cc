// libFuzzer target for PcapFile (classic pcap and pcapng): opens the input as a capture file and
// reads every packet until the end or the first error. The first byte picks how the rest reaches
// the reader: as is, gzip-compressed or zstd-compressed (so the decompressing streams and their
// buffer refills are exercised), the second byte optionally cuts the compressed file short.
//   scripts/fuzz.sh 60      (builds build-fuzz and runs every target; see docs/FUZZING.md)
#include <zlib.h>
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "capture/pcap_file.h"
#include "fuzz/fuzz_io.h"

namespace {

std::vector<uint8_t> Gzip(const uint8_t* data, size_t size) {
  z_stream z{};
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
  std::vector<uint8_t> out(deflateBound(&z, size) + 64);
  z.next_in = const_cast<Bytef*>(data);
  z.avail_in = static_cast<uInt>(size);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::vector<uint8_t> Zstd(const uint8_t* data, size_t size) {
  std::vector<uint8_t> out(ZSTD_compressBound(size));
  size_t n = ZSTD_compress(out.data(), out.size(), data, size, 1);
  if (ZSTD_isError(n)) abort();
  out.resize(n);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  uint8_t mode = data[0] % 3, cut = data[1];
  data += 2;
  size -= 2;
  std::vector<uint8_t> bytes;
  if (mode == 0) {
    bytes.assign(data, data + size);
  } else {
    bytes = mode == 1 ? Gzip(data, size) : Zstd(data, size);
    // A non-zero cut drops that many bytes off the end: a truncated download or copy.
    if (cut != 0 && cut < bytes.size()) bytes.resize(bytes.size() - cut);
  }
  teiten::fuzz::MemFile file(bytes.data(), bytes.size());
  auto opened = teiten::PcapFile::Open(file.path());
  if (!opened.ok()) return 0;
  auto& f = *opened;
  teiten::PcapFile::Packet pkt;
  volatile uint32_t sink = 0;
  while (true) {
    auto more = f->Next(&pkt);
    if (!more.ok() || !*more) break;
    // Touch every byte the reader claims to hold, so a short buffer shows up under ASan.
    for (uint32_t i = 0; i < pkt.caplen; ++i) sink = sink + pkt.data[i];
    (void)f->offset();
  }
  return 0;
}
