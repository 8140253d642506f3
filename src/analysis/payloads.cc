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
  std::unordered_set<GroupKey, GroupKeyHash> exact;  // kTemplate: the identical groups inside
};

bool Alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

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

std::string PayloadTemplate(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    if (!Alnum(static_cast<unsigned char>(bytes[i]))) {
      out.push_back(bytes[i++]);
      continue;
    }
    size_t end = i;
    bool digit = false;
    while (end < bytes.size() && Alnum(static_cast<unsigned char>(bytes[end]))) {
      digit |= bytes[end] >= '0' && bytes[end] <= '9';
      ++end;
    }
    if (digit) {
      out.push_back('#');
    } else {
      out.append(bytes.substr(i, end - i));
    }
    i = end;
  }
  return out;
}

Result<PayloadResult> GroupPayloads(const Store& store, const Period& period,
                                    const SensorSelection& filter, PortKey port,
                                    PayloadGrouping grouping) {
  const bool by_template = grouping == PayloadGrouping::kTemplate;
  PayloadResult res;
  std::unordered_map<GroupKey, Accumulator, GroupKeyHash> groups;
  auto add = [&](const ObservationBatch& batch, const Observation& o) {
    std::string_view p = batch.Payload(o);
    const GroupKey exact{XXH3_64bits(p.data(), p.size()), o.payload_len};
    GroupKey key = exact;
    std::string templ;
    if (by_template) {
      // A payload cut by the kept prefix ends at an arbitrary byte, so two probes of one family
      // whose earlier fields differ in length would end differently: compare them up to their
      // last complete line (the whole prefix when it has no line break).
      std::string_view whole = p;
      if (o.payload_len > o.payload_cap) {
        size_t nl = whole.rfind('\n');
        if (nl != std::string_view::npos) whole = whole.substr(0, nl + 1);
      }
      templ = PayloadTemplate(whole);
      key = {XXH3_64bits(templ.data(), templ.size()), 0};
    }
    auto [it, added] = groups.try_emplace(key);
    Accumulator& a = it->second;
    if (added) {
      a.group.digest = key.digest;
      a.group.prefix.assign(p);
      a.group.templ = by_template ? std::move(templ) : PayloadTemplate(p);
      a.group.first_us = a.group.last_us = o.ts_us;
    }
    a.group.length = std::max(a.group.length, o.payload_len);
    if (by_template) a.exact.insert(exact);
    ++a.group.packets;
    a.group.first_us = std::min(a.group.first_us, o.ts_us);
    a.group.last_us = std::max(a.group.last_us, o.ts_us);
    a.sources.insert(o.src);
    a.destinations.insert(o.dst);
  };
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
                   add(blk.batch, o);
                 }
               }));
  for (auto& [key, a] : groups) {
    a.group.sources = a.sources.size();
    a.group.destinations = a.destinations.size();
    a.group.strings = PrintableStrings(by_template ? a.group.templ : a.group.prefix);
    if (by_template) a.group.variants = a.exact.size();
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
