#include "analysis/scans.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace teiten {
namespace {

// One probe of a (source, port) pair, kept until the pair's probes are put in time order.
struct Probe {
  int64_t ts_us;
  IpAddr dst;
  ProbeTool tool;
};

struct PairKey {
  IpAddr src;
  PortKey port;
  bool operator==(const PairKey&) const = default;
};
struct PairHash {
  size_t operator()(const PairKey& k) const {
    return IpAddrHash{}(k.src) ^ (size_t{k.port} * 0x9E3779B97F4A7C15ULL);
  }
};
struct Pair {
  GeoInfo geo;
  std::vector<Probe> probes;
};

// An IPv6 prefix's size, bounded so that a /64 cannot drown the IPv4 space in the sum.
uint64_t PrefixSize(const Prefix& p) {
  if (p.base.is_v4()) return uint64_t{1} << (32 - std::clamp(p.length, 0, 32));
  int host_bits = 128 - std::clamp(p.length, 0, 128);
  return uint64_t{1} << std::min(host_bits, 32);
}

// Closes one scan candidate [first, last) of a pair's time-ordered probes.
void EmitIfScan(const PairKey& key, const Pair& pair, size_t first, size_t last, uint64_t threshold,
                uint64_t monitored, std::vector<Scan>* out) {
  if (last - first < threshold) return;  // fewer probes than addresses needed: cannot qualify
  std::vector<IpAddr> dsts;
  dsts.reserve(last - first);
  std::array<uint64_t, static_cast<size_t>(ProbeTool::kCount)> tools{};
  for (size_t i = first; i < last; ++i) {
    dsts.push_back(pair.probes[i].dst);
    ++tools[static_cast<size_t>(pair.probes[i].tool)];
  }
  std::sort(dsts.begin(), dsts.end());
  uint64_t distinct = static_cast<uint64_t>(std::unique(dsts.begin(), dsts.end()) - dsts.begin());
  if (distinct < threshold) return;
  Scan s;
  s.src = key.src;
  s.geo = pair.geo;
  s.port = key.port;
  s.start_us = pair.probes[first].ts_us;
  s.end_us = pair.probes[last - 1].ts_us;
  s.packets = last - first;
  s.addresses = distinct;
  s.coverage = monitored ? static_cast<double>(distinct) / static_cast<double>(monitored) : 0;
  double secs = static_cast<double>(s.end_us - s.start_us) / 1e6;
  s.rate_pps = static_cast<double>(s.packets) / std::max(secs, 1.0);
  for (size_t t = 1; t < tools.size(); ++t) {
    if (tools[t] * 2 > s.packets) s.tool = static_cast<ProbeTool>(t);
  }
  out->push_back(s);
}

}  // namespace

uint64_t MonitoredAddresses(const Store& store, const SensorSelection& filter) {
  std::set<std::string> seen;
  uint64_t total = 0;
  const auto& sensors = store.manifest().sensors;
  for (size_t i = 0; i < sensors.size(); ++i) {
    if (!filter.Allows(static_cast<uint16_t>(i))) continue;
    for (const std::string& text : sensors[i].prefixes) {
      auto p = Prefix::Parse(text);
      // The manifest was checked when written; an unparsable prefix adds nothing rather than
      // guessing a size.
      if (!p || !seen.insert(p->ToString()).second) continue;
      total += PrefixSize(*p);
    }
  }
  return total;
}

uint64_t ScanThreshold(uint64_t monitored) {
  uint64_t scaled = (kScanAddressesPer8 * monitored + (uint64_t{1} << 24) - 1) >> 24;
  uint64_t floor = std::min(kScanMinAddresses, monitored);
  return std::max<uint64_t>({scaled, floor, 2});
}

const char* ProbeToolName(ProbeTool t) {
  switch (t) {
    case ProbeTool::kZmap:
      return "zmap";
    case ProbeTool::kMasscan:
      return "masscan";
    case ProbeTool::kNmap:
      return "nmap";
    case ProbeTool::kMirai:
      return "mirai";
    default:
      return "-";
  }
}

bool IsProbe(const Observation& o) {
  if (o.flags & (obs_flag::kFragment | obs_flag::kNoTransport)) return false;
  switch (o.proto) {
    case 6:
      return (o.tcp_flags & tcp_flag::kSyn) && !(o.tcp_flags & (tcp_flag::kAck | tcp_flag::kRst));
    case 17:
      return true;
    case 1:
      return o.icmp_type == 8;
    case 58:
      return o.icmp_type == 128;
    default:
      return false;
  }
}

ProbeTool GuessProbeTool(const Observation& o, std::string_view opts) {
  if (o.proto != 6 || !o.dst.is_v4()) return ProbeTool::kUnknown;
  const uint32_t dst = o.dst.v4();
  // Mirai's 32-bit rule first: it cannot match by chance, the 16-bit ones can.
  if (o.seq == dst) return ProbeTool::kMirai;
  if (o.ip_id == 54321) return ProbeTool::kZmap;
  if (o.ip_id == ((dst ^ o.dport ^ o.seq) & 0xffff)) return ProbeTool::kMasscan;
  if (o.window == 1024 && opts.size() == 4 && opts[0] == 2 && opts[1] == 4) {
    return ProbeTool::kNmap;
  }
  return ProbeTool::kUnknown;
}

Result<ScanResult> FindScans(const Store& store, const Period& period,
                             const SensorSelection& filter, const ScanOptions& opts,
                             bool* monitored_from_data) {
  ScanResult res;
  res.timeout_s = opts.timeout_s;
  std::unordered_map<PairKey, Pair, PairHash> pairs;
  std::unordered_set<IpAddr, IpAddrHash> destinations;
  RETURN_IF_ERROR(
      ScanRows(store, period, filter,
               col::kSrc | col::kTs | col::kDst | col::kPorts | col::kHeader | col::kBlob,
               [&](const DecodedBlock& blk) {
                 for (size_t i = 0; i < blk.batch.rows.size(); ++i) {
                   const Observation& o = blk.batch.rows[i];
                   destinations.insert(o.dst);
                   if (!IsProbe(o)) continue;
                   PortKey port = PortKeyOf(o);
                   if (opts.port && *opts.port != port) continue;
                   ++res.probes;
                   Pair& p = pairs[{o.src, port}];
                   if (i < blk.geo.size()) p.geo = blk.geo[i];
                   p.probes.push_back({o.ts_us, o.dst, GuessProbeTool(o, blk.batch.Options(o))});
                 }
               }));
  res.monitored = MonitoredAddresses(store, filter);
  if (monitored_from_data) *monitored_from_data = res.monitored == 0;
  if (res.monitored == 0) res.monitored = destinations.size();
  res.threshold = opts.min_addresses ? opts.min_addresses : ScanThreshold(res.monitored);

  const int64_t timeout_us = opts.timeout_s * 1000000;
  for (auto& [key, pair] : pairs) {
    auto& v = pair.probes;
    std::sort(v.begin(), v.end(), [](const Probe& a, const Probe& b) { return a.ts_us < b.ts_us; });
    size_t first = 0;
    for (size_t i = 1; i <= v.size(); ++i) {
      if (i == v.size() || v[i].ts_us - v[i - 1].ts_us > timeout_us) {
        EmitIfScan(key, pair, first, i, res.threshold, res.monitored, &res.scans);
        first = i;
      }
    }
  }
  std::sort(res.scans.begin(), res.scans.end(), [](const Scan& a, const Scan& b) {
    if (a.addresses != b.addresses) return a.addresses > b.addresses;
    if (a.packets != b.packets) return a.packets > b.packets;
    if (a.src != b.src) return a.src < b.src;
    return a.start_us < b.start_us;
  });
  std::map<PortKey, PortScans> by_port;
  std::map<PortKey, std::set<IpAddr>> scanners;
  for (const Scan& s : res.scans) {
    PortScans& p = by_port[s.port];
    p.port = s.port;
    ++p.scans;
    p.packets += s.packets;
    p.mean_coverage += s.coverage;
    p.max_coverage = std::max(p.max_coverage, s.coverage);
    ++p.tools[s.tool];
    scanners[s.port].insert(s.src);
  }
  for (auto& [port, p] : by_port) {
    p.scanners = scanners[port].size();
    p.mean_coverage /= static_cast<double>(p.scans);
    res.ports.push_back(p);
  }
  std::stable_sort(res.ports.begin(), res.ports.end(), [](const PortScans& a, const PortScans& b) {
    if (a.scans != b.scans) return a.scans > b.scans;
    return a.packets > b.packets;
  });
  return res;
}

}  // namespace teiten
