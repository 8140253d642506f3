// libFuzzer target for SegmentReader: opens the input as a segment file, then decodes every
// block with every column, and each column alone (a query asks for a subset, which takes
// different decoding paths).
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_io.h"
#include "store/segment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  teiten::fuzz::MemFile file(data, size);
  auto opened = teiten::SegmentReader::Open(file.path());
  if (!opened.ok()) return 0;
  const auto& r = *opened;
  (void)r->rows();
  for (size_t i = 0; i < r->blocks().size(); ++i) {
    teiten::DecodedBlock out;
    if (!r->ReadBlock(i, teiten::col::kAll, &out).ok()) continue;
    for (uint32_t c = 1; c < teiten::col::kAll; c <<= 1) {
      teiten::DecodedBlock part;
      (void)r->ReadBlock(i, c, &part);
    }
  }
  return 0;
}
