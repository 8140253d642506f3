#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>
#include <set>

#include "simulate/engine.h"

namespace teiten::simulate::engine {

namespace {

constexpr double kTwoPi = 6.283185307179586;

// IPv6 source blocks until SourceRange carries IPv6: large networks' real allocations.
struct V6Block {
  const char* cc;
  uint32_t asn;
  const char* cidr;
};
constexpr V6Block kV6Blocks[] = {
    {"CN", 4134, "240e::/20"},      {"CN", 4837, "2408:8000::/20"},
    {"US", 7922, "2601::/20"},      {"US", 14061, "2604:a880::/32"},
    {"DE", 24940, "2a01:4f8::/32"}, {"FR", 16276, "2001:41d0::/32"},
    {"NL", 60781, "2a00:c98::/32"}, {"JP", 2516, "2001:268::/32"},
    {"IN", 55836, "2405:200::/32"}, {"BR", 28573, "2804:14c::/32"},
    {"RU", 12389, "2a01:620::/32"}, {"GB", 2856, "2a00:23c0::/28"},
};

// Largest-remainder rounding of `quota` (non-negative) to integers summing to `total`.
std::vector<uint64_t> Apportion(const std::vector<double>& quota, uint64_t total) {
  double sum = std::accumulate(quota.begin(), quota.end(), 0.0);
  std::vector<uint64_t> out(quota.size());
  if (sum <= 0 || total == 0) return out;
  std::vector<std::pair<double, size_t>> rem;
  uint64_t given = 0;
  for (size_t i = 0; i < quota.size(); ++i) {
    double exact = quota[i] / sum * static_cast<double>(total);
    out[i] = static_cast<uint64_t>(exact);
    given += out[i];
    rem.push_back({exact - static_cast<double>(out[i]), i});
  }
  std::stable_sort(rem.begin(), rem.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < total && k < rem.size(); ++k, ++given) {
    if (quota[rem[k].second] > 0) ++out[rem[k].second];
  }
  return out;
}

}  // namespace

Status Engine::Validate() {
  const GeneratorSpec& s = spec_;
  if (s.start_us < 0) return InvalidArgument("start_us: before 1970");
  if (s.end_us <= s.start_us) return InvalidArgument("end_us: not after start_us");
  if (!(s.spoofed_flood_share >= 0 && s.spoofed_flood_share <= 1)) {
    return InvalidArgument("spoofed_flood_share: not in [0, 1]");
  }
  if (s.spoofed_flood_share > 0 && s.flood_episodes < 1) {
    return InvalidArgument("flood_episodes: need at least 1 for a spoofed flood");
  }
  if (s.flood_episodes > 10000) return InvalidArgument("flood_episodes: more than 10000");
  if (!(s.activity_skew >= 1 && s.activity_skew <= 64)) {
    return InvalidArgument("activity_skew: not in [1, 64]");
  }
  if (!(s.diurnal_amplitude >= 0 && s.diurnal_amplitude < 1)) {
    return InvalidArgument("diurnal_amplitude: not in [0, 1)");
  }
  if (s.sources > (uint64_t{1} << 30)) return InvalidArgument("sources: more than 2^30");
  if (s.packets > (uint64_t{1} << 40)) return InvalidArgument("packets: more than 2^40");
  if (static_cast<double>(s.packets) * s.spoofed_flood_share > 4.0e9) {
    return InvalidArgument("spoofed_flood_share: more than 4e9 spoofed packets");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < s.profiles.size(); ++i) {
    const ProfileSpec& p = s.profiles[i];
    std::string where = "profiles[" + std::to_string(i) + "] '" + p.name + "': ";
    if (p.name.empty()) return InvalidArgument(where + "name: empty");
    if (!names.insert(p.name).second) return InvalidArgument(where + "name: used twice");
    if (p.family != 4 && p.family != 6) return InvalidArgument(where + "family: not 4 or 6");
    if (p.tool == Tool::kSpoofedFlood) {
      return InvalidArgument(where + "tool: spoofed-flood is set by spoofed_flood_share");
    }
    if (p.family == 6 && p.tool != Tool::kLinux && p.tool != Tool::kPing) {
      return InvalidArgument(where + "family: IPv6 is generated for linux and ping only");
    }
    if (!(p.packet_share >= 0) || !(p.source_share >= 0)) {
      return InvalidArgument(where + "packet_share/source_share: negative");
    }
    if (!(p.retransmit >= 0 && p.retransmit <= 1)) {
      return InvalidArgument(where + "retransmit: not in [0, 1]");
    }
    if (!(p.variant_share >= 0 && p.variant_share <= 1)) {
      return InvalidArgument(where + "variant_share: not in [0, 1]");
    }
    double port_sum = 0;
    for (const PortWeight& pw : p.ports) {
      if (!(pw.weight >= 0)) return InvalidArgument(where + "ports: negative weight");
      port_sum += pw.weight;
    }
    if (p.tool != Tool::kPing && !(port_sum > 0)) {
      return InvalidArgument(where + "ports: none with a positive weight");
    }
  }
  for (const auto& [cc, w] : s.country_weights) {
    if (cc.size() != 2 || !(w >= 0)) {
      return InvalidArgument("country_weights: '" + cc + "' needs a two-letter code, weight ≥ 0");
    }
  }
  if (!ranges_.error().empty()) return InvalidArgument(ranges_.error());
  return OkStatus();
}

Status Engine::BuildDestinations() {
  for (const Prefix& p : spec_.monitored) {
    if (p.base.is_v4()) {
      int len = p.length;
      if (len < 8) return InvalidArgument("monitored: " + p.ToString() + " wider than /8");
      dst4_.push_back({p.base.v4(), uint64_t{1} << (32 - len)});
      dst4_total_ += uint64_t{1} << (32 - len);
    } else {
      if (dst6_.size() == 255) return InvalidArgument("monitored: more than 255 IPv6 prefixes");
      dst6_.push_back(p);
    }
  }
  if (dst4_.empty()) return InvalidArgument("monitored: no IPv4 prefix");
  // A flat table turns the draw into one load instead of an unpredictable walk over prefixes.
  if (dst4_total_ <= (uint64_t{1} << 22)) {
    for (const auto& [base, size] : dst4_) {
      for (uint64_t i = 0; i < size; ++i) dst4_table_.push_back(static_cast<uint32_t>(base + i));
    }
  }
  return OkStatus();
}

Status Engine::BuildCountries() {
  std::map<std::string, size_t> index;
  for (const auto& [cc, w] : spec_.country_weights) {
    if (w <= 0) continue;
    index[cc] = countries_.size();
    countries_.push_back({cc, w, ranges_.Find(cc), {}});
  }
  bool any_v4 = false;
  for (const Country& c : countries_) any_v4 |= c.v4 != nullptr;
  if (!any_v4 && spec_.sources > 0) {
    return InvalidArgument("ranges: none in a country with a positive country_weights entry");
  }
  for (int b = 0; b < static_cast<int>(std::size(kV6Blocks)); ++b) {
    auto it = index.find(kV6Blocks[b].cc);
    if (it != index.end()) countries_[it->second].v6_blocks.push_back(b);
  }
  return OkStatus();
}

Status Engine::BuildProfiles() {
  for (const ProfileSpec& p : spec_.profiles) {
    Profile prof;
    prof.spec = &p;
    prof.tool = p.tool;
    prof.v6 = p.family == 6;
    prof.retransmit = p.retransmit;
    std::vector<double> w;
    for (const PortWeight& pw : p.ports) {
      prof.ports.push_back(pw.port);
      w.push_back(pw.weight);
    }
    if (!w.empty()) prof.port_alias = AliasTable(w);
    if (p.tool == Tool::kWindows || p.tool == Tool::kLinux) {
      prof.packets_per_probe = 1 + p.retransmit + p.retransmit * p.retransmit;
    }
    profiles_.push_back(std::move(prof));
  }
  skew_int_ = spec_.activity_skew == 4 ? 4 : spec_.activity_skew == 1 ? 1 : 0;
  return OkStatus();
}

Status Engine::BuildBase() {
  RETURN_IF_ERROR(Validate());
  RETURN_IF_ERROR(BuildDestinations());
  RETURN_IF_ERROR(BuildCountries());
  return BuildProfiles();
}

Status Engine::Prepare() {
  RETURN_IF_ERROR(BuildBase());
  if (pop_ == nullptr) {
    own_pop_ = std::make_unique<Population>();
    RETURN_IF_ERROR(BuildPopulation(own_pop_.get()));
    pop_ = own_pop_.get();
  } else if (pop_->profiles != profiles_.size() || pop_->sources_wanted != spec_.sources) {
    return InvalidArgument("population: built for other profiles or another source count");
  }
  pop_sources_ = static_cast<uint32_t>(pop_->sources.size());
  cells_ = pop_->cells;
  RETURN_IF_ERROR(BuildPlanted());
  const size_t all_sources = cells_.empty() ? 0 : cells_.back().base + cells_.back().count;
  ReserveHuge(source_packets_, all_sources);
  source_packets_.assign(all_sources, 0);
  // With a shared population, what varies per trace (attacks, floods) follows the trace's seed.
  if (spec_.population_seed != 0) pop_rng_ = Rng(Mix64(spec_.seed ^ 0x73747265));
  RETURN_IF_ERROR(BuildStreams());
  return OkStatus();
}

Result<std::unique_ptr<Population>> Engine::BuildShared(const GeneratorSpec& spec,
                                                        const SourceRangeIndex& ranges) {
  Engine e(spec, ranges);
  RETURN_IF_ERROR(e.BuildBase());
  auto pop = std::make_unique<Population>();
  RETURN_IF_ERROR(e.BuildPopulation(pop.get()));
  return pop;
}

Status Engine::BuildPopulation(Population* pop) {
  pop->profiles = profiles_.size();
  pop->sources_wanted = spec_.sources;
  std::vector<Cell>& cells = pop->cells;
  std::vector<Source>& sources = pop->sources;
  std::vector<IpAddr>& v6_addrs = pop->v6_addrs;
  std::vector<uint32_t>& sorted = pop->sorted;
  // Cells and their source counts.
  struct Quota {
    uint16_t profile, country;
    double sources, packets;
  };
  std::vector<Quota> quotas;
  for (size_t pi = 0; pi < profiles_.size(); ++pi) {
    const ProfileSpec& p = *profiles_[pi].spec;
    if (p.family == 6 && dst6_.empty()) continue;  // nowhere to send it
    double wsum = 0;
    std::vector<double> w(countries_.size());
    for (size_t ci = 0; ci < countries_.size(); ++ci) {
      const Country& c = countries_[ci];
      bool usable = p.family == 4 ? c.v4 != nullptr : !c.v6_blocks.empty();
      if (!usable) continue;
      if (p.country_weights.empty()) {
        w[ci] = c.weight;
      } else {
        auto it = p.country_weights.find(c.code);
        w[ci] = it == p.country_weights.end() ? 0 : it->second;
      }
      wsum += w[ci];
    }
    if (wsum <= 0) continue;
    for (size_t ci = 0; ci < countries_.size(); ++ci) {
      if (w[ci] <= 0) continue;
      quotas.push_back({static_cast<uint16_t>(pi), static_cast<uint16_t>(ci),
                        p.source_share * w[ci] / wsum, p.packet_share * w[ci] / wsum});
    }
  }
  if (quotas.size() > 65535) return InvalidArgument("profiles × countries: more than 65535 cells");
  std::vector<double> q;
  for (const Quota& x : quotas) q.push_back(x.sources);
  std::vector<uint64_t> counts = Apportion(q, spec_.sources);

  uint32_t next = 0;
  std::vector<double> cell_weights;
  for (size_t i = 0; i < quotas.size(); ++i) {
    if (counts[i] == 0) continue;
    Cell c{next, static_cast<uint32_t>(counts[i]), quotas[i].profile, quotas[i].country};
    next += c.count;
    const Profile& prof = profiles_[c.profile];
    if (prof.spec->tool != Tool::kBackscatter && quotas[i].packets > 0) {
      pop->send_cells.push_back(static_cast<uint32_t>(cells.size()));
      cell_weights.push_back(quotas[i].packets / prof.packets_per_probe);
    }
    cells.push_back(c);
  }
  if (!cell_weights.empty()) pop->cell_alias = AliasTable(cell_weights);

  // Sources: addresses, then distinct IPv4 addresses.
  ReserveHuge(sources, next);
  sources.resize(next);
  auto draw_v4 = [&](const Country& c, uint32_t* out) -> bool {
    for (int tries = 0; tries < 1000; ++tries) {
      const std::vector<uint64_t>& cum = c.v4->cum;
      uint64_t r = pop_rng_.Below64(cum.back());
      size_t k = std::upper_bound(cum.begin(), cum.end(), r) - cum.begin();
      uint64_t before = k == 0 ? 0 : cum[k - 1];
      uint32_t a = static_cast<uint32_t>(c.v4->ranges[k].first + (r - before));
      if (!Monitored4(a)) {
        *out = a;
        return true;
      }
    }
    return false;
  };
  for (size_t ci = 0; ci < cells.size(); ++ci) {
    const Cell& cell = cells[ci];
    const Profile& prof = profiles_[cell.profile];
    const Country& country = countries_[cell.country];
    for (uint32_t i = cell.base; i < cell.base + cell.count; ++i) {
      Source& s = sources[i];
      s.cell = static_cast<uint16_t>(ci);
      s.key = pop_rng_.Next32();
      s.hops = static_cast<uint8_t>(6 + pop_rng_.Below(12) + pop_rng_.Below(8));
      s.variant = pop_rng_.Uniform() < prof.spec->variant_share ? 1 : 0;
      if (prof.spec->family == 6) {
        const V6Block& b = kV6Blocks[country.v6_blocks[pop_rng_.Below(
            static_cast<uint32_t>(country.v6_blocks.size()))]];
        Prefix p = *Prefix::Parse(b.cidr);
        IpAddr a = p.base;
        for (int bit = p.length; bit < 128; bit += 8) {
          uint8_t rnd = static_cast<uint8_t>(pop_rng_.Next32());
          int in_byte = bit % 8;
          a.bytes[bit / 8] |= static_cast<uint8_t>(rnd & (0xffu >> in_byte));
          bit -= in_byte;
        }
        s.addr = static_cast<uint32_t>(v6_addrs.size());
        v6_addrs.push_back(a);
      } else if (!draw_v4(country, &s.addr)) {
        return InvalidArgument("ranges: country " + country.code +
                               " has no address outside the monitored prefixes");
      }
    }
  }
  // Make IPv4 addresses distinct: sort once, then redraw each repeat until it hits a free address.
  std::vector<uint64_t> keyed;
  for (uint32_t i = 0; i < sources.size(); ++i) {
    if (!profiles_[cells[sources[i].cell].profile].v6) {
      keyed.push_back((uint64_t{sources[i].addr} << 32) | i);
    }
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<uint32_t> repeats;
  sorted.clear();
  for (size_t k = 0; k < keyed.size(); ++k) {
    if (k > 0 && (keyed[k] >> 32) == (keyed[k - 1] >> 32)) {
      repeats.push_back(static_cast<uint32_t>(keyed[k]));
    } else {
      sorted.push_back(static_cast<uint32_t>(keyed[k] >> 32));
    }
  }
  std::set<uint32_t> redrawn;
  for (uint32_t i : repeats) {
    const Country& c = countries_[cells[sources[i].cell].country];
    for (int tries = 0;; ++tries) {
      if (tries == 1000) {
        return InvalidArgument("sources: the ranges of " + c.code + " hold too few addresses for " +
                               std::to_string(spec_.sources) + " distinct sources");
      }
      uint32_t a = 0;
      if (!draw_v4(c, &a)) return Internal("redraw failed");
      if (!std::binary_search(sorted.begin(), sorted.end(), a) && redrawn.insert(a).second) {
        sources[i].addr = a;
        break;
      }
    }
  }
  if (!redrawn.empty()) {
    std::vector<uint32_t> merged;
    merged.reserve(sorted.size() + redrawn.size());
    std::merge(sorted.begin(), sorted.end(), redrawn.begin(), redrawn.end(),
               std::back_inserter(merged));
    sorted = std::move(merged);
  }
  ReserveHuge(pop->per24, (size_t{1} << 24) / 64);
  pop->per24.assign((size_t{1} << 24) / 64, 0);
  for (uint32_t a : sorted) pop->per24[a >> 14] |= uint64_t{1} << ((a >> 8) & 63);
  return OkStatus();
}

Status Engine::BuildStreams() {
  const int64_t start = spec_.start_us, end = spec_.end_us, period = end - start;
  uint64_t flood_budget = 0;
  if (spec_.spoofed_flood_share > 0) {
    flood_budget = static_cast<uint64_t>(
        std::llround(static_cast<double>(spec_.packets) * spec_.spoofed_flood_share));
    flood_budget = std::min(flood_budget, spec_.packets);
  }
  const uint64_t rest = spec_.packets - flood_budget;

  // Backscatter's share of the non-spoofed packets, over the profiles that have sources.
  double share_sum = 0, backscatter_share = 0;
  std::vector<uint32_t> victims;
  std::set<uint16_t> counted;
  for (const Cell& c : cells_) {
    const ProfileSpec& p = *profiles_[c.profile].spec;
    if (p.tool == Tool::kBackscatter) {
      for (uint32_t i = c.base; i < c.base + c.count; ++i) victims.push_back(i);
    }
    if (counted.insert(c.profile).second) {
      share_sum += p.packet_share;
      if (p.tool == Tool::kBackscatter) backscatter_share += p.packet_share;
    }
  }
  uint64_t backscatter_budget = 0;
  if (!victims.empty() && share_sum > 0) {
    backscatter_budget = static_cast<uint64_t>(
        std::llround(static_cast<double>(rest) * backscatter_share / share_sum));
  }
  uint64_t population_budget = rest - backscatter_budget;
  if (population_budget > 0 && pop_->send_cells.empty()) {
    if (victims.empty()) {
      return InvalidArgument(
          "sources: no population to send the non-spoofed packets (sources is 0, or no country "
          "weight matches a range)");
    }
    backscatter_budget += population_budget;
    population_budget = 0;
  }

  // Population: hourly steps of the diurnal cycle.
  Stream pop;
  pop.kind = StreamKind::kPopulation;
  pop.budget = population_budget;
  constexpr int64_t kHour = 3600 * kSecond;
  for (int64_t h = start - start % kHour; h < end; h += kHour) {
    double hour = static_cast<double>((h / kHour) % 24) + 0.5;
    double rate = 1 + spec_.diurnal_amplitude *
                          std::cos(kTwoPi * (hour - spec_.diurnal_peak_hour_utc) / 24.0);
    pop.curve.Add(std::max(h, start), std::min(h + kHour, end), rate);
  }
  streams_.push_back(std::move(pop));

  // Backscatter: each victim suffers one attack (a quarter of them two), lasting 2 min to 6 h
  // (log-uniform), with heavy-tailed intensity.
  auto log_uniform = [&](double lo, double hi) {
    return std::exp(std::log(lo) + pop_rng_.Uniform() * (std::log(hi) - std::log(lo)));
  };
  auto place = [&](Episode& e, double duration_us) {
    auto dur = static_cast<int64_t>(std::min<double>(duration_us, static_cast<double>(period)));
    dur = std::max<int64_t>(dur, 1);
    e.start =
        start + static_cast<int64_t>(pop_rng_.Below64(static_cast<uint64_t>(period - dur) + 1));
    e.end = e.start + dur;
  };
  if (backscatter_budget > 0) {
    Stream bs;
    bs.kind = StreamKind::kBackscatter;
    bs.budget = backscatter_budget;
    for (uint32_t v : victims) {
      const Profile& prof = profiles_[cells_[Src(v).cell].profile];
      int attacks = pop_rng_.Uniform() < 0.25 ? 2 : 1;
      for (int a = 0; a < attacks; ++a) {
        Episode e;
        e.who = v;
        place(e, log_uniform(120.0 * kSecond, 6 * 3600.0 * kSecond));
        double intensity = 1.0 / std::pow(1.0 - pop_rng_.Uniform(), 0.7);  // Pareto tail
        e.rate = intensity / static_cast<double>(e.end - e.start);
        e.port = prof.ports[prof.port_alias.Sample(pop_rng_.Next())];
        double k = pop_rng_.Uniform();
        e.kind = static_cast<uint8_t>(k < 0.6    ? BackscatterKind::kSynAck
                                      : k < 0.75 ? BackscatterKind::kRstAck
                                      : k < 0.85 ? BackscatterKind::kRst
                                                 : BackscatterKind::kIcmpUnreach);
        bs.episodes.push_back(e);
      }
    }
    streams_.push_back(std::move(bs));
  }

  // Spoofed floods: 10 min to 3 h each, at one monitored address and a service port.
  if (flood_budget > 0) {
    Stream fl;
    fl.kind = StreamKind::kFlood;
    fl.budget = flood_budget;
    static constexpr uint16_t kFloodPorts[] = {80, 80, 443, 443, 22, 3389, 53, 25565};
    for (int i = 0; i < spec_.flood_episodes; ++i) {
      Episode e;
      place(e, log_uniform(600.0 * kSecond, 3 * 3600.0 * kSecond));
      e.rate = (1 + 9 * pop_rng_.Uniform()) / static_cast<double>(e.end - e.start);
      uint64_t r = pop_rng_.Below64(dst4_total_);
      for (const auto& [base, size] : dst4_) {
        if (r < size) {
          e.who = static_cast<uint32_t>(base + r);
          break;
        }
        r -= size;
      }
      e.port = kFloodPorts[pop_rng_.Below(static_cast<uint32_t>(std::size(kFloodPorts)))];
      e.kind = static_cast<uint8_t>(pop_rng_.Below(2));  // 0: hping3-like, 1: randomised
      e.ttl = static_cast<uint8_t>(64 - 6 - pop_rng_.Below(16));
      fl.episodes.push_back(e);
    }
    spoof_key_ = pop_rng_.Next32();
    for (uint32_t i = 0; i < kSpoofAhead; ++i) spoof_ahead_[i] = Permute32(i, spoof_key_);
    streams_.push_back(std::move(fl));
  }
  for (Stream& s : planted_streams_) streams_.push_back(std::move(s));
  planted_streams_.clear();
  for (Stream& s : streams_) {
    if (s.kind == StreamKind::kPlanted) continue;  // curve built in BuildPlanted()
    std::stable_sort(s.episodes.begin(), s.episodes.end(),
                     [](const Episode& a, const Episode& b) { return a.start < b.start; });
    for (const Episode& e : s.episodes) s.curve.Add(e.start, e.end, e.rate);
    s.curve.Build();
    s.active.Init(s.episodes);
  }
  return OkStatus();
}

Status Engine::BuildPlanted() {
  const int64_t hour = 3600 * kSecond;
  planted_profiles_.reserve(spec_.planted.size());
  std::set<std::string> names;
  for (const ProfileSpec& p : spec_.profiles) names.insert(p.name);
  auto country_index = [&](const std::string& cc) -> uint16_t {
    for (size_t i = 0; i < countries_.size(); ++i) {
      if (countries_[i].code == cc) return static_cast<uint16_t>(i);
    }
    countries_.push_back({cc, 0, ranges_.Find(cc), {}});
    return static_cast<uint16_t>(countries_.size() - 1);
  };
  for (size_t k = 0; k < spec_.planted.size(); ++k) {
    const PlantedSpec& ps = spec_.planted[k];
    std::string where = "planted[" + std::to_string(k) + "] '" + ps.name + "': ";
    if (ps.name.empty() || !names.insert(ps.name).second) {
      return InvalidArgument(where + "name: empty or used twice");
    }
    if (ps.tool == Tool::kBackscatter || ps.tool == Tool::kSpoofedFlood) {
      return InvalidArgument(where + "tool: backscatter and spoofed-flood cannot be planted");
    }
    if (ps.packets > 0 && ps.sources.empty()) return InvalidArgument(where + "sources: none");
    if (ps.start_us < spec_.start_us || ps.end_us > spec_.end_us || ps.end_us <= ps.start_us) {
      return InvalidArgument(where + "start_us/end_us: not a window within the trace");
    }
    if (!(ps.rate_start >= 0 && ps.rate_end >= 0 && ps.rate_start + ps.rate_end > 0)) {
      return InvalidArgument(where + "rate_start/rate_end: negative or both 0");
    }
    ProfileSpec prof_spec;
    prof_spec.name = ps.name;
    prof_spec.tool = ps.tool;
    prof_spec.ports = ps.ports;
    planted_profiles_.push_back(prof_spec);
    Profile prof;
    prof.spec = &planted_profiles_.back();
    prof.tool = ps.tool;
    std::vector<double> w;
    for (const PortWeight& pw : ps.ports) {
      prof.ports.push_back(pw.port);
      w.push_back(pw.weight);
    }
    double wsum = std::accumulate(w.begin(), w.end(), 0.0);
    if (ps.tool != Tool::kPing && !(wsum > 0)) {
      return InvalidArgument(where + "ports: none with a positive weight");
    }
    if (!w.empty()) prof.port_alias = AliasTable(w);
    profiles_.push_back(std::move(prof));
    Cell cell{pop_sources_ + static_cast<uint32_t>(planted_sources_.size()),
              static_cast<uint32_t>(ps.sources.size()), static_cast<uint16_t>(profiles_.size() - 1),
              country_index(std::string(ps.country.data(), 2))};
    planted_cell_.push_back(static_cast<uint32_t>(cells_.size()));
    cells_.push_back(cell);
    for (uint32_t a : ps.sources) {
      Source s;
      s.addr = a;
      // Derived from the address alone: the same source looks the same in every trace.
      s.key = static_cast<uint32_t>(Mix64(a ^ 0x706c6e74ULL));
      s.hops = static_cast<uint8_t>(6 + (s.key >> 8) % 20);
      s.cell = static_cast<uint16_t>(planted_cell_.back());
      planted_sources_.push_back(s);
      planted_sorted_.push_back(a);
    }
    Stream st;
    st.kind = StreamKind::kPlanted;
    st.planted = static_cast<uint32_t>(k);
    st.budget = ps.packets;
    const double len = static_cast<double>(ps.end_us - ps.start_us);
    for (int64_t h = ps.start_us; h < ps.end_us; h += hour) {
      double mid = (static_cast<double>(h - ps.start_us) +
                    static_cast<double>(std::min(h + hour, ps.end_us) - h) / 2) /
                   len;
      st.curve.Add(h, std::min(h + hour, ps.end_us),
                   std::max(1e-9, ps.rate_start + (ps.rate_end - ps.rate_start) * mid));
    }
    st.curve.Build();
    if (ps.packets > 0) planted_streams_.push_back(std::move(st));
  }
  planted_packets_.assign(spec_.planted.size(), 0);
  std::sort(planted_sorted_.begin(), planted_sorted_.end());
  silent_.assign(countries_.size(), {});
  for (const SilentCountry& sc : spec_.silent) {
    std::string cc(sc.country.data(), 2);
    if (sc.share >= 1 && sc.asn == 0) {
      for (size_t i = 0; i < countries_.size(); ++i) {
        if (countries_[i].code == cc) {
          silent_[i].push_back({sc.start_us, sc.end_us});
          any_silent_ = true;
        }
      }
      continue;
    }
    // Part of a country, or an AS: the sources to silence, by a hash of the address (not drawn
    // from an Rng, so that every trace of the population picks the same ones).
    SilentSources ss{sc.start_us, sc.end_us, {}};
    for (const Cell& c : pop_->cells) {
      if (sc.asn == 0 && countries_[c.country].code != cc) continue;
      const bool v6 = profiles_[c.profile].v6;
      for (uint32_t i = c.base; i < c.base + c.count; ++i) {
        const uint64_t h = Mix64(uint64_t{pop_->sources[i].addr} | (uint64_t{v6} << 32));
        if (static_cast<double>(h >> 11) * 0x1p-53 >= sc.share) continue;
        if (sc.asn != 0 && SourceAsn(c, i) != sc.asn) continue;
        ss.sources.push_back(i);
      }
    }
    std::sort(ss.sources.begin(), ss.sources.end());
    if (!ss.sources.empty()) {
      silent_sources_.push_back(std::move(ss));
      any_silent_ = true;
    }
  }
  return OkStatus();
}

uint32_t Engine::SourceAsn(const Cell& c, uint32_t i) const {
  const Source& s = Src(i);
  uint32_t asn = 0;
  if (profiles_[c.profile].spec->family == 6) {
    const IpAddr& addr = pop_->v6_addrs[s.addr];
    for (const V6Block& b : kV6Blocks) {
      auto p = Prefix::Parse(b.cidr);
      if (p->Contains(addr)) asn = b.asn;
    }
    return asn;
  }
  static const std::vector<SourceRange> kNone;
  const Country& country = countries_[c.country];
  const std::vector<SourceRange>& ranges = country.v4 ? country.v4->ranges : kNone;
  auto it = std::upper_bound(ranges.begin(), ranges.end(), s.addr,
                             [](uint32_t a, const SourceRange& r) { return a < r.first; });
  // Ranges of a country may come unsorted: fall back to a scan.
  if (it != ranges.begin() && (it - 1)->first <= s.addr && s.addr <= (it - 1)->last) {
    return (it - 1)->asn;
  }
  for (const SourceRange& r : ranges) {
    if (r.first <= s.addr && s.addr <= r.last) asn = r.asn;
  }
  return asn;
}

void Engine::FillTruth(GroundTruth* truth, bool with_sources) const {
  GroundTruth g;
  g.seed = spec_.seed;
  g.start_us = spec_.start_us;
  g.end_us = spec_.end_us;
  for (const Prefix& p : spec_.monitored) g.monitored.push_back(p.ToString());
  for (const Profile& p : profiles_) g.profiles.push_back(p.spec->name);
  for (int i = 0; i < kToolCount; ++i) g.tools[i].packets = tool_packets_[i];
  for (uint32_t k = 0; k < port_counts_.size(); ++k) {
    uint64_t n = port_counts_[k];
    if (n == 0 && port_spill_.empty()) continue;
    if (auto spill = port_spill_.find(k); spill != port_spill_.end()) n += spill->second;
    if (n) g.packets_by_port[MakePortKey(k >> 16 ? kProtoUdp : kProtoTcp, k & 0xffff)] = n;
  }
  if (icmp_packets_) g.packets_by_port[MakePortKey(kProtoIcmp, 0)] = icmp_packets_;
  if (icmp6_packets_) g.packets_by_port[MakePortKey(kProtoIcmp6, 0)] = icmp6_packets_;
  // Per cell first: the maps are keyed by strings, and a cell has one profile and one country.
  for (const Cell& c : cells_) {
    const Profile& prof = profiles_[c.profile];
    ToolTruth& tt = g.tools[static_cast<int>(prof.spec->tool)];
    tt.sources_population += c.count;
    uint64_t packets = 0, seen = 0;
    for (uint32_t i = c.base; i < c.base + c.count; ++i) {
      packets += source_packets_[i];
      seen += source_packets_[i] > 0;
    }
    if (seen == 0) continue;
    tt.sources_seen += seen;
    const std::string& cc = countries_[c.country].code;
    g.packets_by_country[cc] += packets;
    g.packets_by_profile[prof.spec->name] += packets;
    if (!with_sources) continue;
    for (uint32_t i = c.base; i < c.base + c.count; ++i) {
      if (source_packets_[i] == 0) continue;
      const Source& s = Src(i);
      SourceTruth st;
      st.tool = prof.spec->tool;
      st.profile = c.profile;
      st.country = {cc[0], cc[1]};
      st.packets = source_packets_[i];
      st.addr = prof.spec->family == 6 ? pop_->v6_addrs[s.addr] : IpAddr::V4(s.addr);
      st.asn = SourceAsn(c, i);
      g.sources.push_back(st);
    }
  }
  std::sort(g.sources.begin(), g.sources.end(),
            [](const SourceTruth& a, const SourceTruth& b) { return a.addr < b.addr; });
  ToolTruth& spoofed = g.tools[static_cast<int>(Tool::kSpoofedFlood)];
  spoofed.sources_seen = spoofed.sources_population = spoofed_;
  for (const Stream& s : streams_) {
    for (const Episode& e : s.episodes) {
      EpisodeTruth et;
      et.tool = s.kind == StreamKind::kFlood ? Tool::kSpoofedFlood : Tool::kBackscatter;
      et.addr = s.kind == StreamKind::kFlood ? IpAddr::V4(e.who) : IpAddr::V4(Src(e.who).addr);
      et.port = e.port;
      et.start_us = e.start;
      et.end_us = e.end;
      et.packets = e.packets;
      g.episodes.push_back(et);
    }
  }
  for (size_t k = 0; k < spec_.planted.size(); ++k) {
    PlantedTruth pt;
    pt.name = spec_.planted[k].name;
    pt.packets = planted_packets_[k];
    const Cell& c = cells_[planted_cell_[k]];
    for (uint32_t i = c.base; i < c.base + c.count; ++i) pt.sources_seen += source_packets_[i] > 0;
    g.planted.push_back(pt);
  }
  g.packets = std::accumulate(tool_packets_.begin(), tool_packets_.end(), uint64_t{0});
  g.packets_ipv6 = v6_packets_;
  g.retransmissions = retransmissions_;
  g.retransmissions_dropped = retransmissions_dropped_;
  *truth = std::move(g);
}

}  // namespace teiten::simulate::engine
