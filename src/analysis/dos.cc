#include "analysis/dos.h"

#include <algorithm>
#include <climits>
#include <map>
#include <unordered_map>

namespace teiten {
namespace {

uint16_t Be16(std::string_view s, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(s[at]) << 8) |
                               static_cast<uint8_t>(s[at + 1]));
}

// Reads the victim (the quoted destination) and the quoted ports from an ICMP error's payload.
void ReadQuoted(std::string_view q, bool v6, Backscatter* b) {
  size_t header = 0;
  uint8_t proto = 0;
  if (!v6) {
    if (q.size() < 20 || (static_cast<uint8_t>(q[0]) >> 4) != 4) return;
    header = (static_cast<uint8_t>(q[0]) & 0x0f) * 4u;
    if (header < 20) return;
    proto = static_cast<uint8_t>(q[9]);
    b->victim = IpAddr::V4((uint32_t{Be16(q, 16)} << 16) | Be16(q, 18));
  } else {
    if (q.size() < 40 || (static_cast<uint8_t>(q[0]) >> 4) != 6) return;
    header = 40;
    proto = static_cast<uint8_t>(q[6]);
    b->victim = IpAddr::V6(reinterpret_cast<const uint8_t*>(q.data()) + 24);
  }
  b->attributed = true;
  // The quoted packet went from the spoofed (darknet) source to the victim.
  if ((proto == 6 || proto == 17) && q.size() >= header + 4) {
    b->has_ports = true;
    b->port_proto = proto;
    b->attacker_port = Be16(q, header);
    b->attacked_port = Be16(q, header + 2);
  }
}

struct Hit {
  int64_t ts_us;
  IpAddr spoofed;
  uint16_t attacker_port;
  PortKey attacked;
  bool has_ports;
  BackscatterKind kind;
  uint8_t proto;
};
struct Victim {
  GeoInfo geo;
  bool geo_known = false;
  std::vector<Hit> hits;
  size_t open_hits = 0;  // of `hits`, those of its open flow (the rest are the day's)
};

uint64_t PeakPerMinute(const std::vector<Hit>& h, size_t first, size_t last) {
  uint64_t peak = 0;
  size_t j = first;
  for (size_t i = first; i < last; ++i) {
    while (h[i].ts_us - h[j].ts_us >= 60 * int64_t{1000000}) ++j;
    peak = std::max<uint64_t>(peak, i - j + 1);
  }
  return peak;
}

void EmitIfAttack(const IpAddr& victim, const Victim& v, size_t first, size_t last,
                  const DosOptions& o, std::vector<DosAttack>* out) {
  const auto& h = v.hits;
  uint64_t packets = last - first;
  int64_t duration = h[last - 1].ts_us - h[first].ts_us;
  if (packets < o.min_packets || duration < o.min_duration_s * 1000000) return;
  uint64_t peak = PeakPerMinute(h, first, last);
  if (peak < o.min_peak_per_minute) return;
  DosAttack a;
  a.victim = victim;
  a.geo = v.geo;
  a.start_us = h[first].ts_us;
  a.end_us = h[last - 1].ts_us;
  a.packets = packets;
  a.peak_per_minute = peak;
  std::vector<IpAddr> spoofed;
  std::vector<uint16_t> attacker;
  std::map<PortKey, uint64_t> attacked;
  std::map<uint8_t, uint64_t> protos;
  for (size_t i = first; i < last; ++i) {
    spoofed.push_back(h[i].spoofed);
    if (h[i].has_ports) {
      attacker.push_back(h[i].attacker_port);
      ++attacked[h[i].attacked];
    }
    ++a.by_kind[static_cast<size_t>(h[i].kind)];
    ++protos[h[i].proto];
  }
  std::sort(spoofed.begin(), spoofed.end());
  a.spoofed = static_cast<uint64_t>(std::unique(spoofed.begin(), spoofed.end()) - spoofed.begin());
  std::sort(attacker.begin(), attacker.end());
  a.attacker_ports =
      static_cast<uint64_t>(std::unique(attacker.begin(), attacker.end()) - attacker.begin());
  a.attacked_ports.assign(attacked.begin(), attacked.end());
  std::stable_sort(a.attacked_ports.begin(), a.attacked_ports.end(),
                   [](const auto& x, const auto& y) { return x.second > y.second; });
  uint64_t most = 0;
  for (const auto& [p, n] : protos) {
    if (n > most) most = n, a.proto = p;
  }
  out->push_back(std::move(a));
}

}  // namespace

const char* BackscatterKindName(BackscatterKind k) {
  switch (k) {
    case BackscatterKind::kSynAck:
      return "syn-ack";
    case BackscatterKind::kRst:
      return "rst";
    case BackscatterKind::kIcmpReply:
      return "icmp-reply";
    case BackscatterKind::kIcmpError:
      return "icmp-error";
    default:
      return "-";
  }
}

Backscatter ClassifyBackscatter(const Observation& o, std::string_view payload) {
  Backscatter b;
  b.kind = BackscatterKindOf(o);
  switch (b.kind) {
    case BackscatterKind::kNone:
      return b;
    case BackscatterKind::kIcmpError:
      // Sent by the victim or a router before it: the victim is the quoted destination.
      ReadQuoted(payload, o.proto == 58, &b);
      return b;
    default:
      b.attributed = true;
      b.victim = o.src;
      if (o.proto == 6) {
        b.has_ports = true;
        b.port_proto = 6;
        b.attacked_port = o.sport;
        b.attacker_port = o.dport;
      }
      return b;
  }
}

Result<DosResult> FindDosAttacks(const Store& store, const Period& period,
                                 const SensorSelection& filter, const DosOptions& opts) {
  DosResult res;
  // Every victim of the period; its `hits` are those of its flow still open and the day's.
  std::unordered_map<IpAddr, Victim, IpAddrHash> victims;
  std::vector<std::pair<const IpAddr, Victim>*> today, open, still_open;
  const int64_t timeout_us = opts.flow_timeout_s * 1000000;
  int64_t latest = INT64_MIN;  // the latest backscatter read so far
  // Rows come day by day (ScanBackscatterRows), each day's after every earlier day's: after a
  // day, a victim's flows that a gap ended are done, and so is the flow of a victim silent for
  // longer than the timeout before the latest row read — every later row is later still. So only
  // the flows open at a day's end are held, not the period's backscatter.
  auto flows_of = [&](const IpAddr& addr, Victim& v, bool all) {
    auto& h = v.hits;
    // The open flow's hits are in order and earlier than any of the day's.
    std::sort(h.begin() + static_cast<ptrdiff_t>(v.open_hits), h.end(),
              [](const Hit& x, const Hit& y) { return x.ts_us < y.ts_us; });
    size_t first = 0;
    for (size_t i = 1; i <= h.size(); ++i) {
      if (i == h.size() ? all : h[i].ts_us - h[i - 1].ts_us > timeout_us) {
        ++res.flows;
        EmitIfAttack(addr, v, first, i, opts, &res.attacks);
        first = i;
      }
    }
    h.erase(h.begin(), h.begin() + static_cast<ptrdiff_t>(first));
    if (h.empty()) std::vector<Hit>().swap(h);
  };
  auto day_done = [&](int32_t) {
    for (auto* v : today) {
      if (v->second.hits.size() == v->second.open_hits) continue;  // already seen today
      const bool was_open = v->second.open_hits > 0;
      flows_of(v->first, v->second, false);
      v->second.open_hits = v->second.hits.size();
      if (!was_open && v->second.open_hits > 0) open.push_back(v);
    }
    today.clear();
    still_open.clear();
    for (auto* v : open) {
      Victim& vic = v->second;
      if (vic.hits.empty()) continue;
      if (latest - vic.hits.back().ts_us > timeout_us) {
        flows_of(v->first, vic, true);
        vic.open_hits = 0;
      } else {
        still_open.push_back(v);
      }
    }
    open.swap(still_open);
  };
  RETURN_IF_ERROR(ScanBackscatterRows(
      store, period, filter,
      col::kSrc | col::kTs | col::kDst | col::kPorts | col::kHeader | col::kBlob,
      [&](const DecodedBlock& blk) {
        for (size_t i = 0; i < blk.batch.rows.size(); ++i) {
          const Observation& o = blk.batch.rows[i];
          Backscatter b = ClassifyBackscatter(o, blk.batch.Payload(o));
          if (b.kind == BackscatterKind::kNone) continue;
          ++res.backscatter;
          if (!b.attributed) {
            ++res.unattributed;
            continue;
          }
          auto& entry = *victims.try_emplace(b.victim).first;
          Victim& v = entry.second;
          if (!v.geo_known && b.victim == o.src && i < blk.geo.size()) {
            v.geo = blk.geo[i];
            v.geo_known = true;
          }
          if (v.hits.size() == v.open_hits) today.push_back(&entry);
          v.hits.push_back({o.ts_us, o.dst, b.attacker_port,
                            MakePortKey(b.port_proto, b.attacked_port), b.has_ports, b.kind,
                            o.proto});
          latest = std::max(latest, o.ts_us);
        }
      },
      day_done));
  day_done(0);
  for (auto* v : open) flows_of(v->first, v->second, true);
  res.victims = victims.size();
  // A victim's region is that of its first row sent from it, wherever in the period it lies.
  for (DosAttack& a : res.attacks) a.geo = victims.at(a.victim).geo;
  std::sort(res.attacks.begin(), res.attacks.end(), [](const DosAttack& a, const DosAttack& b) {
    if (a.packets != b.packets) return a.packets > b.packets;
    if (a.start_us != b.start_us) return a.start_us < b.start_us;
    return a.victim < b.victim;
  });
  return res;
}

}  // namespace teiten
