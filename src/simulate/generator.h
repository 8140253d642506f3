// The trace generator: realistic darknet background radiation written as a pcap file.
//
// A population of sources, each running one tool (Mirai, ZMap, Masscan, Nmap, an ordinary Windows
// or Linux stack, SIPVicious, a Netis prober, ping, a DoS victim answering spoofed packets), sends
// packets to the monitored addresses with the header fingerprints those tools really leave (SPEC
// E5). Activity is heavy-tailed: a few sources send much, most send a few packets. A spoofed SYN
// flood from uniformly random, never-repeated IPv4 sources can be mixed in. The result is exact in
// packet count, deterministic (same spec, ranges and seed → the same bytes) and comes with a
// GroundTruth that says what was generated, so tests and benchmarks can score what teiten finds.
//
//   GeneratorSpec spec = GeneratorSpec::Default2018();
//   spec.packets = 1'000'000;
//   spec.monitored = {*Prefix::Parse("203.0.113.0/24")};
//   GroundTruth truth;
//   Status s = WriteTrace(spec, FallbackSourceRanges(), "/tmp/t.pcap", &truth);
//
// Speed: one thread; on the 2-core benchmark machine ≈ 13 M packets/s generated and ≈ 8–9 M
// packets/s written to a tmpfs file, where write(2) itself costs ≈ 45 ns a packet
// (bench/gen_trace.cc).
// Memory: ≈ 20 bytes per population source, ≈ 4 MB of buffers, bitmaps and counters, and with a
// ground truth ≈ 40 bytes per source seen; none of it grows with the packet count. Spoofed
// sources are computed from a counter, never stored.
//
// This is the engine of `teiten simulate` (issue 3). Scenario files, several sensors and planted
// events are layered on top of it: an event is one more "stream" of packets with its own rate
// curve over time (see generator.cc).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip.h"
#include "common/status.h"
#include "simulate/ground_truth.h"

namespace teiten::simulate {

// A block of real IPv4 addresses [first, last] (host order) registered to a country and an AS,
// as a geo database would report it. Sources are drawn from these so that enrichment later gives
// believable regions and networks.
struct SourceRange {
  uint32_t first = 0;
  uint32_t last = 0;
  std::array<char, 2> country{};
  uint32_t asn = 0;
};

// A destination port and its relative weight within a profile. Port 0 stands for "any port":
// uniform over 1..65535, as broad scanners produce.
struct PortWeight {
  uint16_t port = 0;
  double weight = 0;
};

// One behaviour in the population: a tool, the ports it targets, its share of packets and of
// sources. Sources are split among profiles by source_share and among countries by the country
// weights; each source keeps its profile for the whole trace.
struct ProfileSpec {
  std::string name;  // unique, e.g. "mirai-telnet"; recorded in the ground truth
  Tool tool = Tool::kLinux;
  int family = 4;  // 4 or 6. IPv6 profiles are dropped when no IPv6 prefix is monitored.
  // Share of the non-spoofed packets, retransmissions included. Normalised over all profiles.
  double packet_share = 0;
  // Share of `GeneratorSpec::sources`. Normalised over all profiles.
  double source_share = 0;
  // Destination ports (TCP or UDP by tool). Backscatter: the victims' service ports, which become
  // the packets' source ports. Ignored for ping.
  std::vector<PortWeight> ports;
  // Per-profile country mix; empty means GeneratorSpec::country_weights.
  std::map<std::string, double> country_weights;
  // Probability that an unanswered SYN is sent again, per attempt (Windows and Linux stacks only;
  // at most two retransmissions: Windows after 3 s and 6 s more, Linux after 1 s and 2 s more).
  double retransmit = 0;
  // Share of the profile's sources using the tool's alternative build: Windows 7+/2008R2 instead
  // of 2003/XP, Masscan and ZMap with an MSS option, Linux 4.x window, Windows-style ping.
  double variant_share = 0;
};

// A planted stream (issue 3's events): a fixed set of sources, all of one tool and country,
// sending exactly `packets` packets to `ports` within [start_us, end_us) of the trace. The
// sources are given, not drawn, so that the same event spans several traces (sensors, days).
// Retransmission is off: every packet is counted in the budget.
struct PlantedSpec {
  std::string name;  // unique among planted streams and profiles; recorded in the ground truth
  Tool tool = Tool::kMirai;  // any but backscatter and spoofed-flood; IPv4 only
  std::vector<PortWeight> ports;
  std::array<char, 2> country{};     // of every source (for the ground truth)
  std::vector<uint32_t> sources;     // IPv4, host order, distinct
  int64_t start_us = 0, end_us = 0;  // within the trace's period
  uint64_t packets = 0;              // exact; written on top of GeneratorSpec::packets
  // Rate at start_us and at end_us (relative; linear in between).
  double rate_start = 1, rate_end = 1;
  // Fraction of `sources` active at start_us and at end_us (linear in between, at least one):
  // a steady rise in distinct sources is 0.1 → 1.
  double active_start = 1, active_end = 1;
};

// A country (or an AS) whose population sources send nothing in [start_us, end_us) (an
// outage); the packets they would have sent go to other sources, so totals stay exact. With
// `asn` set, only that AS's sources go silent (any country; `country` is ignored). With share
// below 1, only that fraction of the sources does: a fixed subset chosen by a hash of each
// source's address, so the same sources are silent on every sensor and day (outage detectors
// count distinct sources, which thinning packets would barely move).
struct SilentCountry {
  std::array<char, 2> country{};
  int64_t start_us = 0, end_us = 0;
  double share = 1;
  uint32_t asn = 0;
};

struct GeneratorSpec {
  uint64_t seed = 1;
  // Seed of the source population (addresses, tools, per-source keys); 0 means `seed`. Traces
  // that share it (one per sensor and day) share their sources, as a real telescope's do.
  uint64_t population_seed = 0;
  int64_t start_us = 0;  // microseconds since the Unix epoch; packets lie in [start_us, end_us)
  int64_t end_us = 0;
  uint64_t packets = 0;  // exactly this many packets are written

  // Darknet addresses; destinations are drawn uniformly from them. At least one IPv4 prefix.
  std::vector<Prefix> monitored;

  // Distinct non-spoofed sources in the population. A source that the heavy tail never draws
  // sends nothing, so the ground truth's count of sources seen can be a little lower.
  uint64_t sources = 0;

  // Share of all packets that belong to spoofed SYN floods: uniformly random IPv4 sources, each
  // used once, never a population source or a monitored address. They arrive in a few episodes,
  // each aimed at one monitored address and port.
  double spoofed_flood_share = 0;
  int flood_episodes = 3;

  // Packet share by source country (ISO 3166 alpha-2). Countries without a SourceRange are left
  // out and the rest renormalised.
  std::map<std::string, double> country_weights;

  // Behaviours; see DefaultProfiles2018().
  std::vector<ProfileSpec> profiles;

  // Heavy tail of activity: a source at population rank fraction x (0 = most active) is drawn
  // with density ∝ x^(1/skew - 1). 1 = uniform; 4 gives the top 1% of sources ≈ 30% of packets.
  double activity_skew = 4;
  // Diurnal cycle: packet rate ∝ 1 + amplitude·cos(2π(hour − peak)/24), hour in UTC.
  double diurnal_amplitude = 0.25;
  double diurnal_peak_hour_utc = 13;

  // Planted event streams and outages (scenario events, issue 3).
  std::vector<PlantedSpec> planted;
  std::vector<SilentCountry> silent;

  // A spec with realistic 2018 defaults (country weights, profiles); the caller sets the period,
  // packets, sources and monitored prefixes.
  static GeneratorSpec Default2018();
};

// Country packet shares resembling a 2018 telescope (TSUBAME 2018 Q3: China, Russia, the US,
// the Netherlands, Ukraine on top).
std::map<std::string, double> DefaultCountryWeights2018();
// Tool and port mix resembling 2018: 23/TCP first, then 445, 80, 8080, 22 (TSUBAME 2018 Q3).
std::vector<ProfileSpec> DefaultProfiles2018();

// Source ranges grouped by country, prepared once and shared by many traces (a scenario's
// hundreds of sensor-days, possibly on several threads: it is read-only once built). Grouping
// scans every range, which with a real geo database (≈620 k ranges) costs more than generating
// a small trace. Each country keeps its ranges in the input order.
class SourceRangeIndex {
 public:
  struct Country {
    std::vector<SourceRange> ranges;  // IPv4
    std::vector<uint64_t> cum;        // cumulative sizes, for drawing an address
  };
  explicit SourceRangeIndex(const std::vector<SourceRange>& ranges);
  // nullptr when the country has no range.
  const Country* Find(std::string_view cc) const;
  // "ranges[i]: last before first" for the first unusable range, or "".
  const std::string& error() const { return error_; }

 private:
  std::map<std::string, Country, std::less<>> by_country_;
  std::string error_;
};

// Writes the trace as a microsecond pcap file (DLT_EN10MB, snaplen 65535) at `pcap_path`. The
// file appears only when complete: it is written under a temporary name and renamed (a non-regular
// target such as /dev/null is written in place). `truth` may be null; otherwise it is overwritten.
// Fails with kInvalidArgument on an unusable spec or ranges (the message names the field), and
// kIoError when the file cannot be written.
Status WriteTrace(const GeneratorSpec& spec, const std::vector<SourceRange>& ranges,
                  const std::string& pcap_path, GroundTruth* truth);
// The same with the ranges already indexed (the same bytes).
Status WriteTrace(const GeneratorSpec& spec, const SourceRangeIndex& ranges,
                  const std::string& pcap_path, GroundTruth* truth);
// Appends the trace's packets to an open writer, so that one file can hold several traces one
// after the other (a scenario's days). The caller finishes the writer. With `with_sources` false
// the truth's per-source list stays empty (every count is still filled): sorting and resolving
// each source's ASN costs as much as a fifth of a large trace.
class PcapWriter;
namespace engine {
struct Population;
}
// A source population built once and read by the traces of many sensors and days (RunScenario
// builds one per phase). Built from `spec`'s profiles, country_weights, sources and
// population_seed, avoiding every address of `spec.monitored`: pass the union of the sensors'
// prefixes. A trace given it must have the same profiles and sources.
using SharedPopulation = std::shared_ptr<const engine::Population>;
Result<SharedPopulation> BuildSharedPopulation(const GeneratorSpec& spec,
                                               const SourceRangeIndex& ranges);
// `population`: shared by other traces (see above); nullptr builds the trace's own.
Status WriteTraceTo(const GeneratorSpec& spec, const SourceRangeIndex& ranges, PcapWriter* writer,
                    GroundTruth* truth, bool with_sources = true,
                    const engine::Population* population = nullptr);

}  // namespace teiten::simulate
