// Where a store's rollup bytes go, and what its source sets would take as positions in their
// entry's total set (a dictionary per sensor entry) instead of addresses: for each keyed set,
// its bytes as written, as varint gaps between positions, and as a portable Roaring bitmap of
// positions (run-optimised). Reads every `.troll` file under STORE/rollup through RollupFile.
// Also the ports' heavy-hitter lists: their bytes, and those that a format-9 writer leaves out
// because the record implies them (one source, or as many packets as sources); and what every
// set would take as Rice-coded gaps (an estimate), and the sets written as Rice codes (format 11).
//   teiten-rollup-anatomy STORE
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <roaring/roaring.hh>
#include <vector>

#include "store/codec.h"
#include "store/rollup.h"
#include "store/source_set.h"

namespace fs = std::filesystem;
using namespace teiten;

namespace {

struct Sizes {
  uint64_t sets = 0, members = 0, bytes = 0, id_gaps = 0, id_roaring = 0, id_best = 0;
  uint64_t large_sets = 0, large_bytes = 0, large_gaps = 0;  // sets of ≥ SourceSet::kSkipFrom
  uint64_t rice = 0;  // as Rice-coded position gaps, or as written when that is smaller
  uint64_t written_rice = 0, written_rice_bytes = 0;  // written as Rice codes (format 11)
};

uint64_t VarintBytes(uint64_t v) {
  return codec::VarintSize(v);
}

// What a Rice code of the gaps would take (an estimate for a format not written): bits with the
// best parameter k for each block of 128 gaps (5 bits to name k), the high part v >> k in unary
// up to 15, then an escape and Elias-gamma of the rest.
uint64_t RiceBits(const std::vector<uint64_t>& gaps) {
  uint64_t total = 0;
  for (size_t b = 0; b < gaps.size(); b += 128) {
    size_t e = std::min(gaps.size(), b + 128);
    uint64_t best = UINT64_MAX;
    for (int k = 0; k < 32; ++k) {
      uint64_t bits = 5;
      for (size_t i = b; i < e; ++i) {
        uint64_t q = gaps[i] >> k;
        if (q < 15) {
          bits += q + 1 + k;
        } else {
          bits += 15 + 2 * (64 - __builtin_clzll(q - 15 + 1)) - 1 + k;
        }
      }
      best = std::min(best, bits);
    }
    total += best;
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s STORE\n", argv[0]);
    return 2;
  }
  uint64_t files = 0, file_bytes = 0, total_set_bytes = 0, total_members = 0, total_rice = 0;
  uint64_t heavy_lists = 0, heavy_bytes = 0, implied_lists = 0, implied_bytes = 0;
  Sizes keyed[3];
  for (const auto& e : fs::directory_iterator(fs::path(argv[1]) / "rollup")) {
    auto f = RollupFile::Open(e.path().string());
    if (!f.ok()) {
      std::fprintf(stderr, "%s\n", f.status().ToString().c_str());
      return 1;
    }
    ++files;
    file_bytes += (*f)->size();
    for (const auto& v : (*f)->sensors()) {
      std::vector<uint32_t> dict;
      std::vector<IpAddr> dict6;
      if (!(*f)->AppendSetMembers(v.set_offset, &dict, &dict6).ok()) return 1;
      auto tb = (*f)->SetReader(v.set_offset);
      total_set_bytes += tb->remaining();
      {
        std::vector<uint64_t> g;
        uint32_t prev = 0;
        for (uint32_t a : dict) {
          g.push_back(a - prev);
          prev = a;
        }
        uint64_t rb = 2 + VarintBytes(dict.size()) + (RiceBits(g) + 7) / 8 + dict6.size() * 16;
        if (dict.size() >= SourceSet::kSkipFrom) rb += (dict.size() + 127) / 128 * 8;
        total_rice += std::min<uint64_t>(rb, tb->remaining());
      }
      total_members += dict.size() + dict6.size();
      for (int s = 0; s < 3; ++s) {
        auto recs = (*f)->Keys(v, s);
        if (!recs.ok()) return 1;
        for (const auto& r : *recs) {
          if (s == 0 && r.heavy_count) {
            std::vector<HeavyEntry> hv;
            if (!(*f)->AppendHeavy(r, &hv).ok()) return 1;
            // Its bytes as a written list: counts in the set's order when it holds every source,
            // otherwise each address with its count.
            const bool every = hv.size() == r.sources;
            uint64_t bytes = every ? 1 : 0;
            for (const auto& [a, c] : hv) {
              bytes += (every ? 0 : a.is_v4() ? 5 : 17) + VarintBytes(c);
            }
            const bool implied =
                every && (r.sources == 1 ||
                          (r.packets == r.sources &&
                           std::all_of(hv.begin(), hv.end(),
                                       [](const HeavyEntry& x) { return x.second == 1; })));
            ++heavy_lists;
            if (implied) {
              ++implied_lists;
              implied_bytes += bytes;
            }
            if (r.heavy_offset != r.set_offset) heavy_bytes += bytes;  // written
          }
          std::vector<uint32_t> m;
          std::vector<IpAddr> m6;
          if (!(*f)->AppendSetMembers(r.set_offset, &m, &m6).ok()) return 1;
          auto sb = (*f)->SetReader(r.set_offset);
          Sizes& z = keyed[s];
          ++z.sets;
          z.members += m.size() + m6.size();
          z.bytes += sb->remaining();
          if (sb->remaining() > 0 && sb->data()[0] >= 16) {  // source set kinds 16 to 47
            ++z.written_rice;
            z.written_rice_bytes += sb->remaining();
          }
          // Positions in the entry's total set (IPv6 members after the IPv4 ones).
          std::vector<uint32_t> ids;
          size_t j = 0;
          for (uint32_t a : m) {
            j = static_cast<size_t>(
                std::lower_bound(dict.begin() + static_cast<ptrdiff_t>(j), dict.end(), a) -
                dict.begin());
            ids.push_back(static_cast<uint32_t>(j));
          }
          for (const IpAddr& a : m6) {
            ids.push_back(static_cast<uint32_t>(
                dict.size() + (std::lower_bound(dict6.begin(), dict6.end(), a) - dict6.begin())));
          }
          uint64_t gaps = 1 + VarintBytes(ids.size());
          uint32_t prev = 0;
          std::vector<uint64_t> g;
          for (uint32_t id : ids) {
            gaps += VarintBytes(id - prev);
            g.push_back(id - prev - (g.empty() ? 0 : 1));
            prev = id;
          }
          {
            uint64_t rb = 2 + VarintBytes(ids.size()) + (RiceBits(g) + 7) / 8;
            if (ids.size() >= SourceSet::kSkipFrom) rb += (ids.size() + 127) / 128 * 8;
            z.rice += std::min<uint64_t>(rb, sb->remaining());
          }
          Roaring bm(ids.size(), ids.data());
          bm.runOptimize();
          uint64_t roaring = 1 + 4 + bm.getSizeInBytes(true);
          z.id_gaps += gaps;
          z.id_roaring += roaring;
          z.id_best += std::min(gaps, roaring);
          if (m.size() + m6.size() >= SourceSet::kSkipFrom) {
            ++z.large_sets;
            z.large_bytes += sb->remaining();
            z.large_gaps += gaps;
          }
        }
      }
    }
  }
  fmt::print("{} files, {} bytes; total sets {} members in {} bytes ({:.2f} B/member)\n", files,
             file_bytes, total_members, total_set_bytes,
             static_cast<double>(total_set_bytes) / std::max<uint64_t>(1, total_members));
  fmt::print(
      "heavy lists: {}, {} B written; {} of them implied by their records ({} B as written "
      "lists, not written from format 9)\n",
      heavy_lists, heavy_bytes, implied_lists, implied_bytes);
  fmt::print("total sets as Rice-coded gaps: {} B ({:.2f} B/member)\n", total_rice,
             static_cast<double>(total_rice) / std::max<uint64_t>(1, total_members));
  const char* names[3] = {"ports", "countries", "ASNs"};
  for (int s = 0; s < 3; ++s) {
    const Sizes& z = keyed[s];
    auto per = [&](uint64_t b) {
      return static_cast<double>(b) / std::max<uint64_t>(1, z.members);
    };
    fmt::print(
        "{:>9}: {} sets, {} members; as written {} B ({:.2f} B/member); positions as gaps "
        "{} ({:.2f}), as Roaring {} ({:.2f}), the smaller of the two {} ({:.2f})\n",
        names[s], z.sets, z.members, z.bytes, per(z.bytes), z.id_gaps, per(z.id_gaps), z.id_roaring,
        per(z.id_roaring), z.id_best, per(z.id_best));
    fmt::print("{:>9}  as Rice-coded gaps: {} B ({:.2f}); written as Rice codes: {} sets, {} B\n",
               "", z.rice, per(z.rice), z.written_rice, z.written_rice_bytes);
    fmt::print("{:>9}  of which {} sets of {} members or more: {} B as written, {} as gaps\n", "",
               z.large_sets, SourceSet::kSkipFrom, z.large_bytes, z.large_gaps);
  }
  return 0;
}
