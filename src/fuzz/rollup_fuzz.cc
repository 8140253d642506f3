// libFuzzer target for RollupFile: opens the input as a rollup file, verifies it, decodes it
// whole, and reads every section each sensor entry offers: port × country records (whole, and
// by each port and country key), the total set, and every port, country and ASN record's set
// and heavy-hitter summary, and each set's members looked up in it (a few, through a large set's
// skip table, and many, walking it); keys are looked up one by one too (Find).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz/fuzz_io.h"
#include "store/rollup.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  teiten::fuzz::MemFile file(data, size);
  auto opened = teiten::RollupFile::Open(file.path());
  if (!opened.ok()) return 0;
  const auto& f = *opened;
  (void)f->Verify();
  (void)f->Decode();
  for (const auto& v : f->sensors()) {
    (void)f->PortCountry(v);
    std::vector<teiten::RollupFile::PairRec> pairs;
    (void)f->ReadSet(v.set_offset);
    for (int section = 0; section < 3; ++section) {
      // A lookup of a few keys (one block each in format 6) before the section is decoded.
      for (uint32_t key : {0u, 23u, 0x60017u, 0x110035u, 392u, UINT32_MAX}) {
        (void)f->Find(v, section, key);
      }
      auto span = f->Keys(v, section);
      if (!span.ok()) continue;
      for (const auto& rec : *span) {
        if (section == 0) (void)f->PairsOfPort(v, rec.key, &pairs);
        if (section == 1) (void)f->PairsOfCountry(v, rec.key, &pairs);
        (void)f->Find(v, section, rec.key);
        (void)f->ReadSet(rec.set_offset);
        std::vector<uint32_t> v4;
        std::vector<teiten::IpAddr> v6;
        (void)f->AppendSetMembers(rec.set_offset, &v4, &v6);
        std::sort(v4.begin(), v4.end());
        v4.erase(std::unique(v4.begin(), v4.end()), v4.end());
        std::sort(v6.begin(), v6.end());
        v6.erase(std::unique(v6.begin(), v6.end()), v6.end());
        (void)f->CountSetHits(rec.set_offset, v4, v6);
        std::vector<uint32_t> few;
        for (size_t i = 0; i < v4.size(); i += 997) {
          few.push_back(v4[i] + (v4[i] != UINT32_MAX && (i & 1) ? 1 : 0));
        }
        few.erase(std::unique(few.begin(), few.end()), few.end());
        (void)f->CountSetHits(rec.set_offset, few, {});
        std::vector<teiten::HeavyEntry> heavy;
        (void)f->AppendHeavy(rec, &heavy);
      }
    }
    volatile uint64_t sink = 0;
    for (uint64_t s : v.slots) sink = sink + s;
  }
  return 0;
}
