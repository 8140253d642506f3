// OS guesses (enrich/p0f.h, analysis/os_guesses.h): the parser on Debian's own p0f.fp and on
// broken files, the matcher on hand-built SYNs, and whole-source guesses against p0f itself —
// `p0f -r` on the shared real captures — as the independent reference.
#include "analysis/os_guesses.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "enrich/p0f.h"
#include "ingest/ingest.h"
#include "row_test_support.h"
#include "test_support.h"

namespace teiten {
namespace {

const char* kDebianFp = "/etc/p0f/p0f.fp";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(P0fParseTest, ReadsEverySynSignatureOfDebiansFile) {
  if (!std::filesystem::exists(kDebianFp))
    GTEST_SKIP() << kDebianFp << " absent (apt-get install p0f)";
  auto db = P0fDatabase::Load(kDebianFp);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  // The reference: the file's own "sig" and "label" lines of [tcp:request], counted naively.
  std::istringstream in(Slurp(kDebianFp));
  std::string line, section;
  size_t sigs = 0, labels = 0;
  while (std::getline(in, line)) {
    if (line.starts_with("[")) section = line;
    if (section != "[tcp:request]") continue;
    sigs += line.starts_with("sig");
    labels += line.starts_with("label");
  }
  EXPECT_GT(sigs, 50u);
  EXPECT_EQ(db->syn_signatures().size(), sigs);
  EXPECT_EQ(db->labels().size(), labels);
  // The first signature of the section, read field by field.
  const P0fSignature& first = db->syn_signatures()[0];
  EXPECT_EQ(db->LabelOf(first).Display(), "Linux 3.11 and newer");
  EXPECT_EQ(first.ip_version, 0);
  EXPECT_EQ(first.ittl, 64);
  EXPECT_EQ(first.window_type, P0fWindow::kMss);
  EXPECT_EQ(first.window, 20);
  EXPECT_EQ(first.scale, 10);
  EXPECT_EQ(first.layout, (std::vector<uint8_t>{2, 4, 8, 1, 3}));
  EXPECT_EQ(first.quirks, p0f_quirk::kDf | p0f_quirk::kNzId);
  EXPECT_EQ(first.payload, 0);
}

TEST(P0fParseTest, BrokenFilesNameTheLineAndWhatIsWrong) {
  const std::string head = "; comment\n[tcp:request]\nlabel = s:unix:Linux:3.x\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"sig = *:64:0:*:mss*20,7:mss,sok\n", "expected 8 fields"},
      {"sig = *:300:0:*:mss*20,7:mss:df:0\n", "initial TTL"},
      {"sig = *:64:0:*:mss*20,7:mss:df,zz:0\n", "unknown quirk 'zz'"},
      {"sig = *:64:0:*:mss*20,7:eol+1,mss:df:0\n", "eol+N must come last"},
      {"sig = *:64:0:*:mss*x,7:mss:df:0\n", "mss*N"},
      {"sig = 5:64:0:*:mss*20,7:mss:df:0\n", "IP version"},
      {"sig = *:64:0:*:mss*20,7:mss:df:2\n", "payload class"},
      {"sig = *:64:0:*:%0,7:mss:df:0\n", "%N"},
      {"colour = red\n", "unknown key 'colour'"},
      {"[tcp:sideways]\n", "unknown section"},
      {"just words\n", "expected key = value"},
      {"label = x:unix:Linux:\n", "type must be s or g"},
  };
  for (const auto& [bad, what] : cases) {
    auto db = P0fDatabase::Parse(head + bad, "my.fp");
    ASSERT_FALSE(db.ok()) << bad;
    EXPECT_NE(db.status().ToString().find("my.fp:4: "), std::string::npos)
        << db.status().ToString();
    EXPECT_NE(db.status().ToString().find(what), std::string::npos) << db.status().ToString();
  }
  auto early = P0fDatabase::Parse("[tcp:request]\nsig = *:64:0:*:*,*::df:0\n", "e.fp");
  ASSERT_FALSE(early.ok());
  EXPECT_NE(early.status().ToString().find("e.fp:2: signature before any label"),
            std::string::npos);
  EXPECT_FALSE(P0fDatabase::Parse("[mtu]\nlabel = x\nsig = 1500\n", "m.fp").ok());  // no SYN sigs
  EXPECT_FALSE(P0fDatabase::Load("/nonexistent/p0f.fp").ok());
}

// A SYN as a Linux 3.11+ kernel sends it: MSS 1460, SACK, timestamps, NOP, window scale 7,
// window 20 × MSS.
Observation LinuxSyn(std::string* opts) {
  *opts = std::string(
      "\x02\x04\x05\xb4\x04\x02\x08\x0a\x00\x01\x02\x03\x00\x00\x00\x00\x01\x03\x03\x07", 20);
  Observation o;
  o.src = IpAddr::V4(0x0A000001);
  o.proto = 6;
  o.tcp_flags = tcp_flag::kSyn;
  o.seq = 12345;
  o.ttl = 57;
  o.window = 29200;
  o.opt_len = 20;
  o.ip_len = 60;
  return o;
}

TEST(P0fMatchTest, HandBuiltSyns) {
  if (!std::filesystem::exists(kDebianFp)) GTEST_SKIP() << kDebianFp << " absent";
  auto db = P0fDatabase::Load(kDebianFp);
  ASSERT_TRUE(db.ok());
  std::string opts;
  Observation o = LinuxSyn(&opts);
  SynFingerprint fp;
  ASSERT_TRUE(SynFingerprintOf(o, opts, &fp));
  EXPECT_EQ(fp.mss, 1460);
  EXPECT_EQ(fp.scale, 7);
  EXPECT_EQ(fp.ip_opt_len, 0);
  EXPECT_EQ(fp.quirks, 0u);
  P0fMatch m = db->Match(fp);
  ASSERT_NE(m.signature, nullptr);
  EXPECT_EQ(db->LabelOf(*m.signature).Display(), "Linux 3.11 and newer");
  EXPECT_FALSE(m.fuzzy);
  EXPECT_EQ(m.distance, 7);
  // 40 hops away: more than p0f's 35, so fuzzy.
  o.ttl = 24;
  ASSERT_TRUE(SynFingerprintOf(o, opts, &fp));
  m = db->Match(fp);
  ASSERT_NE(m.signature, nullptr);
  EXPECT_TRUE(m.fuzzy);
  // Nmap's SYN scan: window 1024, MSS 1460 only, a random TTL.
  Observation n;
  n.src = IpAddr::V4(0x0A000002);
  n.proto = 6;
  n.tcp_flags = tcp_flag::kSyn;
  n.seq = 1;
  n.ttl = 41;
  n.window = 1024;
  n.opt_len = 4;
  n.ip_len = 44;
  ASSERT_TRUE(SynFingerprintOf(n, std::string_view("\x02\x04\x05\xb4", 4), &fp));
  m = db->Match(fp);
  ASSERT_NE(m.signature, nullptr);
  EXPECT_EQ(db->LabelOf(*m.signature).Display(), "NMap SYN scan");
  EXPECT_TRUE(db->LabelOf(*m.signature).application);
  // Not SYNs, or not readable: no fingerprint.
  n.tcp_flags = tcp_flag::kSyn | tcp_flag::kAck;
  EXPECT_FALSE(SynFingerprintOf(n, "", &fp));
  n.tcp_flags = tcp_flag::kSyn;
  n.flags = obs_flag::kSnapTruncated;
  EXPECT_FALSE(SynFingerprintOf(n, "", &fp));
  // Hostile options: a length running past the end is "bad", not a read past it.
  n.flags = 0;
  ASSERT_TRUE(SynFingerprintOf(n, std::string_view("\x02\x28\x05\xb4", 4), &fp));
  EXPECT_TRUE(fp.quirks & p0f_quirk::kOptBad);
}

// p0f itself is the reference: every source p0f fingerprints from a SYN in the shared real
// captures gets the same guess from teiten, after the captures pass through the store.
TEST(OsGuessTest, AgreesWithP0fOnRealCaptures) {
  if (!std::filesystem::exists(kDebianFp)) GTEST_SKIP() << kDebianFp << " absent";
  bool have_p0f = false;
  testing::Run("command -v p0f", &have_p0f);
  if (!have_p0f) GTEST_SKIP() << "p0f is not installed";
  const std::string pcaps = testing::SharedPcapDir();
  if (!std::filesystem::exists(pcaps)) GTEST_SKIP() << pcaps << " absent";
  testing::TempDir dir;
  auto store = Store::Open(dir.path() + "/store", {.create = true, .timezone = "UTC"});
  ASSERT_TRUE(store.ok());
  // A sensor that keeps everything: the captures hold clients' SYNs to any address.
  SensorConfig all{"all",
                   "all",
                   "g",
                   "JP",
                   SensorMode::kDarknet,
                   {*Prefix::Parse("0.0.0.0/0"), *Prefix::Parse("::/0")}};
  const std::string log = dir.path() + "/p0f.log";
  for (const char* f :
       {"nmap_80_all.pcap", "tcp_scan.pcapng", "telnet.pcap", "amp.dns.RRSIG.fragmented.pcap",
        "tcp_0_1000_20190821.pcap", "amp.TCP.reflection.SYNACK.pcap", "smbv1.pcap"}) {
    const std::string path = pcaps + "/" + f;
    Ingester ing(store->get(), nullptr);
    auto r = ing.IngestFile(all, path);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    bool ok = false;
    testing::Run("p0f -r " + path + " -o " + log + " >/dev/null 2>&1", &ok);
    ASSERT_TRUE(ok) << "p0f -r " << path;
  }
  // p0f's log: "[time] mod=syn|cli=ADDR/PORT|srv=…|subj=cli|os=NAME|…" ("app=" for tools).
  std::map<std::string, std::map<std::string, int>> want;
  std::istringstream in(Slurp(log));
  std::string line;
  while (std::getline(in, line)) {
    size_t at = line.find("] mod=syn|");
    if (at == std::string::npos) continue;
    std::map<std::string, std::string> kv;
    std::istringstream fields(line.substr(at + 2));
    std::string field;
    while (std::getline(fields, field, '|')) {
      size_t eq = field.find('=');
      if (eq != std::string::npos) kv[field.substr(0, eq)] = field.substr(eq + 1);
    }
    std::string os = kv.count("os") ? kv["os"] : kv["app"];
    if (os == "???") os = "unknown";
    auto addr = IpAddr::Parse(kv["cli"].substr(0, kv["cli"].rfind('/')));
    ASSERT_TRUE(addr.has_value()) << line;
    ++want[addr->ToString()][os];
  }
  ASSERT_GT(want.size(), 100u);
  store->reset();
  auto reader = Store::Open(dir.path() + "/store", {});
  ASSERT_TRUE(reader.ok());
  auto db = P0fDatabase::Load(kDebianFp);
  ASSERT_TRUE(db.ok());
  auto got = GuessOs(**reader, *ParsePeriod("1990-01-01..2030-12-31"), {}, *db, std::nullopt);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  std::map<std::string, std::string> ours;
  for (const SourceOs& s : got->sources) ours[s.src.ToString()] = s.os;
  size_t agree = 0;
  for (const auto& [addr, counts] : want) {
    std::string majority;
    int most = 0;
    for (const auto& [os, n] : counts) {
      if (n > most) most = n, majority = os;
    }
    auto it = ours.find(addr);
    ASSERT_NE(it, ours.end()) << addr << " fingerprinted by p0f, not by teiten";
    EXPECT_EQ(it->second, majority) << addr;
    agree += it->second == majority;
  }
  EXPECT_EQ(agree, want.size());
}

// Shares per port, counted by hand: A (a Linux 3.11+ SYN, as LinuxSyn) to 22 and 80, B (Nmap's
// SYN scan) to 22 only, C (window 1234, no options: no signature) to 80 only.
class OsPortsTest : public row_testing::RowStoreTest {};
TEST_F(OsPortsTest, SharesPerPort) {
  if (!std::filesystem::exists(kDebianFp)) GTEST_SKIP() << kDebianFp << " absent";
  using row_testing::Raw;
  const std::vector<uint8_t> linux_opts = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 1,
                                           2, 3, 0,    0,    0, 0, 1, 3,  3, 7};
  std::vector<Raw> v;
  for (uint16_t port : {22, 80}) {
    v.push_back({.src = 0x0A000001,
                 .dport = port,
                 .seq = 99,
                 .window = 29200,
                 .ttl = 57,
                 .options = linux_opts});
  }
  for (int i = 0; i < 3; ++i) {
    v.push_back({.src = 0x0A000002,
                 .dst = row_testing::kNet + static_cast<uint32_t>(i),
                 .dport = 22,
                 .window = 1024,
                 .ttl = 41,
                 .options = {2, 4, 0x05, 0xb4}});
  }
  v.push_back({.src = 0x0A000003, .dport = 80, .window = 1234});
  const Store& s = Build(v);
  auto db = P0fDatabase::Load(kDebianFp);
  ASSERT_TRUE(db.ok());
  auto r = GuessOs(s, *ParsePeriod("2018-08-12"), {}, *db, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->syns, 6u);
  ASSERT_EQ(r->sources.size(), 3u);
  EXPECT_EQ(r->sources[0].os, "NMap SYN scan");  // 3 SYNs
  EXPECT_EQ(r->sources[0].distance, 64 - 41);
  ASSERT_EQ(r->ports.size(), 2u);
  for (const PortOs& p : r->ports) {
    EXPECT_EQ(p.sources, 2u);
    ASSERT_EQ(p.shares.size(), 2u);
    std::map<std::string, uint64_t> by_os;
    for (const OsShare& sh : p.shares) {
      by_os[sh.os] = sh.packets;
      EXPECT_DOUBLE_EQ(sh.source_share, 0.5);
    }
    if (p.port == MakePortKey(6, 22)) {
      EXPECT_EQ(by_os, (std::map<std::string, uint64_t>{{"Linux 3.11 and newer", 1},
                                                        {"NMap SYN scan", 3}}));
    } else {
      EXPECT_EQ(p.port, MakePortKey(6, 80));
      EXPECT_EQ(by_os,
                (std::map<std::string, uint64_t>{{"Linux 3.11 and newer", 1}, {"unknown", 1}}));
    }
  }
  // One port only.
  auto only = GuessOs(s, *ParsePeriod("2018-08-12"), {}, *db, MakePortKey(6, 80));
  ASSERT_TRUE(only.ok());
  EXPECT_EQ(only->syns, 2u);
  EXPECT_EQ(only->sources.size(), 2u);
}

}  // namespace
}  // namespace teiten
