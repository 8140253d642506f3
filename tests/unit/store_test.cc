// The store through the ingest path: hand-checked counts, idempotence, crash safety, corruption.
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "analysis/query.h"
#include "ingest/ingest.h"
#include "test_support.h"

namespace teiten {
namespace {

namespace fs = std::filesystem;

struct Pkt {
  int64_t ts_us;
  uint32_t src, dst;
  uint8_t proto;
  uint16_t dport;
};

std::vector<uint8_t> Frame(const Pkt& p) {
  std::vector<uint8_t> f(14 + 20 + 20, 0);
  f[12] = 0x08;
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  ip[3] = 40;
  ip[8] = 64;
  ip[9] = p.proto;
  for (int i = 0; i < 4; ++i) {
    ip[12 + i] = static_cast<uint8_t>(p.src >> (24 - 8 * i));
    ip[16 + i] = static_cast<uint8_t>(p.dst >> (24 - 8 * i));
  }
  uint8_t* t = ip + 20;
  t[2] = static_cast<uint8_t>(p.dport >> 8);
  t[3] = static_cast<uint8_t>(p.dport);
  if (p.proto == 6) {
    t[12] = 0x50;
    t[13] = 0x02;
  } else {
    t[5] = 20;
  }
  return f;
}

void WritePcap(const std::string& path, const std::vector<Pkt>& pkts) {
  pcap_t* dead =
      pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_MICRO);
  pcap_dumper_t* d = pcap_dump_open(dead, path.c_str());
  for (const Pkt& p : pkts) {
    auto f = Frame(p);
    pcap_pkthdr h{};
    h.ts.tv_sec = p.ts_us / 1000000;
    h.ts.tv_usec = p.ts_us % 1000000;
    h.caplen = h.len = static_cast<uint32_t>(f.size());
    pcap_dump(reinterpret_cast<u_char*>(d), &h, f.data());
  }
  pcap_dump_close(d);
  pcap_close(dead);
}

constexpr int64_t kS = 1000000;
// 2018-08-12 00:00:00 JST = 2018-08-11T15:00:00Z
constexpr int64_t kAug12Jst = 1533999600LL * kS;
constexpr uint32_t kNet = 0xCB007100;  // 203.0.113.0/24

SensorConfig Sensor(const std::string& id = "tyo1", const std::string& group = "domestic") {
  return {id, id, group, "JP", SensorMode::kDarknet, {*Prefix::Parse("203.0.113.0/24")}};
}

class StoreTest : public ::testing::Test {
 protected:
  Store& Open() {
    auto s = Store::Open(dir_.path() + "/store", {.create = true, .timezone = "Asia/Tokyo"});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    return *store_;
  }
  IngestSummary Ingest(const std::string& file, const SensorConfig& s = Sensor()) {
    Ingester ing(store_.get(), nullptr);
    auto r = ing.IngestFile(s, file);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : IngestSummary{};
  }
  std::string Path(const std::string& name) { return dir_.path() + "/" + name; }
  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, CountsMatchAHandCheckedExpectation) {
  // 23/TCP: 5 packets from 3 sources; 445/TCP: 2 from 1; 53413/UDP: 1; one packet to an address
  // the sensor does not monitor.
  std::vector<Pkt> pkts = {
      {kAug12Jst + 1 * kS, 0x01010101, kNet + 1, 6, 23},
      {kAug12Jst + 2 * kS, 0x01010101, kNet + 2, 6, 23},
      {kAug12Jst + 3 * kS, 0x02020202, kNet + 3, 6, 23},
      {kAug12Jst + 4 * kS, 0x03030303, kNet + 4, 6, 23},
      {kAug12Jst + 5 * kS, 0x03030303, kNet + 5, 6, 23},
      {kAug12Jst + 6 * kS, 0x04040404, kNet + 6, 6, 445},
      {kAug12Jst + 7 * kS, 0x04040404, kNet + 7, 6, 445},
      {kAug12Jst + 8 * kS, 0x05050505, kNet + 8, 17, 53413},
      {kAug12Jst + 9 * kS, 0x06060606, 0x08080808, 6, 80},
  };
  WritePcap(Path("a.pcap"), pkts);
  Open();
  IngestSummary s = Ingest(Path("a.pcap"));
  EXPECT_EQ(s.packets_read, 9u);
  EXPECT_EQ(s.kept, 8u);
  EXPECT_EQ(s.dropped["not_monitored"], 1u);
  auto top = Top(*store_, Dimension::kPort, *ParsePeriod("2018-08-12"), {}, 10);
  ASSERT_TRUE(top.ok()) << top.status().ToString();
  ASSERT_EQ(top->rows.size(), 3u);
  EXPECT_EQ(PortKeyToString(static_cast<PortKey>(top->rows[0].key)), "23/TCP");
  EXPECT_EQ(top->rows[0].packets, 5u);
  EXPECT_EQ(top->rows[0].sources, 3u);
  EXPECT_EQ(top->rows[1].packets, 2u);
  EXPECT_EQ(top->rows[1].sources, 1u);
  EXPECT_EQ(PortKeyToString(static_cast<PortKey>(top->rows[2].key)), "53413/UDP");
  EXPECT_EQ(top->total_packets, 8u);
  EXPECT_EQ(top->total_sources, 5u);
  EXPECT_EQ(top->rows[0].prev_rank, kRankNoData);
  // The day before in JST holds nothing; the UTC day of these packets (08-11) is not a JST day.
  auto prev_day = Top(*store_, Dimension::kPort, *ParsePeriod("2018-08-11"), {}, 10);
  EXPECT_EQ(prev_day->total_packets, 0u);
  auto hist = SourceHistory(*store_, *IpAddr::Parse("1.1.1.1"));
  ASSERT_TRUE(hist.ok()) << hist.status().ToString();
  EXPECT_EQ(hist->packets, 2u);
  EXPECT_EQ(hist->first_us, kAug12Jst + 1 * kS);
  EXPECT_EQ(hist->last_us, kAug12Jst + 2 * kS);
}

TEST_F(StoreTest, IngestingTheSameFileTwiceChangesNothing) {
  WritePcap(Path("a.pcap"), {{kAug12Jst, 0x01010101, kNet + 1, 6, 23}});
  Open();
  Ingest(Path("a.pcap"));
  uint64_t gen = store_->manifest().generation;
  std::string manifest_before = testing::Run("cat " + dir_.path() + "/store/MANIFEST");
  IngestSummary again = Ingest(Path("a.pcap"));
  EXPECT_TRUE(again.already_ingested);
  EXPECT_EQ(store_->manifest().generation, gen);
  EXPECT_EQ(testing::Run("cat " + dir_.path() + "/store/MANIFEST"), manifest_before);
  // A copy under another name is the same capture.
  fs::copy_file(Path("a.pcap"), Path("copy.pcap"));
  EXPECT_TRUE(Ingest(Path("copy.pcap")).already_ingested);
}

TEST_F(StoreTest, PreviousRanksAndPeriodsFollowTheStoreTimeZone) {
  // Q2: 22/TCP top, 23/TCP second. Q3: 23 top, 22 second, 8080 new, 9600 seen in Q2 at rank 3.
  std::vector<Pkt> q2, q3;
  int64_t jun = 1528815600LL * kS;  // 2018-06-13 JST
  for (int i = 0; i < 5; ++i)
    q2.push_back({jun + i, 0x0A000001u + static_cast<uint32_t>(i), kNet + 1, 6, 22});
  for (int i = 0; i < 3; ++i) q2.push_back({jun + 10 + i, 0x0B000001, kNet + 1, 6, 23});
  q2.push_back({jun + 20, 0x0C000001, kNet + 1, 6, 9600});
  for (int i = 0; i < 6; ++i) q3.push_back({kAug12Jst + i, 0x0B000001, kNet + 1, 6, 23});
  for (int i = 0; i < 4; ++i) q3.push_back({kAug12Jst + 10 + i, 0x0A000001, kNet + 1, 6, 22});
  for (int i = 0; i < 2; ++i) q3.push_back({kAug12Jst + 20 + i, 0x0D000001, kNet + 1, 6, 8080});
  q3.push_back({kAug12Jst + 30, 0x0C000001, kNet + 1, 6, 9600});
  // 2018-09-30T15:30Z is 2018-10-01 00:30 JST: Q4, not Q3.
  q3.push_back({1538321400LL * kS, 0x0E000001, kNet + 1, 6, 1433});
  WritePcap(Path("q2.pcap"), q2);
  WritePcap(Path("q3.pcap"), q3);
  Open();
  Ingest(Path("q2.pcap"));
  Ingest(Path("q3.pcap"));
  auto top = Top(*store_, Dimension::kPort, *ParsePeriod("2018Q3"), {}, 10, 2);
  ASSERT_TRUE(top.ok());
  ASSERT_EQ(top->rows.size(), 4u);
  EXPECT_EQ(top->previous.Label(), "2018Q2");
  EXPECT_EQ(top->rows[0].prev_rank, 2);              // 23/TCP
  EXPECT_EQ(top->rows[1].prev_rank, 1);              // 22/TCP
  EXPECT_EQ(top->rows[2].prev_rank, kRankNew);       // 8080/TCP
  EXPECT_EQ(top->rows[3].prev_rank, kRankOutOfTop);  // 9600/TCP was 3rd, cutoff 2
  auto q4 = Top(*store_, Dimension::kPort, *ParsePeriod("2018Q4"), {}, 10);
  ASSERT_EQ(q4->rows.size(), 1u);
  EXPECT_EQ(PortKeyToString(static_cast<PortKey>(q4->rows[0].key)), "1433/TCP");
}

TEST_F(StoreTest, AnUncommittedIngestLeavesNothingAndItsFilesAreCollected) {
  WritePcap(Path("a.pcap"), {{kAug12Jst, 0x01010101, kNet + 1, 6, 23}});
  Open();
  {
    auto txn = store_->Begin();
    ASSERT_TRUE(txn.ok());
    ObservationBatch b;
    Observation o;
    o.ts_us = kAug12Jst;
    o.src = *IpAddr::Parse("9.9.9.9");
    o.dst = *IpAddr::Parse("203.0.113.9");
    o.proto = 6;
    o.dport = 3389;
    b.rows.push_back(o);
    ASSERT_TRUE((*txn)->Add(b, {0}, {store_->tz().LocalDay(kAug12Jst)}, {GeoInfo{}}).ok());
    // Dropped here without Commit(): as if the process died before the manifest was replaced.
  }
  // Files a killed writer could leave behind.
  std::ofstream(dir_.path() + "/store/seg/99999999.tseg") << "partial";
  std::ofstream(dir_.path() + "/store/MANIFEST.tmp") << "{";
  Open();
  EXPECT_EQ(store_->manifest().segments.size(), 0u);
  Ingest(Path("a.pcap"));  // Begin() collects the garbage
  EXPECT_FALSE(fs::exists(dir_.path() + "/store/seg/99999999.tseg"));
  EXPECT_FALSE(fs::exists(dir_.path() + "/store/MANIFEST.tmp"));
  auto top = Top(*store_, Dimension::kPort, *ParsePeriod("2018-08"), {}, 10);
  ASSERT_EQ(top->rows.size(), 1u);
  EXPECT_EQ(top->rows[0].packets, 1u);
}

TEST_F(StoreTest, KillDuringIngestLeavesAConsistentStoreAndARerunCompletesIt) {
  std::vector<Pkt> pkts;
  for (uint32_t i = 0; i < 600000; ++i) {
    pkts.push_back({kAug12Jst + int64_t{i} * 1000, 0x10000000u + i % 50000, kNet + (i & 0xFF), 6,
                    static_cast<uint16_t>(i % 97)});
  }
  WritePcap(Path("small.pcap"), {{kAug12Jst, 0x01010101, kNet + 1, 6, 23}});
  WritePcap(Path("big.pcap"), pkts);
  Open();
  Ingest(Path("small.pcap"));
  for (int delay_ms : {30, 150, 400}) {
    pid_t pid = fork();
    if (pid == 0) {
      auto s = Store::Open(dir_.path() + "/store", {});
      IngestOptions opts;
      opts.batch_rows = 50000;  // several flushes, so the kill can land between them
      Ingester ing(s->get(), nullptr, opts);
      auto r = ing.IngestFile(Sensor(), Path("big.pcap"));
      _exit(r.ok() ? 0 : 1);
    }
    usleep(delay_ms * 1000);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    Open();  // readable after every kill
    auto top = Top(*store_, Dimension::kPort, *ParsePeriod("2018-08-12"), {}, 200);
    ASSERT_TRUE(top.ok()) << top.status().ToString();
    // Either the big file is all in, or none of it is.
    EXPECT_TRUE(top->total_packets == 1 || top->total_packets == 600001) << top->total_packets;
  }
  Open();
  Ingest(Path("big.pcap"));
  auto top = Top(*store_, Dimension::kPort, *ParsePeriod("2018-08-12"), {}, 200);
  EXPECT_EQ(top->total_packets, 600001u);
  EXPECT_EQ(top->total_sources, 50001u);
}

TEST_F(StoreTest, ATruncatedCaptureKeepsThePacketsBeforeTheBreakAndSaysWhere) {
  std::vector<Pkt> pkts;
  for (int i = 0; i < 10; ++i) pkts.push_back({kAug12Jst + i, 0x01010101, kNet + 1, 6, 23});
  WritePcap(Path("t.pcap"), pkts);
  fs::resize_file(Path("t.pcap"), fs::file_size(Path("t.pcap")) - 30);
  Open();
  IngestSummary s = Ingest(Path("t.pcap"));
  EXPECT_EQ(s.kept, 9u);
  EXPECT_NE(s.error.find("t.pcap: offset 654 (after packet 9)"), std::string::npos) << s.error;
}

TEST_F(StoreTest, CompressedCapturesGiveTheSameCounts) {
  std::vector<Pkt> pkts;
  for (int i = 0; i < 1000; ++i)
    pkts.push_back({kAug12Jst + i, 0x01010101u + static_cast<uint32_t>(i % 7), kNet + 1, 6, 23});
  WritePcap(Path("c.pcap"), pkts);
  Open();
  for (const char* tool : {"gzip", "zstd"}) {
    if (!testing::HaveCommand(tool)) {
      std::cerr << "skipping " << tool << ": not installed\n";
      continue;
    }
    std::string out = Path(std::string("c.pcap.") + tool);
    bool ok = false;
    testing::Run(std::string(tool) + " -c " + Path("c.pcap") + " > " + out, &ok);
    ASSERT_TRUE(ok);
    testing::TempDir other;
    auto s = Store::Open(other.path(), {.create = true, .timezone = "Asia/Tokyo"});
    Ingester ing(s->get(), nullptr);
    auto r = ing.IngestFile(Sensor(), out);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->kept, 1000u) << tool;
    EXPECT_EQ(r->error, "") << tool;
  }
}

TEST_F(StoreTest, ACorruptRollupIsReportedWithItsFileName) {
  WritePcap(Path("a.pcap"), {{kAug12Jst, 0x01010101, kNet + 1, 6, 23}});
  Open();
  Ingest(Path("a.pcap"));
  std::string rel = store_->manifest().days.begin()->second.begin()->second;
  fs::resize_file(dir_.path() + "/store/" + rel, 20);
  Open();
  auto top = Top(*store_, Dimension::kPort, *ParsePeriod("2018-08-12"), {}, 10);
  ASSERT_FALSE(top.ok());
  EXPECT_EQ(top.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(top.status().message().find(rel), std::string::npos) << top.status().message();
}

TEST_F(StoreTest, SensorAndGroupFilters) {
  WritePcap(Path("a.pcap"), {{kAug12Jst, 0x01010101, kNet + 1, 6, 23}});
  WritePcap(Path("b.pcap"), {{kAug12Jst, 0x02020202, kNet + 1, 6, 445},
                             {kAug12Jst + 1, 0x02020202, kNet + 1, 6, 445}});
  Open();
  Ingest(Path("a.pcap"), Sensor("tyo1", "domestic"));
  std::string tyo1_rollup = store_->manifest().days.begin()->second.at(0);
  Ingest(Path("b.pcap"), Sensor("partner1", "partner"));
  // Another sensor's capture for the same day writes its own rollup and leaves this one alone.
  EXPECT_EQ(store_->manifest().days.begin()->second.at(0), tyo1_rollup);
  EXPECT_EQ(store_->manifest().days.begin()->second.size(), 2u);
  auto sel = ResolveSensors(*store_, {}, {"partner"});
  ASSERT_TRUE(sel.ok());
  auto top = Top(*store_, Dimension::kPort, *ParsePeriod("2018-08-12"), *sel, 10);
  ASSERT_EQ(top->rows.size(), 1u);
  EXPECT_EQ(top->rows[0].packets, 2u);
  auto bad = ResolveSensors(*store_, {"nope"}, {});
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  auto sensors = Top(*store_, Dimension::kSensor, *ParsePeriod("2018-08-12"), {}, 10);
  ASSERT_EQ(sensors->rows.size(), 2u);
  EXPECT_EQ(store_->manifest().sensors[sensors->rows[0].key].id, "partner1");
}

TEST_F(StoreTest, TopSourcesRanksAPortsSourcesByPackets) {
  // 23/TCP over two JST days at tyo1: 1.1.1.1 sends 2 + 2, 3.3.3.3 sends 3 on day 1, 2.2.2.2
  // sends 3 on day 2 (a tie with 3.3.3.3: the lower address first), 4.4.4.4 sends 1. 5.5.5.5
  // sends 9 packets, but to 445. At partner1, 6.6.6.6 sends 5 to 23.
  constexpr int64_t kDay = 86400 * kS;
  std::vector<Pkt> a;
  for (int i = 0; i < 2; ++i) a.push_back({kAug12Jst + i, 0x01010101, kNet + 1, 6, 23});
  for (int i = 0; i < 2; ++i) a.push_back({kAug12Jst + kDay + i, 0x01010101, kNet + 2, 6, 23});
  for (int i = 0; i < 3; ++i) a.push_back({kAug12Jst + 10 + i, 0x03030303, kNet + 3, 6, 23});
  for (int i = 0; i < 3; ++i) a.push_back({kAug12Jst + kDay + 10 + i, 0x02020202, kNet, 6, 23});
  a.push_back({kAug12Jst + kDay + 20, 0x04040404, kNet + 9, 6, 23});
  for (int i = 0; i < 9; ++i) a.push_back({kAug12Jst + 30 + i, 0x05050505, kNet + 4, 6, 445});
  std::vector<Pkt> b;
  for (int i = 0; i < 5; ++i) b.push_back({kAug12Jst + 40 + i, 0x06060606, kNet + 5, 6, 23});
  std::sort(a.begin(), a.end(), [](const Pkt& x, const Pkt& y) { return x.ts_us < y.ts_us; });
  WritePcap(Path("a.pcap"), a);
  WritePcap(Path("b.pcap"), b);
  Open();
  Ingest(Path("a.pcap"), Sensor("tyo1", "domestic"));
  Ingest(Path("b.pcap"), Sensor("partner1", "partner"));
  auto tyo1 = ResolveSensors(*store_, {"tyo1"}, {});
  ASSERT_TRUE(tyo1.ok());
  PortKey telnet = MakePortKey(6, 23);
  auto two_days = *ParsePeriod("2018-08-12..2018-08-13");
  auto top = TopSources(*store_, telnet, two_days, *tyo1, 10);
  ASSERT_TRUE(top.ok()) << top.status().ToString();
  ASSERT_EQ(top->size(), 4u);
  EXPECT_EQ((*top)[0].addr.ToString(), "1.1.1.1");
  EXPECT_EQ((*top)[0].packets, 4u);
  EXPECT_EQ((*top)[1].addr.ToString(), "2.2.2.2");
  EXPECT_EQ((*top)[1].packets, 3u);
  EXPECT_EQ((*top)[2].addr.ToString(), "3.3.3.3");
  EXPECT_EQ((*top)[2].packets, 3u);
  EXPECT_EQ((*top)[3].addr.ToString(), "4.4.4.4");
  EXPECT_EQ((*top)[3].packets, 1u);
  // Every sensor, top 2: partner1's source leads.
  auto all = TopSources(*store_, telnet, two_days, {}, 2);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].addr.ToString(), "6.6.6.6");
  EXPECT_EQ((*all)[0].packets, 5u);
  EXPECT_EQ((*all)[1].addr.ToString(), "1.1.1.1");
  // Day 2 alone, and another port.
  auto day2 = TopSources(*store_, telnet, *ParsePeriod("2018-08-13"), {}, 10);
  ASSERT_EQ(day2->size(), 3u);
  EXPECT_EQ((*day2)[0].addr.ToString(), "2.2.2.2");
  EXPECT_EQ((*day2)[1].addr.ToString(), "1.1.1.1");
  EXPECT_EQ((*day2)[1].packets, 2u);
  auto smb = TopSources(*store_, MakePortKey(6, 445), two_days, {}, 10);
  ASSERT_EQ(smb->size(), 1u);
  EXPECT_EQ((*smb)[0].packets, 9u);
  EXPECT_TRUE(TopSources(*store_, MakePortKey(17, 23), two_days, {}, 10)->empty());
}

}  // namespace
}  // namespace teiten
