// Tool tags: see tools.h and docs/FINGERPRINTS.md.
#include "analysis/tools.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "analysis/dos.h"
#include "analysis/scans.h"

namespace teiten {

namespace {

constexpr uint32_t Bit(Tag t) {
  return 1u << static_cast<unsigned>(t);
}

bool ContainsNoCase(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    size_t k = 0;
    while (k < needle.size() && std::tolower(static_cast<unsigned char>(hay[i + k])) == needle[k]) {
      ++k;
    }
    if (k == needle.size()) return true;
  }
  return false;
}

// SIPVicious (sipvicious libs/svhelper.py, makeRequest) writes its Via branch as "z9hG4bK-"
// and decimal digits, followed by ";rport"; other SIP stacks use the RFC 3261 cookie with
// letters or hex after it. This is what the 96 payload bytes kept hold: its "sipvicious" names
// and User-Agent "friendly-scanner" come later in the request.
bool SipviciousVia(std::string_view p) {
  if (p.rfind("OPTIONS sip:", 0) != 0 && p.rfind("REGISTER sip:", 0) != 0 &&
      p.rfind("INVITE sip:", 0) != 0) {
    return false;
  }
  constexpr std::string_view kBranch = ";branch=z9hG4bK-";
  size_t at = p.find(kBranch);
  if (at == std::string_view::npos) return false;
  size_t i = at + kBranch.size(), digits = 0;
  while (i < p.size() && std::isdigit(static_cast<unsigned char>(p[i]))) ++i, ++digits;
  // A branch cut off by the kept prefix still counts when it is all digits so far.
  if (digits == 0) return false;
  std::string_view rest = p.substr(i);
  constexpr std::string_view kRport = ";rport";
  return rest.size() < kRport.size() ? kRport.substr(0, rest.size()) == rest
                                     : rest.substr(0, kRport.size()) == kRport;
}

}  // namespace

const char* TagName(Tag t) {
  switch (t) {
    case Tag::kMirai:
      return "mirai";
    case Tag::kZmap:
      return "zmap";
    case Tag::kMasscan:
      return "masscan";
    case Tag::kNmap:
      return "nmap";
    case Tag::kSipvicious:
      return "sipvicious";
    case Tag::kBackscatter:
      return "backscatter";
    case Tag::kResearch:
      return "research";
    case Tag::kCount:
      break;
  }
  return "untagged";
}

bool ParseTag(std::string_view text, Tag* out) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (size_t i = 0; i < kTagCount; ++i) {
    if (lower == TagName(static_cast<Tag>(i))) {
      *out = static_cast<Tag>(i);
      return true;
    }
  }
  return false;
}

const std::array<TagRule, kTagCount>& TagRules() {
  // Mirai's rule is 32 bits wide (no chance match): one packet is enough when it is most of the
  // source's probes. The 16-bit rules (ZMap's and Masscan's IP IDs) match one random packet in
  // 65,536, so they need two packets and a majority; Nmap's is structural (a window and an
  // option list no operating system sends) but held to the same bar.
  static const std::array<TagRule, kTagCount> rules = {{
      {Tag::kMirai, 1, 0.5, true, "TCP SYN whose sequence number is the destination IPv4 address"},
      {Tag::kZmap, 2, 0.5, true, "TCP SYN with IPv4 ID 54321"},
      {Tag::kMasscan, 2, 0.5, true,
       "TCP SYN with IPv4 ID = (destination ^ port ^ sequence) & 0xffff"},
      {Tag::kNmap, 2, 0.5, true,
       "TCP SYN with window 1024 and only an MSS option, at least half of them repeating the "
       "sequence number of the one before"},
      {Tag::kSipvicious, 1, 0.0, false,
       "UDP SIP request whose Via branch is \"z9hG4bK-\", digits, \";rport\" (SIPVicious's "
       "format), or a payload naming \"friendly-scanner\" or \"sipvicious\""},
      {Tag::kBackscatter, 1, 0.5, false,
       "TCP SYN-ACK or RST, ICMP echo/timestamp/info/mask reply or ICMP error"},
      {Tag::kResearch, 1, 0.0, false, "source inside a listed research scanner's network"},
  }};
  return rules;
}

bool IsTcpSynProbe(const Observation& o) {
  return o.proto == 6 && !(o.flags & (obs_flag::kFragment | obs_flag::kNoTransport)) &&
         (o.tcp_flags & tcp_flag::kSyn) && !(o.tcp_flags & (tcp_flag::kAck | tcp_flag::kRst));
}

uint32_t PacketEvidence(const Observation& o, std::string_view options, std::string_view payload) {
  uint32_t bits = 0;
  if (IsTcpSynProbe(o)) {
    // The scanners' fields, each tested on its own: a packet may fit two 16-bit rules by chance,
    // and the verdict's majority decides.
    if (o.dst.is_v4()) {
      const uint32_t dst = o.dst.v4();
      if (o.seq == dst) bits |= Bit(Tag::kMirai);
      if (o.ip_id == 54321) bits |= Bit(Tag::kZmap);
      if (o.ip_id == ((dst ^ o.dport ^ o.seq) & 0xffff)) bits |= Bit(Tag::kMasscan);
    }
    if (GuessProbeTool(o, options) == ProbeTool::kNmap) bits |= Bit(Tag::kNmap);
  }
  if (o.proto == 17 && !payload.empty() &&
      (SipviciousVia(payload) || ContainsNoCase(payload, "friendly-scanner") ||
       ContainsNoCase(payload, "sipvicious"))) {
    bits |= Bit(Tag::kSipvicious);
  }
  if (ClassifyBackscatter(o, payload).kind != BackscatterKind::kNone)
    bits |= Bit(Tag::kBackscatter);
  return bits;
}

Result<ResearchNetworks> ResearchNetworks::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound(fmt::format("research scanner list {}: cannot be read", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

Result<ResearchNetworks> ResearchNetworks::Parse(std::string_view text, const std::string& name) {
  ResearchNetworks out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    auto skip = [&] {
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) {
        line.remove_prefix(1);
      }
    };
    auto word = [&] {
      skip();
      size_t e = 0;
      while (e < line.size() && !std::isspace(static_cast<unsigned char>(line[e]))) ++e;
      std::string_view w = line.substr(0, e);
      line.remove_prefix(e);
      return w;
    };
    std::string_view prefix = word();
    if (prefix.empty()) continue;
    std::string_view org = word();
    skip();
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    auto p = Prefix::Parse(prefix);
    if (!p) {
      return InvalidArgument(
          fmt::format("{}:{}: '{}' is not a network (e.g. 192.0.2.0/24)", name, line_no, prefix));
    }
    if (org.empty() || line.empty()) {
      return InvalidArgument(
          fmt::format("{}:{}: expected 'PREFIX ORGANISATION SOURCE' (where the entry comes from)",
                      name, line_no));
    }
    out.entries_.push_back({*p, std::string(org), std::string(line)});
  }
  return out;
}

namespace embedded {
extern const std::string_view kResearchScanners;
}

const ResearchNetworks& ResearchNetworks::Shipped() {
  static const ResearchNetworks shipped = [] {
    auto r = Parse(embedded::kResearchScanners, "data/research_scanners.txt");
    return r.ok() ? std::move(*r) : ResearchNetworks();
  }();
  return shipped;
}

const ResearchNetworks::Entry* ResearchNetworks::Find(const IpAddr& a) const {
  for (const Entry& e : entries_) {
    if (e.prefix.Contains(a)) return &e;
  }
  return nullptr;
}

void Judge(SourceTags* s, const ResearchNetworks* research) {
  s->verdict = 0;
  for (const TagRule& r : TagRules()) {
    if (r.tag == Tag::kResearch) continue;
    uint64_t n = s->evidence[static_cast<size_t>(r.tag)];
    uint64_t of = r.of_probes ? s->probes : s->packets;
    if (n < r.min_packets || of == 0 ||
        static_cast<double>(n) < r.min_share * static_cast<double>(of)) {
      continue;
    }
    // Nmap: window 1024 and one MSS option are also what other scanners send (Censys's SYNs in
    // the shared amp.dns capture, with a new sequence number each); Nmap's one number per scan
    // is what tells it apart: at least half of its Nmap-shaped probes after the first repeat it.
    if (r.tag == Tag::kNmap && 2 * s->nmap_seq_repeats < n - 1) continue;
    s->verdict |= Bit(r.tag);
  }
  s->research = research ? research->Find(s->src) : nullptr;
  if (s->research) {
    s->verdict |= Bit(Tag::kResearch);
    s->evidence[static_cast<size_t>(Tag::kResearch)] = s->packets;
  }
}

namespace {

void Count(SourceTags* s, const ObservationBatch& b, const Observation& o) {
  s->packets++;
  if (IsTcpSynProbe(o)) s->probes++;
  uint32_t bits = PacketEvidence(o, b.Options(o), b.Payload(o));
  if (bits & Bit(Tag::kNmap)) {
    if (s->evidence[static_cast<size_t>(Tag::kNmap)] > 0 && o.seq == s->nmap_last_seq) {
      s->nmap_seq_repeats++;
    }
    s->nmap_last_seq = o.seq;
  }
  for (size_t t = 0; bits; ++t, bits >>= 1) {
    if (bits & 1) s->evidence[t]++;
  }
}

}  // namespace

Result<SourceTags> TagSource(const Store& store, const IpAddr& addr,
                             const ResearchNetworks* research, size_t max_blocks, size_t max_rows) {
  ASSIGN_OR_RETURN(SourceEntries e, LookupSource(store, addr));
  return TagSource(store, e, research, max_blocks, max_rows);
}

Result<SourceTags> TagSource(const Store& store, const SourceEntries& e,
                             const ResearchNetworks* research, size_t max_blocks, size_t max_rows) {
  SourceTags s;
  s.src = e.addr;
  SourceSample sample;
  sample.max_blocks = max_blocks;
  sample.max_rows = max_rows;
  RETURN_IF_ERROR(ScanSourceRows(
      store, e, kTagColumns,
      [&](const DecodedBlock& blk, size_t i) {
        Count(&s, blk.batch, blk.batch.rows[i]);
        if (i < blk.geo.size()) s.geo = blk.geo[i];
      },
      &sample));
  s.blocks_read = sample.read;
  s.blocks_named = sample.named;
  Judge(&s, research);
  return s;
}

Result<ToolsResult> TopTools(const Store& store, const Period& period,
                             const SensorSelection& filter, std::optional<PortKey> port,
                             const ResearchNetworks* research,
                             const std::vector<PortKey>& breakdown,
                             std::optional<CountryCode> country) {
  struct Acc {
    SourceTags tags;
    uint64_t on_port = 0;
    std::unordered_map<PortKey, uint64_t> ports;
  };
  std::unordered_map<IpAddr, Acc, IpAddrHash> by_source;
  RETURN_IF_ERROR(ScanRows(store, period, filter, kTagColumns, [&](const DecodedBlock& blk) {
    for (size_t i = 0; i < blk.batch.rows.size(); ++i) {
      const Observation& o = blk.batch.rows[i];
      Acc& a = by_source[o.src];
      a.tags.src = o.src;
      if (i < blk.geo.size()) a.tags.geo = blk.geo[i];
      Count(&a.tags, blk.batch, o);
      PortKey k = PortKeyOf(o);
      if (port && k == *port) a.on_port++;
      a.ports[k]++;
    }
  }));
  ToolsResult res;
  res.period = period;
  res.port = port;
  std::array<ToolRow, kTagCount + 1> rows;
  std::array<std::map<PortKey, uint64_t>, kTagCount + 1> ports;
  std::map<PortKey, std::array<ToolRow, kTagCount + 1>> per_port;
  for (size_t t = 0; t <= kTagCount; ++t) rows[t].tag = static_cast<Tag>(t);
  for (auto& [addr, a] : by_source) {
    uint64_t counted = port ? a.on_port : a.tags.packets;
    if (counted == 0) continue;
    if (country && a.tags.geo.country != *country) continue;
    Judge(&a.tags, research);
    res.sources++;
    res.packets += counted;
    uint32_t v = a.tags.verdict;
    auto add = [&](size_t t) {
      rows[t].sources++;
      rows[t].packets += counted;
      for (const auto& [k, n] : a.ports) {
        if (!port || k == *port) ports[t][k] += n;
      }
    };
    if (v == 0) add(kTagCount);
    for (size_t t = 0; t < kTagCount; ++t) {
      if (v & (1u << t)) add(t);
    }
    for (PortKey b : breakdown) {
      auto it = a.ports.find(b);
      if (it == a.ports.end()) continue;
      auto& rows_b = per_port[b];
      res.port_sources[b]++;
      auto add_b = [&](size_t t) {
        rows_b[t].sources++;
        rows_b[t].packets += it->second;
      };
      if (v == 0) add_b(kTagCount);
      for (size_t t = 0; t < kTagCount; ++t) {
        if (v & (1u << t)) add_b(t);
      }
    }
  }
  for (auto& [b, rows_b] : per_port) {
    uint64_t packets = 0;
    for (const auto& [k, a] : by_source) {
      auto it = a.ports.find(b);
      if (it != a.ports.end()) packets += it->second;
    }
    auto& out = res.by_port[b];
    for (size_t t = 0; t <= kTagCount; ++t) {
      ToolRow r = rows_b[t];
      if (r.sources == 0) continue;
      r.tag = static_cast<Tag>(t);
      r.source_share = static_cast<double>(r.sources) / static_cast<double>(res.port_sources[b]);
      r.packet_share = packets ? static_cast<double>(r.packets) / static_cast<double>(packets) : 0;
      out.push_back(r);
    }
    std::stable_sort(out.begin(), out.end(), [](const ToolRow& x, const ToolRow& y) {
      bool xu = x.tag == Tag::kCount, yu = y.tag == Tag::kCount;
      if (xu != yu) return yu;
      return x.sources > y.sources;
    });
  }
  for (size_t t = 0; t <= kTagCount; ++t) {
    ToolRow& r = rows[t];
    if (r.sources == 0) continue;
    r.source_share = res.sources ? static_cast<double>(r.sources) / res.sources : 0;
    r.packet_share = res.packets ? static_cast<double>(r.packets) / res.packets : 0;
    std::vector<std::pair<PortKey, uint64_t>> busiest(ports[t].begin(), ports[t].end());
    std::sort(busiest.begin(), busiest.end(), [](const auto& x, const auto& y) {
      return x.second != y.second ? x.second > y.second : x.first < y.first;
    });
    if (busiest.size() > 5) busiest.resize(5);
    r.ports.insert(busiest.begin(), busiest.end());
    res.rows.push_back(std::move(r));
  }
  std::stable_sort(res.rows.begin(), res.rows.end(), [](const ToolRow& x, const ToolRow& y) {
    bool xu = x.tag == Tag::kCount, yu = y.tag == Tag::kCount;
    if (xu != yu) return yu;
    return x.sources > y.sources;
  });
  return res;
}

GeoInfo CountEvidence(SourceTags* t, const DecodedBlock& blk, size_t i) {
  const Observation& o = blk.batch.rows[i];
  t->src = o.src;
  const GeoInfo g = i < blk.geo.size() ? blk.geo[i] : GeoInfo{};
  t->geo = g;
  Count(t, blk.batch, o);
  return g;
}

Result<TopResult> TopByTag(const Store& store, Dimension dim, const Period& period,
                           const SensorSelection& filter, Tag tag, const ResearchNetworks* research,
                           size_t n) {
  if (dim == Dimension::kSensor || tag == Tag::kCount) {
    return InvalidArgument("--tag goes with ports, countries or asns");
  }
  struct Acc {
    SourceTags tags;
    std::unordered_map<uint64_t, uint64_t> keys;  // packets by key of `dim`
  };
  std::unordered_map<IpAddr, Acc, IpAddrHash> by_source;
  RETURN_IF_ERROR(ScanRows(store, period, filter, kTagColumns, [&](const DecodedBlock& blk) {
    for (size_t i = 0; i < blk.batch.rows.size(); ++i) {
      const Observation& o = blk.batch.rows[i];
      Acc& a = by_source[o.src];
      const GeoInfo g = CountEvidence(&a.tags, blk, i);
      uint64_t key = dim == Dimension::kPort      ? PortKeyOf(o)
                     : dim == Dimension::kCountry ? static_cast<uint64_t>(g.country)
                                                  : static_cast<uint64_t>(g.asn);
      a.keys[key]++;
    }
  }));
  TopResult res;
  res.period = period;
  struct KeyAcc {
    uint64_t packets = 0, sources = 0;
  };
  std::unordered_map<uint64_t, KeyAcc> keys;
  for (auto& [addr, a] : by_source) {
    Judge(&a.tags, research);
    if (!a.tags.Has(tag)) continue;
    res.total_sources++;
    res.total_packets += a.tags.packets;
    for (const auto& [k, p] : a.keys) {
      keys[k].packets += p;
      keys[k].sources++;  // each source once per key: distinct by construction
    }
  }
  std::vector<std::pair<uint64_t, KeyAcc>> ranked(keys.begin(), keys.end());
  std::sort(ranked.begin(), ranked.end(), [](const auto& x, const auto& y) {
    return x.second.packets != y.second.packets ? x.second.packets > y.second.packets
                                                : x.first < y.first;
  });
  if (ranked.size() > n) ranked.resize(n);
  for (size_t i = 0; i < ranked.size(); ++i) {
    RankRow r;
    r.rank = static_cast<int>(i + 1);
    r.key = ranked[i].first;
    r.packets = ranked[i].second.packets;
    r.sources = ranked[i].second.sources;
    r.share = res.total_packets ? static_cast<double>(r.packets) / res.total_packets : 0;
    r.prev_rank = kRankNoData;
    res.rows.push_back(r);
  }
  return res;
}

Result<SeriesResult> SeriesByTag(const Store& store, Dimension dim,
                                 const std::vector<uint64_t>& keys, const Period& period,
                                 const SensorSelection& filter, Tag tag,
                                 const ResearchNetworks* research) {
  if ((dim != Dimension::kPort && dim != Dimension::kCountry) || tag == Tag::kCount) {
    return InvalidArgument("series --tag goes with ports, countries or all traffic");
  }
  const size_t nkeys = std::max<size_t>(keys.size(), 1);
  const int32_t days = period.days();
  struct Acc {
    SourceTags tags;
    std::unordered_map<uint64_t, uint64_t> cells;  // (day offset × keys + key index) → packets
  };
  std::unordered_map<IpAddr, Acc, IpAddrHash> by_source;
  // The rows' times too: the tag rules do not need them, the days do.
  const uint32_t columns = kTagColumns | col::kTs;
  RETURN_IF_ERROR(ScanRows(store, period, filter, columns, [&](const DecodedBlock& blk) {
    for (size_t i = 0; i < blk.batch.rows.size(); ++i) {
      const Observation& o = blk.batch.rows[i];
      Acc& a = by_source[o.src];
      const GeoInfo g =
          CountEvidence(&a.tags, blk, i);  // the verdict rests on all the period's rows
      const int32_t day = store.tz().LocalDay(o.ts_us) - period.first_day;
      if (day < 0 || day >= days) continue;
      size_t k = 0;
      if (!keys.empty()) {
        const uint64_t key =
            dim == Dimension::kPort ? PortKeyOf(o) : static_cast<uint64_t>(g.country);
        auto it = std::find(keys.begin(), keys.end(), key);
        if (it == keys.end()) continue;
        k = static_cast<size_t>(it - keys.begin());
      }
      a.cells[static_cast<uint64_t>(day) * nkeys + k]++;
    }
  }));
  SeriesResult res;
  res.keys = keys;
  res.points.resize(static_cast<size_t>(days));
  for (int32_t d = 0; d < days; ++d) {
    SeriesPoint& pt = res.points[static_cast<size_t>(d)];
    pt.start_us = store.tz().DayStartUs(period.first_day + d);
    pt.label = TimeZone::DayString(period.first_day + d);
    pt.packets.assign(nkeys, 0);
    pt.sources.assign(nkeys, 0);
  }
  for (auto& [addr, a] : by_source) {
    Judge(&a.tags, research);
    if (!a.tags.Has(tag)) continue;
    for (const auto& [cell, packets] : a.cells) {
      SeriesPoint& pt = res.points[cell / nkeys];
      pt.packets[cell % nkeys] += packets;
      pt.sources[cell % nkeys]++;  // one cell per (source, day, key): distinct by construction
    }
  }
  return res;
}

}  // namespace teiten
