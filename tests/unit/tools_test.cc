// Tool tags (issue 12 points 1–2): the per-packet rules on hand-built packets, the per-source
// verdicts' thresholds, the research list, and the simulator's ground truth (which planted every
// tool's packets with their real header fields).
#include "analysis/tools.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "feeds/notify.h"
#include "generated_store.h"
#include "ingest/ingest.h"
#include "row_test_support.h"
#include "scenario_fixture.h"
#include "simulate/ground_truth.h"
#include "test_support.h"

namespace teiten {
namespace {

using namespace row_testing;

std::vector<uint8_t> Bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

Raw Syn(uint32_t src, uint32_t dst, uint16_t dport) {
  Raw r;
  r.src = src;
  r.dst = dst;
  r.dport = dport;
  r.seq = 0x12345678 ^ dst;  // no tool's rule: not the destination, IP ID 1
  r.options = {0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0,    0,
               0,    1,    0,    0,    0,    0,    0x01, 0x03, 0x03, 0x07};
  return r;
}

class ToolsTest : public RowStoreTest {};

TEST_F(ToolsTest, EachRuleTagsItsToolsSourcesAndNothingElse) {
  std::vector<Raw> p;
  // Mirai: seq = destination, 3 probes.
  for (uint32_t i = 0; i < 3; ++i) {
    Raw r = Syn(0x0A000001, kNet + 10 + i, 23);
    r.seq = kNet + 10 + i;
    p.push_back(r);
  }
  // ZMap: IP ID 54321, no options.
  for (uint32_t i = 0; i < 4; ++i) {
    Raw r = Syn(0x0A000002, kNet + 20 + i, 80);
    r.ip_id = 54321;
    r.window = 65535;
    r.options.clear();
    p.push_back(r);
  }
  // Masscan: IP ID = (dst ^ dport ^ seq) & 0xffff, window 1024.
  for (uint32_t i = 0; i < 4; ++i) {
    Raw r = Syn(0x0A000003, kNet + 30 + i, 3389);
    r.seq = 0xCAFE0000 + i * 7919;
    r.ip_id = static_cast<uint16_t>(((kNet + 30 + i) ^ 3389u ^ r.seq) & 0xffff);
    r.window = 1024;
    r.options.clear();
    p.push_back(r);
  }
  // Nmap -sS: window 1024, only an MSS option, one sequence number for the scan (nmap 7.93's
  // SYNs to 32 ports of 16 addresses all carried one, as a capture of it in a namespace shows).
  for (uint32_t i = 0; i < 3; ++i) {
    Raw r = Syn(0x0A000004, kNet + 40 + i, 22);
    r.window = 1024;
    r.options = {0x02, 0x04, 0x05, 0xb4};
    r.seq = 0x9627d02e;
    p.push_back(r);
  }
  // Nmap's shape with a new sequence number on every probe (as Censys's SYNs in the shared
  // amp.dns capture): not Nmap.
  for (uint32_t i = 0; i < 3; ++i) {
    Raw r = Syn(0x0A00000A, kNet + 40 + i, 22);
    r.window = 1024;
    r.options = {0x02, 0x04, 0x05, 0xb4};
    p.push_back(r);
  }
  // SIPVicious: svmap's OPTIONS with its Via branch, cut as the store cuts it.
  for (uint32_t i = 0; i < 2; ++i) {
    Raw r;
    r.src = 0x0A000005;
    r.dst = kNet + 50 + i;
    r.proto = 17;
    r.sport = 5060;
    r.dport = 5060;
    r.payload = Bytes(
        "OPTIONS sip:100@203.0.113.50 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-"
        "1907402811;rport\r\nContent-Length: 0\r\nFrom: \"sipvicious\"<sip:100@1.1.1.1>;tag=6162");
    p.push_back(r);
  }
  // An ordinary SIP client's OPTIONS (Asterisk-style branch): not SIPVicious.
  {
    Raw r;
    r.src = 0x0A000006;
    r.dst = kNet + 60;
    r.proto = 17;
    r.sport = 5060;
    r.dport = 5060;
    r.payload = Bytes(
        "OPTIONS sip:203.0.113.60 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.6:5060;branch=z9hG4bK4a7c1e2f;"
        "rport\r\n");
    p.push_back(r);
  }
  // Backscatter: SYN-ACKs from a victim.
  for (uint32_t i = 0; i < 3; ++i) {
    Raw r = Syn(0x0A000007, kNet + 70 + i, 40000 + i);
    r.sport = 80;
    r.tcp_flags = 0x12;
    r.options.clear();
    p.push_back(r);
  }
  // A Linux client's SYNs, one of which has IP ID 54321 by chance: one match of a 16-bit rule
  // among 10 probes is not ZMap.
  for (uint32_t i = 0; i < 10; ++i) {
    Raw r = Syn(0x0A000008, kNet + 80 + i, 443);
    r.ip_id = i == 4 ? 54321 : static_cast<uint16_t>(1000 + i);
    p.push_back(r);
  }
  const Store& store = Build(p);
  auto tags = [&](uint32_t src) {
    auto t = TagSource(store, IpAddr::V4(src), nullptr);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? *t : SourceTags{};
  };
  auto only = [](const SourceTags& t, Tag want) {
    return t.verdict == (1u << static_cast<unsigned>(want));
  };
  EXPECT_TRUE(only(tags(0x0A000001), Tag::kMirai));
  EXPECT_EQ(tags(0x0A000001).evidence[static_cast<size_t>(Tag::kMirai)], 3u);
  EXPECT_TRUE(only(tags(0x0A000002), Tag::kZmap));
  EXPECT_TRUE(only(tags(0x0A000003), Tag::kMasscan));
  EXPECT_TRUE(only(tags(0x0A000004), Tag::kNmap));
  SourceTags nmap_shaped = tags(0x0A00000A);
  EXPECT_EQ(nmap_shaped.evidence[static_cast<size_t>(Tag::kNmap)], 3u);
  EXPECT_EQ(nmap_shaped.nmap_seq_repeats, 0u);
  EXPECT_EQ(nmap_shaped.verdict, 0u);
  EXPECT_TRUE(only(tags(0x0A000005), Tag::kSipvicious));
  EXPECT_EQ(tags(0x0A000006).verdict, 0u);
  EXPECT_TRUE(only(tags(0x0A000007), Tag::kBackscatter));
  SourceTags linux_client = tags(0x0A000008);
  EXPECT_EQ(linux_client.evidence[static_cast<size_t>(Tag::kZmap)], 1u);
  EXPECT_EQ(linux_client.probes, 10u);
  EXPECT_EQ(linux_client.verdict, 0u);

  // The period's table: each tool one source with its packets; the SIP client, the Linux
  // client and the Nmap-shaped source without Nmap's sequence number untagged.
  auto res = TopTools(store, *ParsePeriod("2018-08-12"), {}, std::nullopt, nullptr);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  std::map<std::string, std::pair<uint64_t, uint64_t>> got;
  for (const ToolRow& r : res->rows) got[TagName(r.tag)] = {r.sources, r.packets};
  std::map<std::string, std::pair<uint64_t, uint64_t>> want = {
      {"mirai", {1, 3}},      {"zmap", {1, 4}},        {"masscan", {1, 4}},  {"nmap", {1, 3}},
      {"sipvicious", {1, 2}}, {"backscatter", {1, 3}}, {"untagged", {3, 14}}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(res->sources, 9u);
  EXPECT_EQ(res->packets, 33u);
  // On one port: only the sources with packets there.
  auto on22 = TopTools(store, *ParsePeriod("2018-08-12"), {}, MakePortKey(6, 22), nullptr);
  ASSERT_TRUE(on22.ok());
  ASSERT_EQ(on22->rows.size(), 2u);
  EXPECT_EQ(on22->rows[0].tag, Tag::kNmap);
  EXPECT_EQ(on22->rows[0].packets, 3u);
  EXPECT_EQ(on22->rows[1].tag, Tag::kCount);
  EXPECT_EQ(on22->rows[1].packets, 3u);
}

TEST_F(ToolsTest, AResearchScannersNetworkTagsItsSourcesAndABadListNamesItsLine) {
  auto list = ResearchNetworks::Parse(
      "# comment\n\n10.0.0.0/29  Example  https://example.org/scanners (test)\n", "list.txt");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  std::vector<Raw> p = {Syn(0x0A000001, kNet + 1, 23), Syn(0x0A000009, kNet + 2, 23)};
  const Store& store = Build(p);
  auto in = TagSource(store, IpAddr::V4(0x0A000001), &*list);
  auto out = TagSource(store, IpAddr::V4(0x0A000009), &*list);
  ASSERT_TRUE(in.ok() && out.ok());
  EXPECT_TRUE(in->Has(Tag::kResearch));
  ASSERT_NE(in->research, nullptr);
  EXPECT_EQ(in->research->organisation, "Example");
  EXPECT_FALSE(out->Has(Tag::kResearch));
  for (const char* bad :
       {"10.0.0.0/33 X src\n", "ok-not-a-prefix X src\n", "10.0.0.0/8\n", "10.0.0.0/8 OnlyOrg\n"}) {
    auto r = ResearchNetworks::Parse(std::string("# first\n") + bad, "list.txt");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("list.txt:2:"), std::string::npos) << r.status().message();
  }
  // The shipped list parses, and each entry says where it comes from.
  ASSERT_FALSE(ResearchNetworks::Shipped().entries().empty());
  for (const auto& e : ResearchNetworks::Shipped().entries()) EXPECT_FALSE(e.source.empty());
}

// The simulator writes each tool's packets with the tool's own header fields and counts them
// per tool in its ground truth: every tagged tool's share of the packets must be within one
// percentage point of the truth (the bar), over a whole simulated half-year.
// `top ports --tag mirai`: only the tagged sources' packets, every packet of such a source (its
// verdict is over all its packets), exact distinct sources per port. Expectations counted by hand
// from the packets planted below.
TEST_F(ToolsTest, TopByTagCountsOnlyTheTaggedSourcesOnEachPort) {
  std::vector<Raw> p;
  auto mirai = [&](uint32_t src, uint32_t dst, uint16_t dport) {
    Raw r = Syn(src, dst, dport);
    r.seq = dst;
    p.push_back(r);
  };
  for (uint32_t i = 0; i < 3; ++i) mirai(0x0A000001, kNet + 10 + i, 23);
  for (uint32_t i = 0; i < 2; ++i) mirai(0x0A000001, kNet + 20 + i, 2323);
  for (uint32_t i = 0; i < 4; ++i) mirai(0x0A000002, kNet + 30 + i, 23);
  // Two Mirai probes and one ordinary SYN to 445: Mirai by 2 of 3, so its 445 packet counts.
  for (uint32_t i = 0; i < 2; ++i) mirai(0x0A000003, kNet + 40 + i, 23);
  p.push_back(Syn(0x0A000003, kNet + 45, 445));
  // Untagged: 5 to 23, 6 to 445.
  for (uint32_t i = 0; i < 5; ++i) p.push_back(Syn(0x0A000004, kNet + 50 + i, 23));
  for (uint32_t i = 0; i < 6; ++i) p.push_back(Syn(0x0A000004, kNet + 60 + i, 445));
  const Store& store = Build(p);
  auto period = *ParsePeriod("2018-08-12");
  auto res = TopByTag(store, Dimension::kPort, period, {}, Tag::kMirai, nullptr, 10);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->total_sources, 3u);
  EXPECT_EQ(res->total_packets, 12u);
  ASSERT_EQ(res->rows.size(), 3u);
  EXPECT_EQ(res->rows[0].key, MakePortKey(6, 23));
  EXPECT_EQ(res->rows[0].packets, 9u);
  EXPECT_EQ(res->rows[0].sources, 3u);
  EXPECT_NEAR(res->rows[0].share, 9.0 / 12.0, 1e-12);
  EXPECT_EQ(res->rows[1].key, MakePortKey(6, 2323));
  EXPECT_EQ(res->rows[1].packets, 2u);
  EXPECT_EQ(res->rows[1].sources, 1u);
  EXPECT_EQ(res->rows[2].key, MakePortKey(6, 445));
  EXPECT_EQ(res->rows[2].packets, 1u);
  EXPECT_EQ(res->rows[2].sources, 1u);
  EXPECT_EQ(res->rows[2].prev_rank, kRankNoData);
  // The limit keeps the busiest; a tag nobody has gives an empty table; sensors are refused.
  auto one = TopByTag(store, Dimension::kPort, period, {}, Tag::kMirai, nullptr, 1);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->rows.size(), 1u);
  EXPECT_EQ(one->rows[0].key, MakePortKey(6, 23));
  auto none = TopByTag(store, Dimension::kPort, period, {}, Tag::kZmap, nullptr, 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->rows.empty());
  EXPECT_EQ(none->total_sources, 0u);
  EXPECT_FALSE(TopByTag(store, Dimension::kSensor, period, {}, Tag::kMirai, nullptr, 10).ok());
  // By country: every source here is in one (unknown or not) region: the three Mirai sources.
  auto by_cc = TopByTag(store, Dimension::kCountry, period, {}, Tag::kMirai, nullptr, 10);
  ASSERT_TRUE(by_cc.ok());
  uint64_t sources = 0, packets = 0;
  for (const RankRow& r : by_cc->rows) {
    sources += r.sources;
    packets += r.packets;
  }
  EXPECT_EQ(sources, 3u);
  EXPECT_EQ(packets, 12u);
}

// `series --tag mirai`: per day and port, only the tagged sources' packets and sources; a source
// tagged by its packets over the whole period counts on a day it sent a single untagged-looking
// packet too. Expectations counted by hand from the packets planted below (days in JST).
TEST_F(ToolsTest, SeriesByTagCountsTheTaggedSourcesDayByDay) {
  constexpr int64_t kDay = 86'400'000'000;
  std::vector<Raw> p;
  auto mirai = [&](uint32_t src, uint32_t dst, uint16_t dport, int day) {
    Raw r = Syn(src, dst, dport);
    r.seq = dst;
    r.ts_us = kAug12Jst + day * kDay;
    p.push_back(r);
  };
  for (uint32_t i = 0; i < 3; ++i) mirai(0x0A000001, kNet + 10 + i, 23, 0);  // Aug 12
  for (uint32_t i = 0; i < 2; ++i) mirai(0x0A000001, kNet + 20 + i, 23, 1);  // Aug 13
  for (uint32_t i = 0; i < 4; ++i) mirai(0x0A000002, kNet + 30 + i, 23, 1);
  Raw plain = Syn(0x0A000002, kNet + 40, 2323);  // the Mirai source's one ordinary SYN, Aug 14
  plain.ts_us = kAug12Jst + 2 * kDay;
  p.push_back(plain);
  for (uint32_t i = 0; i < 5; ++i) p.push_back(Syn(0x0A000004, kNet + 50 + i, 23));  // untagged
  const Store& store = Build(p);
  const Period period = *ParsePeriod("2018-08-12..2018-08-14");
  auto all = SeriesByTag(store, Dimension::kPort, {}, period, {}, Tag::kMirai, nullptr);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->points.size(), 3u);
  EXPECT_EQ(all->points[0].label, "2018-08-12");
  EXPECT_EQ(all->points[0].packets, std::vector<uint64_t>{3});
  EXPECT_EQ(all->points[0].sources, std::vector<uint64_t>{1});
  EXPECT_EQ(all->points[1].packets, std::vector<uint64_t>{6});
  EXPECT_EQ(all->points[1].sources, std::vector<uint64_t>{2});
  EXPECT_EQ(all->points[2].packets, std::vector<uint64_t>{1});
  EXPECT_EQ(all->points[2].sources, std::vector<uint64_t>{1});
  const std::vector<uint64_t> keys = {MakePortKey(6, 23), MakePortKey(6, 2323)};
  auto ports = SeriesByTag(store, Dimension::kPort, keys, period, {}, Tag::kMirai, nullptr);
  ASSERT_TRUE(ports.ok());
  EXPECT_EQ(ports->points[1].packets, (std::vector<uint64_t>{6, 0}));
  EXPECT_EQ(ports->points[2].packets, (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(ports->points[2].sources, (std::vector<uint64_t>{0, 1}));
  // Summed over the days, the same numbers as `top ports --tag` (packets; sources per day).
  auto top = TopByTag(store, Dimension::kPort, period, {}, Tag::kMirai, nullptr, 10);
  ASSERT_TRUE(top.ok());
  ASSERT_EQ(top->rows.size(), 2u);
  EXPECT_EQ(top->rows[0].packets, 3u + 6u);
  EXPECT_EQ(top->rows[1].packets, 1u);
  EXPECT_FALSE(SeriesByTag(store, Dimension::kSensor, {}, period, {}, Tag::kMirai, nullptr).ok());
}

// `top tools --country CC`: a region's breakdown by tag holds only its sources; summed over the
// regions seen, the breakdowns give back the whole table.
TEST_F(ToolsTest, TopToolsByCountrySplitsTheTableByRegion) {
  std::vector<Raw> p;
  for (uint32_t i = 0; i < 3; ++i) {
    Raw r = Syn(0x0A000001, kNet + 10 + i, 23);
    r.seq = kNet + 10 + i;
    p.push_back(r);
  }
  for (uint32_t i = 0; i < 4; ++i) p.push_back(Syn(0x0A000002, kNet + 20 + i, 445));
  const Store& store = Build(p);
  auto period = *ParsePeriod("2018-08-12");
  auto all = TopTools(store, period, {}, std::nullopt, nullptr);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->sources, 2u);
  // Without a geo database both sources are in the unknown region (code 0): it holds everything,
  // and a region with no sources gives an empty table.
  auto unknown = TopTools(store, period, {}, std::nullopt, nullptr, {}, CountryCode{0});
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->sources, 2u);
  EXPECT_EQ(unknown->packets, 7u);
  auto cn = TopTools(store, period, {}, std::nullopt, nullptr, {}, MakeCountryCode("CN"));
  ASSERT_TRUE(cn.ok());
  EXPECT_EQ(cn->sources, 0u);
  EXPECT_TRUE(cn->rows.empty());
}

// The real captures of ../shared, each ingested at a sensor holding only the addresses its
// traffic was sent to (so that, as at a darknet, only what reached them is kept), and every source
// labelled independently of teiten:
//   - 172.31.15.102 ran masscan (PROVENANCE.md: its TCP SYN scan; its UDP scan has no fingerprint
//     a packet shows, so the verdict rests on the TCP one): masscan;
//   - every other source: backscatter when tshark's decoding shows at least half of its packets
//     to be replies nobody asked the sensor for (TCP SYN-ACK or RST, ICMP errors 3/4/5/11/12 and
//     replies 0/14/16/18, ICMPv6 1–4 and 129), otherwise none — the SNMP and DNS reflections'
//     UDP answers, `nmap -A` run without root (the kernel's connect() SYNs: no Nmap fingerprint),
//     a macOS host's connects with one Nmap-shaped SYN among four, telnet, SMB and SIP clients.
// Every source must get exactly its label: precision and recall per tag are printed.
TEST(ToolsOnRealCaptures, EverySourceOfTheSharedCapturesGetsItsHandLabel) {
  const std::string pcaps = testing::SharedPcapDir();
  if (!std::filesystem::exists(pcaps + "/amp.TCP.reflection.SYNACK.pcap")) {
    GTEST_SKIP() << pcaps << " absent";
  }
  if (!testing::HaveCommand("tshark")) GTEST_SKIP() << "tshark missing";
  struct Capture {
    const char* file;
    std::vector<const char*> dark;  // where its traffic went: the sensor's prefixes
  };
  const std::vector<Capture> captures = {
      {"tcp_0_1000_20190821.pcap", {"198.124.152.15/32"}},
      {"udp_0_1000_20190821.pcap", {"198.124.152.15/32"}},
      {"nmap_80_all.pcap", {"130.211.223.103/32"}},
      {"tcp_scan.pcapng", {"192.168.1.2/32"}},
      {"sip.pcap", {"212.242.33.35/32", "212.242.33.36/32", "200.68.120.81/32"}},
      {"telnet.pcap", {"192.168.0.1/32"}},
      {"smbv1.pcap", {"10.128.0.243/32"}},
      {"amp.TCP.reflection.SYNACK.pcap", {"10.10.10.10/32"}},
      {"amp.UDP.snmp.src161.pcapng", {"10.10.10.10/32"}},
      {"amp.dns.RRSIG.fragmented.pcap", {"10.10.10.10/32", "2a01:4f8:221:17d3::2/128"}},
  };
  testing::TempDir dir;
  auto store = Store::Open(dir.path() + "/store", {.create = true, .timezone = "UTC"});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  // tshark's view of every packet that reached the dark addresses: per source, packets and
  // backscatter-shaped packets.
  struct Count {
    uint64_t packets = 0, replies = 0;
  };
  std::map<std::string, Count> want;
  for (size_t i = 0; i < captures.size(); ++i) {
    const Capture& c = captures[i];
    SensorConfig sensor{"s" + std::to_string(i), "", "g", "JP", SensorMode::kDarknet, {}};
    std::string filter;
    for (const char* d : c.dark) {
      auto p = Prefix::Parse(d);
      ASSERT_TRUE(p.has_value()) << d;
      sensor.prefixes.push_back(*p);
      std::string addr(d, std::string_view(d).find('/'));
      filter += std::string(filter.empty() ? "" : " || ") +
                (addr.find(':') == std::string::npos ? "ip.dst#1==" : "ipv6.dst#1==") + addr;
    }
    const std::string path = pcaps + "/" + c.file;
    Ingester ing(store->get(), nullptr);
    auto r = ing.IngestFile(sensor, path);
    ASSERT_TRUE(r.ok()) << c.file << ": " << r.status().ToString();
    // Only the outer header decides: a quoted header inside an ICMP error is the second value.
    bool ok = false;
    std::string out = testing::Run(
        "tshark -n -o ip.defragment:FALSE -o ipv6.defragment:FALSE -r " +
            testing::ShellQuote(path) + " -Y " + testing::ShellQuote(filter) +
            " -T fields -E occurrence=f -e ip.src -e ipv6.src -e ip.proto -e ipv6.nxt"
            " -e tcp.flags.syn -e tcp.flags.ack -e tcp.flags.reset -e icmp.type -e icmpv6.type"
            " 2>/dev/null",
        &ok);
    ASSERT_TRUE(ok) << "tshark -r " << c.file;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
      std::vector<std::string> f;
      std::istringstream fields(line);
      std::string x;
      while (std::getline(fields, x, '\t')) f.push_back(x);
      f.resize(9);
      std::string src = !f[0].empty() ? f[0] : f[1];
      ASSERT_FALSE(src.empty()) << c.file << ": " << line;
      std::string proto = !f[2].empty() ? f[2] : f[3];
      bool reply = false;
      if (proto == "6") {
        reply = f[6] == "1" || (f[4] == "1" && f[5] == "1");
      } else if (proto == "1" && !f[7].empty()) {
        int t = std::stoi(f[7]);
        reply = t == 0 || t == 3 || t == 4 || t == 5 || t == 11 || t == 12 || t == 14 || t == 16 ||
                t == 18;
      } else if (proto == "58" && !f[8].empty()) {
        int t = std::stoi(f[8]);
        reply = (t >= 1 && t <= 4) || t == 129;
      }
      ++want[src].packets;
      want[src].replies += reply;
    }
  }
  ASSERT_GT(want.size(), 10'000u);
  std::map<std::string, uint32_t> label;
  for (const auto& [src, n] : want) {
    uint32_t tags = 0;
    if (src == "172.31.15.102") tags |= 1u << static_cast<unsigned>(Tag::kMasscan);
    // Scanners of 10.10.10.10 caught in the reflections' captures: 185.200.118.57's two SYNs to
    // 3389 carry IP ID 54321 (0xd431), as ZMap ≤ 4.0 writes it. Censys's sources are research
    // scanners, and nothing else: 167.248.133.94 sent two SYNs of window 1024 with one MSS
    // option — Nmap's shape, but each with its own sequence number, where Nmap keeps one.
    if (src == "185.200.118.57") tags |= 1u << static_cast<unsigned>(Tag::kZmap);
    // Censys's four networks, as its opt-out page lists them.
    for (const char* net :
         {"74.120.14.", "162.142.125.", "167.248.133.", "192.35.168.", "192.35.169."}) {
      if (src.rfind(net, 0) == 0) tags |= 1u << static_cast<unsigned>(Tag::kResearch);
    }
    if (n.replies >= 1 && 2 * n.replies >= n.packets) {
      tags |= 1u << static_cast<unsigned>(Tag::kBackscatter);
    }
    label[src] = tags;
  }

  // teiten's verdicts for every source, in one pass, with the shipped research list.
  NotifyScope everyone;
  everyone.prefixes = {*Prefix::Parse("0.0.0.0/0"), *Prefix::Parse("::/0")};
  auto lists = BuildNotifyLists(**store, *ParsePeriod("1990-01-01..2030-12-31"), {}, {everyone},
                                &ResearchNetworks::Shipped());
  ASSERT_TRUE(lists.ok()) << lists.status().ToString();
  std::map<std::string, uint32_t> got;
  std::map<std::string, uint64_t> packets;
  for (const NotifyRow& r : (*lists)[0].rows) {
    got[r.src.ToString()] |= r.tags;
    packets[r.src.ToString()] += r.packets;
  }
  for (const auto& [src, tags] : got) EXPECT_TRUE(label.count(src)) << src << ": not in tshark's";
  for (const auto& [src, tags] : label) EXPECT_TRUE(got.count(src)) << src << ": not in teiten's";
  size_t wrong = 0;
  for (const auto& [src, tags] : label) {
    EXPECT_EQ(packets[src], want[src].packets) << src << ": packets stored against tshark's";
    if (got[src] != tags && ++wrong <= 10) {
      ADD_FAILURE() << src << ": tags " << got[src] << ", labelled " << tags << " ("
                    << want[src].replies << " replies of " << want[src].packets << " packets)";
    }
  }
  EXPECT_EQ(wrong, 0u);
  std::printf("%zu sources labelled by hand\n", label.size());
  for (Tag t : {Tag::kZmap, Tag::kMasscan, Tag::kBackscatter, Tag::kResearch}) {
    uint32_t bit = 1u << static_cast<unsigned>(t);
    size_t tp = 0, fp = 0, fn = 0, fn4 = 0, pos4 = 0;
    for (const auto& [src, tags] : label) {
      bool is = tags & bit, says = got[src] & bit;
      tp += is && says;
      fp += !is && says;
      fn += is && !says;
      if (is && want[src].packets >= 4) ++pos4, fn4 += !says;
    }
    std::printf(
        "%-12s labelled %zu (%zu with >= 4 packets), tagged %zu: precision %.4f, recall "
        "%.4f (>= 4 packets: %.4f)\n",
        std::string(TagName(t)).c_str(), tp + fn, pos4, tp + fp,
        tp + fp ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 1.0,
        tp + fn ? static_cast<double>(tp) / static_cast<double>(tp + fn) : 1.0,
        pos4 ? static_cast<double>(pos4 - fn4) / static_cast<double>(pos4) : 1.0);
    EXPECT_GT(tp, 0u) << TagName(t);
  }
}

// Every source of a generated trace against the tool the generator gave it (its ground truth
// lists each population source with its tool, and each DoS victim whose backscatter it sent):
// per tag, precision and recall over the sources; and on each of the ten ports with the most
// sources, each tool's share of the port's sources within ±1 point of the truth's (issue 12,
// "per-tool shares per port within ±1 percentage point").
TEST(ToolsSimulatedTest, EverySourceGetsItsPlantedToolAndEachPortsSharesMatch) {
  testing::GeneratedStore gen;
  Status built =
      testing::BuildGeneratedStore(1205, 1533081600, 14, 600000, 30000, &gen);  // 2018-08-01
  ASSERT_TRUE(built.ok()) << built.ToString();
  const Store& store = *gen.store;
  const simulate::GroundTruth& truth = gen.truth;

  // The truth: a population source's tool, a victim's backscatter; anything else (the spoofed
  // flood's random sources) no tool.
  auto bit = [](Tag t) { return 1u << static_cast<unsigned>(t); };
  std::map<std::string, uint32_t> label;
  for (const simulate::SourceTruth& src : truth.sources) {
    uint32_t& l = label[src.addr.ToString()];
    switch (src.tool) {
      case simulate::Tool::kMirai:
        l |= bit(Tag::kMirai);
        break;
      case simulate::Tool::kZmap:
        l |= bit(Tag::kZmap);
        break;
      case simulate::Tool::kMasscan:
        l |= bit(Tag::kMasscan);
        break;
      case simulate::Tool::kNmap:
        l |= bit(Tag::kNmap);
        break;
      case simulate::Tool::kSipVicious:
        l |= bit(Tag::kSipvicious);
        break;
      default:
        break;
    }
  }
  for (const simulate::EpisodeTruth& e : truth.episodes) {
    if (e.tool == simulate::Tool::kBackscatter) label[e.addr.ToString()] |= bit(Tag::kBackscatter);
  }

  NotifyScope everyone;
  everyone.prefixes = {*Prefix::Parse("0.0.0.0/0"), *Prefix::Parse("::/0")};
  auto lists =
      BuildNotifyLists(store, *ParsePeriod("2018-08-01..2018-08-14"), {}, {everyone}, nullptr);
  ASSERT_TRUE(lists.ok()) << lists.status().ToString();
  struct Got {
    uint32_t tags = 0;
    uint64_t packets = 0;
    std::map<PortKey, uint64_t> ports;
  };
  std::map<std::string, Got> got;
  for (const NotifyRow& r : (*lists)[0].rows) {
    Got& g = got[r.src.ToString()];
    g.tags |= r.tags;
    g.packets += r.packets;
    for (const auto& [k, n] : r.ports) g.ports[k] += n;
  }
  uint64_t stored = 0;
  for (const auto& [src, g] : got) stored += g.packets;
  ASSERT_EQ(stored, truth.packets);
  for (const simulate::SourceTruth& src : truth.sources) {
    ASSERT_EQ(got[src.addr.ToString()].packets, src.packets) << src.addr.ToString();
  }

  const std::vector<Tag> tags = {Tag::kMirai, Tag::kZmap,       Tag::kMasscan,
                                 Tag::kNmap,  Tag::kSipvicious, Tag::kBackscatter};
  for (Tag t : tags) {
    size_t tp = 0, fp = 0, fn = 0, pos4 = 0, tp4 = 0;
    for (const auto& [src, g] : got) {
      auto it = label.find(src);
      bool is = it != label.end() && (it->second & bit(t)), says = g.tags & bit(t);
      tp += is && says;
      fp += !is && says;
      fn += is && !says;
      if (is && g.packets >= 4) ++pos4, tp4 += says;
    }
    double precision = tp + fp ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 0;
    double recall4 = pos4 ? static_cast<double>(tp4) / static_cast<double>(pos4) : 0;
    std::printf(
        "%-12s planted %zu (%zu with >= 4 packets), tagged %zu: precision %.4f, recall "
        "%.4f (>= 4 packets: %.4f)\n",
        TagName(t), tp + fn, pos4, tp + fp, precision,
        tp + fn ? static_cast<double>(tp) / static_cast<double>(tp + fn) : 0, recall4);
    EXPECT_GT(pos4, 0u) << TagName(t);
    EXPECT_GE(precision, 0.99) << TagName(t);
    EXPECT_GE(recall4, 0.95) << TagName(t);
  }

  // The ten ports with the most sources: each tool's share of them.
  std::map<PortKey, std::vector<const std::string*>> on_port;
  for (const auto& [src, g] : got) {
    for (const auto& [k, n] : g.ports) on_port[k].push_back(&src);
  }
  std::vector<std::pair<size_t, PortKey>> busiest;
  for (const auto& [k, v] : on_port) busiest.push_back({v.size(), k});
  std::sort(busiest.rbegin(), busiest.rend());
  ASSERT_GE(busiest.size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    const PortKey port = busiest[i].second;
    const auto& srcs = on_port[port];
    for (Tag t : tags) {
      size_t want = 0, have = 0;
      for (const std::string* src : srcs) {
        auto it = label.find(*src);
        want += it != label.end() && (it->second & bit(t));
        have += (got[*src].tags & bit(t)) != 0;
      }
      const double n = static_cast<double>(srcs.size());
      EXPECT_NEAR(static_cast<double>(have) / n, static_cast<double>(want) / n, 0.01)
          << PortKeyToString(port) << " " << TagName(t) << ": " << have << " tagged, " << want
          << " planted of " << srcs.size() << " sources";
    }
  }
}

TEST(ToolsScenarioTest, ToolSharesMatchTheSimulatorsGroundTruth) {
  auto s = testing::ScenarioStoreFor("tsubame-2018q3", 0.002);
  if (!s.ok() && s.status().code() == StatusCode::kNotFound) GTEST_SKIP() << s.status().ToString();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto store = Store::Open(s->store_dir, {});
  ASSERT_TRUE(store.ok());
  std::ifstream in(s->truth_path);
  auto truth = nlohmann::json::parse(in);
  std::map<std::string, uint64_t> by_tool;
  uint64_t total = 0;
  std::string first = "9999-99-99", last;
  for (const auto& f : truth.at("files")) {
    for (const auto& [tool, n] : f.at("packets_by_tool").items()) {
      by_tool[tool] += n.get<uint64_t>();
      total += n.get<uint64_t>();
    }
    first = std::min(first, f.at("day").get<std::string>());
    last = std::max(last, f.at("day").get<std::string>());
  }
  auto period = ParsePeriod(first + ".." + last);
  ASSERT_TRUE(period.ok());
  auto res = TopTools(**store, *period, {}, std::nullopt, nullptr);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->packets, total);
  std::map<std::string, uint64_t> got;
  for (const ToolRow& r : res->rows) got[TagName(r.tag)] = r.packets;
  for (const char* tool : {"mirai", "zmap", "masscan", "nmap", "sipvicious", "backscatter"}) {
    ASSERT_GT(by_tool[tool], 0u) << tool;
    double want = static_cast<double>(by_tool[tool]) / static_cast<double>(total);
    double share = static_cast<double>(got[tool]) / static_cast<double>(total);
    EXPECT_NEAR(share, want, 0.01)
        << tool << ": " << got[tool] << " tagged, " << by_tool[tool] << " planted";
  }
}

}  // namespace
}  // namespace teiten
