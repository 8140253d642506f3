#include "analysis/os_guesses.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <unordered_map>

#include "analysis/scans.h"

namespace teiten {
namespace {

// A fingerprint as a key: most SYNs of a period share a handful of them, so each is matched once.
std::string Key(const SynFingerprint& f) {
  std::string k = fmt::format("{}:{}:{}:{}:{}:{}:{}:{}:{}:", f.ip_version, f.ttl, f.ip_opt_len,
                              f.mss, f.window, f.scale, f.eol_pad, f.quirks, f.payload);
  k.append(f.layout.begin(), f.layout.end());
  return k;
}

struct Guess {
  int label = -1;  // -1: unknown
  bool fuzzy = false;
  int distance = 0;
};

}  // namespace

Result<OsResult> GuessOs(const Store& store, const Period& period, const SensorSelection& filter,
                         const P0fDatabase& db, std::optional<PortKey> port) {
  OsResult res;
  std::unordered_map<std::string, Guess> memo;
  struct Source {
    GeoInfo geo;
    std::map<int, uint64_t> by_label;
    std::map<int, Guess> guess_of;      // a representative match per label (fuzzy, distance)
    std::map<PortKey, uint64_t> ports;  // readable SYNs by port
  };
  std::unordered_map<IpAddr, Source, IpAddrHash> sources;
  RETURN_IF_ERROR(
      ScanRows(store, period, filter, col::kSrc | col::kPorts | col::kHeader | col::kBlob,
               [&](const DecodedBlock& blk) {
                 for (size_t i = 0; i < blk.batch.rows.size(); ++i) {
                   const Observation& o = blk.batch.rows[i];
                   if (o.proto != 6 || !IsProbe(o)) continue;
                   if (port && PortKeyOf(o) != *port) continue;
                   ++res.syns;
                   SynFingerprint fp;
                   if (!SynFingerprintOf(o, blk.batch.Options(o), &fp)) {
                     ++res.unreadable;
                     continue;
                   }
                   auto [it, added] = memo.try_emplace(Key(fp));
                   if (added) {
                     P0fMatch m = db.Match(fp);
                     if (m.signature) {
                       it->second = {static_cast<int>(m.signature->label), m.fuzzy, m.distance};
                     }
                   }
                   Source& s = sources[o.src];
                   if (i < blk.geo.size()) s.geo = blk.geo[i];
                   ++s.by_label[it->second.label];
                   ++s.ports[PortKeyOf(o)];
                   s.guess_of.try_emplace(it->second.label, it->second);
                 }
               }));
  std::map<std::string, OsShare> shares;
  std::map<PortKey, std::map<std::string, OsShare>> port_shares;
  uint64_t guessed = 0;
  for (auto& [addr, s] : sources) {
    SourceOs row;
    row.src = addr;
    row.geo = s.geo;
    int best = -1;
    for (const auto& [label, n] : s.by_label) {
      row.syns += n;
      if (n > row.agreeing) row.agreeing = n, best = label;
    }
    const Guess& g = s.guess_of[best];
    if (best >= 0) {
      const P0fLabel& l = db.labels()[static_cast<size_t>(best)];
      row.os = l.Display();
      row.application = l.application;
      row.fuzzy = g.fuzzy;
      row.distance = g.distance;
    } else {
      row.os = "unknown";
    }
    OsShare& sh = shares[row.os];
    sh.os = row.os;
    sh.application = row.application;
    ++sh.sources;
    sh.packets += row.syns;
    guessed += row.syns;
    for (const auto& [p, n] : s.ports) {
      OsShare& ps = port_shares[p][row.os];
      ps.os = row.os;
      ps.application = row.application;
      ++ps.sources;
      ps.packets += n;
    }
    res.sources.push_back(std::move(row));
  }
  std::sort(res.sources.begin(), res.sources.end(), [](const SourceOs& a, const SourceOs& b) {
    if (a.syns != b.syns) return a.syns > b.syns;
    return a.src < b.src;
  });
  for (auto& [name, sh] : shares) {
    sh.source_share = static_cast<double>(sh.sources) / static_cast<double>(sources.size());
    sh.packet_share = static_cast<double>(sh.packets) / static_cast<double>(guessed);
    res.shares.push_back(sh);
  }
  auto by_sources = [](const OsShare& a, const OsShare& b) {
    if (a.sources != b.sources) return a.sources > b.sources;
    if (a.packets != b.packets) return a.packets > b.packets;
    return a.os < b.os;
  };
  std::sort(res.shares.begin(), res.shares.end(), by_sources);
  for (auto& [p, m] : port_shares) {
    PortOs po;
    po.port = p;
    for (auto& [name, sh] : m) {
      po.sources += sh.sources;
      po.packets += sh.packets;
      po.shares.push_back(sh);
    }
    for (OsShare& sh : po.shares) {
      sh.source_share = static_cast<double>(sh.sources) / static_cast<double>(po.sources);
      sh.packet_share = static_cast<double>(sh.packets) / static_cast<double>(po.packets);
    }
    std::sort(po.shares.begin(), po.shares.end(), by_sources);
    res.ports.push_back(std::move(po));
  }
  std::sort(res.ports.begin(), res.ports.end(), [](const PortOs& a, const PortOs& b) {
    if (a.sources != b.sources) return a.sources > b.sources;
    if (a.packets != b.packets) return a.packets > b.packets;
    return a.port < b.port;
  });
  return res;
}

}  // namespace teiten
