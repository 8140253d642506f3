// libFuzzer target for SourceIndex: opens the input as a source index and looks up addresses:
// those taken from the input itself (every aligned 4-byte word as IPv4, every aligned 16-byte
// window as IPv6, up to a bound: format 4 keeps its addresses in place), and those the file's
// own walk yields (format 5 compresses them), each of which must be found when the whole walk
// passed. Then what `teiten verify` and the maintenance merge do with an index: every entry
// walked, and the file merged with itself — which, when it succeeds, must open again and hold
// the same addresses.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

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
  std::vector<teiten::IpAddr> addrs;
  const bool whole = x->ForEachSource([&](const teiten::IpAddr& a) {
                        if (addrs.size() < kMaxLookups) addrs.push_back(a);
                        return teiten::OkStatus();
                      }).ok();
  for (const teiten::IpAddr& a : addrs) {
    teiten::SourceSummary s;
    auto found = x->Lookup(a, &s);
    if (whole && found.ok() && !*found) abort();  // walked, yet not found
  }
  std::map<uint64_t, uint64_t> by_segment;
  // Only an index whose walk passed (addresses ascending, entries whole) must merge exactly.
  const bool walked = x->PacketsBySegment(&by_segment).ok();
  teiten::fuzz::MemFile out(nullptr, 0);
  auto merged = teiten::SourceIndex::Merge({x.get(), x.get()}, out.path());
  if (merged.ok()) {
    auto again = teiten::SourceIndex::Open(out.path());
    if (!again.ok() || (walked && (*again)->sources() != x->sources())) abort();
  }
  return 0;
}
