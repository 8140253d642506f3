// Internal to the generator: the engine behind WriteTrace(), shared by engine_build.cc (spec →
// population and streams, ground truth) and engine_run.cc (the packet loop).
//
// How the engine works.
//
// Population. Sources are split into cells (profile × country) by largest remainder, each cell a
// contiguous run of the source table, addresses drawn from the country's SourceRanges and made
// distinct. Within a cell, rank r of n is drawn as ⌊n·u^skew⌋: the heavy tail needs no per-source
// weights. A drawn source sends a short run of packets (mean 2), as scanners probe in bursts; this
// also halves the draws and keeps the per-tool code path predictable.
//
// Streams. Packets come from streams, each with a packet budget and a rate curve over time:
//   population  — the cells' background radiation, rate following the diurnal cycle;
//   backscatter — DoS attacks on victims, each an episode with its own start, end and rate;
//   flood       — spoofed SYN flood episodes, each aimed at one monitored address and port.
// A planted event (issue 3) will be one more stream. Time is cut into 1 s slots; a stream's
// packets up to the end of a slot are round(budget · F(t)) for its normalised cumulative rate F,
// which makes every budget exact. Within a slot the packets get evenly spread, jittered
// timestamps (non-decreasing by construction) and are dealt to the streams at random in
// proportion to what each still owes.
//
// Retransmissions. A Windows or Linux SYN that gets no answer is sent again after the stack's
// timeout. Pending ones wait in FIFO queues, one per delay (appending in time order keeps each
// queue sorted), and go out in place of the population stream's next fresh packet once due.
//
// Packets are built in place in the writer's buffer; checksums add the variable fields to
// precomputed sums of the constant ones.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/ip.h"
#include "common/status.h"
#include "simulate/generator.h"
#include "simulate/ground_truth.h"
#include "simulate/packet_format.h"
#include "simulate/pcap_writer.h"
#include "simulate/rng.h"

namespace teiten::simulate::engine {

using wire::kProtoIcmp;
using wire::kProtoIcmp6;
using wire::kProtoTcp;
using wire::kProtoUdp;

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kSlotUs = kSecond;
constexpr size_t kMaxPending = 1 << 20;
constexpr uint32_t kNoSource = 0xffffffffU;

// Gives `v` room for n elements in 2 MiB pages where the kernel allows (transparent huge pages
// on request). For tables read at random once per packet, a population's sources and their
// counts: at full scale they span 32 MB, and with 4 KiB pages nearly every packet missed the
// TLB. Call while `v` is empty, before its elements are first written.
template <class T>
void ReserveHuge(std::vector<T>& v, size_t n) {
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  v.reserve(n);
  auto a = reinterpret_cast<uintptr_t>(v.data());
  const uintptr_t e = a + n * sizeof(T);
  a = (a + kHuge - 1) & ~(kHuge - 1);
  if (e >= a + kHuge) madvise(reinterpret_cast<void*>(a), (e - a) & ~(kHuge - 1), MADV_HUGEPAGE);
}

// A rate curve: the sum of intervals of constant rate. Cumulative() is queried with
// non-decreasing times and walks forward.
class RateCurve {
 public:
  void Add(int64_t start, int64_t end, double rate) {
    if (end > start && rate > 0) intervals_.push_back({start, end, rate});
  }
  void Build() {
    std::vector<std::pair<int64_t, int>> events;  // (time, interval index ± 1)
    for (size_t i = 0; i < intervals_.size(); ++i) {
      events.push_back({intervals_[i].start, static_cast<int>(i) + 1});
      events.push_back({intervals_[i].end, -static_cast<int>(i) - 1});
    }
    std::sort(events.begin(), events.end());
    double rate = 0, cum = 0;
    int active = 0;
    for (size_t e = 0; e < events.size();) {
      int64_t t = events[e].first;
      if (!t_.empty()) cum += rate_.back() * static_cast<double>(t - t_.back());
      for (; e < events.size() && events[e].first == t; ++e) {
        int k = events[e].second;
        if (k > 0) {
          rate += intervals_[k - 1].rate;
          ++active;
        } else {
          rate -= intervals_[-k - 1].rate;
          --active;
        }
      }
      if (active == 0) rate = 0;  // no drift from adding and subtracting
      t_.push_back(t);
      cum_.push_back(cum);
      rate_.push_back(std::max(rate, 0.0));
    }
    total_ = cum_.empty() ? 0 : cum_.back();
  }
  double total() const { return total_; }
  // About the earliest time at which the cumulative rate reaches `c` (no cursor; any order).
  int64_t TimeOf(double c) const {
    if (t_.empty()) return 0;
    size_t i = std::upper_bound(cum_.begin(), cum_.end(), c) - cum_.begin();
    if (i == 0) return t_.front();
    if (i == cum_.size()) return t_.back();
    --i;
    if (rate_[i] <= 0) return t_[i];
    return t_[i] + static_cast<int64_t>((c - cum_[i]) / rate_[i]);
  }
  double Cumulative(int64_t t) {
    if (t_.empty() || t <= t_.front()) return 0;
    while (cursor_ + 1 < t_.size() && t_[cursor_ + 1] <= t) ++cursor_;
    return cum_[cursor_] + rate_[cursor_] * static_cast<double>(t - t_[cursor_]);
  }

 private:
  struct Interval {
    int64_t start, end;
    double rate;
  };
  std::vector<Interval> intervals_;
  std::vector<int64_t> t_;
  std::vector<double> cum_, rate_;
  double total_ = 0;
  size_t cursor_ = 0;
};

struct Country {
  std::string code;
  double weight = 0;
  const SourceRangeIndex::Country* v4 = nullptr;  // IPv4 ranges; nullptr when none
  std::vector<int> v6_blocks;                     // indices into kV6Blocks
};

struct Profile {
  const ProfileSpec* spec = nullptr;
  Tool tool = Tool::kLinux;  // copies of spec fields, one load away on the packet path
  bool v6 = false;
  double retransmit = 0;
  std::vector<uint16_t> ports;
  AliasTable port_alias;
  double packets_per_probe = 1;  // with retransmissions
};

struct Cell {
  uint32_t base = 0, count = 0;
  uint16_t profile = 0, country = 0;
};

// 12 bytes per population source. What a trace counts per source lives in the Engine.
struct Source {
  uint32_t addr = 0;  // IPv4 host order, or index into Population::v6_addrs
  uint32_t key = 0;   // per-source constant from which ports, IP ID bases, etc. derive
  uint16_t cell = 0;
  uint8_t hops = 0;     // routers between the source and the sensor
  uint8_t variant = 0;  // 1: the tool's alternative build (ProfileSpec::variant_share)
};

// The source population: cells and their sources, built from the profiles, country weights and
// source count alone. A scenario builds it once per phase and every trace (sensor-day) of the
// phase reads it: the same sources reach every sensor, and a quarter does not rebuild and sort
// millions of sources 1,830 times. Addresses avoid `monitored` of the spec it was built from
// (a scenario passes the union of all its sensors' prefixes).
struct Population {
  size_t profiles = 0;  // the spec's profile count, checked against each trace's
  uint64_t sources_wanted = 0;
  std::vector<Cell> cells;
  std::vector<Source> sources;
  std::vector<IpAddr> v6_addrs;
  std::vector<uint32_t> sorted;      // IPv4 addresses, sorted
  std::vector<uint64_t> per24;       // bit per /24 holding an IPv4 address of `sorted`
  AliasTable cell_alias;             // packet weight of the cells that send
  std::vector<uint32_t> send_cells;  // cell_alias index → cell
  bool Has(uint32_t a) const {
    return ((per24[a >> 14] >> ((a >> 8) & 63)) & 1) &&
           std::binary_search(sorted.begin(), sorted.end(), a);
  }
};

enum class BackscatterKind : uint8_t { kSynAck, kRst, kRstAck, kIcmpUnreach };

struct Episode {
  int64_t start = 0, end = 0;
  double rate = 0;
  uint32_t who = 0;  // backscatter: source index of the victim; flood: target IPv4
  uint16_t port = 0;
  uint8_t kind = 0;  // BackscatterKind, or flood variant
  uint8_t ttl = 0;
  uint64_t packets = 0;
};

// The episodes of a stream active in the current slot, drawn in proportion to their rates.
// A day of a full telescope has ~12,000 backscatter episodes, hundreds at a time, starting and
// ending in almost every slot: a Fenwick tree over integer weights (rate in units of the
// largest rate / 2^40) makes each start, end and draw O(log n), without the drift that adding
// and subtracting doubles would leave.
class ActiveEpisodes {
 public:
  void Init(const std::vector<Episode>& episodes) {
    const size_t n = episodes.size();
    double top = 0;
    for (const Episode& e : episodes) top = std::max(top, e.rate);
    weight_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const double w = top > 0 ? episodes[i].rate / top * 0x1.0p40 : 1;
      weight_[i] = std::max<uint64_t>(1, static_cast<uint64_t>(w));
    }
    tree_.assign(n + 1, 0);
    by_end_.resize(n);
    for (uint32_t i = 0; i < n; ++i) by_end_[i] = i;
    std::stable_sort(by_end_.begin(), by_end_.end(),
                     [&](uint32_t a, uint32_t b) { return episodes[a].end < episodes[b].end; });
    on_.assign(n, false);
    top_bit_ = n == 0 ? 0 : size_t{1} << (63 - std::countl_zero(uint64_t{n}));
  }
  // Episodes overlapping [t0, t1) become the active ones (times never decrease). One that
  // started and ended between two calls is never added.
  void Advance(const std::vector<Episode>& episodes, int64_t t0, int64_t t1) {
    for (; next_start_ < episodes.size() && episodes[next_start_].start < t1; ++next_start_) {
      if (episodes[next_start_].end > t0) Set(next_start_, true);
    }
    for (; next_end_ < by_end_.size() && episodes[by_end_[next_end_]].end <= t0; ++next_end_) {
      if (on_[by_end_[next_end_]]) Set(by_end_[next_end_], false);
    }
  }
  bool empty() const { return count_ == 0; }
  // The active episode whose share of the total weight holds `r`, a uniform 64-bit word.
  uint32_t Draw(uint64_t r) const {
    uint64_t x = static_cast<uint64_t>((static_cast<__uint128_t>(r) * total_) >> 64);
    size_t pos = 0;  // the largest prefix of tree indices whose weight is ≤ x
    for (size_t bit = top_bit_; bit != 0; bit >>= 1) {
      if (pos + bit < tree_.size() && tree_[pos + bit] <= x) {
        pos += bit;
        x -= tree_[pos];
      }
    }
    return static_cast<uint32_t>(pos);  // tree index pos + 1, episode pos
  }

 private:
  void Set(size_t i, bool on) {
    on_[i] = on;
    const uint64_t w = weight_[i];
    total_ = on ? total_ + w : total_ - w;
    count_ += on ? 1 : -1;
    for (size_t j = i + 1; j < tree_.size(); j += j & (~j + 1)) {
      tree_[j] = on ? tree_[j] + w : tree_[j] - w;
    }
  }
  std::vector<uint64_t> weight_, tree_;
  std::vector<uint32_t> by_end_;
  std::vector<bool> on_;
  size_t next_start_ = 0, next_end_ = 0, top_bit_ = 0;
  uint64_t total_ = 0;
  int64_t count_ = 0;
};

enum class StreamKind : uint8_t { kPopulation, kBackscatter, kFlood, kPlanted };

struct Stream {
  StreamKind kind = StreamKind::kPopulation;
  uint32_t planted = 0;  // kPlanted: index into GeneratorSpec::planted
  uint64_t budget = 0;
  uint64_t done = 0;  // packets allotted to slots so far
  RateCurve curve;
  std::vector<Episode> episodes;  // sorted by start
  ActiveEpisodes active;
};

// A SYN waiting to be sent again.
struct Pending {
  int64_t due = 0;
  uint32_t source = 0;
  uint32_t dst = 0;  // IPv4, or the host part of an IPv6 destination
  uint32_t seq = 0;
  uint16_t sport = 0, dport = 0;
  uint8_t dst_prefix = 0;  // IPv6 destination prefix index
  uint8_t attempt = 0;     // retransmissions sent so far
};

// A population draw: the cell and the source within it.
struct Pick {
  uint32_t cell = 0, source = 0;
};
constexpr uint32_t kPickAhead = 16;

// A FIFO of pending SYNs: a ring that grows by doubling (std::deque allocates per block).
class PendingQueue {
 public:
  bool empty() const { return head_ == tail_; }
  size_t size() const { return static_cast<size_t>(tail_ - head_); }
  const Pending& front() const { return buf_[head_ & mask_]; }
  void pop_front() { ++head_; }
  void push_back(const Pending& p) {
    if (size() == buf_.size()) Grow();
    buf_[tail_++ & mask_] = p;
  }

 private:
  void Grow() {
    std::vector<Pending> bigger(std::max<size_t>(64, 2 * buf_.size()));
    for (uint64_t i = head_; i < tail_; ++i) bigger[i - head_] = buf_[i & mask_];
    tail_ -= head_;
    head_ = 0;
    buf_.swap(bigger);
    mask_ = buf_.size() - 1;
  }
  std::vector<Pending> buf_;
  uint64_t head_ = 0, tail_ = 0, mask_ = 0;
};

class Engine {
 public:
  // `shared`: a population built by BuildShared() for this spec's profiles, country weights and
  // sources (and a population_seed); nullptr builds the trace's own.
  Engine(const GeneratorSpec& spec, const SourceRangeIndex& ranges,
         const Population* shared = nullptr)
      : spec_(spec),
        ranges_(ranges),
        pop_rng_(Mix64((spec.population_seed ? spec.population_seed : spec.seed) ^ 0x706f70)),
        pkt_rng_(Mix64(spec.seed ^ 0x706b74)),
        pop_(shared) {}

  Status Prepare();
  // The population of `spec` alone, to pass to the Engines of many traces.
  static Result<std::unique_ptr<Population>> BuildShared(const GeneratorSpec& spec,
                                                         const SourceRangeIndex& ranges);
  Status Run(PcapWriter* w);
  // with_sources false: every count, but no per-source list.
  void FillTruth(GroundTruth* truth, bool with_sources = true) const;

 private:
  // What a trace and a shared population both start from: the spec checked, destinations,
  // countries and profiles.
  Status BuildBase();
  Status Validate();
  Status BuildDestinations();
  Status BuildCountries();
  Status BuildProfiles();
  Status BuildPopulation(Population* pop);
  Status BuildStreams();
  Status BuildPlanted();
  bool Silent(uint16_t country, int64_t t) const {
    for (const auto& [a, b] : silent_[country]) {
      if (t >= a && t < b) return true;
    }
    return false;
  }
  // A partial or AS outage: the source is one of those silenced at t.
  bool SourceSilent(uint32_t source, int64_t t) const {
    for (const SilentSources& s : silent_sources_) {
      if (t >= s.start_us && t < s.end_us &&
          std::binary_search(s.sources.begin(), s.sources.end(), source)) {
        return true;
      }
    }
    return false;
  }
  // The AS of population source `i` in cell `c`, from the ranges (0 when none holds it).
  uint32_t SourceAsn(const Cell& c, uint32_t i) const;

  bool Monitored4(uint32_t a) const {
    for (const auto& [base, size] : dst4_) {
      if (a - base < size) return true;
    }
    return false;
  }
  uint32_t DrawDst4() {
    if (!dst4_table_.empty()) {
      return dst4_table_[pkt_rng_.Below(static_cast<uint32_t>(dst4_table_.size()))];
    }
    uint64_t r = pkt_rng_.Below64(dst4_total_);
    for (const auto& [base, size] : dst4_) {
      if (r < size) return static_cast<uint32_t>(base + r);
      r -= size;
    }
    return static_cast<uint32_t>(dst4_.back().first);
  }
  // IPv6 destination: a low host number within a monitored IPv6 prefix, as v6 scanners probe.
  void Dst6(uint8_t prefix, uint32_t host, uint8_t* out) const {
    std::memcpy(out, dst6_[prefix].base.bytes.data(), 16);
    for (int i = 0; i < 4; ++i) out[15 - i] |= static_cast<uint8_t>(host >> (8 * i));
  }
  uint32_t DrawHost6(uint8_t prefix) {
    int host_bits = 128 - dst6_[prefix].length;
    if (host_bits == 0) return 0;
    uint32_t mask = host_bits >= 16 ? 0xffff : (1u << host_bits) - 1;
    return 1 + (pkt_rng_.Next32() & mask & 0x3ff);  // ::1 … ::400, the usual targets
  }

  // Source `i`: of the population, or of a planted stream (numbered after the population).
  const Source& Src(uint32_t i) const {
    return i < pop_sources_ ? pop_->sources[i] : planted_sources_[i - pop_sources_];
  }

  Pick DrawPick() {
    const uint32_t ci = pop_->send_cells[pop_->cell_alias.Sample(pick_rng_.Next())];
    const Cell& c = cells_[ci];
    Pick p{ci, c.base + Rank(c.count)};
    __builtin_prefetch(&pop_->sources[p.source]);
    __builtin_prefetch(&source_packets_[p.source], 1);
    return p;
  }
  uint32_t Rank(uint32_t n) {
    double u = pick_rng_.Uniform();
    double x;
    if (skew_int_ == 4) {
      double u2 = u * u;
      x = u2 * u2;
    } else if (skew_int_ == 1) {
      x = u;
    } else {
      x = std::pow(u, spec_.activity_skew);
    }
    auto r = static_cast<uint32_t>(x * n);
    return r < n ? r : n - 1;
  }

  void Count(uint32_t source, Tool tool, uint8_t proto, uint32_t port, bool v6) {
    ++tool_packets_[static_cast<int>(tool)];
    if (proto == kProtoTcp || proto == kProtoUdp) {
      const uint32_t k = (proto == kProtoUdp ? 65536u : 0u) | port;
      if (++port_counts_[k] == 0) port_spill_[k] += 65536;
    } else if (proto == kProtoIcmp) {
      ++icmp_packets_;
    } else {
      ++icmp6_packets_;
    }
    if (v6) ++v6_packets_;
    if (source != kNoSource) ++source_packets_[source];
  }

  void EmitPopulation(int64_t t);
  void EmitFresh(uint32_t idx, const Profile& prof, int64_t t);
  void EmitRetransmission(const Pending& p, int64_t t);
  void EmitStackSyn(uint32_t idx, const Profile& prof, int64_t t, uint32_t dst, uint8_t dst_prefix,
                    uint32_t dport, uint32_t sport, uint32_t seq, int attempt);
  void EmitBackscatter(Stream& s, int64_t t);
  void EmitFlood(Stream& s, int64_t t);
  void EmitPlanted(Stream& s, int64_t t);
  void EmitSip(const Source& src, uint32_t dst, uint32_t dport, int64_t t);
  void EmitPing(const Source& src, const Profile& prof, int64_t t);
  uint32_t NextSpoofed();
  Episode& PickEpisode(Stream& s);
  void SchedulePending(const Pending& p, int64_t delay, int queue);
  const Pending* DuePending(int64_t t, int* queue);
  // A population, planted or monitored address (never to be used as a spoofed source).
  bool PopulationHas(uint32_t a) const {
    return pop_->Has(a) || Monitored4(a) ||
           (!planted_sorted_.empty() &&
            std::binary_search(planted_sorted_.begin(), planted_sorted_.end(), a));
  }

  const GeneratorSpec& spec_;
  const SourceRangeIndex& ranges_;
  Rng pop_rng_, pkt_rng_;
  PcapWriter* w_ = nullptr;
  int skew_int_ = 0;

  std::vector<std::pair<uint64_t, uint64_t>> dst4_;  // (base, size) of monitored IPv4 prefixes
  uint64_t dst4_total_ = 0;
  std::vector<uint32_t> dst4_table_;  // every monitored IPv4 address, when there are ≤ 2^22
  std::vector<Prefix> dst6_;
  std::vector<Country> countries_;
  std::vector<Profile> profiles_;
  const Population* pop_ = nullptr;  // shared, or own_pop_
  std::unique_ptr<Population> own_pop_;
  uint32_t pop_sources_ = 0;  // pop_->sources.size()
  std::vector<Cell> cells_;   // the population's, then one per planted stream
  std::vector<Source> planted_sources_;
  std::vector<uint32_t> planted_sorted_;  // their addresses, sorted
  std::vector<uint32_t> source_packets_;  // packets sent, per source (population, then planted)
  // Population draws are made kPickAhead packets early so that the source's record can be
  // prefetched: with a large population it is a cache miss that would otherwise stall.
  std::array<Pick, kPickAhead> picks_{};
  uint32_t pick_pos_ = 0;
  uint32_t run_left_ = 0;  // packets left in the current source's run
  uint32_t run_source_ = 0;
  const Profile* run_profile_ = nullptr;
  Rng pick_rng_{0};
  std::vector<Stream> streams_;
  // Planted streams: their profiles (spec_.planted order), cells and packet counts.
  std::vector<ProfileSpec> planted_profiles_;
  std::vector<Stream> planted_streams_;  // moved into streams_ by BuildStreams()
  std::vector<uint32_t> planted_cell_;
  std::vector<uint64_t> planted_packets_;
  std::vector<std::vector<std::pair<int64_t, int64_t>>> silent_;  // per country index
  bool any_silent_ = false;
  // Outages of part of a country or of an AS: the population sources they silence.
  struct SilentSources {
    int64_t start_us = 0, end_us = 0;
    std::vector<uint32_t> sources;  // population indices, sorted
  };
  std::vector<SilentSources> silent_sources_;
  static constexpr uint32_t kSpoofAhead = 8;
  uint32_t spoof_key_ = 0;
  uint32_t spoof_counter_ = 0;  // candidates taken; each is Permute32(counter), so all distinct
  std::array<uint32_t, kSpoofAhead> spoof_ahead_{};

  std::array<PendingQueue, 4> pending_;  // Linux +1 s, Linux +2 s, Windows +3 s, +6 s
  size_t pending_total_ = 0;
  int64_t next_due_ = INT64_MAX;

  std::array<uint64_t, kToolCount> tool_packets_{};
  // Packets per TCP port (0 … 65535), then per UDP port: 16-bit counters, so that the table
  // (256 KB) stays in cache beside the population; every 65,536th packet of a port carries
  // into port_spill_. Backscatter and any-port scans hit ports at random.
  std::vector<uint16_t> port_counts_ = std::vector<uint16_t>(2 * 65536);
  std::unordered_map<uint32_t, uint64_t> port_spill_;
  uint64_t icmp_packets_ = 0, icmp6_packets_ = 0, v6_packets_ = 0;
  uint64_t spoofed_ = 0, retransmissions_ = 0, retransmissions_dropped_ = 0;
};

}  // namespace teiten::simulate::engine
