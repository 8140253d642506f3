// teiten's counts against independent references: tshark decodes every shared capture, and
// libmaxminddb looks up each source directly (not through teiten's flattened range table).
#include <gtest/gtest.h>
#include <maxminddb.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "analysis/query.h"
#include "ingest/ingest.h"
#include "simulate/generator.h"
#include "test_support.h"

namespace teiten {
namespace {

namespace fs = std::filesystem;
using testing::Run;

struct Reference {
  std::map<std::string, uint64_t> port_packets;
  std::map<std::string, std::set<std::string>> port_sources;
  std::map<std::string, uint64_t> country_packets;
  uint64_t packets = 0;
};

std::string ProtoPort(const std::string& proto, const std::string& tcp, const std::string& udp) {
  if (proto == "1") return "0/ICMP";
  if (proto == "58") return "0/ICMPv6";
  if (proto == "6") return tcp.empty() ? "TCP/-" : tcp + "/TCP";
  if (proto == "17") return udp.empty() ? "UDP/-" : udp + "/UDP";
  const char* n = ProtoName(static_cast<uint8_t>(std::stoi(proto)));
  return std::string(n ? n : "proto-" + proto) + "/-";
}

std::string CountryOf(MMDB_s* db, const std::string& ip) {
  int gai = 0, err = 0;
  MMDB_lookup_result_s r = MMDB_lookup_string(db, ip.c_str(), &gai, &err);
  if (gai || err || !r.found_entry) return "--";
  MMDB_entry_data_s d;
  if (MMDB_get_value(&r.entry, &d, "country_code", nullptr) == MMDB_SUCCESS && d.has_data) {
    return std::string(d.utf8_string, d.data_size);
  }
  return "--";
}

// tshark with reassembly off, first occurrence of each field (ICMP errors quote a second header).
Reference TsharkReference(const std::string& pcap, MMDB_s* db) {
  std::string out = Run("tshark -n -r '" + pcap +
                        "' -o ip.defragment:FALSE -o ipv6.defragment:FALSE -E occurrence=f "
                        "-T fields -e ip.src -e ipv6.src -e ip.proto -e ipv6.nxt -e tcp.dstport "
                        "-e udp.dstport -e ip.frag_offset 2>/dev/null");
  Reference ref;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    std::string x;
    while (std::getline(ls, x, '\t')) f.push_back(x);
    f.resize(7);
    std::string src = !f[0].empty() ? f[0] : f[1];
    if (src.empty()) continue;  // not IP
    std::string proto = !f[2].empty() ? f[2] : f[3];
    bool non_first = !f[6].empty() && f[6] != "0";
    std::string key = non_first ? ProtoPort(proto, "", "") : ProtoPort(proto, f[4], f[5]);
    if (non_first && proto != "1" && proto != "58") {
      key = std::string(ProtoName(static_cast<uint8_t>(std::stoi(proto))) ?: "?") + "/-";
    }
    ref.packets++;
    ref.port_packets[key]++;
    ref.port_sources[key].insert(src);
    ref.country_packets[CountryOf(db, src)]++;
  }
  return ref;
}

// Ingests `pcap` into a fresh store and compares per-port packets, per-port distinct sources and
// per-country packets with tshark and direct libmaxminddb lookups.
void CompareWithReferences(const std::string& pcap, const GeoDb& geo, MMDB_s* db) {
  testing::TempDir dir;
  auto store = Store::Open(dir.path(), {.create = true, .timezone = "UTC"});
  ASSERT_TRUE(store.ok());
  SensorConfig sensor{"lab",
                      "lab",
                      "test",
                      "JP",
                      SensorMode::kDarknet,
                      {*Prefix::Parse("0.0.0.0/0"), *Prefix::Parse("::/0")}};
  Ingester ing(store->get(), &geo);
  auto sum = ing.IngestFile(sensor, pcap);
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(sum->error, "");
  Reference ref = TsharkReference(pcap, db);
  EXPECT_EQ(sum->kept, ref.packets);
  Period all = DaysPeriod(0, 40000);  // 1970..2079
  auto ports = Top(**store, Dimension::kPort, all, {}, 1000000);
  ASSERT_TRUE(ports.ok()) << ports.status().ToString();
  std::map<std::string, uint64_t> got_packets, got_sources, ref_sources;
  for (const auto& r : ports->rows) {
    got_packets[PortKeyToString(static_cast<PortKey>(r.key))] = r.packets;
    got_sources[PortKeyToString(static_cast<PortKey>(r.key))] = r.sources;
  }
  EXPECT_EQ(got_packets, ref.port_packets);
  for (const auto& [k, v] : ref.port_sources) ref_sources[k] = v.size();
  EXPECT_EQ(got_sources, ref_sources);
  auto countries = Top(**store, Dimension::kCountry, all, {}, 100000);
  ASSERT_TRUE(countries.ok());
  std::map<std::string, uint64_t> got_countries;
  for (const auto& r : countries->rows) {
    got_countries[CountryCodeString(static_cast<CountryCode>(r.key))] = r.packets;
  }
  EXPECT_EQ(got_countries, ref.country_packets);
}

class ReferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::HaveCommand("tshark")) GTEST_SKIP() << "tshark is not installed";
    if (!fs::exists(testing::CountryDb())) {
      GTEST_SKIP() << "no geo database at " << testing::CountryDb() << " (run scripts/setup.sh)";
    }
    ASSERT_EQ(MMDB_open(testing::CountryDb().c_str(), MMDB_MODE_MMAP, &db_), MMDB_SUCCESS);
    opened_ = true;
    auto g = GeoDb::Open(testing::CountryDb(), "");
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    geo_ = std::move(*g);
  }
  void TearDown() override {
    if (opened_) MMDB_close(&db_);
  }
  MMDB_s db_{};
  bool opened_ = false;
  std::unique_ptr<GeoDb> geo_;
};

TEST_F(ReferenceTest, EverySharedCaptureMatchesTsharkAndLibmaxminddb) {
  // The shared captures are part of every checkout's surroundings (../shared): missing them is a
  // broken setup, not a reason to pass.
  if (!fs::exists(testing::SharedPcapDir())) {
    FAIL() << "no shared captures at " << testing::SharedPcapDir();
  }
  int checked = 0;
  for (const auto& e : fs::directory_iterator(testing::SharedPcapDir())) {
    std::string name = e.path().filename().string();
    if (name.find(".pcap") == std::string::npos) continue;
    SCOPED_TRACE(name);
    CompareWithReferences(e.path().string(), *geo_, &db_);
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

// A generated trace: sources drawn from the database's real ranges, every tool's header rules,
// backscatter quoting spoofed packets, IPv6 — decoded by tshark and by teiten alike.
TEST_F(ReferenceTest, AGeneratedTraceMatchesTsharkAndLibmaxminddb) {
  std::vector<simulate::SourceRange> ranges;
  for (const GeoRange& r : geo_->v4_ranges()) {
    if (!r.info.country) continue;
    std::string cc = CountryCodeString(r.info.country);
    ranges.push_back({r.first, r.last, {cc[0], cc[1]}, r.info.asn});
  }
  simulate::GeneratorSpec spec = simulate::GeneratorSpec::Default2018();
  spec.seed = 11;
  spec.start_us = 1533081600LL * 1000000;  // 2018-08-01
  spec.end_us = spec.start_us + 2LL * 86400 * 1000000;
  spec.packets = 200000;
  spec.sources = 5000;
  spec.spoofed_flood_share = 0.05;
  spec.monitored = {*Prefix::Parse("203.0.113.0/24"), *Prefix::Parse("2001:db8:1::/48")};
  testing::TempDir dir;
  std::string pcap = dir.path() + "/gen.pcap";
  ASSERT_TRUE(simulate::WriteTrace(spec, ranges, pcap, nullptr).ok());
  CompareWithReferences(pcap, *geo_, &db_);
}

}  // namespace
}  // namespace teiten
