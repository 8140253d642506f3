// Tests of scenarios (src/simulate/scenario.h): TOML errors name the line and key; a scenario's
// output is deterministic; the small scenario's planted events are in the ground truth and their
// packets are in the pcaps (read back with libpcap) on the right days, ports and regions.
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <unistd.h>
#include <zstd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/ip.h"
#include "common/time_zone.h"
#include "simulate/scenario.h"
#include "simulate/simulate_command.h"
#include "simulate/source_ranges.h"

namespace teiten::simulate {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kDay = 86400LL * 1000000;

std::string SourceDir() {
  if (const char* d = std::getenv("TEITEN_SOURCE_DIR")) return d;
  return TEITEN_SOURCE_DIR_DEFAULT;
}

std::string TempDir(const std::string& name) {
  static const std::string dir = [] {
    std::string tmpl = ::testing::TempDir() + "teiten-scn-XXXXXX";
    char* d = mkdtemp(tmpl.data());
    return std::string(d ? d : "/tmp");
  }();
  return dir + "/" + name;
}

Scenario Small(double scale) {
  auto sc = LoadScenario(SourceDir() + "/data/scenarios/small.toml");
  EXPECT_TRUE(sc.ok()) << sc.status().ToString();
  sc->scale = scale;
  return *sc;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The error names the file, the line and the key.
struct BadCase {
  std::string text;
  std::string expected;
};

TEST(ScenarioParse, ErrorsNameLineAndKey) {
  const std::string head =
      "name = \"bad\"\n"                    // 1
      "[period]\n"                          // 2
      "start = \"2018-08-10\"\n"            // 3
      "days = 2\n"                          // 4
      "[traffic]\n"                         // 5
      "packets_per_sensor_day = 100\n"      // 6
      "sources = 10\n"                      // 7
      "[[sensor]]\n"                        // 8
      "id = \"s1\"\n"                       // 9
      "prefixes = [\"203.0.113.0/28\"]\n";  // 10
  const std::vector<BadCase> cases = {
      {"[period]\nstart = \"2018/07/01\"\ndays = 1\n",
       "bad.toml:2: key 'start': expected YYYY-MM-DD"},
      {head + "[[event]]\nname = \"e\"\nkind = \"surge\"\nstart = \"2018-08-10\"\n"
              "magnitude = 10\nregions = [\"CN\"]\nports = [70000]\n",
       "bad.toml:17: key 'ports': port not in [0, 65535]"},
      {head + "[[event]]\nname = \"e\"\nkind = \"surge\"\nstart = \"2018-08-10\"\n"
              "magnitude = 10\nregions = [\"CN\"]\nports = [23]\ncolour = 1\n",
       "bad.toml:18: key 'colour': unknown key"},
      {head + "[[event]]\nname = \"e\"\nkind = \"wobble\"\nstart = \"2018-08-10\"\n",
       "bad.toml:13: key 'kind': expected surge"},
      {head + "[[event]]\nname = \"e\"\nkind = \"surge\"\nstart = \"2018-08-11\"\n"
              "end = \"2018-08-10\"\n",
       "bad.toml:15: key 'end': not after 'start'"},
      {head + "[[event]]\nname = \"e\"\nkind = \"silence\"\nstart = \"2018-09-01\"\n",
       "bad.toml:14: key 'start': not before the period's end"},
      // Silences: a depth in (0, 1], AS numbers, something to silence; only on a silence.
      {head + "[[event]]\nname = \"e\"\nkind = \"silence\"\nstart = \"2018-08-10\"\n"
              "regions = [\"CN\"]\nshare = 1.5\n",
       "bad.toml:16: key 'share': expected a number in (0, 1]"},
      {head + "[[event]]\nname = \"e\"\nkind = \"silence\"\nstart = \"2018-08-10\"\n"
              "regions = [\"CN\"]\nshare = 0\n",
       "bad.toml:16: key 'share': expected a number in (0, 1]"},
      {head + "[[event]]\nname = \"e\"\nkind = \"silence\"\nstart = \"2018-08-10\"\n"
              "asns = [\"AS4134\"]\n",
       "key 'asns': expected AS numbers"},
      {head + "[[event]]\nname = \"e\"\nkind = \"silence\"\nstart = \"2018-08-10\"\n"
              "share = 0.5\n",
       "bad.toml:11: key 'regions': a silence needs 'regions' or 'asns'"},
      {head + "[[event]]\nname = \"e\"\nkind = \"surge\"\nstart = \"2018-08-10\"\n"
              "magnitude = 10\nregions = [\"CN\"]\nports = [23]\nshare = 0.5\n",
       "bad.toml:18: key 'share': only for a silence event"},
      {head + "[countries]\nCN = -1\n", "bad.toml:12: key 'CN': expected a weight"},
      {head + "[[profile]]\nname = \"mirai-telnet\"\npacket_share = \"lots\"\n",
       "bad.toml:13: key 'packet_share': expected a number"},
      {"name = \"bad\"\n[period]\nstart = 2018-08-10\ndays = 1\n[traffic]\nsources = 1\n",
       "bad.toml:5: missing key 'packets_per_sensor_day'"},
      // Phases: the period before, each a whole day range of its own.
      {head + "[[phase]]\nname = \"q2\"\nstart = \"2018-08-09\"\ndays = 2\n",
       "bad.toml:13: key 'start': the phase overlaps the [period]"},
      {head + "[[phase]]\nname = \"a\"\nstart = \"2018-08-01\"\ndays = 5\n"
              "[[phase]]\nname = \"b\"\nstart = \"2018-08-04\"\ndays = 2\n",
       "bad.toml:17: key 'start': the phase overlaps phase 'a' (line 11)"},
      {head + "[[phase]]\nname = \"a\"\nstart = \"2018-08-01T06:00\"\ndays = 1\n",
       "bad.toml:13: key 'start': expected YYYY-MM-DD (a whole day)"},
      {head + "[[phase]]\nname = \"a\"\nstart = \"2018-08-01\"\ndays = 1\nvolume = 3\n",
       "bad.toml:15: key 'volume': unknown key"},
      {head + "[[phase]]\nname = \"a\"\nstart = \"2018-08-01\"\ndays = 1\n"
              "[phase.countries]\nCN = \"x\"\n",
       "bad.toml:16: key 'CN': expected a weight"},
  };
  for (const BadCase& c : cases) {
    auto sc = ParseScenario(c.text, "bad.toml");
    ASSERT_FALSE(sc.ok()) << c.text;
    EXPECT_EQ(sc.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(sc.status().message().find(c.expected), std::string::npos)
        << "got: " << sc.status().message() << "\nwanted: " << c.expected;
  }
}

// An AS that no source range holds has no sources to silence: an error naming the event.
TEST(ScenarioRun, SilenceOfAnUnknownAsIsAnError) {
  auto sc = ParseScenario(R"(name = "as"
[period]
start = "2018-08-10"
days = 1
[traffic]
packets_per_sensor_day = 100
sources = 50
[[sensor]]
id = "s1"
prefixes = ["203.0.113.0/28"]
[[event]]
name = "dark"
kind = "silence"
start = "2018-08-10"
asns = [4134, 4200000000]
)",
                          "as.toml");
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  Status st = RunScenario(*sc, FallbackSourceRanges(), {TempDir("as")}, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("event 'dark': asns: AS4200000000 is in no source range"),
            std::string::npos)
      << st.message();
}

TEST(ScenarioParse, ShippedScenariosParse) {
  for (const char* name : {"small", "tsubame-2018q3", "tsubame-2015q4", "talot2-2007-08"}) {
    auto sc = LoadScenario(SourceDir() + "/data/scenarios/" + name + ".toml");
    EXPECT_TRUE(sc.ok()) << name << ": " << sc.status().ToString();
  }
  auto missing = LoadScenario("no-such-scenario");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

// A phase is days of their own before the period: its volume, its countries, its profiles'
// ports; the period keeps the scenario's. Counts come from the ground truth, which the other tests
// check against the pcaps.
TEST(ScenarioRun, PhaseDaysHaveTheirOwnMix) {
  auto sc = ParseScenario(R"(name = "phased"
seed = 3
[period]
start = "2018-08-10"
days = 2
[traffic]
packets_per_sensor_day = 3000
sources = 400
spoofed_flood_share = 0
default_profiles = false
[countries]
CN = 1
[[profile]]
name = "telnet"
tool = "mirai"
packet_share = 1
source_share = 1
ports = [23]
[[phase]]
name = "before"
start = "2018-08-07"
days = 2
packets_per_sensor_day = 1000
[phase.countries]
BR = 1
[[phase.profile]]
name = "telnet"
ports = [2323]
[[sensor]]
id = "s1"
prefixes = ["203.0.113.0/28"]
)",
                          "phased.toml");
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  ScenarioTruth truth;
  ASSERT_TRUE(RunScenario(*sc, FallbackSourceRanges(), {TempDir("phased")}, &truth).ok());
  std::map<std::string, const GroundTruth*> by_day;
  for (const ScenarioTruth::File& f : truth.files) by_day[f.day] = &f.truth;
  // 2018-08-09 lies between the phase and the period: nothing is generated for it.
  ASSERT_EQ(by_day.size(), 4u);
  for (const char* day : {"2018-08-07", "2018-08-08"}) {
    ASSERT_TRUE(by_day.count(day)) << day;
    const GroundTruth& t = *by_day[day];
    EXPECT_EQ(t.packets, 1000u) << day;
    EXPECT_EQ(t.packets_by_country, (std::map<std::string, uint64_t>{{"BR", 1000}})) << day;
    EXPECT_EQ(t.packets_by_port, (std::map<PortKey, uint64_t>{{MakePortKey(6, 2323), 1000}}))
        << day;
  }
  for (const char* day : {"2018-08-10", "2018-08-11"}) {
    ASSERT_TRUE(by_day.count(day)) << day;
    const GroundTruth& t = *by_day[day];
    EXPECT_EQ(t.packets, 3000u) << day;
    EXPECT_EQ(t.packets_by_country, (std::map<std::string, uint64_t>{{"CN", 3000}})) << day;
    EXPECT_EQ(t.packets_by_port, (std::map<PortKey, uint64_t>{{MakePortKey(6, 23), 3000}})) << day;
  }
}

TEST(ScenarioRun, SameScenarioAndSeedSameBytes) {
  Scenario sc = Small(0.25);
  const std::string a = TempDir("det-a"), b = TempDir("det-b"), c = TempDir("det-c");
  ASSERT_TRUE(RunScenario(sc, FallbackSourceRanges(), {a, true}, nullptr).ok());
  ASSERT_TRUE(RunScenario(sc, FallbackSourceRanges(), {b, true}, nullptr).ok());
  sc.seed += 1;
  ASSERT_TRUE(RunScenario(sc, FallbackSourceRanges(), {c, true}, nullptr).ok());
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(a)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), a).string();
    ++files;
    EXPECT_EQ(Slurp(e.path().string()), Slurp(b + "/" + rel)) << rel;
    if (rel.ends_with(".zst")) EXPECT_NE(Slurp(e.path().string()), Slurp(c + "/" + rel)) << rel;
  }
  EXPECT_EQ(files, 2 * 4 + 1);  // 2 sensors × 4 days, and the ground truth
}

// --days: a slice of the scenario, each trace byte for byte the whole run's, the ground truth
// listing the slice's files only; a range that misses every day is refused.
TEST(ScenarioRun, ADaySliceIsTheWholeRunsDays) {
  Scenario sc = Small(0.25);
  const std::string whole = TempDir("slice-whole"), slice = TempDir("slice");
  ASSERT_TRUE(RunScenario(sc, FallbackSourceRanges(), {whole}, nullptr).ok());
  ScenarioOutput out{slice};
  out.first_day = TimeZone::DaysFromCivil(2018, 8, 12);
  out.last_day = TimeZone::DaysFromCivil(2018, 8, 13);
  ScenarioTruth truth;
  ASSERT_TRUE(RunScenario(sc, FallbackSourceRanges(), out, &truth).ok());
  ASSERT_EQ(truth.files.size(), 2u * 2);
  for (const auto& f : truth.files) {
    const std::string rel = f.sensor + "/" + f.day + ".pcap";
    EXPECT_TRUE(f.day == "2018-08-12" || f.day == "2018-08-13") << f.day;
    const std::string bytes = Slurp(slice + "/" + rel);
    EXPECT_GT(bytes.size(), 24u) << rel;
    EXPECT_EQ(bytes, Slurp(whole + "/" + rel)) << rel;
  }
  EXPECT_FALSE(fs::exists(slice + "/s01/2018-08-10.pcap"));
  auto j = nlohmann::json::parse(Slurp(slice + "/ground_truth.json"));
  EXPECT_EQ(j["files"].size(), 4u);
  out.first_day = out.last_day = TimeZone::DaysFromCivil(2019, 1, 1);
  EXPECT_EQ(RunScenario(sc, FallbackSourceRanges(), out, nullptr).code(),
            StatusCode::kInvalidArgument);
}

TEST(ScenarioRun, CompressedTracesDecompressToThePlainOnes) {
  Scenario sc = Small(0.1);
  const std::string plain = TempDir("plain"), zst = TempDir("zst");
  ASSERT_TRUE(RunScenario(sc, FallbackSourceRanges(), {plain, false, true}, nullptr).ok());
  ASSERT_TRUE(RunScenario(sc, FallbackSourceRanges(), {zst, true, false}, nullptr).ok());
  const std::string a = Slurp(plain + "/s02/2018-08-12.pcap");
  const std::string z = Slurp(zst + "/s02/2018-08-12.pcap.zst");
  ASSERT_FALSE(a.empty());
  std::string b(a.size(), '\0');
  EXPECT_EQ(ZSTD_decompress(b.data(), b.size(), z.data(), z.size()), a.size());
  EXPECT_EQ(a, b);
  EXPECT_FALSE(fs::exists(zst + "/s02/2018-08-12.pcap"));
  // --with-sources: every source of the trace, planted ones among them.
  auto t = nlohmann::json::parse(Slurp(plain + "/s02/2018-08-12.truth.json"));
  EXPECT_GT(t["sources"].size(), 10u);
  // The events of 8/12, one stream per region: 1 + 3 + 1 + 1 + 3 + 2.
  EXPECT_EQ(t["planted"].size(), 11u);
}

TEST(ScenarioRun, HourlyFilesSplitTheDay) {
  Scenario sc = Small(0.2);
  const std::string dir = TempDir("hourly");
  ScenarioOutput out{dir, false, false, 6};
  ScenarioTruth truth;
  ASSERT_TRUE(RunScenario(sc, FallbackSourceRanges(), out, &truth).ok());
  EXPECT_EQ(truth.files.size(), 2u * 4 * 4);
  EXPECT_TRUE(fs::exists(dir + "/s01/2018-08-12T06.pcap"));
  for (const auto& e : truth.events) {
    if (e.spec->name != "patch-5168") continue;  // 06:00–12:00 on 8/12: one file per sensor
    ASSERT_EQ(e.packets_by_file.size(), 2u);
    EXPECT_EQ(e.packets_by_file.begin()->first.second, "2018-08-12T06");
  }
  out.hours_per_file = 5;
  EXPECT_EQ(RunScenario(sc, FallbackSourceRanges(), out, nullptr).code(),
            StatusCode::kInvalidArgument);
}

struct Packet {
  int64_t ts_us = 0;
  uint32_t src = 0;
  uint8_t proto = 0;
  uint16_t dport = 0;
};

std::vector<Packet> ReadPcap(const std::string& path) {
  std::vector<Packet> out;
  char err[PCAP_ERRBUF_SIZE];
  std::unique_ptr<pcap_t, void (*)(pcap_t*)> pc(pcap_open_offline(path.c_str(), err), pcap_close);
  if (!pc) {
    ADD_FAILURE() << "pcap_open_offline: " << err;
    return out;
  }
  pcap_pkthdr* h;
  const u_char* d;
  while (pcap_next_ex(pc.get(), &h, &d) == 1) {
    if (h->caplen < 14 + 20 || d[12] != 0x08 || d[13] != 0x00) continue;  // IPv4 only
    const u_char* ip = d + 14;
    Packet p;
    p.ts_us = int64_t{h->ts.tv_sec} * 1000000 + h->ts.tv_usec;
    p.src = (uint32_t{ip[12]} << 24) | (uint32_t{ip[13]} << 16) | (uint32_t{ip[14]} << 8) | ip[15];
    p.proto = ip[9];
    const u_char* l4 = ip + (ip[0] & 15) * 4;
    if (p.proto == 6 || p.proto == 17) p.dport = static_cast<uint16_t>((l4[2] << 8) | l4[3]);
    out.push_back(p);
  }
  return out;
}

// Windows Messenger spam (the 2007 scenario's 1026–1028/UDP): a DCE/RPC connectionless request
// to the Messenger interface, fragment length matching the body, TTL of a Windows host.
TEST(MessengerTool, PacketsAreDceRpcRequestsToTheMessengerInterface) {
  GeneratorSpec spec = GeneratorSpec::Default2018();
  spec.seed = 3;
  spec.start_us = 1186012800LL * 1000000;  // 2007-08-02
  spec.end_us = spec.start_us + kDay;
  spec.packets = 300;
  spec.sources = 50;
  spec.spoofed_flood_share = 0;
  spec.monitored = {*Prefix::Parse("203.0.113.0/28")};
  ProfileSpec m;
  m.name = "messenger";
  m.tool = Tool::kMessenger;
  m.packet_share = m.source_share = 1;
  m.ports = {{1026, 0.5}, {1027, 0.3}, {1028, 0.2}};
  spec.profiles = {m};
  const std::string path = TempDir("messenger.pcap");
  GroundTruth truth;
  ASSERT_TRUE(WriteTrace(spec, FallbackSourceRanges(), path, &truth).ok());
  EXPECT_EQ(truth.tool(Tool::kMessenger).packets, 300u);
  char err[PCAP_ERRBUF_SIZE];
  std::unique_ptr<pcap_t, void (*)(pcap_t*)> pc(pcap_open_offline(path.c_str(), err), pcap_close);
  ASSERT_TRUE(pc) << err;
  pcap_pkthdr* h;
  const u_char* d;
  const uint8_t iface[16] = {0xf8, 0x91, 0x7b, 0x5a, 0x00, 0xff, 0xd0, 0x11,
                             0xa9, 0xb2, 0x00, 0xc0, 0x4f, 0xb6, 0xe6, 0xfc};
  int n = 0;
  while (pcap_next_ex(pc.get(), &h, &d) == 1) {
    ++n;
    const u_char* ip = d + 14;
    ASSERT_EQ(ip[9], 17);
    EXPECT_GT(ip[8], 64);  // Windows: initial TTL 128
    const u_char* udp = ip + (ip[0] & 15) * 4;
    const int dport = (udp[2] << 8) | udp[3];
    EXPECT_TRUE(dport >= 1026 && dport <= 1028) << dport;
    const u_char* rpc = udp + 8;
    const size_t len = ((udp[4] << 8) | udp[5]) - 8;
    ASSERT_GT(len, 80u);
    EXPECT_EQ(rpc[0], 4);  // DCE/RPC version 4 (connectionless)
    EXPECT_EQ(rpc[1], 0);  // request
    EXPECT_EQ(std::memcmp(rpc + 24, iface, 16), 0);
    EXPECT_EQ(size_t{rpc[74]} | (size_t{rpc[75]} << 8), len - 80);
  }
  EXPECT_EQ(n, 300);
}

// `teiten simulate --days`: one day or a range; anything else is refused with the flag named.
TEST(SimulateCommand, DaysFlag) {
  const std::string dir = TempDir("days-flag");
  const std::string scenario = SourceDir() + "/data/scenarios/small.toml";
  auto run = [&](const std::string& days) {
    std::vector<std::string> args = {"simulate", "--scenario", scenario, "--out", dir,
                                     "--scale",  "0.05",       "--days", days};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    int rc = RunSimulateCommand(static_cast<int>(argv.size()), argv.data());
    ::testing::internal::GetCapturedStdout();
    return std::make_pair(rc, ::testing::internal::GetCapturedStderr());
  };
  auto [rc, err] = run("2018-08-11");
  EXPECT_EQ(rc, 0) << err;
  EXPECT_TRUE(fs::exists(dir + "/s01/2018-08-11.pcap"));
  EXPECT_FALSE(fs::exists(dir + "/s01/2018-08-12.pcap"));
  for (const char* bad : {"2018-08-12..2018-08-11", "2018-13-01", "yesterday", "2018-08-11.."}) {
    auto [code, msg] = run(bad);
    EXPECT_EQ(code, 1) << bad;
    EXPECT_NE(msg.find("--days: '" + std::string(bad) + "'"), std::string::npos) << msg;
  }
  auto [code, msg] = run("2019-01-01");
  EXPECT_EQ(code, 1);
  EXPECT_NE(msg.find("none of small's days lies in 2019-01-01"), std::string::npos) << msg;
}

class SmallScenario : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(TempDir("small"));
    std::string scenario = SourceDir() + "/data/scenarios/small.toml";
    std::vector<std::string> args = {"simulate", "--scenario", scenario, "--out",
                                     *dir_,      "--scale",    "0.5"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    ASSERT_EQ(RunSimulateCommand(static_cast<int>(argv.size()), argv.data()), 0);
    truth_ = new nlohmann::json(nlohmann::json::parse(Slurp(*dir_ + "/ground_truth.json")));
    packets_ = new std::map<std::pair<std::string, std::string>, std::vector<Packet>>;
    for (const auto& f : (*truth_)["files"]) {
      (*packets_)[{f["sensor"], f["day"]}] = ReadPcap(*dir_ + "/" + f["path"].get<std::string>());
    }
  }
  static const nlohmann::json& Event(const std::string& name) {
    for (const auto& e : (*truth_)["events"]) {
      if (e["name"] == name) return e;
    }
    static nlohmann::json none;
    ADD_FAILURE() << "no event " << name;
    return none;
  }
  static std::set<uint32_t> Sources(const nlohmann::json& e, const std::string& cc = "") {
    std::set<uint32_t> s;
    for (const auto& src : e["sources"]) {
      if (cc.empty() || src[1] == cc) s.insert(IpAddr::Parse(src[0].get<std::string>())->v4());
    }
    return s;
  }
  // Packets of an event's sources per day (all sensors), checking every one of them is on the
  // event's ports and within its window.
  static std::map<std::string, uint64_t> EventPacketsByDay(const nlohmann::json& e,
                                                           std::set<uint32_t>* seen = nullptr) {
    std::set<uint32_t> srcs = Sources(e);
    std::set<uint16_t> ports;
    for (const auto& p : e["ports"]) ports.insert(p[0].get<uint16_t>());
    std::map<std::string, uint64_t> by_day;
    for (const auto& [key, pkts] : *packets_) {
      for (const Packet& p : pkts) {
        if (!srcs.count(p.src)) continue;
        EXPECT_TRUE(ports.count(p.dport)) << e["name"] << " port " << p.dport;
        EXPECT_GE(p.ts_us, e["start_us"].get<int64_t>()) << e["name"];
        EXPECT_LT(p.ts_us, e["end_us"].get<int64_t>()) << e["name"];
        ++by_day[key.second];
        if (seen) seen->insert(p.src);
      }
    }
    return by_day;
  }
  static uint64_t Sum(const std::map<std::string, uint64_t>& m) {
    uint64_t n = 0;
    for (const auto& [k, v] : m) n += v;
    return n;
  }
  static inline std::string* dir_;
  static inline nlohmann::json* truth_;
  static inline std::map<std::pair<std::string, std::string>, std::vector<Packet>>* packets_;
};

TEST_F(SmallScenario, GroundTruthListsEveryEventAndFile) {
  EXPECT_EQ((*truth_)["events"].size(), 7u);
  EXPECT_EQ((*truth_)["files"].size(), 8u);
  uint64_t total = 0;
  for (const auto& [key, pkts] : *packets_) total += pkts.size();
  // Every packet is counted (IPv6 packets are not decoded here, so ≥).
  EXPECT_GE((*truth_)["packets"].get<uint64_t>(), total);
  EXPECT_GT(total, 0u);
}

TEST_F(SmallScenario, PortSurgeFromChinaOnItsDays) {
  const auto& e = Event("netis-surge");
  auto by_day = EventPacketsByDay(e);
  EXPECT_EQ(Sum(by_day), e["packets"].get<uint64_t>());
  EXPECT_GT(e["packets"].get<uint64_t>(), 1000u);  // 600 × 0.5 × 2 sensors × 2 days
  EXPECT_EQ(by_day.size(), 2u);
  EXPECT_TRUE(by_day.count("2018-08-11") && by_day.count("2018-08-12"));
  for (const auto& s : e["sources"]) EXPECT_EQ(s[1], "CN");
}

TEST_F(SmallScenario, DistinctSourcesGrow) {
  const auto& e = Event("smb-growth");
  EXPECT_EQ(Sum(EventPacketsByDay(e)), e["packets"].get<uint64_t>());
  std::set<uint32_t> srcs = Sources(e);
  std::map<std::string, std::set<uint32_t>> distinct;
  for (const auto& [key, pkts] : *packets_) {
    for (const Packet& p : pkts) {
      if (srcs.count(p.src)) distinct[key.second].insert(p.src);
    }
  }
  EXPECT_EQ(distinct.count("2018-08-10"), 0u);
  EXPECT_LT(distinct["2018-08-11"].size(), distinct["2018-08-13"].size());
}

TEST_F(SmallScenario, OneSourceDominatesItsPort) {
  const auto& e = Event("research-9600");
  ASSERT_EQ(e["sources"].size(), 1u);
  const uint32_t src = *Sources(e).begin();
  std::map<uint32_t, uint64_t> on_port;
  for (const auto& [key, pkts] : *packets_) {
    for (const Packet& p : pkts) {
      if (p.proto == 6 && p.dport == 9600) ++on_port[p.src];
    }
  }
  EXPECT_EQ(on_port[src], e["packets"].get<uint64_t>());
  uint64_t others = 0;
  for (const auto& [s, n] : on_port) others += s == src ? 0 : n;
  EXPECT_GT(on_port[src], 10 * others);
}

TEST_F(SmallScenario, RegionRisesIntoTopFive) {
  const auto& e = Event("ua-rise");
  EXPECT_EQ(Sum(EventPacketsByDay(e)), e["packets"].get<uint64_t>());
  std::map<std::string, std::map<std::string, uint64_t>> by_day;  // day → country → packets
  for (const auto& f : (*truth_)["files"]) {
    for (const auto& [cc, n] : f["packets_by_country"].items()) {
      by_day[f["day"]][cc] += n.get<uint64_t>();
    }
  }
  auto rank = [&](const std::string& day, const std::string& cc) {
    int r = 1;
    for (const auto& [c, n] : by_day[day]) r += n > by_day[day][cc] ? 1 : 0;
    return r;
  };
  EXPECT_GT(rank("2018-08-10", "UA"), 5);
  EXPECT_LE(rank("2018-08-13", "UA"), 5);
}

TEST_F(SmallScenario, MalwareMovesToOtherPorts) {
  const auto& e = Event("mirai-move");
  auto by_day = EventPacketsByDay(e);
  EXPECT_EQ(Sum(by_day), e["packets"].get<uint64_t>());
  EXPECT_EQ(by_day.count("2018-08-11"), 0u);
  std::map<std::string, uint64_t> telnet;  // 23/TCP per day
  for (const auto& f : (*truth_)["files"]) {
    telnet[f["day"]] += f["packets_by_port"].value("23/TCP", uint64_t{0});
  }
  EXPECT_LT(telnet["2018-08-13"], telnet["2018-08-11"]);
}

TEST_F(SmallScenario, PatchSpikeIsShort) {
  const auto& e = Event("patch-5168");
  auto by_day = EventPacketsByDay(e);  // checks the six-hour window
  EXPECT_EQ(Sum(by_day), e["packets"].get<uint64_t>());
  EXPECT_EQ(by_day.size(), 1u);
  EXPECT_GT(by_day["2018-08-12"], 400u);  // 2000 × 0.5 × 6/24 × 2 sensors
}

TEST_F(SmallScenario, CountryGoesSilent) {
  const auto& e = Event("br-outage");
  EXPECT_FALSE(e.contains("packets"));
  uint64_t before = 0;
  for (const auto& f : (*truth_)["files"]) {
    const uint64_t br = f["packets_by_country"].value("BR", uint64_t{0});
    if (f["day"] == "2018-08-13") {
      EXPECT_EQ(br, 0u) << f["sensor"];
    } else {
      before += br;
    }
  }
  EXPECT_GT(before, 0u);
}

TEST_F(SmallScenario, EventPacketsPerFileAddUp) {
  for (const auto& e : (*truth_)["events"]) {
    if (!e.contains("packets")) continue;
    uint64_t n = 0;
    for (const auto& f : e["packets_by_file"]) n += f["packets"].get<uint64_t>();
    EXPECT_EQ(n, e["packets"].get<uint64_t>()) << e["name"];
  }
}

}  // namespace
}  // namespace teiten::simulate
