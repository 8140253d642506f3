#include "analysis/payloads.h"

#include <xxhash.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace teiten {
namespace {

bool Printable(unsigned char c) {
  return (c >= 0x20 && c <= 0x7e) || c == '\t';
}

struct GroupKey {
  uint64_t digest;
  uint16_t length;
  bool operator==(const GroupKey&) const = default;
};
struct GroupKeyHash {
  size_t operator()(const GroupKey& k) const { return k.digest ^ (size_t{k.length} << 48); }
};
struct Accumulator {
  PayloadGroup group;
  std::unordered_set<IpAddr, IpAddrHash> sources, destinations;
};

}  // namespace

std::vector<std::string> PrintableStrings(std::string_view bytes, size_t min_len) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= bytes.size(); ++i) {
    if (i < bytes.size() && Printable(static_cast<unsigned char>(bytes[i]))) continue;
    if (i - start >= min_len) out.emplace_back(bytes.substr(start, i - start));
    start = i + 1;
  }
  return out;
}

Result<PayloadResult> GroupPayloads(const Store& store, const Period& period,
                                    const SensorSelection& filter, PortKey port) {
  PayloadResult res;
  std::unordered_map<GroupKey, Accumulator, GroupKeyHash> groups;
  RETURN_IF_ERROR(
      ScanRows(store, period, filter,
               col::kSrc | col::kTs | col::kDst | col::kPorts | col::kHeader | col::kBlob,
               [&](const DecodedBlock& blk) {
                 for (const Observation& o : blk.batch.rows) {
                   if (PortKeyOf(o) != port) continue;
                   ++res.packets;
                   if (o.payload_len == 0) continue;
                   ++res.with_payload;
                   if (o.payload_len > o.payload_cap) ++res.truncated;
                   std::string_view p = blk.batch.Payload(o);
                   GroupKey key{XXH3_64bits(p.data(), p.size()), o.payload_len};
                   auto [it, added] = groups.try_emplace(key);
                   Accumulator& a = it->second;
                   if (added) {
                     a.group.digest = key.digest;
                     a.group.prefix.assign(p);
                     a.group.length = o.payload_len;
                     a.group.first_us = a.group.last_us = o.ts_us;
                   }
                   ++a.group.packets;
                   a.group.first_us = std::min(a.group.first_us, o.ts_us);
                   a.group.last_us = std::max(a.group.last_us, o.ts_us);
                   a.sources.insert(o.src);
                   a.destinations.insert(o.dst);
                 }
               }));
  for (auto& [key, a] : groups) {
    a.group.sources = a.sources.size();
    a.group.destinations = a.destinations.size();
    a.group.strings = PrintableStrings(a.group.prefix);
    res.groups.push_back(std::move(a.group));
  }
  std::sort(res.groups.begin(), res.groups.end(), [](const PayloadGroup& x, const PayloadGroup& y) {
    if (x.packets != y.packets) return x.packets > y.packets;
    if (x.sources != y.sources) return x.sources > y.sources;
    if (x.digest != y.digest) return x.digest < y.digest;
    return x.length < y.length;
  });
  return res;
}

}  // namespace teiten
