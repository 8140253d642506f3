// Tests of the trace generator: the trace is read back with libpcap and every packet is checked
// against the tool rules of SPEC E5 and against the ground truth.
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/ip.h"
#include "common/observation.h"
#include "simulate/generator.h"
#include "simulate/pcap_writer.h"
#include "simulate/source_ranges.h"

namespace teiten::simulate {
namespace {

constexpr int64_t kDay = 86400LL * 1000000;
constexpr int64_t k20180701 = 1530403200LL * 1000000;

std::string TempPath(const std::string& name) {
  static const std::string dir = [] {
    std::string tmpl = ::testing::TempDir() + "teiten-sim-XXXXXX";
    char* d = mkdtemp(tmpl.data());
    return std::string(d ? d : "/tmp");
  }();
  return dir + "/" + name;
}

GeneratorSpec SmallSpec() {
  GeneratorSpec s = GeneratorSpec::Default2018();
  s.seed = 42;
  s.start_us = k20180701;
  s.end_us = k20180701 + kDay;
  s.packets = 60000;
  s.sources = 3000;
  s.spoofed_flood_share = 0.1;
  for (const char* p : {"203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/25", "2001:db8:7e::/64"}) {
    s.monitored.push_back(*Prefix::Parse(p));
  }
  return s;
}

uint16_t Get16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t Get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint64_t WordSum(const uint8_t* p, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += Get16(p + i);
  if (n % 2) s += uint32_t{p[n - 1]} << 8;
  return s;
}
// True when a region including its checksum field sums to 0xffff (RFC 1071).
bool SumsToOnes(uint64_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s == 0xffff;
}

struct Packet {
  int64_t ts_us = 0;
  IpAddr src, dst;
  bool v6 = false;
  uint8_t proto = 0, ttl = 0;
  uint16_t ip_id = 0, sport = 0, dport = 0, window = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t tcp_flags = 0, icmp_type = 0;
  std::string options, payload;
  bool checksums_ok = true;
};

// Decodes what the generator writes: Ethernet, IPv4 or IPv6, then TCP, UDP, ICMP or ICMPv6.
Packet Decode(const pcap_pkthdr& h, const uint8_t* d) {
  Packet p;
  p.ts_us = int64_t{h.ts.tv_sec} * 1000000 + h.ts.tv_usec;
  EXPECT_EQ(h.caplen, h.len);
  uint16_t ethertype = Get16(d + 12);
  const uint8_t* ip = d + 14;
  const uint8_t* l4;
  size_t l4_len;
  uint64_t pseudo;
  if (ethertype == 0x0800) {
    EXPECT_EQ(ip[0], 0x45);
    size_t total = Get16(ip + 2);
    EXPECT_EQ(total + 14, h.caplen);
    p.checksums_ok &= SumsToOnes(WordSum(ip, 20));
    p.ip_id = Get16(ip + 4);
    p.ttl = ip[8];
    p.proto = ip[9];
    p.src = IpAddr::V4(Get32(ip + 12));
    p.dst = IpAddr::V4(Get32(ip + 16));
    l4 = ip + 20;
    l4_len = total - 20;
    pseudo = WordSum(ip + 12, 8) + p.proto + l4_len;
  } else {
    EXPECT_EQ(ethertype, 0x86dd);
    p.v6 = true;
    l4_len = Get16(ip + 4);
    EXPECT_EQ(l4_len + 54, h.caplen);
    p.proto = ip[6];
    p.ttl = ip[7];
    p.src = IpAddr::V6(ip + 8);
    p.dst = IpAddr::V6(ip + 24);
    l4 = ip + 40;
    pseudo = WordSum(ip + 8, 32) + p.proto + l4_len;
  }
  if (p.proto == 6) {
    p.sport = Get16(l4);
    p.dport = Get16(l4 + 2);
    p.seq = Get32(l4 + 4);
    p.ack = Get32(l4 + 8);
    size_t hl = (l4[12] >> 4) * 4;
    p.tcp_flags = l4[13];
    p.window = Get16(l4 + 14);
    p.options.assign(reinterpret_cast<const char*>(l4) + 20, hl - 20);
    p.payload.assign(reinterpret_cast<const char*>(l4) + hl, l4_len - hl);
    p.checksums_ok &= SumsToOnes(pseudo + WordSum(l4, l4_len));
  } else if (p.proto == 17) {
    p.sport = Get16(l4);
    p.dport = Get16(l4 + 2);
    EXPECT_EQ(Get16(l4 + 4), l4_len);
    p.payload.assign(reinterpret_cast<const char*>(l4) + 8, l4_len - 8);
    p.checksums_ok &= Get16(l4 + 6) != 0 && SumsToOnes(pseudo + WordSum(l4, l4_len));
  } else if (p.proto == 1) {
    p.icmp_type = l4[0];
    p.payload.assign(reinterpret_cast<const char*>(l4) + 8, l4_len - 8);
    p.checksums_ok &= SumsToOnes(WordSum(l4, l4_len));
  } else if (p.proto == 58) {
    p.icmp_type = l4[0];
    p.checksums_ok &= SumsToOnes(pseudo + WordSum(l4, l4_len));
  } else {
    ADD_FAILURE() << "unexpected protocol " << int{p.proto};
  }
  return p;
}

std::vector<Packet> ReadTrace(const std::string& path) {
  char err[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<pcap_t, void (*)(pcap_t*)> pc(pcap_open_offline(path.c_str(), err), pcap_close);
  std::vector<Packet> out;
  if (!pc) {
    ADD_FAILURE() << "pcap_open_offline: " << err;
    return out;
  }
  EXPECT_EQ(pcap_datalink(pc.get()), DLT_EN10MB);
  pcap_pkthdr* h;
  const u_char* d;
  int rc;
  while ((rc = pcap_next_ex(pc.get(), &h, &d)) == 1) out.push_back(Decode(*h, d));
  EXPECT_EQ(rc, PCAP_ERROR_BREAK) << pcap_geterr(pc.get());
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One trace shared by the tests that only read it.
struct Fixture {
  GeneratorSpec spec = SmallSpec();
  GroundTruth truth;
  std::string path = TempPath("small.pcap");
  std::vector<Packet> packets;
  std::map<IpAddr, const SourceTruth*> by_addr;
  Status status;
  Fixture() {
    status = WriteTrace(spec, FallbackSourceRanges(), path, &truth);
    if (!status.ok()) return;
    packets = ReadTrace(path);
    for (const SourceTruth& s : truth.sources) by_addr[s.addr] = &s;
  }
  // The tool of a packet's source; spoofed-flood for addresses outside the population.
  Tool ToolOf(const Packet& p) const {
    auto it = by_addr.find(p.src);
    return it == by_addr.end() ? Tool::kSpoofedFlood : it->second->tool;
  }
};
const Fixture& Small() {
  static const Fixture* f = new Fixture();
  return *f;
}

TEST(Generator, WritesExactlyThePacketsAsked) {
  const Fixture& f = Small();
  ASSERT_TRUE(f.status.ok()) << f.status.ToString();
  EXPECT_EQ(f.packets.size(), f.spec.packets);
  EXPECT_EQ(f.truth.packets, f.spec.packets);
}

TEST(Generator, TimestampsNonDecreasingWithinPeriod) {
  const Fixture& f = Small();
  ASSERT_FALSE(f.packets.empty());
  int64_t prev = f.spec.start_us;
  for (const Packet& p : f.packets) {
    ASSERT_GE(p.ts_us, prev);
    prev = p.ts_us;
  }
  EXPECT_LT(prev, f.spec.end_us);
  // Sub-second parts are spread, not stuck on whole seconds.
  size_t whole = 0;
  std::set<int64_t> micros;
  for (const Packet& p : f.packets) {
    whole += p.ts_us % 1000000 == 0;
    micros.insert(p.ts_us % 1000000);
  }
  EXPECT_LT(whole, f.packets.size() / 1000 + 2);
  EXPECT_GT(micros.size(), f.packets.size() / 2);
}

TEST(Generator, SparseTracesSpreadPacketsWithinSeconds) {
  GeneratorSpec spec = SmallSpec();
  spec.packets = 2000;  // fewer than one packet per 1 s slot
  spec.sources = 200;
  std::string path = TempPath("sparse.pcap");
  ASSERT_TRUE(WriteTrace(spec, FallbackSourceRanges(), path, nullptr).ok());
  std::vector<Packet> packets = ReadTrace(path);
  ASSERT_EQ(packets.size(), 2000u);
  size_t whole = 0;
  int64_t prev = 0;
  for (const Packet& p : packets) {
    whole += p.ts_us % 1000000 == 0;
    EXPECT_GE(p.ts_us, prev);
    prev = p.ts_us;
  }
  EXPECT_LT(whole, 10u);
}

TEST(Generator, AllChecksumsVerify) {
  const Fixture& f = Small();
  size_t bad = 0;
  for (const Packet& p : f.packets) bad += !p.checksums_ok;
  EXPECT_EQ(bad, 0u);
}

TEST(Generator, ToolPacketsFollowTheirPublishedRules) {
  const Fixture& f = Small();
  std::map<Tool, size_t> seen;
  std::map<IpAddr, uint32_t> nmap_seq;
  for (const Packet& p : f.packets) {
    Tool t = f.ToolOf(p);
    ++seen[t];
    switch (t) {
      case Tool::kMirai:
        ASSERT_EQ(p.proto, 6);
        EXPECT_EQ(p.tcp_flags, tcp_flag::kSyn);
        EXPECT_EQ(p.seq, p.dst.v4()) << p.src.ToString();
        break;
      case Tool::kZmap:
        EXPECT_EQ(p.ip_id, 54321);
        EXPECT_EQ(p.window, 65535);
        EXPECT_GE(p.ttl, 200);
        break;
      case Tool::kMasscan:
        EXPECT_EQ(p.ip_id, (p.dst.v4() ^ p.dport ^ p.seq) & 0xffff);
        EXPECT_EQ(p.window, 1024);
        EXPECT_TRUE(p.options.empty() || p.options == std::string("\x02\x04\x05\xb4", 4));
        break;
      case Tool::kNmap: {
        EXPECT_EQ(p.window, 1024);
        EXPECT_EQ(p.options, std::string("\x02\x04\x05\xb4", 4));
        auto [it, fresh] = nmap_seq.emplace(p.src, p.seq);
        EXPECT_EQ(it->second, p.seq) << "nmap seq changed within a scan";
        break;
      }
      case Tool::kWindows:
        EXPECT_GT(p.ttl, 64);
        EXPECT_TRUE(p.options == std::string("\x02\x04\x05\xb4\x01\x01\x04\x02", 8) ||
                    p.options ==
                        std::string("\x02\x04\x05\xb4\x01\x03\x03\x08\x01\x01\x04\x02", 12));
        break;
      case Tool::kLinux:
        EXPECT_LE(p.ttl, 64);
        EXPECT_EQ(p.options.size(), 20u);
        EXPECT_EQ(p.options.substr(0, 8), std::string("\x02\x04\x05\xb4\x04\x02\x08\x0a", 8));
        break;
      case Tool::kSipVicious:
        EXPECT_EQ(p.proto, 17);
        EXPECT_EQ(p.dport, 5060);
        EXPECT_EQ(p.payload.rfind("OPTIONS sip:", 0), 0u);
        EXPECT_NE(p.payload.find("\r\nUser-Agent: friendly-scanner\r\n"), std::string::npos);
        EXPECT_NE(p.payload.find("@" + p.dst.ToString() + " SIP/2.0"), std::string::npos);
        break;
      case Tool::kNetis:
        EXPECT_EQ(p.dport, 53413);
        EXPECT_EQ(p.payload.size(), 16u);
        break;
      case Tool::kPing:
        EXPECT_EQ(p.icmp_type, p.v6 ? 128 : 8);
        break;
      case Tool::kBackscatter:
        if (p.proto == 6) {
          EXPECT_TRUE(p.tcp_flags == (tcp_flag::kSyn | tcp_flag::kAck) ||
                      p.tcp_flags == tcp_flag::kRst ||
                      p.tcp_flags == (tcp_flag::kRst | tcp_flag::kAck));
        } else {
          ASSERT_EQ(p.proto, 1);
          EXPECT_EQ(p.icmp_type, 3);
          // The quoted packet went from this darknet address to the victim.
          ASSERT_GE(p.payload.size(), 28u);
          const auto* q = reinterpret_cast<const uint8_t*>(p.payload.data());
          EXPECT_EQ(Get32(q + 12), p.dst.v4());
          EXPECT_EQ(Get32(q + 16), p.src.v4());
          EXPECT_TRUE(SumsToOnes(WordSum(q, 20)));
        }
        break;
      case Tool::kSpoofedFlood:
        EXPECT_EQ(p.tcp_flags, tcp_flag::kSyn);
        break;
    }
  }
  for (int i = 0; i < kToolCount; ++i) {
    EXPECT_GT(seen[static_cast<Tool>(i)], 0u) << ToolName(static_cast<Tool>(i)) << " missing";
  }
}

TEST(Generator, OtherPacketsMatchToolRulesOnlyByChance) {
  const Fixture& f = Small();
  size_t tcp = 0, mirai_like = 0, masscan_like = 0, zmap_like = 0, ipv4 = 0;
  for (const Packet& p : f.packets) {
    if (p.v6) continue;
    Tool t = f.ToolOf(p);
    ++ipv4;
    if (t != Tool::kZmap) zmap_like += p.ip_id == 54321;
    if (p.proto != 6) continue;
    if (t == Tool::kMirai || t == Tool::kMasscan) continue;
    ++tcp;
    mirai_like += p.seq == p.dst.v4();
    masscan_like += p.ip_id == ((p.dst.v4() ^ p.dport ^ p.seq) & 0xffff);
  }
  ASSERT_GT(tcp, 10000u);
  // A 16-bit coincidence happens once in 65536; allow a few; a 32-bit one never here.
  const double chance16 = static_cast<double>(tcp) / 65536.0;
  EXPECT_LE(mirai_like, 1u);
  EXPECT_LE(masscan_like, static_cast<size_t>(3 * chance16 + 3));
  EXPECT_LE(zmap_like, static_cast<size_t>(3 * static_cast<double>(ipv4) / 65536.0 + 3));
}

TEST(Generator, CountsEqualTheGroundTruth) {
  const Fixture& f = Small();
  std::map<Tool, uint64_t> per_tool;
  std::map<PortKey, uint64_t> per_port;
  std::map<std::string, uint64_t> per_country;
  std::map<Tool, std::set<IpAddr>> sources;
  uint64_t v6 = 0;
  for (const Packet& p : f.packets) {
    Tool t = f.ToolOf(p);
    ++per_tool[t];
    sources[t].insert(p.src);
    v6 += p.v6;
    PortKey k =
        (p.proto == 1 || p.proto == 58) ? MakePortKey(p.proto, 0) : MakePortKey(p.proto, p.dport);
    ++per_port[k];
    auto it = f.by_addr.find(p.src);
    if (it != f.by_addr.end()) {
      ++per_country[std::string(it->second->country.data(), 2)];
    }
  }
  for (int i = 0; i < kToolCount; ++i) {
    Tool t = static_cast<Tool>(i);
    EXPECT_EQ(per_tool[t], f.truth.tool(t).packets) << ToolName(t);
    EXPECT_EQ(sources[t].size(), f.truth.tool(t).sources_seen) << ToolName(t);
  }
  EXPECT_EQ(per_port, f.truth.packets_by_port);
  EXPECT_EQ(per_country, f.truth.packets_by_country);
  EXPECT_EQ(v6, f.truth.packets_ipv6);
  EXPECT_GT(v6, 0u);
  // Spoofed sources never repeat, so distinct spoofed sources equal spoofed packets.
  EXPECT_EQ(f.truth.tool(Tool::kSpoofedFlood).sources_seen,
            f.truth.tool(Tool::kSpoofedFlood).packets);
  EXPECT_EQ(f.truth.tool(Tool::kSpoofedFlood).packets, 6000u);  // 10% of 60000, exactly
}

TEST(Generator, SharesFollowTheSpec) {
  const Fixture& f = Small();
  const GroundTruth& g = f.truth;
  // Default 2018 mix: 23/TCP first, 445/TCP second (both far ahead of any other port).
  std::vector<std::pair<uint64_t, PortKey>> ranked;
  for (const auto& [k, n] : g.packets_by_port) ranked.push_back({n, k});
  std::sort(ranked.rbegin(), ranked.rend());
  ASSERT_GE(ranked.size(), 5u);
  EXPECT_EQ(PortKeyToString(ranked[0].second), "23/TCP");
  EXPECT_EQ(PortKeyToString(ranked[1].second), "445/TCP");
  uint64_t population = 0;
  for (const auto& [cc, n] : g.packets_by_country) population += n;
  // China leads; its share is near its weight (0.24 of the normalised weights), loosely because
  // a few heavy sources dominate any small trace.
  double cn = static_cast<double>(g.packets_by_country.at("CN")) / static_cast<double>(population);
  EXPECT_GT(cn, 0.12);
  EXPECT_LT(cn, 0.40);
  // Retransmissions were generated and are counted.
  EXPECT_GT(g.retransmissions, 0u);
  EXPECT_EQ(g.retransmissions_dropped, 0u);
}

// The default 2018 mix ranks like TSUBAME 2018 Q3 (seed 003): 23, 445, 80, 8080, 22 and
// China, Russia, the US, the Netherlands, Ukraine.
TEST(Generator, DefaultMixRanksLikeTsubame2018Q3) {
  GeneratorSpec spec = SmallSpec();
  spec.packets = 1000000;
  spec.sources = 50000;
  spec.spoofed_flood_share = 0;
  GroundTruth truth;
  ASSERT_TRUE(WriteTrace(spec, FallbackSourceRanges(), "/dev/null", &truth).ok());
  auto top = [](const auto& counts, size_t n) {
    std::vector<std::pair<uint64_t, typename std::decay_t<decltype(counts)>::key_type>> v;
    for (const auto& [k, c] : counts) v.push_back({c, k});
    std::sort(v.rbegin(), v.rend());
    v.resize(std::min(n, v.size()));
    return v;
  };
  std::vector<std::string> ports, countries;
  for (const auto& [c, k] : top(truth.packets_by_port, 5)) ports.push_back(PortKeyToString(k));
  for (const auto& [c, k] : top(truth.packets_by_country, 5)) countries.push_back(k);
  EXPECT_EQ(ports, (std::vector<std::string>{"23/TCP", "445/TCP", "80/TCP", "8080/TCP", "22/TCP"}));
  EXPECT_EQ(countries, (std::vector<std::string>{"CN", "RU", "US", "NL", "UA"}));
  // Port counters are 16 bits wide with a carry: ports past 65,535 packets still add up.
  EXPECT_GT(truth.packets_by_port.at(MakePortKey(6, 23)), 65536u);
  uint64_t by_port = 0;
  for (const auto& [k, n] : truth.packets_by_port) by_port += n;
  EXPECT_EQ(by_port, truth.packets);
}

TEST(Generator, ActivityIsHeavyTailed) {
  const Fixture& f = Small();
  std::vector<uint64_t> per_source;
  uint64_t total = 0;
  for (const SourceTruth& s : f.truth.sources) {
    per_source.push_back(s.packets);
    total += s.packets;
  }
  std::sort(per_source.rbegin(), per_source.rend());
  size_t top = per_source.size() / 100;
  uint64_t top_sum = 0;
  for (size_t i = 0; i < top; ++i) top_sum += per_source[i];
  EXPECT_GT(static_cast<double>(top_sum), 0.15 * static_cast<double>(total));
  EXPECT_LE(per_source[per_source.size() / 2], 10u);  // the median source sends a few packets
}

TEST(Generator, RetransmissionsRepeatTheSynAfterTheStackTimeout) {
  const Fixture& f = Small();
  struct Seen {
    int64_t last_us;
    int count;
  };
  std::map<std::tuple<IpAddr, uint16_t, IpAddr, uint16_t, uint32_t>, Seen> conns;
  uint64_t repeats = 0;
  for (const Packet& p : f.packets) {
    Tool t = f.ToolOf(p);
    if (t != Tool::kWindows && t != Tool::kLinux) continue;
    auto [it, fresh] = conns.try_emplace({p.src, p.sport, p.dst, p.dport, p.seq}, Seen{p.ts_us, 1});
    if (fresh) continue;
    ++repeats;
    // Windows waits 3 s, then 6 s more; Linux 1 s, then 2 s more. A retransmission goes out
    // with the first packet of the trace after it is due, so it can only be later.
    int64_t gap = p.ts_us - it->second.last_us;
    int64_t min_gap = (t == Tool::kWindows ? 3 : 1) * it->second.count * 1000000LL;
    EXPECT_GE(gap, min_gap) << p.src.ToString();
    ++it->second.count;
    it->second.last_us = p.ts_us;
    EXPECT_LE(it->second.count, 3);
  }
  EXPECT_EQ(repeats, f.truth.retransmissions);
  EXPECT_GT(repeats, 100u);
}

TEST(Generator, DiurnalCycle) {
  const Fixture& f = Small();
  std::vector<uint64_t> per_hour(24);
  for (const Packet& p : f.packets) {
    Tool t = f.ToolOf(p);
    if (t == Tool::kSpoofedFlood || t == Tool::kBackscatter) continue;
    ++per_hour[(p.ts_us / 3600000000LL) % 24];
  }
  // Peak at 13 UTC, trough at 1 UTC, amplitude 0.25: expect a ratio near 1.67.
  EXPECT_GT(per_hour[13], per_hour[1] * 13 / 10);
}

TEST(Generator, SpoofedSourcesAreDistinctAndOutsideThePopulation) {
  const Fixture& f = Small();
  std::set<IpAddr> spoofed;
  for (const Packet& p : f.packets) {
    if (f.ToolOf(p) != Tool::kSpoofedFlood) continue;
    EXPECT_TRUE(spoofed.insert(p.src).second) << "repeated " << p.src.ToString();
    for (const Prefix& m : f.spec.monitored) EXPECT_FALSE(m.Contains(p.src));
  }
  EXPECT_EQ(spoofed.size(), f.truth.tool(Tool::kSpoofedFlood).packets);
}

TEST(Generator, DestinationsAreMonitored) {
  const Fixture& f = Small();
  for (const Packet& p : f.packets) {
    bool in = false;
    for (const Prefix& m : f.spec.monitored) in |= m.Contains(p.dst);
    ASSERT_TRUE(in) << p.dst.ToString();
  }
}

TEST(Generator, DeterministicBytes) {
  GeneratorSpec spec = SmallSpec();
  spec.packets = 20000;
  std::string a = TempPath("det-a.pcap"), b = TempPath("det-b.pcap"), c = TempPath("det-c.pcap");
  ASSERT_TRUE(WriteTrace(spec, FallbackSourceRanges(), a, nullptr).ok());
  ASSERT_TRUE(WriteTrace(spec, FallbackSourceRanges(), b, nullptr).ok());
  spec.seed = 43;
  ASSERT_TRUE(WriteTrace(spec, FallbackSourceRanges(), c, nullptr).ok());
  std::string ba = ReadFile(a);
  EXPECT_GT(ba.size(), 20000u * 70);
  EXPECT_EQ(ba, ReadFile(b));
  EXPECT_NE(ba, ReadFile(c));
}

TEST(Generator, GroundTruthJsonIsWritten) {
  const Fixture& f = Small();
  std::string path = TempPath("truth.json");
  ASSERT_TRUE(WriteGroundTruthJson(f.truth, path, true).ok());
  nlohmann::json j = nlohmann::json::parse(ReadFile(path));
  EXPECT_EQ(j["packets"], f.spec.packets);
  EXPECT_EQ(j["packets_by_port"]["23/TCP"], f.truth.packets_by_port.at(MakePortKey(6, 23)));
  EXPECT_EQ(j["tools"]["mirai"]["packets"], f.truth.tool(Tool::kMirai).packets);
  ASSERT_EQ(j["sources"].size(), f.truth.sources.size());
  uint64_t sum = 0;
  for (const auto& row : j["sources"]) sum += row[5].get<uint64_t>();
  EXPECT_EQ(sum + f.truth.tool(Tool::kSpoofedFlood).packets, f.spec.packets);
  EXPECT_EQ(j["sources"][0][0], f.truth.sources[0].addr.ToString());
  ASSERT_TRUE(WriteGroundTruthJson(f.truth, path, false).ok());
  EXPECT_FALSE(nlohmann::json::parse(ReadFile(path)).contains("sources"));
}

TEST(Generator, RejectsBadSpecsNamingTheField) {
  GeneratorSpec spec = SmallSpec();
  spec.end_us = spec.start_us;
  Status s = WriteTrace(spec, FallbackSourceRanges(), TempPath("bad.pcap"), nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("end_us"), std::string::npos);
  EXPECT_NE(access(TempPath("bad.pcap").c_str(), F_OK), 0) << "no file for a failed spec";

  spec = SmallSpec();
  spec.monitored = {*Prefix::Parse("2001:db8::/64")};
  s = WriteTrace(spec, FallbackSourceRanges(), TempPath("bad.pcap"), nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("monitored"), std::string::npos);

  spec = SmallSpec();
  spec.profiles[0].ports.clear();
  s = WriteTrace(spec, FallbackSourceRanges(), TempPath("bad.pcap"), nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("mirai-telnet"), std::string::npos);

  spec = SmallSpec();
  spec.spoofed_flood_share = 0;
  s = WriteTrace(spec, {}, TempPath("bad.pcap"), nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("ranges"), std::string::npos);
}

TEST(Generator, OnlyFloodWhenNoSources) {
  GeneratorSpec spec = SmallSpec();
  spec.sources = 0;
  spec.spoofed_flood_share = 1;
  spec.packets = 5000;
  GroundTruth truth;
  ASSERT_TRUE(WriteTrace(spec, FallbackSourceRanges(), TempPath("flood.pcap"), &truth).ok());
  EXPECT_EQ(truth.tool(Tool::kSpoofedFlood).packets, 5000u);
  EXPECT_EQ(ReadTrace(TempPath("flood.pcap")).size(), 5000u);
}

TEST(Generator, IoErrorLeavesNothingBehind) {
  Status s = WriteTrace(SmallSpec(), FallbackSourceRanges(), "/nonexistent-dir/x.pcap", nullptr);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_NE(s.message().find("/nonexistent-dir/x.pcap"), std::string::npos);
}

TEST(PcapWriter, UnfinishedWriterRemovesItsPartialFile) {
  std::string path = TempPath("unfinished.pcap");
  {
    auto w = PcapWriter::Create(path, kLinkEthernet);
    ASSERT_TRUE(w.ok());
    uint8_t* f = (*w)->Begin(60);
    std::memset(f, 0, 60);
    (*w)->End(0, 60);
  }
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  EXPECT_NE(access((path + ".partial").c_str(), F_OK), 0);
}

// O_DIRECT writes whole 4 KiB blocks and keeps the tail for the next flush and Finish(): the
// file must hold exactly what buffered writing gives, frame for frame, across many flushes.
TEST(PcapWriter, DirectWritesTheSameBytesAsBuffered) {
  std::string paths[2] = {TempPath("buffered.pcap"), TempPath("direct.pcap")};
  std::vector<std::vector<uint8_t>> frames;
  uint64_t x = 12345;
  for (int i = 0; i < 20000; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    std::vector<uint8_t> f(14 + (x >> 33) % 1500);
    for (size_t k = 0; k < f.size(); ++k) f[k] = static_cast<uint8_t>((x >> (k % 56)) + k);
    frames.push_back(std::move(f));
  }
  for (int direct = 0; direct < 2; ++direct) {
    auto w = PcapWriter::Create(paths[direct], kLinkEthernet, 128 << 10, direct == 1);
    ASSERT_TRUE(w.ok());
    for (size_t i = 0; i < frames.size(); ++i) {
      std::memcpy((*w)->Begin(frames[i].size()), frames[i].data(), frames[i].size());
      (*w)->End(1'500'000'000'000'000LL + static_cast<int64_t>(i) * 37, frames[i].size());
    }
    ASSERT_TRUE((*w)->Finish().ok());
  }
  auto slurp = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string a = slurp(paths[0]), b = slurp(paths[1]);
  ASSERT_GT(a.size(), 8u << 20);  // many flushes of the 128 KiB buffer
  EXPECT_EQ(a.size() % 4096 == 0, false) << "a partial last block exercises Finish()";
  EXPECT_TRUE(a == b) << "sizes " << a.size() << " and " << b.size();
  // libpcap reads every frame back.
  char err[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<pcap_t, void (*)(pcap_t*)> pc(pcap_open_offline(paths[1].c_str(), err),
                                                pcap_close);
  ASSERT_TRUE(pc) << err;
  pcap_pkthdr* h = nullptr;
  const u_char* data = nullptr;
  size_t n = 0;
  while (pcap_next_ex(pc.get(), &h, &data) == 1) {
    ASSERT_LT(n, frames.size());
    ASSERT_EQ(h->caplen, frames[n].size()) << n;
    ASSERT_EQ(std::memcmp(data, frames[n].data(), h->caplen), 0) << n;
    ++n;
  }
  EXPECT_EQ(n, frames.size());
}

TEST(SourceRanges, FallbackIsSortedDisjointAndPublic) {
  std::vector<SourceRange> r = FallbackSourceRanges();
  ASSERT_GT(r.size(), 27u * 12);
  std::map<std::string, int> per_country;
  for (size_t i = 0; i < r.size(); ++i) {
    ++per_country[std::string(r[i].country.data(), 2)];
    if (i > 0) {
      EXPECT_GT(r[i].first, r[i - 1].last) << i;
    }
    for (const char* doc : {"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "10.0.0.0/8"}) {
      Prefix p = *Prefix::Parse(doc);
      EXPECT_FALSE(p.Contains(IpAddr::V4(r[i].first)) || p.Contains(IpAddr::V4(r[i].last)));
    }
  }
  for (const auto& [cc, n] : DefaultCountryWeights2018()) {
    EXPECT_GE(per_country[cc], 12) << cc;
  }
}

TEST(SourceRanges, CsvErrorsNameTheLine) {
  std::string path = TempPath("ranges.csv");
  {
    std::ofstream out(path);
    out << "# first,last,cc,asn\n1.0.0.0,1.0.0.255,AU,13335\n\n2.0.0.0,1.0.0.0,FR,3215\n";
  }
  auto r = ReadSourceRangesCsv(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(path + ":4:"), std::string::npos) << r.status().message();
  {
    std::ofstream out(path);
    out << "1.0.0.0,1.0.0.255,AU,13335\n";
  }
  r = ReadSourceRangesCsv(path);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].asn, 13335u);
  EXPECT_EQ((*r)[0].last, 0x010000ffu);
}

// Cross-check with Wireshark's dissectors when tshark is installed.
TEST(Generator, TsharkAgreesOnPortCounts) {
  if (std::system("command -v tshark >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "tshark not on PATH; skipping the cross-check";
  }
  const Fixture& f = Small();
  std::string out = TempPath("tshark.txt");
  std::string cmd = "tshark -n -r '" + f.path +
                    "' -T fields -E occurrence=f -e ip.proto -e ipv6.nxt -e tcp.dstport "
                    "-e udp.dstport > '" +
                    out + "' 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::map<PortKey, uint64_t> counts;
  std::ifstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> col;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, '\t')) col.push_back(c);
    col.resize(4);
    int proto = std::atoi((col[0].empty() ? col[1] : col[0]).c_str());
    if (proto == 1 || proto == 58) {
      ++counts[MakePortKey(static_cast<uint8_t>(proto), 0)];
    } else if (proto == 6) {
      ++counts[MakePortKey(6, static_cast<uint16_t>(std::atoi(col[2].c_str())))];
    } else {
      ++counts[MakePortKey(17, static_cast<uint16_t>(std::atoi(col[3].c_str())))];
    }
  }
  EXPECT_EQ(counts, f.truth.packets_by_port);
}

}  // namespace
}  // namespace teiten::simulate
