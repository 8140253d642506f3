// The store through the ingest path: hand-checked counts, idempotence, crash safety, corruption.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "analysis/query.h"
#include "ingest/ingest.h"
#include "store_test_support.h"
#include "test_support.h"
namespace teiten {
namespace {

using namespace store_testing;

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

// Top is kept for the Store's manifest (Store::Memo): asked again after a commit through the same
// Store, it counts the commit; asked again before, it is the same answer.
TEST_F(StoreTest, ATopAskedAgainAfterACommitCountsTheCommit) {
  WritePcap(Path("a.pcap"), {{kAug12Jst + 1 * kS, 0x01010101, kNet + 1, 6, 23},
                             {kAug12Jst + 2 * kS, 0x02020202, kNet + 2, 6, 23}});
  WritePcap(Path("b.pcap"), {{kAug12Jst + 3 * kS, 0x03030303, kNet + 3, 6, 23},
                             {kAug12Jst + 4 * kS, 0x03030303, kNet + 4, 6, 445}});
  Open();
  Ingest(Path("a.pcap"));
  const Period day = *ParsePeriod("2018-08-12");
  auto first = Top(*store_, Dimension::kPort, day, {}, 10);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->total_packets, 2u);
  auto again = Top(*store_, Dimension::kPort, day, {}, 10);
  EXPECT_EQ(again->total_packets, 2u);
  EXPECT_EQ(again->rows.size(), 1u);
  Ingest(Path("b.pcap"));
  auto after = Top(*store_, Dimension::kPort, day, {}, 10);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->total_packets, 4u);
  EXPECT_EQ(after->total_sources, 3u);
  ASSERT_EQ(after->rows.size(), 2u);
  EXPECT_EQ(after->rows[0].packets, 3u);
  EXPECT_EQ(after->rows[0].sources, 3u);
  // Another selection or length is its own answer.
  auto one = Top(*store_, Dimension::kPort, day, {}, 1);
  EXPECT_EQ(one->rows.size(), 1u);
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
    // Dropped here without Commit(): what it wrote is removed.
  }
  // A writer killed mid-transaction: it never ends, so the next writer sweeps what it left.
  store_.reset();
  pid_t pid = fork();
  if (pid == 0) {
    auto s = Store::Open(dir_.path() + "/store", {});
    if (!s.ok()) _exit(1);
    auto txn = (*s)->Begin();
    if (!txn.ok()) _exit(1);
    std::ofstream(dir_.path() + "/store/seg/99999999.tseg") << "partial";
    std::ofstream(dir_.path() + "/store/MANIFEST.tmp") << "{";
    _exit(0);  // no destructor runs, as under kill -9
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_TRUE(fs::exists(dir_.path() + "/store/seg/99999999.tseg"));
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
  // The day's rollup at its sensor (read per sensor) and the day's pooled one (read for ports).
  std::string day = store_->manifest().days.begin()->second.begin()->second.at(0);
  std::string pooled = store_->manifest().periods.at("2018-08-12").at(0);
  for (const auto& [rel, dim] :
       {std::pair{day, Dimension::kSensor}, std::pair{pooled, Dimension::kPort}}) {
    fs::copy_file(dir_.path() + "/store/" + rel, Path("saved"),
                  fs::copy_options::overwrite_existing);
    fs::resize_file(dir_.path() + "/store/" + rel, 20);
    Open();
    auto top = Top(*store_, dim, *ParsePeriod("2018-08-12"), {}, 10);
    ASSERT_FALSE(top.ok()) << rel;
    EXPECT_EQ(top.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(top.status().message().find(rel), std::string::npos) << top.status().message();
    fs::copy_file(Path("saved"), dir_.path() + "/store/" + rel,
                  fs::copy_options::overwrite_existing);
  }
  Open();
  EXPECT_TRUE(Top(*store_, Dimension::kPort, *ParsePeriod("2018-08-12"), {}, 10).ok());
}

TEST_F(StoreTest, SensorAndGroupFilters) {
  WritePcap(Path("a.pcap"), {{kAug12Jst, 0x01010101, kNet + 1, 6, 23}});
  WritePcap(Path("b.pcap"), {{kAug12Jst, 0x02020202, kNet + 1, 6, 445},
                             {kAug12Jst + 1, 0x02020202, kNet + 1, 6, 445}});
  Open();
  Ingest(Path("a.pcap"), Sensor("tyo1", "domestic"));
  auto tyo1_rollup = store_->manifest().days.begin()->second.at(0);
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

// Captures a.pcap, b.pcap, c.pcap in `dir`: JST days of 2018 Q3 at two sensors (tyo1 twice):
//   tyo1     07-20  1.1.1.1 23/TCP ×3, 2.2.2.2 445 ×1
//            08-05  1.1.1.1 23 ×2, 3.3.3.3 23 ×1
//            09-25  4.4.4.4 22 ×4
//   partner1 08-05  1.1.1.1 23 ×1, 5.5.5.5 445 ×2
//            09-25  2.2.2.2 445 ×1
//   tyo1     08-20  6.6.6.6 23 ×1   (a later capture: the quarter's rollup is updated)
void WriteQ3Captures(const std::string& dir) {
  auto at = [](int month, int day) {
    return (int64_t{TimeZone::DaysFromCivil(2018, static_cast<unsigned>(month),
                                            static_cast<unsigned>(day))} *
                86400 -
            9 * 3600 + 3600) *
           kS;  // 01:00 JST
  };
  auto many = [](std::vector<Pkt>* v, int64_t t, uint32_t src, uint16_t port, int n) {
    for (int i = 0; i < n; ++i) v->push_back({t + i, src, kNet + 1, 6, port});
  };
  std::vector<Pkt> a, b, c;
  many(&a, at(7, 20), 0x01010101, 23, 3);
  many(&a, at(7, 20) + 100, 0x02020202, 445, 1);
  many(&a, at(8, 5), 0x01010101, 23, 2);
  many(&a, at(8, 5) + 100, 0x03030303, 23, 1);
  many(&a, at(9, 25), 0x04040404, 22, 4);
  many(&b, at(8, 5), 0x01010101, 23, 1);
  many(&b, at(8, 5) + 100, 0x05050505, 445, 2);
  many(&b, at(9, 25), 0x02020202, 445, 1);
  many(&c, at(8, 20), 0x06060606, 23, 1);
  WritePcap(dir + "/a.pcap", a);
  WritePcap(dir + "/b.pcap", b);
  WritePcap(dir + "/c.pcap", c);
}

TEST_F(StoreTest, PeriodRollupsAndDaysGiveHandCheckedCountsForAnySpan) {
  // JST days of 2018 Q3 at two sensors, in three captures (tyo1 twice):
  //   tyo1     07-20  1.1.1.1 23/TCP ×3, 2.2.2.2 445 ×1
  //            08-05  1.1.1.1 23 ×2, 3.3.3.3 23 ×1
  //            09-25  4.4.4.4 22 ×4
  //   partner1 08-05  1.1.1.1 23 ×1, 5.5.5.5 445 ×2
  //            09-25  2.2.2.2 445 ×1
  //   tyo1     08-20  6.6.6.6 23 ×1   (a later capture: the quarter's rollup is updated)
  WriteQ3Captures(dir_.path());
  Open();
  Ingest(Path("a.pcap"), Sensor("tyo1", "domestic"));
  Ingest(Path("b.pcap"), Sensor("partner1", "partner"));
  // The quarter names each commit's sensor-day parts (a.pcap's three days, b.pcap's two),
  // merged once a tier of them was due.
  auto q3_before = store_->manifest().periods.at("2018Q3");
  ASSERT_GE(q3_before.size(), 1u);
  Ingest(Path("c.pcap"), Sensor("tyo1", "domestic"));
  const auto& periods = store_->manifest().periods;
  // Every sensor's months, quarter and days; each sensor's months and quarter (tyo1 is 0).
  std::vector<std::string> labels;
  for (const auto& [l, f] : periods) labels.push_back(l);
  EXPECT_EQ(labels, (std::vector<std::string>{"2018-07", "2018-07-20", "2018-07/s0", "2018-08",
                                              "2018-08-05", "2018-08-20", "2018-08/s0",
                                              "2018-08/s1", "2018-09", "2018-09-25", "2018-09/s0",
                                              "2018-09/s1", "2018Q3", "2018Q3/s0", "2018Q3/s1"}));
  // The commit added its one day's part and rewrote none.
  ASSERT_EQ(periods.at("2018Q3").size(), q3_before.size() + 1);
  for (size_t i = 0; i < q3_before.size(); ++i) EXPECT_EQ(periods.at("2018Q3")[i], q3_before[i]);
  EXPECT_EQ(periods.at("2018Q3").back(), periods.at("2018-08-20").back());
  Open();

  // The quarter: one period rollup.
  auto q3 = Top(*store_, Dimension::kPort, *ParsePeriod("2018Q3"), {}, 10);
  ASSERT_TRUE(q3.ok()) << q3.status().ToString();
  EXPECT_EQ(q3->total_packets, 16u);
  EXPECT_EQ(q3->total_sources, 6u);
  ASSERT_EQ(q3->rows.size(), 3u);
  EXPECT_EQ(PortKeyToString(static_cast<PortKey>(q3->rows[0].key)), "23/TCP");
  EXPECT_EQ(q3->rows[0].packets, 8u);
  EXPECT_EQ(q3->rows[0].sources, 3u);
  EXPECT_EQ(PortKeyToString(static_cast<PortKey>(q3->rows[1].key)), "22/TCP");  // tie: by key
  EXPECT_EQ(q3->rows[1].sources, 1u);
  EXPECT_EQ(PortKeyToString(static_cast<PortKey>(q3->rows[2].key)), "445/TCP");
  EXPECT_EQ(q3->rows[2].packets, 4u);
  EXPECT_EQ(q3->rows[2].sources, 2u);
  EXPECT_EQ(q3->rows[0].prev_rank, kRankNoData);
  // Naming every sensor is the same selection as naming none.
  auto both = ResolveSensors(*store_, {"tyo1", "partner1"}, {});
  auto q3_named = Top(*store_, Dimension::kPort, *ParsePeriod("2018Q3"), *both, 10);
  EXPECT_EQ(q3_named->total_sources, 6u);
  auto countries = Top(*store_, Dimension::kCountry, *ParsePeriod("2018Q3"), {}, 10);
  ASSERT_EQ(countries->rows.size(), 1u);  // no geo database: one unknown country
  EXPECT_EQ(countries->rows[0].sources, 6u);

  // Days, a whole month and days again: 07-20..09-24.
  auto mixed = Top(*store_, Dimension::kPort, *ParsePeriod("2018-07-20..2018-09-24"), {}, 10);
  ASSERT_TRUE(mixed.ok());
  EXPECT_EQ(mixed->total_packets, 11u);
  EXPECT_EQ(mixed->total_sources, 5u);
  ASSERT_EQ(mixed->rows.size(), 2u);
  EXPECT_EQ(mixed->rows[0].packets, 8u);
  EXPECT_EQ(mixed->rows[0].sources, 3u);
  EXPECT_EQ(mixed->rows[1].packets, 3u);
  EXPECT_EQ(mixed->rows[1].sources, 2u);

  // One group in August: that sensor's month rollup.
  auto partner = ResolveSensors(*store_, {}, {"partner"});
  auto aug = Top(*store_, Dimension::kPort, *ParsePeriod("2018-08"), *partner, 10);
  EXPECT_EQ(aug->total_packets, 3u);
  EXPECT_EQ(aug->total_sources, 2u);
  auto sensors = Top(*store_, Dimension::kSensor, *ParsePeriod("2018Q3"), {}, 10);
  ASSERT_EQ(sensors->rows.size(), 2u);
  EXPECT_EQ(sensors->rows[0].packets, 12u);  // tyo1
  EXPECT_EQ(sensors->rows[0].sources, 5u);   // 1, 2, 3, 4, 6
  EXPECT_EQ(sensors->rows[1].sources, 3u);   // 1, 5, 2

  // Monthly series of 23/TCP: July 3 packets from 1 source, August 5 from 3, September none.
  auto series = Series(*store_, Dimension::kPort, {MakePortKey(6, 23)}, *ParsePeriod("2018Q3"),
                       Granularity::kMonth, {});
  ASSERT_TRUE(series.ok());
  ASSERT_EQ(series->points.size(), 3u);
  EXPECT_EQ(series->points[0].packets[0], 3u);
  EXPECT_EQ(series->points[0].sources[0], 1u);
  EXPECT_EQ(series->points[1].packets[0], 5u);
  EXPECT_EQ(series->points[1].sources[0], 3u);
  EXPECT_EQ(series->points[2].packets[0], 0u);
  auto daily =
      Series(*store_, Dimension::kPort, {}, *ParsePeriod("2018-08"), Granularity::kDay, {});
  EXPECT_EQ(daily->points[4].packets[0], 6u);  // 08-05, both sensors
  EXPECT_EQ(daily->points[4].sources[0], 3u);  // 1.1.1.1 at both counts once

  // Summary: 6 sensor-days holding 2+2+1+1 (tyo1) and 2+1 (partner1) distinct sources.
  auto sum = Summary(*store_, *ParsePeriod("2018Q3"), {}, 10);
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(sum->sensor_days, 6);
  EXPECT_EQ(sum->sources, 6u);
  EXPECT_DOUBLE_EQ(sum->sources_per_sensor_day, 9.0 / (2 * 92));

  auto telnet = TopSources(*store_, MakePortKey(6, 23), *ParsePeriod("2018Q3"), {}, 10);
  ASSERT_TRUE(telnet.ok());
  ASSERT_EQ(telnet->size(), 3u);
  EXPECT_EQ((*telnet)[0].addr.ToString(), "1.1.1.1");
  EXPECT_EQ((*telnet)[0].packets, 6u);
  EXPECT_EQ((*telnet)[0].error, 0u);
  EXPECT_EQ((*telnet)[1].addr.ToString(), "3.3.3.3");
  EXPECT_EQ((*telnet)[2].addr.ToString(), "6.6.6.6");
}

// Numbers of a battery of queries over the Q3 captures' store, every kind of cover in it.
std::vector<uint64_t> Q3Battery(const Store& store) {
  std::vector<uint64_t> out;
  auto partner = ResolveSensors(store, {}, {"partner"});
  EXPECT_TRUE(partner.ok());
  for (const char* p : {"2018Q3", "2018-08", "2018-08-05", "2018-07-20..2018-09-24"}) {
    for (Dimension dim : {Dimension::kPort, Dimension::kSensor}) {
      for (const SensorSelection& sel : {SensorSelection{}, *partner}) {
        auto t = Top(store, dim, *ParsePeriod(p), sel, 10);
        EXPECT_TRUE(t.ok()) << t.status().ToString();
        if (!t.ok()) continue;
        out.insert(out.end(), {t->total_packets, t->total_sources, t->rows.size()});
        for (const auto& r : t->rows) out.insert(out.end(), {r.key, r.packets, r.sources});
      }
    }
  }
  auto s = Series(store, Dimension::kPort, {MakePortKey(6, 23), MakePortKey(6, 445)},
                  *ParsePeriod("2018Q3"), Granularity::kDay, {});
  EXPECT_TRUE(s.ok());
  for (const auto& pt : s->points) {
    out.insert(out.end(), pt.packets.begin(), pt.packets.end());
    out.insert(out.end(), pt.sources.begin(), pt.sources.end());
  }
  auto pc = PortByCountry(store, MakePortKey(6, 23), *ParsePeriod("2018-08"), {}, 5);
  EXPECT_TRUE(pc.ok());
  for (const auto& pt : pc->points) out.insert(out.end(), pt.packets.begin(), pt.packets.end());
  auto ts = TopSources(store, MakePortKey(6, 23), *ParsePeriod("2018Q3"), *partner, 5);
  EXPECT_TRUE(ts.ok());
  for (const auto& x : *ts) out.insert(out.end(), {x.addr.v4(), x.packets});
  return out;
}

TEST_F(StoreTest, AStoreWithoutPooledDaysOrSensorPeriodsAnswersTheSameAndGainsThem) {
  // A store written before pooled day and per-sensor period rollups existed: its manifest names
  // only the pooled months and quarters. Queries read the day rollups instead, and the next
  // ingest builds the rollups of what it touches from the committed days.
  WriteQ3Captures(dir_.path());
  auto open = [](const std::string& dir) {
    auto s = Store::Open(dir, {.create = true, .timezone = "Asia/Tokyo"});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  };
  auto ingest = [&](Store* s, const char* file, const SensorConfig& sensor) {
    Ingester ing(s, nullptr);
    auto r = ing.IngestFile(sensor, Path(file));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  };
  SensorConfig tyo = Sensor("tyo1", "domestic"), partner = Sensor("partner1", "partner");
  auto fresh = open(Path("fresh"));
  auto old = open(Path("old"));
  for (Store* s : {fresh.get(), old.get()}) {
    ingest(s, "a.pcap", tyo);
    ingest(s, "b.pcap", partner);
  }
  old.reset();
  std::string manifest = Path("old/MANIFEST");
  nlohmann::json j = nlohmann::json::parse(WholeManifest(Path("old")));
  nlohmann::json kept = nlohmann::json::object();
  for (const auto& [label, file] : j["periods"].items()) {
    if (label.size() == 7 || label.size() == 6) kept[label] = file;  // 2018-08, 2018Q3
  }
  ASSERT_EQ(kept.size(), 4u);
  j["periods"] = kept;
  j.erase("checksum");  // as written then: format 2, before manifests were sealed
  j["format"] = 2;
  std::ofstream(manifest) << j.dump(1);
  old = open(Path("old"));
  std::vector<uint64_t> want = Q3Battery(*fresh);
  EXPECT_GT(want.size(), 100u);
  EXPECT_EQ(Q3Battery(*old), want);
  for (Store* s : {fresh.get(), old.get()}) ingest(s, "c.pcap", tyo);
  const auto& labels = old->manifest().periods;
  for (const char* l : {"2018-08-20", "2018-08/s0", "2018Q3/s0"}) EXPECT_TRUE(labels.count(l)) << l;
  EXPECT_FALSE(labels.count("2018Q3/s1"));  // partner1's quarter: untouched, still missing
  want = Q3Battery(*fresh);
  EXPECT_EQ(Q3Battery(*old), want);
  // The rollups the ingest built from the committed days hold them: tyo1's quarter.
  auto q = old->PeriodParts("2018Q3/s0");
  ASSERT_TRUE(q.ok());
  ASSERT_EQ((*q)->size(), 1u);  // the committed days and c.pcap's counts, in one first part
  ASSERT_EQ((*q)->front()->sensors().size(), 1u);
  EXPECT_EQ((*q)->front()->sensors()[0].packets, 12u);
  EXPECT_EQ((*q)->front()->sensors()[0].sources, 5u);
}

TEST_F(StoreTest, TopSourcesFindsEverySourceAboveItsShareWithinTheStatedError) {
  // 23/TCP, day 1: 1.1.1.1 ×100, 2.2.2.2 ×30 and 200 sources ×1; day 2 (another capture):
  // 2.2.2.2 ×40 and 100 other sources ×1. More sources than the summary's slots, so it must drop
  // some; the counts it keeps are checked against a scan of the observations.
  constexpr int64_t kDay = 86400 * kS;
  std::vector<Pkt> d1, d2;
  for (int i = 0; i < 100; ++i) d1.push_back({kAug12Jst + i, 0x01010101, kNet + 1, 6, 23});
  for (int i = 0; i < 30; ++i) d1.push_back({kAug12Jst + 200 + i, 0x02020202, kNet + 1, 6, 23});
  for (uint32_t i = 0; i < 200; ++i)
    d1.push_back({kAug12Jst + 300 + i, 0x30000000 + i, kNet, 6, 23});
  for (int i = 0; i < 40; ++i) d2.push_back({kAug12Jst + kDay + i, 0x02020202, kNet, 6, 23});
  for (uint32_t i = 0; i < 100; ++i)
    d2.push_back({kAug12Jst + kDay + 50 + i, 0x40000000 + i, kNet, 6, 23});
  WritePcap(Path("d1.pcap"), d1);
  WritePcap(Path("d2.pcap"), d2);
  Open();
  Ingest(Path("d1.pcap"));
  Ingest(Path("d2.pcap"));
  const uint64_t port_packets = 470;
  for (const char* period : {"2018-08-12", "2018-08-12..2018-08-13", "2018-08", "2018Q3"}) {
    SCOPED_TRACE(period);
    auto fast = TopSources(*store_, MakePortKey(6, 23), *ParsePeriod(period), {}, 5);
    auto exact = TopSourcesExact(*store_, MakePortKey(6, 23), *ParsePeriod(period), {}, 5);
    ASSERT_TRUE(fast.ok() && exact.ok());
    ASSERT_GE(fast->size(), 2u);
    EXPECT_EQ((*exact)[0].addr.ToString(), "1.1.1.1");
    EXPECT_EQ((*exact)[0].packets, 100u);
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ((*fast)[i].addr, (*exact)[i].addr);
      EXPECT_LE((*fast)[i].packets, (*exact)[i].packets);
      EXPECT_GE((*fast)[i].packets + (*fast)[i].error, (*exact)[i].packets);
      EXPECT_LE((*fast)[i].error, port_packets / (kHeavySlots + 1));
      EXPECT_GT((*fast)[i].error, 0u);  // the summary did drop sources
    }
  }
}

TEST_F(StoreTest, SourceHistoryReadsOnlyTheIndexedBlocksAndCountsEveryPacket) {
  // 200,000 packets from 5,000 sources (40 each) over two captures and two days: several blocks
  // per segment. 16.0.0.7 sends 20 packets each day: rows i = 7 + 5000k.
  std::vector<Pkt> a, b;
  constexpr int64_t kDay = 86400 * kS;
  for (uint32_t i = 0; i < 100000; ++i) {
    a.push_back({kAug12Jst + int64_t{i} * 100, 0x10000000u + i % 5000, kNet + (i & 0xFF), 6,
                 static_cast<uint16_t>(i % 97)});
    b.push_back({kAug12Jst + kDay + int64_t{i} * 100, 0x10000000u + i % 5000, kNet, 17,
                 static_cast<uint16_t>(i % 89)});
  }
  WritePcap(Path("a.pcap"), a);
  WritePcap(Path("b.pcap"), b);
  Open();
  Ingest(Path("a.pcap"));
  Ingest(Path("b.pcap"));
  for (const auto& in : store_->manifest().inputs) EXPECT_NE(in.index, 0u);
  auto h = SourceHistory(*store_, *IpAddr::Parse("16.0.0.7"));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_TRUE(h->seen);
  EXPECT_EQ(h->packets, 40u);
  EXPECT_EQ(h->days.size(), 2u);
  // i = 7 + 5000k: TCP ports (7 + 5000k) mod 97 = 7 + 53k mod 97, UDP (7 + 5000k) mod 89.
  std::map<PortKey, uint64_t> want;
  for (uint32_t k = 0; k < 20; ++k) {
    want[MakePortKey(6, static_cast<uint16_t>((7 + 5000 * k) % 97))]++;
    want[MakePortKey(17, static_cast<uint16_t>((7 + 5000 * k) % 89))]++;
  }
  EXPECT_EQ(h->ports, want);
  // The index keeps whole seconds (format 6), rounded down: 700 µs and 9.5007 s past midnight.
  EXPECT_EQ(h->first_us, kAug12Jst);
  EXPECT_EQ(h->last_us, kAug12Jst + kDay + 9 * kS);
  static_assert((7 + 5000 * 19) * 100 == 9'500'700);
  EXPECT_EQ(h->ttls, (std::map<uint8_t, uint64_t>{{64, 40}}));
  EXPECT_TRUE(h->windows.empty());
  auto w = SourceHistory(*store_, *IpAddr::Parse("16.0.0.7"), true);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->windows, (std::map<uint16_t, uint64_t>{{0, 20}}));  // the TCP day's packets
  EXPECT_EQ(w->ports, want);
  // Rebuilt from the segments (a maintenance transaction), the indexes give the same history.
  std::vector<uint64_t> before;
  for (const auto& in : store_->manifest().inputs) before.push_back(in.index);
  {
    auto txn = store_->Begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE((*txn)->RebuildIndexes().ok());
  }
  Open();
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_NE(store_->manifest().inputs[i].index, before[i]);
    EXPECT_FALSE(fs::exists(fmt::format("{}/store/idx/{:08}.tsix", dir_.path(), before[i])));
  }
  auto again = SourceHistory(*store_, *IpAddr::Parse("16.0.0.7"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->packets, 40u);
  EXPECT_EQ(again->ports, want);
  EXPECT_EQ(again->days, h->days);
  EXPECT_EQ(again->first_us, h->first_us);
  EXPECT_EQ(again->last_us, h->last_us);
  auto other = SourceHistory(*store_, *IpAddr::Parse("16.0.0.8"));
  EXPECT_EQ(other->packets, 40u);
  auto unseen = SourceHistory(*store_, *IpAddr::Parse("192.0.2.1"));
  ASSERT_TRUE(unseen.ok());
  EXPECT_FALSE(unseen->seen);
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

TEST(Cli, AnUnknownCommandIsNamedWithTheCommandsThereAre) {
  // Regression (issue 10): `teiten bogus` said "A subcommand is required".
  bool ok = true;
  std::string out = testing::Run(std::string(TEITEN_BIN) + " bogus 2>&1", &ok);
  EXPECT_FALSE(ok);
  EXPECT_NE(out.find("'bogus' is not a teiten command"), std::string::npos) << out;
  EXPECT_NE(out.find("ingest, top, series"), std::string::npos) << out;
  out = testing::Run(std::string(TEITEN_BIN) + " verify --help 2>&1", &ok);
  EXPECT_TRUE(ok) << out;
}

TEST_F(StoreTest, IpPrintsACardWithRunsOfDaysAndWrappedListsForPeopleAndEveryDayForMachines) {
  // Regression: `teiten ip` printed its fields as a two-column table whose value column was as
  // wide as the longest list (every day seen, one line of 1,900 columns), so the packets and
  // days were right-aligned 1,900 columns away.
  std::vector<Pkt> pkts;
  const uint32_t src = 0x01020304;
  int per_day[] = {1, 2, 3};
  for (int d = 0; d < 3; ++d) {
    for (int k = 0; k < per_day[d]; ++k) {
      pkts.push_back({kAug12Jst + d * 86400 * kS + k * kS, src, kNet + 1, 6,
                      static_cast<uint16_t>(1000 + d * 10 + k)});
    }
  }
  for (uint16_t p = 0; p < 40; ++p) {  // 40 ports: a list that must wrap
    pkts.push_back(
        {kAug12Jst + 8 * 86400 * kS + p * kS, src, kNet + 1, 6, static_cast<uint16_t>(2000 + p)});
  }
  WritePcap(Path("a.pcap"), pkts);
  Open();
  Ingest(Path("a.pcap"));
  bool ok = false;
  std::string card = testing::Run(
      fmt::format("{} ip --store {}/store 1.2.3.4 2>&1", TEITEN_BIN, dir_.path()), &ok);
  ASSERT_TRUE(ok) << card;
  // Aug 12–14 (1 + 2 + 3 packets) and Aug 20 (40), in the store's time zone (Asia/Tokyo).
  EXPECT_NE(card.find("days_seen     2018-08-12 – 2018-08-14 ×6 (3 days, 1–3 a day); "
                      "2018-08-20 ×40\n"),
            std::string::npos)
      << card;
  EXPECT_NE(card.find("packets       46\n"), std::string::npos) << card;
  size_t lines = 0, port_mentions = 0;
  std::istringstream in(card);
  for (std::string line; std::getline(in, line); ++lines) {
    size_t columns = 0;  // code points: the card holds no wide characters
    for (unsigned char ch : line) columns += (ch & 0xC0) != 0x80;
    EXPECT_LE(columns, 100u) << line;
    for (size_t at = line.find("/TCP"); at != std::string::npos; at = line.find("/TCP", at + 1)) {
      ++port_mentions;
    }
  }
  EXPECT_EQ(port_mentions, 46u);  // every port is listed, wrapped over several lines
  EXPECT_GT(lines, 16u);
  // JSON keeps every day as its own entry.
  std::string js = testing::Run(
      fmt::format("{} ip --store {}/store 1.2.3.4 --format json", TEITEN_BIN, dir_.path()), &ok);
  ASSERT_TRUE(ok) << js;
  auto rows = nlohmann::json::parse(js);
  std::string days;
  for (const auto& r : rows) {
    if (r["field"] == "days_seen") days = r["value"];
  }
  EXPECT_EQ(days, "2018-08-12 ×1, 2018-08-13 ×2, 2018-08-14 ×3, 2018-08-20 ×40");
}

TEST(Cli, AGeoDatabaseThatCannotBeOpenedIsNamedWithItsConfigLineAndTheSystemsReason) {
  // Regression (issue 10): the error named neither the config line nor why the file failed.
  testing::TempDir dir;
  std::string cfg = dir.path() + "/t.toml";
  for (auto [db, why] : {std::pair{dir.path() + "/missing.mmdb", "No such file or directory"},
                         {dir.path(), "it is a directory"}}) {
    std::ofstream(cfg) << "[store]\npath = \"s\"\n\n[geo]\ncountry_db = \"" << db
                       << "\"\n[[sensor]]\nid = \"a\"\nprefixes = [\"10.0.0.0/8\"]\n";
    bool ok = true;
    std::string out = testing::Run(
        std::string(TEITEN_BIN) + " ingest --config " + cfg + " --sensor a /dev/null 2>&1", &ok);
    EXPECT_FALSE(ok);
    EXPECT_NE(out.find(cfg + ":4: [geo]: geo database " + db), std::string::npos) << out;
    EXPECT_NE(out.find(why), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace teiten
