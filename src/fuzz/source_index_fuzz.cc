// libFuzzer target for SourceIndex: opens the input as a source index and looks up addresses.
// The index offers lookups only, so the addresses are taken from the input itself (every
// aligned 4-byte word as IPv4, every aligned 16-byte window as IPv6, up to a bound): those that
// the file's address tables hold are found and their postings decoded.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/ip.h"
#include "fuzz/fuzz_io.h"
#include "store/source_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  teiten::fuzz::MemFile file(data, size);
  auto opened = teiten::SourceIndex::Open(file.path());
  if (!opened.ok()) return 0;
  const auto& x = *opened;
  (void)x->sources();
  constexpr size_t kMaxLookups = 4096;
  size_t n = 0;
  for (size_t off = 0; off + 4 <= size && n < kMaxLookups; off += 4, ++n) {
    uint32_t w;
    std::memcpy(&w, data + off, 4);
    teiten::SourceSummary s;
    (void)x->Lookup(teiten::IpAddr::V4(w), &s);
  }
  for (size_t off = 0; off + 16 <= size && n < 2 * kMaxLookups; off += 16, ++n) {
    teiten::SourceSummary s;
    (void)x->Lookup(teiten::IpAddr::V6(data + off), &s);
  }
  return 0;
}
