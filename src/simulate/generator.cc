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
#include "simulate/generator.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <iterator>
#include <memory>
#include <numeric>
#include <set>

#include "simulate/packet_format.h"
#include "simulate/pcap_writer.h"
#include "simulate/rng.h"

namespace teiten::simulate {

namespace {

using namespace wire;  // NOLINT(google-build-using-namespace): internal header of this file

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kSlotUs = kSecond;
constexpr size_t kMaxPending = 1 << 20;
constexpr uint32_t kNoSource = 0xffffffffU;
constexpr double kTwoPi = 6.283185307179586;

// Option layouts as the stacks and tools send them.
constexpr uint8_t kOptMssBytes[] = {2, 4, 0x05, 0xb4};  // MSS 1460
// Windows 2003/XP: MSS, NOP, NOP, SACK_PERM (p0f: mss,nop,nop,sok; window 65535).
constexpr uint8_t kOptWin2003Bytes[] = {2, 4, 0x05, 0xb4, 1, 1, 4, 2};
// Windows 7/2008R2 and later: MSS, NOP, WS 8, NOP, NOP, SACK_PERM.
constexpr uint8_t kOptWin7Bytes[] = {2, 4, 0x05, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2};
// Linux: MSS, SACK_PERM, TS (TSval patched, TSecr 0), NOP, WS 7.
constexpr uint8_t kOptLinuxBytes[] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0,
                                      0, 0, 0,    0,    0, 0, 1, 3,  3, 7};
// A victim's SYN-ACK to a SYN without timestamps: MSS, NOP, NOP, SACK_PERM, NOP, WS 7.
constexpr uint8_t kOptSynAckBytes[] = {2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7};
const TcpOptions kOptMss = MakeOptions(kOptMssBytes);
const TcpOptions kOptWin2003 = MakeOptions(kOptWin2003Bytes);
const TcpOptions kOptWin7 = MakeOptions(kOptWin7Bytes);
const TcpOptions kOptLinux = MakeOptions(kOptLinuxBytes, 8);
const TcpOptions kOptSynAck = MakeOptions(kOptSynAckBytes);

// The Netis/Netcore backdoor's login string, which scanners send to 53413/UDP.
constexpr uint8_t kNetisPayload[] = {'A', 'A', 'A', 'A', 'A', 'A', 'A', 'A',
                                     'n', 'e', 't', 'c', 'o', 'r', 'e', 0};
// Windows ping's 32 data bytes.
constexpr char kWindowsPingData[] = "abcdefghijklmnopqrstuvwabcdefghi";

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
  std::vector<SourceRange> ranges;  // IPv4
  std::vector<uint64_t> cum;        // cumulative sizes, for drawing an address
  std::vector<int> v6_blocks;       // indices into kV6Blocks
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

// 16 bytes per population source.
struct Source {
  uint32_t addr = 0;  // IPv4 host order, or index into v6_addrs_
  uint32_t key = 0;   // per-source constant from which ports, IP ID bases, etc. derive
  uint32_t packets = 0;
  uint16_t cell = 0;
  uint8_t hops = 0;     // routers between the source and the sensor
  uint8_t variant = 0;  // 1: the tool's alternative build (ProfileSpec::variant_share)
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

enum class StreamKind : uint8_t { kPopulation, kBackscatter, kFlood };

struct Stream {
  StreamKind kind = StreamKind::kPopulation;
  uint64_t budget = 0;
  uint64_t done = 0;  // packets allotted to slots so far
  RateCurve curve;
  std::vector<Episode> episodes;  // sorted by start
  size_t next_episode = 0;
  std::vector<uint32_t> active;
  std::vector<double> active_cum;
};

// Two-digit decimal and hexadecimal strings, for writing numbers into payloads quickly.
constexpr std::array<char, 200> kDecimalPairs = [] {
  std::array<char, 200> t{};
  for (int i = 0; i < 100; ++i) {
    t[2 * i] = static_cast<char>('0' + i / 10);
    t[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return t;
}();
constexpr std::array<char, 512> kHexPairs = [] {
  std::array<char, 512> t{};
  constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 256; ++i) {
    t[2 * i] = kHex[i >> 4];
    t[2 * i + 1] = kHex[i & 15];
  }
  return t;
}();

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
  Engine(const GeneratorSpec& spec, const std::vector<SourceRange>& ranges)
      : spec_(spec),
        ranges_(ranges),
        pop_rng_(Mix64(spec.seed ^ 0x706f70)),
        pkt_rng_(Mix64(spec.seed ^ 0x706b74)) {}

  Status Prepare() {
    RETURN_IF_ERROR(Validate());
    RETURN_IF_ERROR(BuildDestinations());
    RETURN_IF_ERROR(BuildCountries());
    RETURN_IF_ERROR(BuildProfiles());
    RETURN_IF_ERROR(BuildPopulation());
    RETURN_IF_ERROR(BuildStreams());
    return OkStatus();
  }
  Status Run(PcapWriter* w);
  void FillTruth(GroundTruth* truth) const;

 private:
  Status Validate();
  Status BuildDestinations();
  Status BuildCountries();
  Status BuildProfiles();
  Status BuildPopulation();
  Status BuildStreams();

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

  Pick DrawPick() {
    const Cell& c = cells_[population_cells_[cell_alias_.Sample(pick_rng_.Next())]];
    Pick p{static_cast<uint32_t>(&c - cells_.data()), c.base + Rank(c.count)};
    __builtin_prefetch(&sources_[p.source], 1);
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
    if (proto == kProtoTcp) {
      ++tcp_ports_[port];
    } else if (proto == kProtoUdp) {
      ++udp_ports_[port];
    } else if (proto == kProtoIcmp) {
      ++icmp_packets_;
    } else {
      ++icmp6_packets_;
    }
    if (v6) ++v6_packets_;
    if (source != kNoSource) ++sources_[source].packets;
  }

  void EmitPopulation(int64_t t);
  void EmitFresh(uint32_t idx, const Profile& prof, int64_t t);
  void EmitRetransmission(const Pending& p, int64_t t);
  void EmitStackSyn(uint32_t idx, const Profile& prof, int64_t t, uint32_t dst, uint8_t dst_prefix,
                    uint32_t dport, uint32_t sport, uint32_t seq, int attempt);
  void EmitBackscatter(Stream& s, int64_t t);
  void EmitFlood(Stream& s, int64_t t);
  void EmitSip(const Source& src, uint32_t dst, uint32_t dport, int64_t t);
  void EmitPing(const Source& src, const Profile& prof, int64_t t);
  uint32_t NextSpoofed();
  Episode& PickEpisode(Stream& s);
  void SchedulePending(const Pending& p, int64_t delay, int queue);
  const Pending* DuePending(int64_t t, int* queue);
  bool PopulationHas(uint32_t a) const {
    if (!((pop24_[a >> 14] >> ((a >> 8) & 63)) & 1)) return false;
    return std::binary_search(sorted_pop_.begin(), sorted_pop_.end(), a) || Monitored4(a);
  }

  const GeneratorSpec& spec_;
  const std::vector<SourceRange>& ranges_;
  Rng pop_rng_, pkt_rng_;
  PcapWriter* w_ = nullptr;
  int skew_int_ = 0;

  std::vector<std::pair<uint64_t, uint64_t>> dst4_;  // (base, size) of monitored IPv4 prefixes
  uint64_t dst4_total_ = 0;
  std::vector<uint32_t> dst4_table_;  // every monitored IPv4 address, when there are ≤ 2^22
  std::vector<Prefix> dst6_;
  std::vector<Country> countries_;
  std::vector<Profile> profiles_;
  std::vector<Cell> cells_;
  std::vector<Source> sources_;
  std::vector<IpAddr> v6_addrs_;
  std::vector<uint32_t> sorted_pop_;  // population IPv4 addresses, sorted
  std::vector<uint64_t> pop24_;       // bit per /24 holding a population or monitored address
  AliasTable cell_alias_;
  std::vector<uint32_t> population_cells_;  // cell_alias_ index → cell
  // Population draws are made kPickAhead packets early so that the source's record can be
  // prefetched: with a large population it is a cache miss that would otherwise stall.
  std::array<Pick, kPickAhead> picks_{};
  uint32_t pick_pos_ = 0;
  uint32_t run_left_ = 0;  // packets left in the current source's run
  uint32_t run_source_ = 0;
  const Profile* run_profile_ = nullptr;
  Rng pick_rng_{0};
  std::vector<Stream> streams_;
  static constexpr uint32_t kSpoofAhead = 8;
  uint32_t spoof_key_ = 0;
  uint32_t spoof_counter_ = 0;  // candidates taken; each is Permute32(counter), so all distinct
  std::array<uint32_t, kSpoofAhead> spoof_ahead_{};

  std::array<PendingQueue, 4> pending_;  // Linux +1 s, Linux +2 s, Windows +3 s, +6 s
  size_t pending_total_ = 0;
  int64_t next_due_ = INT64_MAX;

  std::array<uint64_t, kToolCount> tool_packets_{};
  std::vector<uint64_t> tcp_ports_ = std::vector<uint64_t>(65536);
  std::vector<uint64_t> udp_ports_ = std::vector<uint64_t>(65536);
  uint64_t icmp_packets_ = 0, icmp6_packets_ = 0, v6_packets_ = 0;
  uint64_t spoofed_ = 0, retransmissions_ = 0, retransmissions_dropped_ = 0;
};

constexpr int64_t kPendingDelay[4] = {1 * kSecond, 2 * kSecond, 3 * kSecond, 6 * kSecond};
constexpr int kLinuxFirst = 0, kWindowsFirst = 2;

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
  for (size_t i = 0; i < ranges_.size(); ++i) {
    if (ranges_[i].last < ranges_[i].first) {
      return InvalidArgument("ranges[" + std::to_string(i) + "]: last before first");
    }
  }
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
    countries_.push_back({cc, w, {}, {}, {}});
  }
  for (const SourceRange& r : ranges_) {
    auto it = index.find(std::string(r.country.data(), 2));
    if (it == index.end()) continue;
    Country& c = countries_[it->second];
    c.ranges.push_back(r);
    uint64_t prev = c.cum.empty() ? 0 : c.cum.back();
    c.cum.push_back(prev + (uint64_t{r.last} - r.first + 1));
  }
  bool any_v4 = false;
  for (const Country& c : countries_) any_v4 |= !c.ranges.empty();
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

Status Engine::BuildPopulation() {
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
      bool usable = p.family == 4 ? !c.ranges.empty() : !c.v6_blocks.empty();
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
      population_cells_.push_back(static_cast<uint32_t>(cells_.size()));
      cell_weights.push_back(quotas[i].packets / prof.packets_per_probe);
    }
    cells_.push_back(c);
  }
  if (!cell_weights.empty()) cell_alias_ = AliasTable(cell_weights);

  // Sources: addresses, then distinct IPv4 addresses.
  sources_.resize(next);
  auto draw_v4 = [&](const Country& c, uint32_t* out) -> bool {
    for (int tries = 0; tries < 1000; ++tries) {
      uint64_t r = pop_rng_.Below64(c.cum.back());
      size_t k = std::upper_bound(c.cum.begin(), c.cum.end(), r) - c.cum.begin();
      uint64_t before = k == 0 ? 0 : c.cum[k - 1];
      uint32_t a = static_cast<uint32_t>(c.ranges[k].first + (r - before));
      if (!Monitored4(a)) {
        *out = a;
        return true;
      }
    }
    return false;
  };
  for (size_t ci = 0; ci < cells_.size(); ++ci) {
    const Cell& cell = cells_[ci];
    const Profile& prof = profiles_[cell.profile];
    const Country& country = countries_[cell.country];
    for (uint32_t i = cell.base; i < cell.base + cell.count; ++i) {
      Source& s = sources_[i];
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
        s.addr = static_cast<uint32_t>(v6_addrs_.size());
        v6_addrs_.push_back(a);
      } else if (!draw_v4(country, &s.addr)) {
        return InvalidArgument("ranges: country " + country.code +
                               " has no address outside the monitored prefixes");
      }
    }
  }
  // Make IPv4 addresses distinct: sort once, then redraw each repeat until it hits a free address.
  std::vector<uint64_t> keyed;
  for (uint32_t i = 0; i < sources_.size(); ++i) {
    if (!profiles_[cells_[sources_[i].cell].profile].v6) {
      keyed.push_back((uint64_t{sources_[i].addr} << 32) | i);
    }
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<uint32_t> repeats;
  sorted_pop_.clear();
  for (size_t k = 0; k < keyed.size(); ++k) {
    if (k > 0 && (keyed[k] >> 32) == (keyed[k - 1] >> 32)) {
      repeats.push_back(static_cast<uint32_t>(keyed[k]));
    } else {
      sorted_pop_.push_back(static_cast<uint32_t>(keyed[k] >> 32));
    }
  }
  std::set<uint32_t> redrawn;
  for (uint32_t i : repeats) {
    const Country& c = countries_[cells_[sources_[i].cell].country];
    for (int tries = 0;; ++tries) {
      if (tries == 1000) {
        return InvalidArgument("sources: the ranges of " + c.code + " hold too few addresses for " +
                               std::to_string(spec_.sources) + " distinct sources");
      }
      uint32_t a = 0;
      if (!draw_v4(c, &a)) return Internal("redraw failed");
      if (!std::binary_search(sorted_pop_.begin(), sorted_pop_.end(), a) &&
          redrawn.insert(a).second) {
        sources_[i].addr = a;
        break;
      }
    }
  }
  if (!redrawn.empty()) {
    std::vector<uint32_t> merged;
    merged.reserve(sorted_pop_.size() + redrawn.size());
    std::merge(sorted_pop_.begin(), sorted_pop_.end(), redrawn.begin(), redrawn.end(),
               std::back_inserter(merged));
    sorted_pop_ = std::move(merged);
  }
  pop24_.assign((uint64_t{1} << 24) / 64, 0);
  auto mark = [&](uint32_t a) { pop24_[a >> 14] |= uint64_t{1} << ((a >> 8) & 63); };
  for (uint32_t a : sorted_pop_) mark(a);
  for (const auto& [base, size] : dst4_) {
    for (uint64_t a = base; a < base + size; a += 256) mark(static_cast<uint32_t>(a));
  }
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
  if (population_budget > 0 && population_cells_.empty()) {
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
      const Profile& prof = profiles_[cells_[sources_[v].cell].profile];
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
  for (Stream& s : streams_) {
    std::stable_sort(s.episodes.begin(), s.episodes.end(),
                     [](const Episode& a, const Episode& b) { return a.start < b.start; });
    for (const Episode& e : s.episodes) s.curve.Add(e.start, e.end, e.rate);
    s.curve.Build();
  }
  return OkStatus();
}

Episode& Engine::PickEpisode(Stream& s) {
  double r = pkt_rng_.Uniform() * s.active_cum.back();
  size_t k = std::upper_bound(s.active_cum.begin(), s.active_cum.end(), r) - s.active_cum.begin();
  if (k >= s.active.size()) k = s.active.size() - 1;
  return s.episodes[s.active[k]];
}

void Engine::SchedulePending(const Pending& p, int64_t delay, int queue) {
  if (pending_total_ >= kMaxPending) {
    ++retransmissions_dropped_;
    return;
  }
  Pending q = p;
  q.due += delay;
  if (q.due >= spec_.end_us) return;  // would fall after the trace ends
  pending_[queue].push_back(q);
  ++pending_total_;
  next_due_ = std::min(next_due_, q.due);
}

const Pending* Engine::DuePending(int64_t t, int* queue) {
  if (next_due_ > t) return nullptr;
  int best = -1;
  for (int i = 0; i < 4; ++i) {
    if (!pending_[i].empty() &&
        (best < 0 || pending_[i].front().due < pending_[best].front().due)) {
      best = i;
    }
  }
  *queue = best;
  return &pending_[best].front();
}

// The SYN of an ordinary stack (Windows or Linux), fresh or retransmitted.
void Engine::EmitStackSyn(uint32_t idx, const Profile& prof, int64_t t, uint32_t dst,
                          uint8_t dst_prefix, uint32_t dport, uint32_t sport, uint32_t seq,
                          int attempt) {
  const Source& s = sources_[idx];
  const bool windows = prof.tool == Tool::kWindows;
  const bool v6 = prof.v6;
  const TcpOptions& opts = windows ? (s.variant ? kOptWin7 : kOptWin2003) : kOptLinux;
  TcpFields f;
  f.sport = sport;
  f.dport = dport;
  f.seq = seq;
  f.flags = tcp_flag::kSyn;
  f.window = windows ? (s.variant ? 8192 : 65535) : (s.variant ? 64240 : 29200);
  const uint32_t tsval = s.key + static_cast<uint32_t>(t / 1000);  // 1000 Hz clock
  uint8_t* p = w_->Begin(128);
  WriteEth(p, v6);
  size_t len;
  if (!v6) {
    const uint32_t src = s.addr;
    // Windows' IP ID is one counter for all the host's traffic: it climbs with time.
    const uint32_t id = windows ? ((s.key >> 16) + static_cast<uint32_t>(t / 8000)) & 0xffff
                                : pkt_rng_.Next32() >> 16;
    const uint32_t ttl = (windows ? 128 : 64) - s.hops;
    len = WriteTcp(p + kEthLen + kIp4Len, f, opts, tsval, Pseudo4(src, dst, kProtoTcp));
    WriteIp4(p + kEthLen, kProtoTcp, static_cast<uint32_t>(kIp4Len + len), id, ttl, true, src, dst);
    len += kEthLen + kIp4Len;
  } else {
    uint8_t d[16];
    Dst6(dst_prefix, dst, d);
    uint8_t* ip = p + kEthLen;
    uint64_t pseudo = WriteIp6(ip, kProtoTcp, 20 + opts.len, 64 - s.hops,
                               v6_addrs_[s.addr].bytes.data(), d, s.key);
    len = WriteTcp(ip + kIp6Len, f, opts, tsval, pseudo);
    len += kEthLen + kIp6Len;
  }
  w_->End(t, len);
  Count(idx, prof.tool, kProtoTcp, dport, v6);
  if (attempt > 0) ++retransmissions_;
  if (attempt < 2 && pkt_rng_.Uniform() < prof.retransmit) {
    Pending next{t,
                 idx,
                 dst,
                 seq,
                 static_cast<uint16_t>(sport),
                 static_cast<uint16_t>(dport),
                 dst_prefix,
                 static_cast<uint8_t>(attempt + 1)};
    SchedulePending(next, kPendingDelay[(windows ? kWindowsFirst : kLinuxFirst) + attempt],
                    (windows ? kWindowsFirst : kLinuxFirst) + attempt);
  }
}

void Engine::EmitRetransmission(const Pending& q, int64_t t) {
  const Source& s = sources_[q.source];
  EmitStackSyn(q.source, profiles_[cells_[s.cell].profile], t, q.dst, q.dst_prefix, q.dport,
               q.sport, q.seq, q.attempt);
}

void Engine::EmitPopulation(int64_t t) {
  int queue = -1;
  if (const Pending* due = DuePending(t, &queue)) {
    Pending q = *due;
    pending_[queue].pop_front();
    if (!pending_[queue].empty()) __builtin_prefetch(&sources_[pending_[queue].front().source], 1);
    --pending_total_;
    next_due_ = INT64_MAX;
    for (const auto& d : pending_) {
      if (!d.empty()) next_due_ = std::min(next_due_, d.front().due);
    }
    EmitRetransmission(q, t);
    return;
  }
  if (run_left_ == 0) {
    const Pick p = picks_[pick_pos_];
    picks_[pick_pos_] = DrawPick();
    pick_pos_ = (pick_pos_ + 1) % kPickAhead;
    run_source_ = p.source;
    run_profile_ = &profiles_[cells_[p.cell].profile];
    // Scanners probe in runs: a source sends L packets in a row, P(L = k) = 2^-k (k < 8).
    run_left_ = 1 + std::countr_zero(pick_rng_.Next32() | 0x80u);
  }
  --run_left_;
  EmitFresh(run_source_, *run_profile_, t);
}

void Engine::EmitFresh(uint32_t idx, const Profile& prof, int64_t t) {
  const Source& s = sources_[idx];
  const Tool tool = prof.tool;
  if (tool == Tool::kPing) {
    EmitPing(s, prof, t);
    Count(idx, tool, prof.v6 ? kProtoIcmp6 : kProtoIcmp, 0, prof.v6);
    return;
  }
  uint32_t dport = prof.ports[prof.port_alias.Sample(pkt_rng_.Next())];
  if (dport == 0) dport = 1 + pkt_rng_.Below(65535);
  if (prof.v6) {
    uint8_t prefix = static_cast<uint8_t>(pkt_rng_.Below(static_cast<uint32_t>(dst6_.size())));
    const uint32_t host = DrawHost6(prefix);
    const uint32_t sport = 32768 + pkt_rng_.Below(28232);
    EmitStackSyn(idx, prof, t, host, prefix, dport, sport, pkt_rng_.Next32(), 0);
    return;
  }
  const uint32_t dst = DrawDst4();
  const uint32_t src = s.addr;
  uint8_t* p = w_->Begin(1600);
  WriteEth(p, false);
  uint8_t* ip = p + kEthLen;
  uint8_t* l4 = ip + kIp4Len;
  TcpFields f;
  f.dport = dport;
  f.flags = tcp_flag::kSyn;
  size_t l4_len = 0;
  uint32_t id = 0, ttl = 0;
  bool df = false;
  uint8_t proto = kProtoTcp;
  switch (tool) {
    case Tool::kMirai:
      // scanner.c: source port fixed at start-up, random IP ID and window, seq = daddr, TTL 64.
      f.sport = std::max((s.key >> 8) & 0xffff, 1024u);
      f.seq = dst;
      {
        const uint32_t r = pkt_rng_.Next32();
        f.window = r >> 16;
        id = r & 0xffff;
      }
      ttl = 64 - s.hops;
      l4_len = WriteTcp(l4, f, kNoOptions, 0, Pseudo4(src, dst, kProtoTcp));
      break;
    case Tool::kZmap: {
      // Validation words derive from the target; the source port from the probe range.
      const uint64_t v = Mix64((uint64_t{s.key} << 32) ^ (uint64_t{dst} << 16) ^ dport);
      f.seq = static_cast<uint32_t>(v >> 32);
      f.sport = 32768 + static_cast<uint32_t>(((v & 0xffffffff) * 28232) >> 32);
      f.window = 65535;
      id = 54321;
      ttl = 255 - s.hops;
      l4_len = WriteTcp(l4, f, s.variant ? kOptMss : kNoOptions, 0, Pseudo4(src, dst, kProtoTcp));
      break;
    }
    case Tool::kMasscan:
      // One source port per scan; SYN cookie in seq; IP ID = (dst ^ dport ^ seq) & 0xffff.
      f.sport = 32768 + static_cast<uint32_t>((uint64_t{s.key} * 28232) >> 32);
      f.seq = static_cast<uint32_t>(
          Mix64((uint64_t{s.key ^ dst} << 32) ^ (uint64_t{f.sport} << 16) ^ dport) >> 32);
      f.window = 1024;
      id = (dst ^ dport ^ f.seq) & 0xffff;
      ttl = 255 - s.hops;
      l4_len = WriteTcp(l4, f, s.variant ? kOptMss : kNoOptions, 0, Pseudo4(src, dst, kProtoTcp));
      break;
    case Tool::kNmap:
      // One source port and one seq for the scan; TTL drawn from 37..59 per packet.
      f.sport = 33000 + static_cast<uint32_t>((uint64_t{s.key} * 32000) >> 32);
      f.seq = static_cast<uint32_t>(Mix64(s.key ^ 0x6e6d617000000000ULL));
      f.window = 1024;
      id = pkt_rng_.Next32() >> 16;
      ttl = std::max(37 + pkt_rng_.Below(23) - s.hops, 1u);
      l4_len = WriteTcp(l4, f, kOptMss, 0, Pseudo4(src, dst, kProtoTcp));
      break;
    case Tool::kWindows: {
      // Ephemeral ports climb with each connection: 1025–5000 (2003/XP), 49152–65535 (later).
      auto step = static_cast<uint32_t>(t / 250000);
      uint32_t sport = s.variant ? 49152 + (s.key + step) % 16384 : 1025 + (s.key + step) % 3976;
      EmitStackSyn(idx, prof, t, dst, 0, dport, sport, pkt_rng_.Next32(), 0);
      return;
    }
    case Tool::kLinux: {
      const uint32_t sport = 32768 + pkt_rng_.Below(28232);
      EmitStackSyn(idx, prof, t, dst, 0, dport, sport, pkt_rng_.Next32(), 0);
      return;
    }
    case Tool::kSipVicious:
      EmitSip(s, dst, dport, t);
      Count(idx, tool, kProtoUdp, dport, false);
      return;
    case Tool::kNetis: {
      proto = kProtoUdp;
      static const uint64_t kNetisSum = SumBytes(kNetisPayload, sizeof kNetisPayload);
      l4_len = WriteUdp(l4, 1024 + pkt_rng_.Below(64512), dport, kNetisPayload,
                        sizeof kNetisPayload, kNetisSum, Pseudo4(src, dst, kProtoUdp));
      id = pkt_rng_.Next32() >> 16;
      ttl = 64 - s.hops;
      break;
    }
    default:
      return;  // backscatter and floods come from their own streams
  }
  WriteIp4(ip, proto, static_cast<uint32_t>(kIp4Len + l4_len), id, ttl, df, src, dst);
  w_->End(t, kEthLen + kIp4Len + l4_len);
  Count(idx, tool, proto, dport, false);
}

// svmap's OPTIONS request, as darknets capture it (header order as svmap sends it).
void Engine::EmitSip(const Source& s, uint32_t dst, uint32_t dport, int64_t t) {
  char body[700];
  size_t n = 0;
  auto put = [&](std::string_view text) {
    std::memcpy(body + n, text.data(), text.size());
    n += text.size();
  };
  auto put_num = [&](uint64_t v) {
    char tmp[24];
    int k = 24;
    while (v >= 100) {
      k -= 2;
      std::memcpy(tmp + k, &kDecimalPairs[2 * (v % 100)], 2);
      v /= 100;
    }
    if (v >= 10) {
      k -= 2;
      std::memcpy(tmp + k, &kDecimalPairs[2 * v], 2);
    } else {
      tmp[--k] = static_cast<char>('0' + v);
    }
    std::memcpy(body + n, tmp + k, static_cast<size_t>(24 - k));
    n += static_cast<size_t>(24 - k);
  };
  auto put_ip = [&](uint32_t a) {
    for (int i = 3; i >= 0; --i) {
      put_num((a >> (8 * i)) & 0xff);
      if (i) body[n++] = '.';
    }
  };
  const uint32_t sport = s.variant ? 5061 + s.key % 8 : 5060;
  const uint32_t ext = 100 + (s.key % 4) * 100;
  put("OPTIONS sip:");
  put_num(ext);
  put("@");
  put_ip(dst);
  put(" SIP/2.0\r\nVia: SIP/2.0/UDP ");
  put_ip(s.addr);
  put(":");
  put_num(sport);
  put(";branch=z9hG4bK-");
  put_num(pkt_rng_.Next32());
  put(";rport\r\nContent-Length: 0\r\nFrom: \"sipvicious\"<sip:100@1.1.1.1>;tag=");
  for (int i = 0; i < 2; ++i) {
    uint64_t r = pkt_rng_.Next();
    for (int k = 0; k < 8; ++k, n += 2)
      std::memcpy(body + n, &kHexPairs[2 * ((r >> (8 * k)) & 0xff)], 2);
  }
  put("3133\r\nAccept: application/sdp\r\nUser-Agent: friendly-scanner\r\n"
      "To: \"sipvicious\"<sip:100@1.1.1.1>\r\nContact: sip:100@");
  put_ip(s.addr);
  put(":");
  put_num(sport);
  put("\r\nCSeq: 1 OPTIONS\r\nCall-ID: ");
  put_num(pkt_rng_.Next() % 1000000000000ULL);
  put_num(pkt_rng_.Next32());
  put("\r\nMax-Forwards: 70\r\n\r\n");

  uint8_t* p = w_->Begin(kEthLen + kIp4Len + 8 + n);
  WriteEth(p, false);
  uint8_t* udp = p + kEthLen + kIp4Len;
  std::memcpy(udp + 8, body, n);
  size_t l4 = WriteUdp(udp, sport, dport, udp + 8, n, SumBytes(udp + 8, n),
                       Pseudo4(s.addr, dst, kProtoUdp));
  WriteIp4(p + kEthLen, kProtoUdp, static_cast<uint32_t>(kIp4Len + l4), pkt_rng_.Next32() >> 16,
           64 - s.hops, true, s.addr, dst);
  w_->End(t, kEthLen + kIp4Len + l4);
}

// Echo requests: iputils ping (56 bytes: timeval, then bytes 0x10…0x37) or Windows ping (32).
void Engine::EmitPing(const Source& s, const Profile& prof, int64_t t) {
  const bool v6 = prof.v6;
  const bool windows = s.variant && !v6;
  uint8_t data[56];
  size_t n;
  uint32_t id, seq = (s.key + static_cast<uint32_t>((t - spec_.start_us) / kSecond)) & 0xffff;
  if (windows) {
    n = 32;
    std::memcpy(data, kWindowsPingData, n);
    id = 1;
  } else {
    n = 56;
    uint64_t sec = static_cast<uint64_t>(t / kSecond), usec = static_cast<uint64_t>(t % kSecond);
    for (int i = 0; i < 8; ++i) data[i] = static_cast<uint8_t>(sec >> (8 * i));
    for (int i = 0; i < 8; ++i) data[8 + i] = static_cast<uint8_t>(usec >> (8 * i));
    for (size_t i = 16; i < 56; ++i) data[i] = static_cast<uint8_t>(i);
    id = s.key & 0xffff;
  }
  uint8_t* p = w_->Begin(kEthLen + kIp6Len + 8 + n);
  WriteEth(p, v6);
  const size_t ip_len = v6 ? kIp6Len : kIp4Len;
  uint8_t* icmp = p + kEthLen + ip_len;
  icmp[0] = v6 ? 128 : 8;
  icmp[1] = 0;
  Put16(icmp + 2, 0);
  Put16(icmp + 4, id);
  Put16(icmp + 6, seq);
  std::memcpy(icmp + 8, data, n);
  uint64_t sum = (uint32_t{icmp[0]} << 8) + id + seq + SumBytes(data, n);
  if (v6) {
    uint8_t prefix = static_cast<uint8_t>(pkt_rng_.Below(static_cast<uint32_t>(dst6_.size())));
    uint8_t d[16];
    Dst6(prefix, DrawHost6(prefix), d);
    uint64_t pseudo = WriteIp6(p + kEthLen, kProtoIcmp6, static_cast<uint32_t>(8 + n), 64 - s.hops,
                               v6_addrs_[s.addr].bytes.data(), d, 0);
    sum += pseudo + 8 + n;
  } else {
    const uint32_t dst = DrawDst4();
    WriteIp4(p + kEthLen, kProtoIcmp, static_cast<uint32_t>(kIp4Len + 8 + n),
             pkt_rng_.Next32() >> 16, (windows ? 128 : 64) - s.hops, false, s.addr, dst);
  }
  Put16(icmp + 2, Fold(sum));
  w_->End(t, kEthLen + ip_len + 8 + n);
}

void Engine::EmitBackscatter(Stream& st, int64_t t) {
  Episode& e = PickEpisode(st);
  ++e.packets;
  const Source& s = sources_[e.who];
  const uint32_t src = s.addr, dst = DrawDst4();
  const uint32_t spoofed_port = 1024 + pkt_rng_.Below(64512);
  auto kind = static_cast<BackscatterKind>(e.kind);
  if (pkt_rng_.Below(100) < 15) kind = static_cast<BackscatterKind>(pkt_rng_.Below(4));
  const uint32_t ttl = (s.variant ? 128 : 64) - s.hops;
  uint8_t* p = w_->Begin(128);
  WriteEth(p, false);
  uint8_t* ip = p + kEthLen;
  uint8_t* l4 = ip + kIp4Len;
  size_t l4_len;
  uint8_t proto = kProtoTcp;
  uint32_t dport = spoofed_port;
  if (kind == BackscatterKind::kIcmpUnreach) {
    // Port unreachable, quoting the spoofed UDP packet: its IP header and first 8 bytes.
    proto = kProtoIcmp;
    uint8_t* inner = l4 + 8;
    const uint32_t inner_id = pkt_rng_.Next32() >> 16;
    const uint32_t inner_ttl = 40 + pkt_rng_.Below(20);
    WriteIp4(inner, kProtoUdp, 20 + 8 + 512, inner_id, inner_ttl, false, dst, src);
    Put16(inner + 20, spoofed_port);
    Put16(inner + 22, e.port);
    Put16(inner + 24, 8 + 512);
    Put16(inner + 26, pkt_rng_.Next32() >> 16);
    l4[0] = 3;
    l4[1] = 3;
    Put16(l4 + 2, 0);
    Put32(l4 + 4, 0);
    Put16(l4 + 2, Fold(SumBytes(l4, 8 + 28)));
    l4_len = 8 + 28;
    dport = 0;
  } else {
    TcpFields f;
    f.sport = e.port;
    f.dport = spoofed_port;
    switch (kind) {
      case BackscatterKind::kSynAck:
        f.flags = tcp_flag::kSyn | tcp_flag::kAck;
        f.seq = pkt_rng_.Next32();
        f.ack = pkt_rng_.Next32();
        f.window = s.variant ? 8192 : 29200;
        break;
      case BackscatterKind::kRst:
        f.flags = tcp_flag::kRst;
        f.seq = pkt_rng_.Next32();
        break;
      default:
        f.flags = tcp_flag::kRst | tcp_flag::kAck;
        f.ack = pkt_rng_.Next32();
        break;
    }
    l4_len = WriteTcp(l4, f, kind == BackscatterKind::kSynAck ? kOptSynAck : kNoOptions, 0,
                      Pseudo4(src, dst, kProtoTcp));
  }
  WriteIp4(ip, proto, static_cast<uint32_t>(kIp4Len + l4_len),
           s.variant ? pkt_rng_.Next32() >> 16 : 0, ttl, proto == kProtoTcp, src, dst);
  w_->End(t, kEthLen + kIp4Len + l4_len);
  Count(e.who, Tool::kBackscatter, proto, dport, false);
}

// Candidates are computed kSpoofAhead draws early and their bitmap words prefetched: the 2 MB
// bitmap does not stay in cache next to the packet buffer.
uint32_t Engine::NextSpoofed() {
  for (;;) {
    uint32_t a = spoof_ahead_[spoof_counter_ % kSpoofAhead];
    uint32_t next = Permute32(spoof_counter_ + kSpoofAhead, spoof_key_);
    spoof_ahead_[spoof_counter_ % kSpoofAhead] = next;
    __builtin_prefetch(&pop24_[next >> 14]);
    ++spoof_counter_;
    if (!PopulationHas(a)) return a;
  }
}

void Engine::EmitFlood(Stream& st, int64_t t) {
  Episode& e = PickEpisode(st);
  ++e.packets;
  const uint32_t src = NextSpoofed(), dst = e.who;
  ++spoofed_;
  TcpFields f;
  f.dport = e.port;
  f.flags = tcp_flag::kSyn;
  f.seq = pkt_rng_.Next32();
  uint32_t id = pkt_rng_.Next32() >> 16;
  if (e.kind == 0) {  // hping3 --flood --rand-source: window 512, source port climbing
    f.sport = 1024 + static_cast<uint32_t>(e.packets % 64512);
    f.window = 512;
  } else {
    f.sport = 1024 + pkt_rng_.Below(64512);
    f.window = pkt_rng_.Next32() >> 16;
  }
  uint8_t* p = w_->Begin(128);
  WriteEth(p, false);
  size_t l4 = WriteTcp(p + kEthLen + kIp4Len, f, kNoOptions, 0, Pseudo4(src, dst, kProtoTcp));
  WriteIp4(p + kEthLen, kProtoTcp, static_cast<uint32_t>(kIp4Len + l4), id, e.ttl, false, src, dst);
  w_->End(t, kEthLen + kIp4Len + l4);
  Count(kNoSource, Tool::kSpoofedFlood, kProtoTcp, e.port, false);
}

Status Engine::Run(PcapWriter* w) {
  w_ = w;
  pick_rng_ = Rng(Mix64(spec_.seed ^ 0x7069636b));
  if (!population_cells_.empty()) {
    for (Pick& p : picks_) p = DrawPick();
  }
  const int64_t start = spec_.start_us, end = spec_.end_us;
  std::vector<uint64_t> owed(streams_.size());
  for (int64_t t0 = start; t0 < end; t0 += kSlotUs) {
    const int64_t t1 = std::min(t0 + kSlotUs, end);
    uint64_t total = 0;
    for (size_t i = 0; i < streams_.size(); ++i) {
      Stream& s = streams_[i];
      uint64_t target = s.budget;
      if (t1 < end && s.curve.total() > 0) {
        double f = s.curve.Cumulative(t1) / s.curve.total();
        target = std::min<uint64_t>(
            s.budget, static_cast<uint64_t>(std::llround(f * static_cast<double>(s.budget))));
      }
      target = std::max(target, s.done);
      owed[i] = target - s.done;
      s.done = target;
      total += owed[i];
      if (owed[i] > 0 && !s.episodes.empty()) {
        // Episodes overlapping [t0, t1).
        bool changed = false;
        while (s.next_episode < s.episodes.size() && s.episodes[s.next_episode].start < t1) {
          s.active.push_back(static_cast<uint32_t>(s.next_episode++));
          changed = true;
        }
        size_t before = s.active.size();
        std::erase_if(s.active, [&](uint32_t k) { return s.episodes[k].end <= t0; });
        changed |= s.active.size() != before;
        if (changed || s.active_cum.empty()) {
          s.active_cum.clear();
          double c = 0;
          for (uint32_t k : s.active) s.active_cum.push_back(c += s.episodes[k].rate);
        }
        if (s.active.empty()) return Internal("packets owed by a stream with no active episode");
      }
    }
    if (total == 0) continue;
    // Packet i of the slot lies in [t0 + i·len/total, t0 + (i+1)·len/total), in 32.32 fixed
    // point: a multiply instead of a division per packet, and never decreasing.
    const uint64_t step = (static_cast<uint64_t>(t1 - t0) << 32) / total;
    uint64_t left = total;
    for (uint64_t i = 0; i < total; ++i, --left) {
      // One random word: the high half jitters the time, the low half picks the stream.
      const uint64_t r = pkt_rng_.Next();
      const uint64_t jitter = ((r >> 32) * step) >> 32;
      const int64_t t = t0 + static_cast<int64_t>((i * step + jitter) >> 32);
      size_t k = 0;
      if (streams_.size() > 1 && owed[0] != left) {
        uint64_t pick =
            left < (uint64_t{1} << 32) ? ((r & 0xffffffff) * left) >> 32 : pkt_rng_.Below64(left);
        while (pick >= owed[k]) pick -= owed[k++];
      }
      --owed[k];
      Stream& s = streams_[k];
      switch (s.kind) {
        case StreamKind::kPopulation:
          EmitPopulation(t);
          break;
        case StreamKind::kBackscatter:
          EmitBackscatter(s, t);
          break;
        case StreamKind::kFlood:
          EmitFlood(s, t);
          break;
      }
    }
  }
  return OkStatus();
}

void Engine::FillTruth(GroundTruth* truth) const {
  GroundTruth g;
  g.seed = spec_.seed;
  g.start_us = spec_.start_us;
  g.end_us = spec_.end_us;
  for (const Prefix& p : spec_.monitored) g.monitored.push_back(p.ToString());
  for (const Profile& p : profiles_) g.profiles.push_back(p.spec->name);
  for (int i = 0; i < kToolCount; ++i) g.tools[i].packets = tool_packets_[i];
  for (uint32_t port = 0; port < 65536; ++port) {
    if (tcp_ports_[port]) g.packets_by_port[MakePortKey(kProtoTcp, port)] = tcp_ports_[port];
    if (udp_ports_[port]) g.packets_by_port[MakePortKey(kProtoUdp, port)] = udp_ports_[port];
  }
  if (icmp_packets_) g.packets_by_port[MakePortKey(kProtoIcmp, 0)] = icmp_packets_;
  if (icmp6_packets_) g.packets_by_port[MakePortKey(kProtoIcmp6, 0)] = icmp6_packets_;
  for (const Source& s : sources_) {
    const Cell& c = cells_[s.cell];
    const Profile& prof = profiles_[c.profile];
    ToolTruth& tt = g.tools[static_cast<int>(prof.spec->tool)];
    ++tt.sources_population;
    if (s.packets == 0) continue;
    ++tt.sources_seen;
    const std::string& cc = countries_[c.country].code;
    g.packets_by_country[cc] += s.packets;
    g.packets_by_profile[prof.spec->name] += s.packets;
    SourceTruth st;
    st.tool = prof.spec->tool;
    st.profile = c.profile;
    st.country = {cc[0], cc[1]};
    st.packets = s.packets;
    if (prof.spec->family == 6) {
      st.addr = v6_addrs_[s.addr];
      for (const V6Block& b : kV6Blocks) {
        auto p = Prefix::Parse(b.cidr);
        if (p->Contains(st.addr)) st.asn = b.asn;
      }
    } else {
      st.addr = IpAddr::V4(s.addr);
      const Country& country = countries_[c.country];
      auto it = std::upper_bound(country.ranges.begin(), country.ranges.end(), s.addr,
                                 [](uint32_t a, const SourceRange& r) { return a < r.first; });
      // Ranges of a country may come unsorted: fall back to a scan.
      if (it != country.ranges.begin() && (it - 1)->first <= s.addr && s.addr <= (it - 1)->last) {
        st.asn = (it - 1)->asn;
      } else {
        for (const SourceRange& r : country.ranges) {
          if (r.first <= s.addr && s.addr <= r.last) st.asn = r.asn;
        }
      }
    }
    g.sources.push_back(st);
  }
  std::sort(g.sources.begin(), g.sources.end(),
            [](const SourceTruth& a, const SourceTruth& b) { return a.addr < b.addr; });
  ToolTruth& spoofed = g.tools[static_cast<int>(Tool::kSpoofedFlood)];
  spoofed.sources_seen = spoofed.sources_population = spoofed_;
  for (const Stream& s : streams_) {
    for (const Episode& e : s.episodes) {
      EpisodeTruth et;
      et.tool = s.kind == StreamKind::kFlood ? Tool::kSpoofedFlood : Tool::kBackscatter;
      et.addr = s.kind == StreamKind::kFlood ? IpAddr::V4(e.who) : IpAddr::V4(sources_[e.who].addr);
      et.port = e.port;
      et.start_us = e.start;
      et.end_us = e.end;
      et.packets = e.packets;
      g.episodes.push_back(et);
    }
  }
  g.packets = std::accumulate(tool_packets_.begin(), tool_packets_.end(), uint64_t{0});
  g.packets_ipv6 = v6_packets_;
  g.retransmissions = retransmissions_;
  g.retransmissions_dropped = retransmissions_dropped_;
  *truth = std::move(g);
}

}  // namespace

Status WriteTrace(const GeneratorSpec& spec, const std::vector<SourceRange>& ranges,
                  const std::string& pcap_path, GroundTruth* truth) {
  auto engine = std::make_unique<Engine>(spec, ranges);
  RETURN_IF_ERROR(engine->Prepare());
  ASSIGN_OR_RETURN(std::unique_ptr<PcapWriter> writer,
                   PcapWriter::Create(pcap_path, kLinkEthernet));
  RETURN_IF_ERROR(engine->Run(writer.get()));
  RETURN_IF_ERROR(writer->Finish());
  if (truth != nullptr) engine->FillTruth(truth);
  return OkStatus();
}

}  // namespace teiten::simulate
