// GroundTruth: what the trace generator put into a trace, for tests and benchmarks to compare
// against what teiten measures.
//
//   GroundTruth truth;
//   RETURN_IF_ERROR(WriteTrace(spec, ranges, path, &truth));
//   EXPECT_EQ(truth.packets_by_port[MakePortKey(6, 23)], counted_23);
//   RETURN_IF_ERROR(WriteGroundTruthJson(truth, "truth.json", /*with_sources=*/true));
//
// Every count is exact. Per-port keys are teiten PortKeys (ICMP and ICMPv6 as one key each).
// Per-country counts cover population sources only: a spoofed source has no true country.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip.h"
#include "common/observation.h"
#include "common/status.h"

namespace teiten::simulate {

// What a source runs. Each population source has exactly one tool for the whole trace.
enum class Tool : uint8_t {
  kMirai,         // TCP SYN with seq == destination IPv4
  kZmap,          // ZMap ≤ 4.0: IP ID 54321, window 65535, TTL 255
  kMasscan,       // IP ID == (dst ^ dport ^ seq) & 0xffff, window 1024, TTL 255
  kNmap,          // SYN scan: window 1024, MSS-only options, one seq for the whole scan
  kWindows,       // an ordinary Windows TCP stack connecting (worms, brute-forcers)
  kLinux,         // an ordinary Linux TCP stack connecting
  kSipVicious,    // SIP OPTIONS to 5060/UDP, User-Agent: friendly-scanner
  kNetis,         // 53413/UDP probes of the Netis/Netcore router backdoor
  kPing,          // ICMP / ICMPv6 echo requests
  kBackscatter,   // a DoS victim answering spoofed packets: SYN-ACK, RST, ICMP unreachable
  kSpoofedFlood,  // spoofed SYN flood, one random source per packet
  kMessenger,     // Windows Messenger spam: DCE/RPC over UDP to 1026–1028 (2000s darknets)
};
inline constexpr int kToolCount = 12;
// "mirai", "zmap", "masscan", "nmap", "windows", "linux", "sipvicious", "netis", "ping",
// "backscatter", "spoofed-flood", "messenger".
std::string_view ToolName(Tool tool);
bool ParseTool(std::string_view name, Tool* out);

struct ToolTruth {
  uint64_t packets = 0;
  uint64_t sources_seen = 0;        // distinct sources that sent ≥ 1 packet
  uint64_t sources_population = 0;  // sources given this tool (spoofed: equals sources_seen)
};

// One population source that sent at least one packet.
struct SourceTruth {
  IpAddr addr;
  Tool tool = Tool::kLinux;
  uint16_t profile = 0;  // index into GroundTruth::profiles
  std::array<char, 2> country{};
  uint32_t asn = 0;
  uint64_t packets = 0;
};

// A time-limited episode: a spoofed flood aimed at one monitored address, or the backscatter of
// one DoS attack on a victim (the victim is the packets' source).
struct EpisodeTruth {
  Tool tool = Tool::kBackscatter;
  IpAddr addr;        // flood: the monitored target; backscatter: the victim
  uint16_t port = 0;  // flood: destination port; backscatter: the victim's service port
  int64_t start_us = 0;
  int64_t end_us = 0;
  uint64_t packets = 0;
};

// A planted stream (PlantedSpec) as generated.
struct PlantedTruth {
  std::string name;
  uint64_t packets = 0;
  uint64_t sources_seen = 0;
};

struct GroundTruth {
  uint64_t seed = 0;
  int64_t start_us = 0;
  int64_t end_us = 0;
  std::vector<std::string> monitored;
  std::vector<std::string> profiles;  // profile names in population order

  uint64_t packets = 0;
  uint64_t packets_ipv6 = 0;
  uint64_t retransmissions = 0;          // SYNs sent again (included in every count)
  uint64_t retransmissions_dropped = 0;  // not sent: the pending queue was full (never silent)
  std::array<ToolTruth, kToolCount> tools{};
  std::map<PortKey, uint64_t> packets_by_port;
  std::map<std::string, uint64_t> packets_by_country;  // population sources only
  std::map<std::string, uint64_t> packets_by_profile;
  std::vector<SourceTruth> sources;  // sorted by address
  std::vector<EpisodeTruth> episodes;
  std::vector<PlantedTruth> planted;  // in PlantedSpec order

  const ToolTruth& tool(Tool t) const { return tools[static_cast<int>(t)]; }
  uint64_t distinct_sources() const;  // population sources seen + spoofed sources (disjoint)
};

// Writes `truth` as JSON. With `with_sources` false the per-source list (large for big
// populations) is left out; counts are always written.
Status WriteGroundTruthJson(const GroundTruth& truth, const std::string& path, bool with_sources);

}  // namespace teiten::simulate
