// Notification lists (src/feeds/notify.h, `teiten notify`, SPEC O6): the parsers and the CSV
// against hand-checked expectations; the real CLI on real captures (../shared) against tshark's
// reading of the same packets, and against the rollups' `top asns` / `top countries`.
#include "feeds/notify.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/time_zone.h"
#include "test_support.h"

namespace teiten {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using testing::Slurp;
std::string Quote(const std::string& s) {
  return testing::ShellQuote(s);
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// One CSV record's fields per RFC 4180 (quoted fields may hold commas and doubled quotes).
std::vector<std::string> CsvFields(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

TEST(NotifyParse, PrefixesAsOwnersWriteThem) {
  EXPECT_EQ(ParseStrictPrefix("192.0.2.0/24")->ToString(), "192.0.2.0/24");
  EXPECT_EQ(ParseStrictPrefix("2001:db8::/32")->ToString(), "2001:db8::/32");
  EXPECT_EQ(ParseStrictPrefix("192.0.2.7")->ToString(), "192.0.2.7/32");
  auto host_bits = ParseStrictPrefix("198.124.152.15/16");
  ASSERT_FALSE(host_bits.ok());
  EXPECT_NE(host_bits.status().message().find("198.124.0.0/16"), std::string::npos)
      << host_bits.status().message();
  EXPECT_FALSE(ParseStrictPrefix("192.0.2.0/33").ok());
  EXPECT_FALSE(ParseStrictPrefix("example.net").ok());

  auto list = ParsePrefixList("# ours\n192.0.2.0/24\n\n  198.51.100.0/25  # lab\r\n", "p.txt");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].ToString(), "198.51.100.0/25");
  auto bad = ParsePrefixList("192.0.2.0/24\n\n10.1.2.3/8\n", "p.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("p.txt:3: ", 0), 0u) << bad.status().message();

  EXPECT_EQ(*ParseAsn("64500"), 64500u);
  EXPECT_EQ(*ParseAsn("AS4294967295"), 4294967295u);
  EXPECT_EQ(*ParseAsn("as4837"), 4837u);
  for (const char* bad_asn : {"0", "AS", "4294967296", "64500x", "-1", ""}) {
    EXPECT_FALSE(ParseAsn(bad_asn).ok()) << bad_asn;
  }
  EXPECT_EQ(*ParseCountry("jp"), MakeCountryCode("JP"));
  EXPECT_FALSE(ParseCountry("XX").ok());
  EXPECT_FALSE(ParseCountry("Japan").ok());
}

TEST(NotifyParse, RecipientsFileErrorsNameTheLine) {
  testing::TempDir dir;
  std::ofstream(dir.path() + "/isp.txt") << "203.0.113.0/24\n";
  const std::string good = R"([[recipient]]
name = "isp-1"
email = "abuse@isp.example"
asn = [64500, "AS64501"]
prefix_file = "isp.txt"

[[recipient]]
name = "cert.br"
country = ["BR"]
prefixes = ["192.0.2.0/24"]
)";
  auto r = ParseRecipients(good, dir.path() + "/r.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].name, "isp-1");
  EXPECT_EQ((*r)[0].email, "abuse@isp.example");
  EXPECT_EQ((*r)[0].asns, (std::vector<uint32_t>{64500, 64501}));
  ASSERT_EQ((*r)[0].prefixes.size(), 1u);
  EXPECT_EQ((*r)[0].prefixes[0].ToString(), "203.0.113.0/24");
  EXPECT_EQ((*r)[1].Describe(), "BR, 192.0.2.0/24");

  struct Case {
    std::string text, where;
  };
  const Case cases[] = {
      {"[[recipient]]\nname = \"a\"\nasn = [1]\nmail = \"x\"\n", "r.toml:4: key 'mail'"},
      {"[[recipient]]\nname = \"a\"\nasn = [1]\n[[recipient]]\nname = \"a\"\nasn = [2]\n",
       "r.toml:5: key 'name'"},
      {"[[recipient]]\nname = \"../etc\"\nasn = [1]\n", "r.toml:2: key 'name'"},
      {"[[recipient]]\nname = \"a\"\nprefixes = [\"192.0.2.0/24\",\n  \"10.0.0.1/8\"]\n",
       "r.toml:4: key 'prefixes': '10.0.0.1/8' has host bits set"},
      {"[[recipient]]\nname = \"a\"\n", "r.toml:1: key 'a': the recipient names no network"},
      {"[[recipient]]\nasn = [1]\n", "r.toml:1: missing key 'name'"},
      {"[[recipient]]\nname = \"a\"\nasn = [0]\n", "r.toml:3: key 'asn'"},
      {"[[recipient]]\nname = \"a\"\nprefix_file = \"none.txt\"\n", "r.toml:3: key 'prefix_file'"},
      {"name = \"a\"\n", "r.toml:1: key 'name': unknown key"},
      {"[[recipient]\n", "r.toml:1:"},
  };
  for (const Case& c : cases) {
    auto bad = ParseRecipients(c.text, "r.toml");
    ASSERT_FALSE(bad.ok()) << c.text;
    EXPECT_EQ(bad.status().message().rfind(c.where, 0), 0u)
        << c.text << " → " << bad.status().message();
  }
}

TEST(NotifyCsv, RowBecomesOneHandCheckedLine) {
  NotifyList l;
  NotifyRow r;
  r.src = *IpAddr::Parse("192.0.2.7");
  r.geo.asn = 64500;
  r.geo.country = MakeCountryCode("JP");
  r.first_us = int64_t{1534035845} * 1000000 + 999999;  // 2018-08-12T01:04:05.999999Z
  r.last_us = int64_t{1534118400} * 1000000;            // 2018-08-13T00:00:00Z
  r.packets = 1300;
  r.ports = {{MakePortKey(6, 23), 1000},
             {MakePortKey(6, 2323), 200},
             {MakePortKey(17, 53), 99},
             {MakePortKey(1, 0), 1}};
  r.tags = (1u << static_cast<unsigned>(Tag::kMirai)) | (1u << static_cast<unsigned>(Tag::kZmap));
  r.groups = {"east,jp", "west"};
  l.rows.push_back(r);
  AsnNames names = {{64500, "Example \"Net\", Inc."}};
  EXPECT_EQ(WriteNotifyCsv(l, &names, 3),
            std::string(kNotifyCsvHeader) +
                "\r\n2018-08-12T01:04:05Z,2018-08-13T00:00:00Z,192.0.2.7,64500,"
                "\"Example \"\"Net\"\", Inc.\",JP,1300,4,23/tcp:1000;2323/tcp:200;53/udp:99,"
                "icmp;tcp;udp,mirai;zmap,\"east,jp;west\"\r\n");
  json j = json::parse(WriteNotifyJson(l, nullptr, "2018-08-12", "2018-08-13", 1));
  EXPECT_EQ(j["sources"], 1);
  EXPECT_EQ(j["rows"][0]["ports"], json::parse(R"([{"port": "23/tcp", "packets": 1000}])"));
  EXPECT_EQ(j["rows"][0]["distinct_ports"], 4);
  EXPECT_EQ(j["rows"][0]["as_name"], "");
  EXPECT_EQ(j["rows"][0]["tags"], json::parse(R"(["mirai", "zmap"])"));
}

// ---- the CLI on real captures ------------------------------------------------------------------

// One source as tshark reads the captures.
struct Expected {
  uint64_t packets = 0;
  int64_t first_s = INT64_MAX, last_s = INT64_MIN;
  std::map<std::string, uint64_t> ports;
  std::set<std::string> groups;
  uint64_t backscatter = 0;  // SYN-ACK, RST, ICMP replies and errors
};

class NotifyCli : public ::testing::Test {
 protected:
  void SetUp() override {
    pcaps_ = testing::SharedPcapDir();
    if (!fs::exists(pcaps_ + "/" + kTcp) || !fs::exists(pcaps_ + "/" + kUdp)) {
      GTEST_SKIP() << "no ../shared pcaps";
    }
    if (!testing::HaveCommand("tshark")) GTEST_SKIP() << "tshark missing";
    const std::string asn_db = testing::SourceDir() + "/var/geo/asn.mmdb";
    if (!fs::exists(testing::CountryDb()) || !fs::exists(asn_db)) {
      GTEST_SKIP() << "geo databases missing (scripts/setup.sh)";
    }
    config_ = dir_.path() + "/teiten.toml";
    // The sensor ids and prefixes are the telescope's secrets; only groups may reach an owner.
    std::ofstream(config_) << "[store]\npath = \"" << dir_.path()
                           << "/store\"\ntimezone = \"UTC\"\n[geo]\ncountry_db = \""
                           << testing::CountryDb() << "\"\nasn_db = \"" << asn_db << "\"\n"
                           << "[[sensor]]\nid = \"secret-tokyo-7\"\ngroup = \"east-jp\"\n"
                           << "prefixes = [\"0.0.0.0/0\"]\n"
                           << "[[sensor]]\nid = \"secret-osaka-2\"\nprefixes = [\"0.0.0.0/0\"]\n";
    Ingest("secret-tokyo-7", kTcp);
    Ingest("secret-osaka-2", kUdp);
    Reference(kTcp, "east-jp");
    Reference(kUdp, "default");  // the config's group of a sensor that names none
  }
  void Ingest(const std::string& sensor, const std::string& file) {
    bool ok = false;
    std::string out = Cli("ingest --sensor " + sensor + " " + Quote(pcaps_ + "/" + file), &ok);
    ASSERT_TRUE(ok) << out;
  }
  std::string Cli(const std::string& args, bool* ok) {
    return testing::Run(std::string(TEITEN_BIN) + " " + args + " --config " + Quote(config_) +
                            " 2>" + Quote(dir_.path() + "/stderr"),
                        ok);
  }
  std::string Stderr() { return Slurp(dir_.path() + "/stderr"); }
  // Every IPv4 packet's source, time, protocol, destination port and flags, as tshark reads them
  // (the first of each field: an ICMP error quotes a second IP header).
  void Reference(const std::string& file, const std::string& group) {
    bool ok = false;
    std::string out = testing::Run(
        "tshark -n -r " + Quote(pcaps_ + "/" + file) +
            " -Y ip -T fields -E occurrence=f -E separator=/t -e ip.src -e frame.time_epoch "
            "-e ip.proto -e tcp.dstport -e udp.dstport -e tcp.flags -e icmp.type 2>/dev/null",
        &ok);
    ASSERT_TRUE(ok);
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      auto f = Split(line, '\t');
      ASSERT_EQ(f.size(), 7u) << line;
      Expected& e = ref_[f[0]];
      e.packets++;
      const auto s = static_cast<int64_t>(std::floor(std::stod(f[1])));
      e.first_s = std::min(e.first_s, s);
      e.last_s = std::max(e.last_s, s);
      const int proto = std::stoi(f[2]);
      // A packet without its transport header (a later fragment, a cut-short header) has no port.
      if (proto == 6) {
        e.ports[f[3].empty() ? "tcp/-" : f[3] + "/tcp"]++;
        const int flags = std::stoi(f[5], nullptr, 16);
        if ((flags & 0x04) || (flags & 0x12) == 0x12) e.backscatter++;
      } else if (proto == 17) {
        e.ports[f[4].empty() ? "udp/-" : f[4] + "/udp"]++;
      } else if (proto == 1) {
        e.ports["0/icmp"]++;
        const int type = std::stoi(f[6]);
        if (std::set<int>{0, 3, 4, 5, 11, 12, 14, 16, 18}.count(type)) e.backscatter++;
      } else {
        e.ports["other"]++;
      }
      e.groups.insert(group);
    }
  }
  // A notification list's CSV rows by address, checked against the reference field by field.
  void ExpectList(const std::string& csv, const std::function<bool(const std::string&)>& in_scope) {
    auto lines = Split(csv, '\n');
    ASSERT_GE(lines.size(), 2u);
    EXPECT_EQ(lines[0], std::string(kNotifyCsvHeader) + "\r");
    std::set<std::string> listed;
    uint64_t previous = UINT64_MAX;
    for (size_t i = 1; i + 1 < lines.size(); ++i) {
      std::string line = lines[i];
      ASSERT_FALSE(line.empty());
      line.pop_back();  // '\r'
      auto f = CsvFields(line);
      ASSERT_EQ(f.size(), 12u) << line;
      const std::string& ip = f[2];
      SCOPED_TRACE(ip);
      ASSERT_TRUE(ref_.count(ip));
      EXPECT_TRUE(in_scope(ip));
      EXPECT_TRUE(listed.insert(ip).second) << "listed twice";
      const Expected& e = ref_[ip];
      const uint64_t packets = std::stoull(f[6]);
      EXPECT_EQ(packets, e.packets);
      EXPECT_LE(packets, previous) << "not most packets first";
      previous = packets;
      auto iso = [](int64_t s) {
        const auto day = static_cast<int32_t>(s / 86400);
        return fmt::format("{}T{:02}:{:02}:{:02}Z", TimeZone::DayString(day), s % 86400 / 3600,
                           s % 3600 / 60, s % 60);
      };
      EXPECT_EQ(f[0], iso(e.first_s));
      EXPECT_EQ(f[1], iso(e.last_s));
      std::map<std::string, uint64_t> ports;
      for (const std::string& p : Split(f[8], ';')) {
        const size_t colon = p.rfind(':');
        ports[p.substr(0, colon)] = std::stoull(p.substr(colon + 1));
      }
      if (e.ports.size() <= 20) {
        EXPECT_EQ(ports, e.ports);
      }
      EXPECT_EQ(std::stoull(f[7]), e.ports.size());
      std::set<std::string> groups;
      for (const std::string& g : Split(f[11], ';')) groups.insert(g);
      EXPECT_EQ(groups, e.groups);
      const auto tags = Split(f[10], ';');
      const bool tagged = std::find(tags.begin(), tags.end(), "backscatter") != tags.end();
      // The rule (docs/FINGERPRINTS.md): at least half of the source's packets are evidence.
      EXPECT_EQ(tagged, e.backscatter * 2 >= e.packets) << f[10];
    }
    for (const auto& [ip, e] : ref_) {
      if (in_scope(ip)) {
        EXPECT_TRUE(listed.count(ip)) << ip << " missing";
      }
    }
    // Nothing tells an owner where the telescope is.
    EXPECT_EQ(csv.find("secret-"), std::string::npos);
    EXPECT_EQ(csv.find("0.0.0.0/0"), std::string::npos);
  }

  static constexpr const char* kTcp = "amp.TCP.reflection.SYNACK.pcap";
  static constexpr const char* kUdp = "amp.UDP.snmp.src161.pcapng";
  static constexpr const char* kPeriod = "2021-05-15..2021-06-05";
  testing::TempDir dir_;
  std::string pcaps_, config_;
  std::map<std::string, Expected> ref_;
};

TEST_F(NotifyCli, EveryRowAgreesWithTshark) {
  ASSERT_GT(ref_.size(), 10000u);
  bool ok = false;
  // Everything: every source of both captures.
  std::string all = Cli(std::string("notify --prefix 0.0.0.0/0 --period ") + kPeriod, &ok);
  ASSERT_TRUE(ok) << Stderr();
  ExpectList(all, [](const std::string&) { return true; });
  // One /8: the busiest first octet, by tshark's addresses' text.
  std::map<std::string, int> octets;
  for (const auto& [ip, e] : ref_) octets[ip.substr(0, ip.find('.'))]++;
  const std::string octet = std::max_element(octets.begin(), octets.end(), [](auto& a, auto& b) {
                              return a.second < b.second;
                            })->first;
  std::ofstream(dir_.path() + "/ours.txt") << "# one owner\n" << octet << ".0.0.0/8\n";
  std::string one = Cli("notify --prefixes " + Quote(dir_.path() + "/ours.txt") + " --period " +
                            kPeriod + " -o " + Quote(dir_.path() + "/ours.csv"),
                        &ok);
  ASSERT_TRUE(ok) << Stderr();
  EXPECT_EQ(one, "");
  ExpectList(Slurp(dir_.path() + "/ours.csv"),
             [&](const std::string& ip) { return ip.rfind(octet + ".", 0) == 0; });
  EXPECT_FALSE(fs::exists(dir_.path() + "/ours.csv.tmp"));
}

TEST_F(NotifyCli, AsnAndCountryListsEqualTheRollups) {
  bool ok = false;
  for (const std::string dim : {"asns", "countries"}) {
    SCOPED_TRACE(dim);
    json top = json::parse(
        Cli("top " + dim + " -n 4 --format json --period " + std::string(kPeriod), &ok));
    ASSERT_TRUE(ok) << Stderr();
    int checked = 0;
    for (const json& row : top) {
      const std::string name = row[dim == "asns" ? "ASN" : "region"];
      if (name.rfind("unknown", 0) == 0 || name.rfind("--", 0) == 0) continue;
      const std::string key = name.substr(0, name.find(' '));
      const std::string flag = dim == "asns" ? "--asn " + key : "--country " + key;
      std::string csv = Cli("notify " + flag + " --period " + std::string(kPeriod), &ok);
      ASSERT_TRUE(ok) << Stderr();
      auto lines = Split(csv, '\n');
      uint64_t packets = 0;
      for (size_t i = 1; i + 1 < lines.size(); ++i) {
        lines[i].pop_back();  // '\r'
        auto f = CsvFields(lines[i]);
        ASSERT_EQ(f.size(), 12u) << lines[i];
        packets += std::stoull(f[6]);
        EXPECT_EQ(f[dim == "asns" ? 3 : 5], dim == "asns" ? key.substr(2) : key);
      }
      EXPECT_EQ(lines.size() - 2, row["sources"].get<uint64_t>()) << key;
      EXPECT_EQ(packets, row["packets"].get<uint64_t>()) << key;
      ++checked;
    }
    EXPECT_GE(checked, 3);
  }
}

TEST_F(NotifyCli, DailyRunWritesAFilePerRecipientAndMovesItsStateOnlyOnSuccess) {
  // The busiest /8s of each capture as two owners, a third with nothing seen.
  const std::string rfile = dir_.path() + "/recipients.toml";
  std::ofstream(rfile) << "[[recipient]]\nname = \"all-v4\"\nprefixes = [\"0.0.0.0/1\", "
                          "\"128.0.0.0/1\"]\n[[recipient]]\nname = \"nobody\"\n"
                          "prefixes = [\"192.0.2.0/24\"]\n";
  const std::string out = dir_.path() + "/lists", state = dir_.path() + "/state.json";
  bool ok = false;
  Cli("notify --recipients " + Quote(rfile) + " --out-dir " + Quote(out) + " --since-last-run " +
          Quote(state),
      &ok);
  ASSERT_TRUE(ok) << Stderr();
  // A first run covers the last day with data: the TCP capture's.
  const std::string file = out + "/all-v4-2021-06-05.csv";
  ASSERT_TRUE(fs::exists(file)) << Stderr();
  EXPECT_FALSE(fs::exists(out + "/nobody-2021-06-05.csv"));
  EXPECT_NE(Stderr().find("nobody: no sources in 2021-06-05; no file written"), std::string::npos)
      << Stderr();
  const std::string csv = Slurp(file);
  size_t rows = std::count(csv.begin(), csv.end(), '\n') - 1;
  std::set<std::string> tcp_sources;
  for (const auto& [ip, e] : ref_) {
    if (e.groups.count("east-jp")) tcp_sources.insert(ip);
  }
  EXPECT_EQ(rows, tcp_sources.size());
  EXPECT_EQ(json::parse(Slurp(state))["last_day"], "2021-06-05");
  // Nothing new: nothing written, the state unchanged.
  fs::remove(file);
  Cli("notify --recipients " + Quote(rfile) + " --out-dir " + Quote(out) + " --since-last-run " +
          Quote(state),
      &ok);
  ASSERT_TRUE(ok) << Stderr();
  EXPECT_NE(Stderr().find("nothing new since 2021-06-05"), std::string::npos) << Stderr();
  EXPECT_FALSE(fs::exists(file));
  // A run that cannot write its files fails and leaves the state where it was.
  fs::remove(state);
  std::ofstream(out + "/blocked") << "x";
  Cli("notify --recipients " + Quote(rfile) + " --out-dir " + Quote(out + "/blocked") +
          " --since-last-run " + Quote(state),
      &ok);
  EXPECT_FALSE(ok);
  EXPECT_NE(Stderr().find(out + "/blocked"), std::string::npos) << Stderr();
  EXPECT_FALSE(fs::exists(state));
  // A broken recipients file is an error naming its line, before anything is read.
  std::ofstream(rfile, std::ios::app)
      << "[[recipient]]\nname = \"x\"\nprefixes = [\"10.9.8.7/8\"]\n";
  Cli("notify --recipients " + Quote(rfile) + " --out-dir " + Quote(out) + " --period " + kPeriod,
      &ok);
  EXPECT_FALSE(ok);
  EXPECT_NE(Stderr().find(rfile + ":9: key 'prefixes': '10.9.8.7/8' has host bits set"),
            std::string::npos)
      << Stderr();
}

}  // namespace
}  // namespace teiten
